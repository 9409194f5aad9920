"""A PROXY listener: ratings that depend on the loops themselves, until real listeners have rated them.

**These are not listener data.** Every proxy row carries ``simulated=True`` and ``source="proxy"``, is
written to ``ratings/ratings_PROXY.csv``, and the table, the figure title and the notebook text say PROXY.

How a loop gets its score:

1. Each loop becomes a vector of musical features (:func:`loop_features`: drum and bass density per bar,
   onsets per position in the bar, the loop's own repetition, the start-of-loop rules, bass range and
   duplicates, empty bars ...).
2. A logistic-regression classifier, strongly L2-regularised (:data:`DEFAULT_L2`), learns to tell *real*
   loops (the training-set group) from *generated* ones (every other group), with both classes weighted equally. It is cross-validated: the pool is cut
   into ``folds`` parts and each loop's probability of being real comes from the model trained on the
   other parts, so **no loop is ever scored by a classifier that saw it**.
3. That probability ``p`` becomes a loop quality on the Likert scale, ``1 + 4 p``, and each (listener, loop)
   rating is ``clip(round(quality + a_listener + e), 1, 5)`` with a per-listener offset and noise, as in a
   textbook mixed model for Likert ratings.

So a group whose loops a simple classifier cannot tell from real ones is rated like the training set, and
silent or noisy loops are rated low: the ratings rank the groups by their loops, not by the paper's means.
It is a cheap stand-in for "sounds like music", with the obvious limits of a linear model on hand-made
features; real ratings in ``ratings/`` always replace it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from loopgen import LOOP_STEPS, N_DRUM, STEPS_PER_BAR

PROXY_FILE = "ratings_PROXY.csv"
# L2 penalty per loop of the pool. Strong on purpose: a listener who judges broad features, not single cells.
# Nearly unregularised (1e-4 per loop) the classifier tells every generated group of the demo from the real
# loops almost perfectly (cross-validated accuracy 99.9 %) and rates them all ~1, so the ratings could not rank
# the models; at 1 per loop (accuracy ~95 %) its probabilities of "real" still order the groups with room
# between them.
DEFAULT_L2 = 1.0
REAL_GROUP = "training_set"


def loop_features(loops: np.ndarray) -> np.ndarray:
    """Musical features of each loop, shape (N, F): see the module docstring. Input (N, 128, 93) 0/1."""
    x = np.asarray(loops, dtype=np.float32)
    n = len(x)
    drums = x[:, :, :N_DRUM]
    bass = x[:, :, N_DRUM:]
    bars = x.reshape(n, LOOP_STEPS // STEPS_PER_BAR, STEPS_PER_BAR, -1)
    bar_active = bars.max(axis=(2, 3))  # (N, 8)
    drum_per_component = drums.mean(axis=1)  # (N, 9)
    drum_onsets_in_bar = drums.max(axis=2).reshape(n, -1, STEPS_PER_BAR).mean(axis=1)  # (N, 16)
    bass_on = bass.max(axis=2)
    bass_steps_in_bar = bass_on.reshape(n, -1, STEPS_PER_BAR).mean(axis=1)  # (N, 16)
    bass_count = bass.sum(axis=2)
    pitches = np.arange(bass.shape[2], dtype=np.float32)
    step_pitch = (bass * pitches).sum(axis=2) / np.maximum(bass_count, 1)  # mean bass pitch per step
    played = (bass_count > 0).sum(axis=1)
    pitch_mean = (step_pitch * (bass_count > 0)).sum(axis=1) / np.maximum(played, 1)
    pitch_var = ((step_pitch - pitch_mean[:, None]) ** 2 * (bass_count > 0)).sum(axis=1) / np.maximum(played, 1)
    pitch_spread = np.sqrt(pitch_var)
    bar1, bar5 = bars[:, 0], bars[:, 4]
    per_bar = bars.reshape(n, bars.shape[1], -1)
    consecutive = np.abs(per_bar[:, 1:] - per_bar[:, :-1]).mean(axis=2)  # (N, 7)
    columns_used = x.max(axis=1).sum(axis=1)
    features = [
        drum_per_component,
        drum_onsets_in_bar,
        bass_steps_in_bar,
        bar_active.mean(axis=1, keepdims=True),
        np.abs(bar1 - bar5).mean(axis=(1, 2))[:, None],
        consecutive.mean(axis=1, keepdims=True),
        (bass_count > 1).mean(axis=1, keepdims=True),
        (x[:, 0, 0] * x[:, 0, 6])[:, None],
        bass[:, 0].max(axis=1)[:, None],
        columns_used[:, None] / 10.0,
        pitch_mean[:, None] / 10.0,
        pitch_spread[:, None] / 10.0,
        x.max(axis=2).mean(axis=1, keepdims=True),
    ]
    return np.concatenate(features, axis=1).astype(np.float64)


def _fit_logistic(features: np.ndarray, labels: np.ndarray, weights: np.ndarray, l2: float) -> np.ndarray:
    """Weighted L2-regularised logistic regression by Newton's method; returns (F + 1) coefficients."""
    design = np.hstack([features, np.ones((len(features), 1))])
    coef = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0  # no penalty on the intercept
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ coef, -30, 30)))
        gradient = design.T @ (weights * (p - labels)) + penalty * coef
        hessian = (design * (weights * p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        coef -= step
        if np.abs(step).max() < 1e-8:
            break
    return coef


@dataclass
class ProxyScores:
    """Out-of-fold probability of "real" per loop of every group, and the classifier's accuracy."""

    p_real: dict[str, np.ndarray]  # group -> (n_loops_in_pool,) probabilities
    pool_index: dict[str, np.ndarray]  # group -> indices into that group's loops
    cv_accuracy: float

    def quality(self, group: str, index: int) -> float:
        """Loop quality on the 1-5 scale: ``1 + 4 * p_real`` of loop ``index`` of ``group``."""
        where = np.flatnonzero(self.pool_index[group] == index)
        if not len(where):
            raise KeyError(f"loop {index} of {group} is not in the proxy listener's pool")
        return 1.0 + 4.0 * float(self.p_real[group][where[0]])

    def group_means(self) -> pd.Series:
        """Mean probability of "real" per group (how often the classifier is fooled)."""
        return pd.Series({g: float(p.mean()) for g, p in self.p_real.items()}, name="p_real")


def score_loops(
    groups: Mapping[str, np.ndarray],
    *,
    must_include: Mapping[str, np.ndarray] | None = None,
    max_per_group: int = 1500,
    folds: int = 5,
    l2: float = DEFAULT_L2,
    seed: int = 0,
) -> ProxyScores:
    """Cross-validated real-vs-generated scores for a pool of loops from every group.

    ``groups`` maps group names to loops (N, 128, 93); ``REAL_GROUP`` is the real class, every other group
    the generated class. At most ``max_per_group`` loops per group enter the pool (a seeded choice that
    always includes ``must_include[group]``, e.g. the study's stimuli).
    """
    if REAL_GROUP not in groups:
        raise ValueError(f"the proxy listener needs the {REAL_GROUP!r} group as its real class")
    if len(groups) < 2:
        raise ValueError("the proxy listener needs at least one generated group beside the training set")
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    rng = np.random.default_rng(seed)
    pool_index: dict[str, np.ndarray] = {}
    feats, labels, owners = [], [], []
    for group, loops in groups.items():
        n = len(loops)
        if n == 0:
            raise ValueError(f"group {group!r} has no loops")
        keep = np.asarray((must_include or {}).get(group, []), dtype=int)
        rest = np.setdiff1d(np.arange(n), keep)
        extra = max(0, min(len(rest), max_per_group - len(keep)))
        chosen = np.sort(np.concatenate([keep, rng.choice(rest, size=extra, replace=False)]).astype(int))
        pool_index[group] = chosen
        feats.append(loop_features(np.asarray(loops)[chosen]))
        labels.append(np.full(len(chosen), 1.0 if group == REAL_GROUP else 0.0))
        owners += [group] * len(chosen)
    features = np.concatenate(feats)
    y = np.concatenate(labels)
    mean, std = features.mean(axis=0), features.std(axis=0)
    features = (features - mean) / np.where(std > 0, std, 1.0)
    n_real, n_fake = y.sum(), len(y) - y.sum()
    weights = np.where(y == 1, 0.5 / n_real, 0.5 / n_fake) * len(y)
    fold_of = rng.permutation(len(y)) % folds
    p = np.empty(len(y))
    for fold in range(folds):
        test = fold_of == fold
        coef = _fit_logistic(features[~test], y[~test], weights[~test], l2 * int((~test).sum()))
        design = np.hstack([features[test], np.ones((int(test.sum()), 1))])
        p[test] = 1.0 / (1.0 + np.exp(-np.clip(design @ coef, -30, 30)))
    accuracy = float(np.sum(weights * ((p >= 0.5) == (y == 1))) / weights.sum())
    owners_arr = np.asarray(owners)
    return ProxyScores({g: p[owners_arr == g] for g in groups}, pool_index, accuracy)


def proxy_ratings(
    key: pd.DataFrame,
    scores: ProxyScores,
    n_listeners: int,
    seed: int = 0,
    *,
    listener_sd: float = 0.4,
    noise_sd: float = 0.6,
) -> pd.DataFrame:
    """Ratings of every rated stimulus in ``key`` by ``n_listeners`` proxy listeners (``PROXY01`` ...).

    Columns: listener_id, stimulus_id, rating (1-5), simulated (True), source ("proxy").
    """
    if n_listeners < 1:
        raise ValueError(f"n_listeners must be >= 1; got {n_listeners}")
    stimuli = key[key["role"] == "stimulus"] if "role" in key.columns else key
    if stimuli.empty:
        raise ValueError("the key lists no rated stimuli")
    quality = np.array(
        [scores.quality(g, int(i)) for g, i in stimuli[["group", "source_index"]].itertuples(index=False)]
    )
    rng = np.random.default_rng(seed)
    listener_offset = rng.normal(0.0, listener_sd, size=(n_listeners, 1))
    noise = rng.normal(0.0, noise_sd, size=(n_listeners, len(stimuli)))
    from .simulate import ratings_frame

    latent = quality[None, :] + listener_offset + noise
    return ratings_frame("PROXY", stimuli["stimulus_id"].to_numpy(), latent, source="proxy")
