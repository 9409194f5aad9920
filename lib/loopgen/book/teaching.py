"""The mechanism in small pieces, for the notebooks' teaching cells, exercises and worked solutions.

Each function shows one step the library otherwise does in bulk: the loop rules window by window
(:func:`window_table`, the same rules as :func:`loopgen.loops.find_loops`), the prior's next-code distribution at
several temperatures (:func:`next_code_distributions`, from the scores of :func:`next_code_logits`), and how often a code repeats at a given lag in code space
(:func:`lag_match`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from loopgen import BAR_CELLS, BARS_PER_LOOP, N_DRUM, STEPS_PER_BAR
from loopgen.loops import (
    LoopParams,
    repetition_distance,
    song_roll,
    starts_with_bass,
    starts_with_kick_and_crash,
)

RULES = ("1 bar 5 repeats bar 1", "2 kick + crash at step 0", "3 bass at step 0", "4 enough drums and bass")


def read_song_roll(path: str | Path, params: LoopParams = LoopParams(), backend: str = "fast") -> np.ndarray:
    """The binary song roll (S, 93) of one MIDI file, as extraction builds it (raises for a rejected file)."""
    from loopgen.data.midi import read_notes

    return song_roll(read_notes(path, backend, params.limits), params)


def window_table(roll: np.ndarray, params: LoopParams = LoopParams()) -> pd.DataFrame:
    """Every 8-bar window of a song roll with what each loop rule measures and whether it passes.

    One row per window start bar (every ``params.stride_bars`` bars); ``loop`` is True exactly for the start bars
    :func:`loopgen.loops.find_loops` returns, and ``first failing rule`` names the first rule (in the order of docs/rules.md §3)
    a rejected window fails.
    """
    n_bars = roll.shape[0] // STEPS_PER_BAR
    starts = np.arange(0, max(n_bars - BARS_PER_LOOP + 1, 0), params.stride_bars)
    windows = np.stack([roll[s * STEPS_PER_BAR : (s + BARS_PER_LOOP) * STEPS_PER_BAR] for s in starts]) if len(
        starts
    ) else np.zeros((0, BARS_PER_LOOP * STEPS_PER_BAR, roll.shape[1]), dtype=roll.dtype)
    differing = repetition_distance(windows)
    drum_cells = np.count_nonzero(windows[:, :, :N_DRUM].reshape(len(windows), -1), axis=1)
    bass_cells = np.count_nonzero(windows[:, :, N_DRUM:].reshape(len(windows), -1), axis=1)
    passes = np.stack(
        [
            differing / BAR_CELLS < params.hamming_threshold,
            starts_with_kick_and_crash(windows),
            starts_with_bass(windows),
            (drum_cells >= params.min_drum_cells) & (bass_cells >= params.min_bass_cells),
        ],
        axis=1,
    )
    first_fail = [RULES[int(np.argmin(row))] if not row.all() else "-" for row in passes]
    return pd.DataFrame(
        {
            "bars": [f"{s + 1}-{s + BARS_PER_LOOP}" for s in starts],
            "cells differing bar 1 / bar 5": differing,
            "rule 1": passes[:, 0],
            "rule 2": passes[:, 1],
            "rule 3": passes[:, 2],
            "drum cells": drum_cells,
            "bass cells": bass_cells,
            "rule 4": passes[:, 3],
            "loop": passes.all(axis=1),
            "first failing rule": first_fail,
        },
        index=pd.Index(starts, name="start bar"),
    )


def max_differing_cells(params: LoopParams = LoopParams()) -> int:
    """The most cells bar 1 and bar 5 may differ in for rule 1 to pass (the threshold is strict)."""
    return int(np.ceil(params.hamming_threshold * BAR_CELLS)) - 1


@torch.no_grad()
def next_code_logits(prior: torch.nn.Module, prefix: Sequence[int]) -> np.ndarray:
    """The prior's scores (logits, float64 ``(K,)``) for the code that follows ``prefix``, in eval mode."""
    if not len(prefix):
        raise ValueError("prefix needs at least one code (the first code comes from the histogram, not the LSTM)")
    was_training = prior.training
    prior.eval()
    try:
        device = next(prior.parameters()).device
        logits, _ = prior(torch.as_tensor(np.asarray(prefix, dtype=np.int64), device=device)[None])
    finally:
        prior.train(was_training)
    return logits[0, -1].double().cpu().numpy()


def next_code_distributions(
    prior: torch.nn.Module, prefix: Sequence[int], temperatures: Sequence[float] = (0.5, 1.0, 2.0)
) -> dict[float, np.ndarray]:
    """The prior's distribution ``softmax(logit / T)`` over the code after ``prefix``, per temperature ``T``."""
    if any(t <= 0 for t in temperatures):
        raise ValueError(f"temperatures must be positive, got {list(temperatures)}")
    last = torch.from_numpy(next_code_logits(prior, prefix)).float()
    return {float(t): torch.softmax(last / t, dim=-1).numpy().astype(np.float64) for t in temperatures}


def entropy_bits(probs: np.ndarray) -> float:
    """Shannon entropy of a distribution, in bits."""
    p = np.asarray(probs, dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def next_code_table(distributions: dict[float, np.ndarray], top: int = 5) -> pd.DataFrame:
    """The ``top`` most likely codes (at the middle temperature) with their probability at every temperature,
    then the probability left for all other codes and the entropy in bits."""
    temperatures = sorted(distributions)
    ranked = np.argsort(distributions[temperatures[len(temperatures) // 2]])[::-1][:top]
    table = pd.DataFrame(
        {f"T = {t:g}": distributions[t][ranked] for t in temperatures}, index=[f"code {c}" for c in ranked]
    )
    table.loc["all other codes"] = [1.0 - distributions[t][ranked].sum() for t in temperatures]
    table.loc["entropy (bits)"] = [entropy_bits(distributions[t]) for t in temperatures]
    return table


def lag_match(codes: np.ndarray, lags: Sequence[int] | None = None) -> pd.Series:
    """For each lag d: the share of (loop, step s >= d) pairs whose code at s equals the code at s - d."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise ValueError(f"codes must be (loops, steps) with at least 2 steps, got shape {codes.shape}")
    lags = range(1, codes.shape[1]) if lags is None else lags
    shares = {int(d): float((codes[:, d:] == codes[:, :-d]).mean()) for d in lags}
    return pd.Series(shares, name="share of steps equal to the step d earlier").rename_axis("lag d")


def ratings_with_groups(ratings: pd.DataFrame, key: pd.DataFrame) -> pd.DataFrame:
    """The ratings with each stimulus's group from the study's key (a rating of an unknown stimulus is an error)."""
    from loopgen.book.listening.analysis import _with_groups

    return _with_groups(ratings, key)


def listener_group_means(ratings: pd.DataFrame, key: pd.DataFrame) -> pd.DataFrame:
    """One row per listener, one column per group: the listener's mean rating of that group's loops.

    Listeners who did not rate every group are left out (a paired test such as Friedman's needs complete rows).
    """
    merged = ratings_with_groups(ratings, key)
    return merged.pivot_table(index="listener_id", columns="group", values="rating", aggfunc="mean").dropna()


def most_looped_song_index(loops) -> int:
    """Index in a :class:`loopgen.data.dataset.LoopSet` of the first loop of the song with the most loops (ties: the
    song listed first): a clearly repetitive example (Figure 1, notebook 01's window walk)."""
    if not len(loops):
        raise ValueError("the loop set is empty: no song to pick")
    counts = pd.Series(loops.source).value_counts(sort=True)
    return int((loops.source == counts.index[0]).nonzero()[0][0])
