"""Seeds and rounds of draws shared by ``generate`` and ``vary``.

A run has one base seed (fresh and random unless ``--seed`` is given; printed and stored in ``loops.json``).
Draws come in rounds of ``batch`` loops; round 0 uses the base seed, round r a seed derived from (base, r).
Each kept loop records its round's seed, the batch size and its index in the batch: calling the same draw
with that seed and batch gives the loop again, bit for bit.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from loopgen import metrics

MAX_SEED = 2**31 - 1


def fresh_seed() -> int:
    """A random seed in 0 .. 2**31 - 2 (from the operating system, not from any seeded generator)."""
    return secrets.randbelow(MAX_SEED)


def round_seed(seed: int, round_index: int) -> int:
    """The seed of round ``round_index`` of a run with base ``seed`` (round 0: the base seed itself)."""
    if round_index == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(round_index)]).generate_state(1)[0] % MAX_SEED)


@dataclass
class Kept:
    """The loops a run keeps, one record each, and how many were drawn to find them."""

    loops: np.ndarray
    records: list[dict] = field(default_factory=list)
    drawn: int = 0
    rounds: int = 0


def draw_until(
    draw: Callable[[int, int], np.ndarray],
    n: int,
    *,
    seed: int,
    min_loopability: float | None = None,
    max_draws: int | None = None,
) -> Kept:
    """Call ``draw(round_seed, batch)`` -> loops (batch, 128, 93) until ``n`` loops reach ``min_loopability``
    (all loops count without a threshold) or ``max_draws`` loops have been drawn (default ``20 * n``)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    cap = max(n, max_draws if max_draws is not None else 20 * n)
    batch = n if min_loopability is None else max(n, 8)
    kept_loops: list[np.ndarray] = []
    records: list[dict] = []
    drawn = rounds = 0
    while len(kept_loops) < n and drawn < cap:
        size = min(batch, cap - drawn)
        s = round_seed(seed, rounds)
        loops = draw(s, size)
        scores = metrics.loopability(loops)
        for i, (loop, score) in enumerate(zip(loops, scores, strict=True)):
            if len(kept_loops) < n and (min_loopability is None or score >= min_loopability):
                kept_loops.append(loop)
                records.append({"seed": s, "batch": size, "index": i})
        drawn += size
        rounds += 1
    stacked = np.stack(kept_loops) if kept_loops else np.zeros((0, *np.shape(loops)[1:]), dtype=np.uint8)
    return Kept(stacked, records, drawn, rounds)


def report_shortfall(kept: Kept, n: int, min_loopability: float | None) -> None:
    """Print on stderr when fewer than ``n`` loops were kept: a warning, or an error line when none was."""
    if len(kept.loops) < n and min_loopability is not None:
        level = "warning" if len(kept.loops) else "error"
        print(f"{level}: {shortfall_message(kept, n, min_loopability)}", file=sys.stderr)


def shortfall_message(kept: Kept, n: int, min_loopability: float) -> str:
    """One line saying that fewer than ``n`` loops reached the threshold, and what to try."""
    return (
        f"only {len(kept.loops)} of {n} loops reached loopability >= {min_loopability:g} in {kept.drawn} draws "
        f"(the cap); lower --min-loopability or raise --max-draws"
    )
