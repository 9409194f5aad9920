"""Every number the paper reports, in one place, for the side-by-side tables.

The paper's body prints its musical-metrics table as "Table 1" and its latent-manipulation table as
"Table 2" (a typesetting slip: the prose calls them Table 3 and Table 4). We follow the prose:
``TABLE1`` reconstruction, ``TABLE2`` the VQ-VAE latent-size sweep, ``TABLE3`` musical metrics,
``TABLE4`` musical metrics after copying latent steps 0, 1 onto 16, 17.

A dash in the paper (OS/US for continuous VAEs) is NaN here. Rows are labelled as in the paper;
:data:`MODEL_LABELS` and :data:`GROUP_LABELS` map the project's names onto those labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopgen import registry

if TYPE_CHECKING:  # the tables are made when first read (PEP 562): the numbers below need no pandas
    import pandas as pd

nan = math.nan

# Project names (models, sample groups) -> the paper's row labels.
# The models' labels are the registry's titles (loopgen.registry: one place per model).
MODEL_LABELS: dict[str, str] = {name: registry.get(name).title for name in registry.autoencoders()}
GROUP_LABELS: dict[str, str] = {
    registry.TRAINING_SET: "Training set",
    **{name: registry.get(name).title for name in registry.continuous()},
    **{
        registry.temperature_group(t): f"VQ-VAE ({'argmax' if t is None else f'temp {t:g}'})"
        for t in (None, *registry.VQ_TEMPERATURES, registry.LISTENING_TEMPERATURE)
    },
}

# --- Table 1: reconstruction error on the validation set (mean Hamming / (128 x 93)) ---
def _table1() -> pd.DataFrame:
    """Table 1 (``TABLE1``)."""
    import pandas as pd

    return pd.DataFrame(
        {"reconstruction_error": [3.68e-3, 3.37e-3, 3.81e-3, 5.11e-3]},
        index=pd.Index(["AR LSTM-VAE", "NonAR LSTM-VAE", "CNN-VAE", "VQ-VAE"], name="model"),
    )


# --- Table 2: VQ-VAE reconstruction error by latent size (t time steps, L dimensions, K codes) ---
TABLE2_SETTINGS: tuple[tuple[int, int, int], ...] = registry.TABLE2_SETTINGS  # the table's rows, in its order


def _table2() -> pd.DataFrame:
    """Table 2 (``TABLE2``)."""
    import pandas as pd

    return pd.DataFrame(
        {
            "t": [s[0] for s in TABLE2_SETTINGS],
            "L": [s[1] for s in TABLE2_SETTINGS],
            "K": [s[2] for s in TABLE2_SETTINGS],
            "reconstruction_error": [6.05e-3, 5.11e-3, 5.06e-3, 3.89e-3, 3.33e-3, 3.02e-3],
        },
        index=pd.Index([f"t={t}, L={L}, K={K}" for t, L, K in TABLE2_SETTINGS], name="setting"),
    )


DEFAULT_VQ_SETTING = registry.VQ_DEFAULT  # "We have fixed t = 32, L = 16, K = 512"

# --- Table 3: musical metrics (the generated sets are as large as the training set) ---
TABLE3_COLUMNS = ("HD", "FND", "FNB", "DB", "OS", "US", "UP", "ND")


def _table3() -> pd.DataFrame:
    """Table 3 (``TABLE3``)."""
    import pandas as pd

    return pd.DataFrame(
        [
            [4.43e-4, 1.00, 1.00, 0.00, 1.00, 0.51, 10.50, 0.92],
            [4.05e-3, 0.99, 0.44, 1.51e-2, nan, nan, 10.61, 0.73],
            [2.79e-3, 1.00, 0.41, 1.89e-2, nan, nan, 10.79, 0.75],
            [7.33e-3, 0.96, 0.71, 4.44e-2, nan, nan, 13.81, 0.77],
            [1.44e-3, 1.00, 0.98, 1.10e-3, 0.28, 4.08e-3, 8.77, 0.94],
            [4.25e-3, 1.00, 0.98, 2.21e-3, 7.97e-2, 0.50, 9.94, 0.91],
            [1.23e-2, 1.00, 0.98, 2.56e-3, 2.45e-2, 0.90, 11.58, 0.89],
            [1.82e-2, 1.00, 0.97, 3.09e-3, 2.89e-3, 0.99, 14.05, 0.88],
        ],
        columns=list(TABLE3_COLUMNS),
        index=pd.Index(
            [
                "Training set",
                "AR LSTM-VAE",
                "NonAR LSTM-VAE",
                "CNN-VAE",
                "VQ-VAE (argmax)",
                "VQ-VAE (temp 1)",
                "VQ-VAE (temp 1.5)",
                "VQ-VAE (temp 2)",
            ],
            name="model",
        ),
    )


# --- Table 4: VQ-VAE after copying the codes at latent steps 0, 1 onto 16, 17 ---
def _table4() -> pd.DataFrame:
    """Table 4 (``TABLE4``)."""
    import pandas as pd

    return pd.DataFrame(
        [
            [1.56e-3, 1.00, 0.98, 1.01e-3, 0.25, 4.11e-3, 8.69, 0.95],
            [3.58e-3, 1.00, 0.98, 2.18e-3, 7.12e-2, 0.62, 10.02, 0.91],
            [6.89e-3, 1.00, 0.98, 2.61e-3, 2.25e-2, 0.92, 11.44, 0.90],
            [9.99e-3, 1.00, 0.97, 3.14e-3, 2.95e-3, 0.99, 13.72, 0.88],
        ],
        columns=list(TABLE3_COLUMNS),
        index=pd.Index(
            ["VQ-VAE (argmax)", "VQ-VAE (temp 1)", "VQ-VAE (temp 1.5)", "VQ-VAE (temp 2)"], name="model"
        ),
    )


COPY_SOURCE_STEPS = (0, 2)  # latent steps 0, 1 ...
COPY_TARGET_STEPS = (16, 18)  # ... copied onto 16, 17

# --- the prior ---
PRIOR_TEACHER_FORCING_ACCURACY = 0.8291  # 82.91 %


# --- the listening test ---
@dataclass(frozen=True)
class ListeningResult:
    listeners: int = 20
    per_group: int = 10
    familiarisation: int = 3
    groups: tuple[str, ...] = (
        "Training set",
        "AR LSTM-VAE",
        "NonAR LSTM-VAE",
        "CNN-VAE",
        "VQ-VAE (temp 1.2)",
    )
    training_set_mean: float = 3.83
    vq_vae_mean: float = 3.52
    vq_vae_temperature: float = 1.2
    kruskal_h: float = 75.19
    p_value_below: float = 0.001  # the paper reports only p < 0.001
    scale: str = "Likert 1-5, 'how much does the sample sound like music'"


LISTENING = ListeningResult()
# The two means the paper reports, by the project's group names (the other groups: not reported).
LISTENING_MEANS: dict[str, float] = {
    registry.TRAINING_SET: LISTENING.training_set_mean,
    registry.LISTENING_TEMPERATURE_GROUP: LISTENING.vq_vae_mean,
}


# --- the dataset ---
@dataclass(frozen=True)
class DatasetNumbers:
    """The paper's only dataset figures: "For 176,581 MIDI files in LMD-full, 150,750 loops are extracted from
    114,444 MIDIs by removing non-4/4 signature files", and the split sizes (Experiment Details).

    114,444 is read as the number of files left after removing the non-4/4 ones (not the number of files that
    yielded a loop; the paper never gives that). Nothing derived from these numbers belongs in a "paper" column.
    """

    lmd_full_files: int = 176_581
    four_four_files: int = 114_444
    loops: int = 150_750
    train: int = 120_600
    validation: int = 15_075
    test: int = 15_075


DATASET = DatasetNumbers()

# --- training (for the notes under tables) ---
TRAINING = {
    "epochs": 2000,
    "batch_size": 2048,
    "optimizer": "AdamW",
    "lr": "cosine annealing 1e-3 -> 5e-6",
    "lstm_latent": 128,
    "cnn_latent": 512,
    "vq_beta": 0.25,
}
TRAINING_GPU = "NVIDIA GeForce RTX 3090"  # "Each model is trained with NVIDIA GeForce RTX 3090 less than 8 hours"
TRAINING_HOURS_BELOW = 8


# --- the claims the paper makes without a table (checked by notebook 08, loopgen.book.sensitivity) ---
CLAIMS = {
    "kl_weight": "VAE has produced many noisy samples even after achieving the minimal reconstruction error when "
    "beta ~ 0 (Model Metric)",
    "commitment_weight": "beta in VQ-VAE objectives did not affect much to reconstruction task (beta = 0.25) "
    "(Model Metric)",
    "prior_compression": "Although the high compression ratio deteriorates reconstruction quality, it makes modeling "
    "prior easier (Model Metric Results)",
    "seed_spread": "Our experiment results do not depend on random initialization so much (Appendix A, Training "
    "Details)",
}


_TABLES = {"TABLE1": _table1, "TABLE2": _table2, "TABLE3": _table3, "TABLE4": _table4}


def __getattr__(name: str):
    """``TABLE1`` .. ``TABLE4``, made (once) when first read, so that importing the paper's numbers needs no pandas
    (the GPU check runs on a box with only torch)."""
    if name in _TABLES:
        table = globals()[name] = _TABLES[name]()
        return table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
