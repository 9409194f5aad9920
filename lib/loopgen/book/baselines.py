"""Trivial baselines, computed from the run's own data, that give a model's number its meaning.

A reconstruction error, a next-code accuracy or a Table 3 row says little alone: it says something once it sits
beside what a rule with nothing learned scores on the same loops. Every baseline's name begins with
:data:`PREFIX`, so a table row or a headline number of a baseline can never be taken for a model's.

* reconstruction (Tables 1 and 2): :data:`SILENCE`, an all-zero reconstruction (its error is the loops' density),
  and :data:`COPY_BAR_1`, bar 1 repeated into all 8 bars (a loop repeats itself, so this gets much of it right);
* the prior's next-code accuracy (notebook 03): copy the code one half of the loop back (bar 5 repeats bar 1; in
  the first half, one bar back), copy the code one bar back, and the training set's most frequent code at each
  latent step (no context at all);
* Table 3: :data:`SHUFFLED_BARS`, the training loops with their 8 bars in a random order: real bars, no loop
  structure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from loopgen import BARS_PER_LOOP, N_COLUMNS, STEPS_PER_BAR, metrics
from loopgen.data.validate import check_codes, check_loops

PREFIX = "baseline:"
SILENCE = f"{PREFIX} silence"
COPY_BAR_1 = f"{PREFIX} copy bar 1"
SHUFFLED_BARS = f"{PREFIX} training loops with shuffled bars"
MOST_FREQUENT_CODE = f"{PREFIX} most frequent code"
PRIOR = "LSTM prior"

# What each baseline is, and what it teaches; written under the tables that show it.
NOTES = {
    SILENCE: f"'{SILENCE}': every cell off. Its error is the share of cells that are on, so a model must beat it "
             "before it has learned anything about where the notes are.",
    COPY_BAR_1: f"'{COPY_BAR_1}': the loop's own bar 1 played 8 times. Loops repeat themselves, so a model that "
                "does not beat it has learned less than 'play the first bar again'.",
    SHUFFLED_BARS: f"'{SHUFFLED_BARS}': every training loop with its 8 bars in a random order (seeded). Real bars, "
                   "no loop: a metric that scores it like the training set (UP, ND, DB, and FNB where the bass starts "
                   "most bars) cannot tell a loop from a pile of bars; HD, FND and Loopability can.",
}


def is_baseline(name: str) -> bool:
    """Whether a row or headline name is a baseline's (it begins with :data:`PREFIX`)."""
    return str(name).startswith(PREFIX)


def copy_back_name(lag: int) -> str:
    """``'baseline: copy 16 back'``: the name of the next-code baseline that copies the code ``lag`` steps back."""
    return f"{PREFIX} copy {int(lag)} back"


# ----------------------------------------------------------------------------- reconstruction
def silence(loops: np.ndarray) -> np.ndarray:
    """An all-zero reconstruction of every loop."""
    return np.zeros_like(check_loops(loops, single_as_batch=True))


def copy_bar_one(loops: np.ndarray) -> np.ndarray:
    """Every loop's bar 1 repeated into all 8 bars."""
    loops = check_loops(loops, single_as_batch=True)
    return np.tile(loops[:, :STEPS_PER_BAR], (1, BARS_PER_LOOP, 1))


def reconstruction_baselines(loops: np.ndarray, column: str = "reconstruction_error") -> pd.DataFrame:
    """The reconstruction error of :data:`SILENCE` and :data:`COPY_BAR_1` on ``loops``: a Table 1/2 frame."""
    errors = {name: metrics.reconstruction_error(loops, rebuild(loops))
              for name, rebuild in ((SILENCE, silence), (COPY_BAR_1, copy_bar_one))}
    return pd.DataFrame({column: errors})


# ----------------------------------------------------------------------------- the prior's next code
def copy_back_lags(latent_steps: int) -> dict[str, tuple[int, ...]]:
    """The copy baselines for ``latent_steps`` codes per loop, by name: the lags each tries, longest first.

    A code is predicted by the code ``lag`` steps before it, with the first lag that reaches back into the loop,
    else the code just before. At t = 32 (4 codes a bar): 'copy 16 back' (bar 5 repeats bar 1; 4 back in the
    first half) and 'copy 4 back' (the same place in the previous bar)."""
    half, bar = latent_steps // 2, latent_steps // BARS_PER_LOOP
    return {copy_back_name(half): (half, bar, 1), copy_back_name(bar): (bar, 1)}


def copy_back_predictions(codes: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """(n, t - 1): the prediction of codes 1..t-1, each the code ``lag`` steps back for the first of ``lags``
    (longest first) that reaches back into the loop, else the code just before."""
    codes = check_codes(codes)
    steps = np.arange(1, codes.shape[1])
    source = steps - 1
    for lag in sorted(lags):  # the longest lag that fits wins: it is applied last
        source = np.where(steps >= lag, steps - lag, source)
    return codes[:, source]


def copy_back_accuracy(codes: np.ndarray, lags: Sequence[int]) -> float:
    """Share of codes 1..t-1 equal to their :func:`copy_back_predictions` (as the prior's accuracy is counted)."""
    codes = check_codes(codes)
    return float((copy_back_predictions(codes, lags) == codes[:, 1:]).mean())


def most_frequent_codes(train_codes: np.ndarray) -> np.ndarray:
    """(t,): the training codes' most frequent code at each latent step (Figure 5's top sequence)."""
    train_codes = check_codes(train_codes)
    counts = np.stack([np.bincount(column, minlength=int(train_codes.max()) + 1) for column in train_codes.T])
    return metrics.frequent_code_sequences(counts)["most frequent"]


def most_frequent_code_accuracy(codes: np.ndarray, train_codes: np.ndarray) -> float:
    """Share of codes 1..t-1 equal to the training codes' most frequent code at their step: no context used."""
    codes = check_codes(codes)
    frequent = most_frequent_codes(train_codes)
    if len(frequent) != codes.shape[1]:
        raise ValueError(f"codes have {codes.shape[1]} latent steps but train_codes {len(frequent)}")
    return float((codes[:, 1:] == frequent[1:]).mean())


def next_code_baselines(codes: np.ndarray, train_codes: np.ndarray) -> dict[str, float]:
    """Every next-code baseline's accuracy on ``codes``, by name (the most frequent codes from ``train_codes``)."""
    codes = check_codes(codes)
    out = {name: copy_back_accuracy(codes, lags) for name, lags in copy_back_lags(codes.shape[1]).items()}
    out[MOST_FREQUENT_CODE] = most_frequent_code_accuracy(codes, train_codes)
    return out


def prior_accuracy_table(
    accuracy: Mapping[str, float], codes: Mapping[str, np.ndarray | None], train_codes: np.ndarray,
    paper_value: float | None = None,
) -> pd.DataFrame:
    """The prior's next-code accuracy beside every next-code baseline's, one column per code set.

    ``accuracy`` and ``codes`` are keyed alike (e.g. "training codes", "validation codes"); a code set that is
    None gets NaN. The last column is the paper's value, on the prior's row only."""
    names = [*copy_back_lags(check_codes(train_codes).shape[1]), MOST_FREQUENT_CODE]
    rows: dict[str, dict[str, float]] = {PRIOR: dict(accuracy)} | {name: {} for name in names}
    for column, these in codes.items():
        scores = next_code_baselines(these, train_codes) if these is not None and len(these) else {}
        for name in names:
            rows[name][column] = scores.get(name, np.nan)
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=list(codes))
    table["paper"] = [paper_value if name == PRIOR and paper_value is not None else np.nan for name in table.index]
    return table.rename_axis("next-code accuracy (teacher forcing)")


# ----------------------------------------------------------------------------- Table 3
def shuffle_bars(loops: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each loop with its 8 bars in a random order of its own (seeded)."""
    loops = check_loops(loops, single_as_batch=True)
    n = len(loops)
    order = np.argsort(np.random.default_rng(seed).random((n, BARS_PER_LOOP)), axis=1)
    bars = loops.reshape(n, BARS_PER_LOOP, STEPS_PER_BAR, N_COLUMNS)
    return bars[np.arange(n)[:, None], order].reshape(loops.shape)


def shuffled_bars_row(train_loops: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Table 3's row of the training loops with shuffled bars (OS and US need codes: NaN), with Loopability."""
    shuffled = shuffle_bars(train_loops, seed)
    return metrics.metric_row(shuffled) | {"Loopability": float(metrics.loopability(shuffled).mean())}
