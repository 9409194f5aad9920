"""Training speed of every model: loops per second, the paper profile's projected wall time, the quantiser's share.

    .venv/bin/python benchmarks/train_speed.py [--batch 128] [--steps 5] [--models cnn_vae vq_vae ...]
        [--precision fp32 bf16 auto] [--json]

Prints medians over ``--steps`` timed optimisation steps (after two warm-up steps) on random sparse loops,
on the best available device (CUDA, else MPS, else CPU), in each ``--precision`` (default: auto, what
training picks here: bf16 autocast on a GPU or CPU with bf16 units, fp16 with its gradient scaler on a T4 or
V100, float32 elsewhere; several precisions
take turns step by step, so their ratio is fair on a machine whose load changes), each step as
``loopgen.train.loop.optimiser_step`` runs it. ``--json`` ends with one JSON object: loops/s per model and
precision, and the speed-up of each precision over the first. The projection multiplies the
paper's work (120,600 training loops x 2,000 epochs, 150,750 loops in all) by the measured time per loop at
this batch size; the paper's batch of 2,048 runs faster per loop on a GPU. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from loopgen import paper
from loopgen.models import AUTOENCODERS, build
from loopgen.run.profiles import TrainSettings
from loopgen.runtime import device as device_mod
from loopgen.runtime.seed import seed_everything
from loopgen.train.loop import make_optimiser, optimiser_step

PAPER_TRAIN_LOOPS = paper.DATASET.train
PAPER_EPOCHS = paper.TRAINING["epochs"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(name: str, batch: int, steps: int, device: torch.device, precision: str = "auto") -> list[float]:
    """Seconds per optimisation step (forward, backward, AdamW) of model ``name`` in ``precision``."""
    return time_interleaved(name, batch, steps, device, [precision])[precision]


def time_interleaved(
    name: str, batch: int, steps: int, device: torch.device, precisions: list[str]
) -> dict[str, list[float]]:
    """Seconds per optimisation step of model ``name`` in each of ``precisions``, the precisions taking turns
    step by step (so a machine whose load changes slows them alike and their ratio stays fair)."""
    runs = {}
    for precision in precisions:
        seed_everything(0)
        model = build(name).to(device).train()
        optimiser = make_optimiser(model, TrainSettings(lr_max=1e-3), device)  # AdamW as training makes it
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1.0)
        runs[precision] = (model, optimiser, scheduler, device_mod.grad_scaler(device, precision))
    if name == "prior":
        x = runs[precisions[0]][0].example_input(batch).to(device)
    else:
        x = (torch.rand(batch, 128, 93, device=device) < 0.02).float()
    times: dict[str, list[float]] = {p: [] for p in precisions}
    for i in range(steps + 2):
        for precision, (model, optimiser, scheduler, scaler) in runs.items():
            with device_mod.matmul_precision(device, precision):
                _sync(device)
                t0 = time.perf_counter()
                optimiser_step(
                    lambda x, model=model: model.training_loss(x, kl_beta=1.0, epoch=0), x, optimiser, scheduler,
                    grad_clip=None, autocast=device_mod.autocast(device, precision), scaler=scaler,
                )
                _sync(device)
            if i >= 2:
                times[precision].append(time.perf_counter() - t0)
    return times


def quantiser_share(batch: int, steps: int, device: torch.device) -> tuple[float, float]:
    """(median seconds of the VQ-VAE's quantiser incl. its EMA update, median seconds of a whole step)."""
    seed_everything(0)
    model = build("vq_vae").to(device).train()
    z = torch.randn(batch * model.latent_steps, model.latent_dim, device=device)
    q_times = []
    for i in range(steps + 2):
        _sync(device)
        t0 = time.perf_counter()
        model.quantiser(z)
        _sync(device)
        if i >= 2:
            q_times.append(time.perf_counter() - t0)
    step = statistics.median(time_steps("vq_vae", batch, steps, device))
    return statistics.median(q_times), step


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:,.0f} h" if seconds >= 3600 else f"{seconds / 60:,.1f} min"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--models", nargs="*", default=[*AUTOENCODERS, "prior"])
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", nargs="+", default=["auto"], choices=device_mod.PRECISIONS)
    parser.add_argument("--json", action="store_true", help="end with one JSON object of the results")
    parser.add_argument("--no-quantiser", action="store_true", help="skip the VQ-VAE quantiser's share")
    args = parser.parse_args(argv)
    device = device_mod.pick_device(args.device)
    paper_column = f"paper profile ({PAPER_TRAIN_LOOPS:,} x {PAPER_EPOCHS:,} epochs)"
    results: dict[str, dict[str, float]] = {}
    print(f"device: {device_mod.describe_device(device)}; batch {args.batch}; median of {args.steps} steps; "
          f"precisions {', '.join(args.precision)} take turns step by step\n")
    print(f"{'model':<16}{'precision':<12}{'s/step':>9}{'loops/s':>10}{paper_column:>42}")
    for name in args.models:
        measured = time_interleaved(name, args.batch, args.steps, device, args.precision)
        for precision in args.precision:
            step = statistics.median(measured[precision])
            rate = args.batch / step
            label = f"auto ({device_mod.resolve_precision(device)})" if precision == "auto" else precision
            results.setdefault(name, {})[label] = rate
            projected = PAPER_TRAIN_LOOPS * PAPER_EPOCHS / rate
            print(f"{name:<16}{label:<12}{step:>9.3f}{rate:>10.0f}{_hours(projected):>42}")
    print()
    if not args.no_quantiser:
        q, step = quantiser_share(args.batch, args.steps, device)
        print(
            f"VQ-VAE quantiser (distances by matmul, EMA update, restarts): {q * 1000:.2f} ms of a {step * 1000:.1f} ms "
            f"step = {q / step:.1%}"
        )
    if args.json:
        speedup = {}
        for name, rates in results.items():
            first, *others = list(rates)
            speedup[name] = {other: rates[other] / rates[first] for other in others}
        summary = {"device": device_mod.describe_device(device), "batch": args.batch, "steps": args.steps,
                   "threads": torch.get_num_threads(), "loops_per_s": results, "speedup_over_first": speedup}
        print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
