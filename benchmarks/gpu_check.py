"""A GPU check in minutes: every training of the paper profile for a few steps, then one JSON summary.

    bash benchmarks/gpu_check.sh                       # on the GPU: batch 2,048, 4 steps per training
    bash benchmarks/gpu_check.sh --device cpu          # the same, small, on a CPU (a few minutes)

Runs :func:`loopgen.run.rehearse.rehearse` for the paper profile (the four autoencoders, the five other Table 2
VQ-VAE variants, the prior: each trains one epoch, stops, resumes its checkpoint for a second epoch, samples a
batch on the device and computes a Table 3 metric row), on the device it is given, and prints per training the
samples/s, peak memory, the projected hours of the full 2,000-epoch run (with and without the profile's
validations and checkpoints), then one JSON object: the device, torch and CUDA versions, the precision used
(resolved for this device) and the one ``"auto"`` gives here, every training's row, the totals, the wall time and
``"ok"`` (every training resumed and gave finite numbers). On a GPU of compute capability 7.x (T4, V100), where
``"auto"`` means fp16 with a gradient scaler, the trainings run a second time in fp16 (``"fp16"``: the same
summary; ``"ok"`` covers both). Needs no dataset and no network. Exit status 0 when ok, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time

import torch

from loopgen import paper
from loopgen.run import rehearse
from loopgen.runtime import device as device_mod

CPU_DEFAULTS = {"batch_size": 8, "steps": 2, "samples": 8}  # "the same, small": minutes on a CPU
GPU_DEFAULTS = {"batch_size": None, "steps": 4, "samples": 256}  # None: the profile's batch (2,048)


def also_run(device: torch.device, precision: str) -> list[str]:
    """The precisions checked besides ``precision``: fp16 where "auto" gives it (a CUDA GPU of compute capability
    7.x), unless ``precision`` already means fp16."""
    device = torch.device(device)
    if device.type != "cuda" or device_mod.resolve_precision(device, "auto") != "fp16":
        return []
    return [] if device_mod.resolve_precision(device, precision) == "fp16" else ["fp16"]


def summary(table, *, device: torch.device, precision: str, seconds: float, batch: int | None) -> dict:
    """The JSON summary of a rehearsal table."""
    rows = []
    for label, row in table.iterrows():
        rows.append({
            "training": label,
            "batch": int(row["batch"]),
            "steps": int(row["steps"]),
            "samples_per_s": round(float(row["samples/s"]), 1),
            "peak_memory_mb": round(float(row["peak memory (MB)"]), 1),
            "projected_hours": round(float(row["projected full run (h)"]), 2),
            "projected_hours_with_validation_and_checkpoints": round(
                float(row["projected with validation and checkpoints (h)"]), 2),
            "resumed": bool(row["resumed"]),
            "loss": float(row["loss"]),
            "table3_row": {k: float(row[k]) for k in rehearse.METRIC_COLUMNS},
        })
    finite = all(math.isfinite(r["loss"]) and all(math.isfinite(v) for v in r["table3_row"].values()) for r in rows)
    return {
        "device": device_mod.describe_device(device, precision),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "precision": device_mod.resolve_precision(device, precision),
        "auto_precision": device_mod.resolve_precision(device, "auto"),
        "batch": batch or "profile (2,048)",
        "trainings": rows,
        "total_projected_hours": round(sum(r["projected_hours_with_validation_and_checkpoints"] for r in rows), 1),
        "largest_peak_memory_mb": max((r["peak_memory_mb"] for r in rows), default=0.0),
        "paper_hours_per_model_below": paper.TRAINING_HOURS_BELOW,
        "wall_seconds": round(seconds, 1),
        "ok": bool(rows) and all(r["resumed"] for r in rows) and finite,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cuda (default when present), cpu or mps")
    parser.add_argument("--precision", default=None, choices=device_mod.PRECISIONS,
                        help="override the paper profile's (tf32); auto = bf16 where the hardware has it, fp16 on a "
                        "T4 or V100 (there fp16 is also checked after the profile's precision)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 2,048 on a GPU, 8 on a CPU")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps per training (>= 2)")
    parser.add_argument("--samples", type=int, default=None, help="loops sampled for each Table 3 row")
    parser.add_argument("--only", nargs="*", help="only trainings whose label contains one of these")
    args = parser.parse_args(argv)
    device = device_mod.pick_device(args.device)
    defaults = GPU_DEFAULTS if device.type == "cuda" else CPU_DEFAULTS
    batch = args.batch_size if args.batch_size is not None else defaults["batch_size"]
    steps = args.steps or defaults["steps"]
    samples = args.samples or defaults["samples"]
    precision = args.precision or rehearse.profiles.get("paper").train.precision
    print(f"gpu check on {device_mod.describe_device(device, precision)}; torch {torch.__version__} "
          f"(CUDA {torch.version.cuda}); batch {batch or 2048}, {steps} steps per training", flush=True)
    result = None
    for run_precision in [precision, *also_run(device, precision)]:
        t0 = time.perf_counter()
        table = rehearse.rehearse("paper", steps=steps, device=device, batch_size=batch, precision=run_precision,
                                  only=args.only, n_samples=samples, log=lambda *a: print(*a, flush=True))
        checked = summary(table, device=device, precision=run_precision, seconds=time.perf_counter() - t0, batch=batch)
        if result is None:
            result = checked
        else:  # fp16 on a T4 or V100: beside the profile's precision
            result[device_mod.resolve_precision(device, run_precision)] = checked
            result["ok"] = result["ok"] and checked["ok"]
    print(json.dumps(result, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
