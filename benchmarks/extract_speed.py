"""Loop extraction speed: fast (numba) vs reference (mido + pretty_midi) backend, and the loop yield.

Times both backends on the same real files in one process (one core), prints files/s, the median
per-file time and their ratio, the yield (files, loops, rejections by reason), an extrapolation to
LMD-full (176,581 files) on 2 workers, and the wall time of a full 2-worker ``extract`` run.
Prints figures, asserts nothing.

    .venv/bin/python benchmarks/extract_speed.py [--files N] [--dir MIDI_DIR] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from loopgen.data.extract import extract, extract_file, list_midi_files
from loopgen.loops import LoopParams
from loopgen.paper import DATASET
from loopgen.store.paths import SHARED_DEV_MIDI

LMD_FULL_FILES = DATASET.lmd_full_files
NOT_FOUR_FOUR = {"too_large", "unreadable", "bad_resolution", "time_signature", "no_time_signature"}


def time_backend(files: list[Path], backend: str, params: LoopParams) -> tuple[list[float], list]:
    times, results = [], []
    for path in files:
        start = time.perf_counter()
        result = extract_file(path, params, backend)
        times.append(time.perf_counter() - start)
        results.append((result.reason, result.start_bars))
    return times, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=SHARED_DEV_MIDI)
    parser.add_argument("--files", type=int, default=None, help="first N files (sorted); default all")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-full", action="store_true", help="skip the full parallel extract run")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        print(f"{args.dir} not found: nothing to measure")
        return 0
    params = LoopParams()
    rel = list_midi_files(args.dir, args.files)
    files = [args.dir / r for r in rel]
    print(f"{len(files)} files from {args.dir}")

    start = time.perf_counter()
    extract_file(files[0], params, "fast")  # numba compiles (or loads its cache) once
    print(f"fast backend warm-up (numba compile/cache load): {time.perf_counter() - start:.2f} s")

    fast_t, fast_r = time_backend(files, "fast", params)
    ref_t, ref_r = time_backend(files, "reference", params)
    same = sum(a == b for a, b in zip(fast_r, ref_r, strict=True))
    print("\nper file, one process, read + song roll + loop search:")
    for name, t in (("fast", fast_t), ("reference", ref_t)):
        print(
            f"  {name:<10} {len(t) / sum(t):9.1f} files/s   median {1e3 * statistics.median(t):8.3f} ms   total {sum(t):7.2f} s"
        )
    print(
        f"  speed-up: {sum(ref_t) / sum(fast_t):.1f}x (totals), {statistics.median(ref_t) / statistics.median(fast_t):.1f}x (medians)"
    )
    read_ratio = [r / f for r, f in zip(ref_t, fast_t, strict=True)]
    print(f"  per-file ratio: median {statistics.median(read_ratio):.1f}x, min {min(read_ratio):.1f}x")
    print(f"  identical results (reason and loop windows): {same}/{len(files)}")

    reasons = Counter(reason for reason, _ in fast_r if reason)
    with_loops = sum(1 for reason, _ in fast_r if reason is None)
    n_loops = sum(len(starts) for _, starts in fast_r)
    four_four = len(files) - sum(reasons[r] for r in NOT_FOUR_FOUR)
    print("\nloop yield (docs/rules.md defaults: 1-bar stride):")
    print(
        f"  files scanned {len(files)}, with loops {with_loops} ({with_loops / len(files):.1%}), loops {n_loops}"
    )
    print(
        f"  4/4 files {four_four}, loops per 4/4 file {n_loops / max(four_four, 1):.2f}, per file with loops {n_loops / max(with_loops, 1):.2f}"
    )
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  rejected {reason:<18} {count}")

    fast_mean, ref_mean = sum(fast_t) / len(files), sum(ref_t) / len(files)
    print(f"\nLMD-full extrapolation ({LMD_FULL_FILES:,} files, {args.workers} workers, perfect scaling):")
    print(f"  fast      {LMD_FULL_FILES * fast_mean / args.workers / 60:8.1f} min")
    print(f"  reference {LMD_FULL_FILES * ref_mean / args.workers / 60:8.1f} min")

    if not args.skip_full:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            report = extract(
                args.dir, Path(tmp) / "ds", params, workers=args.workers, limit=args.files, progress=False
            )
            wall = time.perf_counter() - start
            totals = report["totals"]
            print(f"\nfull extract, {args.workers} workers, fast backend (process start-up included):")
            print(
                f"  {totals['files_scanned']} files in {wall:.2f} s = {totals['files_scanned'] / wall:.0f} files/s; {totals['loops']} loops"
            )
            print(
                f"  LMD-full at this rate: {LMD_FULL_FILES / (totals['files_scanned'] / wall) / 60:.1f} min"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
