"""How fast are the paper's metrics? Prints timings for a paper-sized batch (120,600 loops); asserts nothing.

The batch is a realistic sparse random one: a one-bar drum pattern repeated over 8 bars with a few
edits, kick + crash on step 0, a monophonic bass line around E1-E3; latent codes for OS/US.

    .venv/bin/python benchmarks/metrics_speed.py [--loops 120600] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from loopgen import CRASH, KICK, N_DRUM
from loopgen import metrics as m
from loopgen.paper import DATASET
from loopgen.runtime.seed import seed_everything

DRUM_PROBS = np.array([0.3, 0.25, 0.5, 0.02, 0.06, 0.02, 0.02, 0.01, 0.06])


def realistic_batch(n: int, rng: np.random.Generator, chunk: int = 8192) -> np.ndarray:
    """n loops (N, 128, 93) uint8 that look roughly like extracted bass+drum loops."""
    x = np.zeros((n, 128, 93), dtype=np.uint8)
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        part = x[start : start + k]
        bar = rng.random((k, 16, N_DRUM)) < DRUM_PROBS
        part[:, :, :N_DRUM] = np.tile(bar, (1, 8, 1))
        edits = rng.random((k, 128, N_DRUM)) < 0.0005
        part[:, :, :N_DRUM] ^= edits.astype(np.uint8)
        part[:, 0, [KICK, CRASH]] = 1
        root = rng.integers(28 - 24, 45 - 24, size=(k, 1))
        steps = np.tile(rng.integers(0, 8, size=(k, 16)).repeat(2, axis=1), (1, 4))  # a 2-bar riff in eighths
        pitch = root + np.array([0, 0, 0, 5, 7, 7, 12, 3])[steps]
        on = np.tile(rng.random((k, 32)) < 0.7, (1, 4)) ^ (rng.random((k, 128)) < 0.002)
        on[:, 0] = True
        rows, cols = np.nonzero(on)
        part[rows, cols, N_DRUM + pitch[rows, cols]] = 1
        dups = rng.random((k, 128)) < 0.002  # a rare second bass pitch
        rows, cols = np.nonzero(dups)
        part[rows, cols, N_DRUM + np.minimum(pitch[rows, cols] + 12, 83)] = 1
    return x


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=DATASET.train)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rng = seed_everything(0)

    t0 = time.perf_counter()
    x = realistic_batch(args.loops, rng)
    gen_codes = rng.integers(0, 512, size=(args.loops, 32))
    train_codes = np.concatenate([gen_codes[: args.loops // 10], rng.integers(0, 512, size=(args.loops, 32))])
    print(
        f"batch: {args.loops:,} loops, {x.nbytes / 1e9:.2f} GB uint8, built in {time.perf_counter() - t0:.1f} s"
    )

    row_time, row = timed(lambda: m.metric_row(x, gen_codes, train_codes), args.repeats)
    print("row:", {k: f"{v:.4g}" for k, v in row.items()})
    print(f"metric_row (all eight + UP/bar, with OS/US): median {row_time:.2f} s over {args.repeats} runs")

    singles = {
        "ham_dist": lambda: m.ham_dist(x),
        "first_note_drum": lambda: m.first_note_drum(x),
        "first_note_bass": lambda: m.first_note_bass(x),
        "dup_bass": lambda: m.dup_bass(x),
        "unique_pitch": lambda: m.unique_pitch(x),
        "unique_pitch_per_bar": lambda: m.unique_pitch_per_bar(x),
        "note_density": lambda: m.note_density(x),
        "overlap_sample": lambda: m.overlap_sample(gen_codes, train_codes),
        "unique_sample": lambda: m.unique_sample(gen_codes),
        "empty_bar_rate": lambda: m.empty_bar_rate(x),
        "drum_pattern_consistency": lambda: m.drum_pattern_consistency(x),
    }
    total = 0.0
    for name, fn in singles.items():
        seconds, _ = timed(fn, args.repeats)
        total += seconds
        print(f"  {name:<26} {seconds:7.3f} s")
    print(
        f"sum of the separate functions: {total:.2f} s (metric_row shares passes: {total / row_time:.1f}x faster)"
    )

    # A loop-by-loop numpy baseline on a slice, to show what vectorising buys.
    sample = x[:2000]

    def per_loop() -> None:
        for loop in sample:
            bars = loop.reshape(8, 16, 93)
            np.count_nonzero(bars[0] != bars[4])
            loop[:, N_DRUM:].sum(axis=1)
            loop.any(axis=0).sum()
            bars.any(axis=1).sum(axis=1)
            loop.any(axis=1).sum()

    base_time, _ = timed(per_loop, args.repeats)
    vec_time, _ = timed(lambda: m.metric_row(sample), args.repeats)
    print(
        f"2,000 loops: per-loop numpy {base_time:.3f} s vs metric_row {vec_time:.3f} s "
        f"(ratio {base_time / vec_time:.1f}x)"
    )


if __name__ == "__main__":
    main()
