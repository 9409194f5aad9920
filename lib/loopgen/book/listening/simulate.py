"""Simulated ratings: a stand-in that lets the analysis run before any listener has taken the test.

**These are not data.** Every simulated row carries ``simulated=True`` and is written to
``ratings_SIMULATED.csv``; the notebook's table, figure title and text say so.

The model (a textbook mixed model for Likert ratings)::

    latent(listener l, stimulus s) = mu[group(s)] + a_l + b_s + e_ls
    a_l ~ N(0, listener_sd^2)    some listeners rate everything higher
    b_s ~ N(0, stimulus_sd^2)    some loops are better than others in their group
    e_ls ~ N(0, noise_sd^2)      the rest
    rating = clip(round(latent), 1, 5)

``mu`` defaults to :data:`DEFAULT_GROUP_MEANS`: the paper's two reported means (training set 3.83,
VQ-VAE at temperature 1.2: 3.52) and an arbitrary 3.0 for the groups the paper gives no number for.
Because the simulation is built from the paper's means, finding them again proves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from loopgen import registry
from loopgen.paper import LISTENING_MEANS
from loopgen.runtime.seed import seed_everything

from .study import RATING_COLUMNS, StudyLayout, write_csv_atomic

SIMULATED_FILE = "ratings_SIMULATED.csv"
FALLBACK_MEAN = 3.0
# The paper's two reported means; every other listening group (not reported numerically) an arbitrary middle value.
DEFAULT_GROUP_MEANS: dict[str, float] = {
    group: LISTENING_MEANS.get(group, FALLBACK_MEAN) for group in registry.listening_groups()
}


def simulate_ratings(
    key: pd.DataFrame,
    n_listeners: int,
    seed: int = 0,
    *,
    group_means: Mapping[str, float] | None = None,
    listener_sd: float = 0.5,
    stimulus_sd: float = 0.4,
    noise_sd: float = 0.8,
) -> pd.DataFrame:
    """Seeded simulated ratings of every rated stimulus in ``key`` by ``n_listeners`` listeners (``SIM01``...).

    Columns: listener_id, stimulus_id, rating (1-5), simulated (always True). See the module docstring.
    """
    if n_listeners < 1:
        raise ValueError(f"n_listeners must be >= 1; got {n_listeners}")
    means = dict(DEFAULT_GROUP_MEANS if group_means is None else group_means)
    stimuli = key[key["role"] == "stimulus"] if "role" in key.columns else key
    if stimuli.empty:
        raise ValueError("the key lists no rated stimuli")
    rng = seed_everything(seed)
    mu = np.array([means.get(g, FALLBACK_MEAN) for g in stimuli["group"]], dtype=float)
    listener_offset = rng.normal(0.0, listener_sd, size=(n_listeners, 1))
    stimulus_offset = rng.normal(0.0, stimulus_sd, size=(1, len(stimuli)))
    noise = rng.normal(0.0, noise_sd, size=(n_listeners, len(stimuli)))
    latent = mu[None, :] + listener_offset + stimulus_offset + noise
    return ratings_frame("SIM", stimuli["stimulus_id"].to_numpy(), latent)


def ratings_frame(prefix: str, stimulus_ids: np.ndarray, latent: np.ndarray, **columns: object) -> pd.DataFrame:
    """Stand-in ratings as rows: ``latent`` (listeners x stimuli) rounded and clipped to 1-5, listeners named
    ``<prefix>01`` ...; every row ``simulated=True`` plus any constant ``columns``."""
    n_listeners = latent.shape[0]
    width = max(2, len(str(n_listeners)))
    listeners = [f"{prefix}{n + 1:0{width}d}" for n in range(n_listeners)]
    return pd.DataFrame(
        {
            "listener_id": np.repeat(listeners, len(stimulus_ids)),
            "stimulus_id": np.tile(stimulus_ids, n_listeners),
            "rating": np.clip(np.rint(latent), 1, 5).astype(int).reshape(-1),
            "simulated": True,
            **columns,
        }
    )


def write_simulated(ratings: pd.DataFrame, study_dir: Path | str) -> Path:
    """Write simulated ratings to ``<study>/ratings/ratings_SIMULATED.csv`` (refuses non-simulated rows)."""
    if "simulated" not in ratings.columns or not ratings["simulated"].astype(bool).all():
        raise ValueError("only simulated ratings (column simulated=True) go to ratings_SIMULATED.csv")
    columns = [*RATING_COLUMNS, "simulated"]
    rows = ratings[columns].itertuples(index=False, name=None)
    return write_csv_atomic(StudyLayout(Path(study_dir)).ratings / SIMULATED_FILE, columns, list(rows))
