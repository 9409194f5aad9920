"""Training speed of every model: loops per second, the paper profile's projected wall time, the quantiser's share.

    .venv/bin/python benchmarks/train_speed.py [--batch 128] [--steps 5] [--models cnn_vae vq_vae ...]

Prints medians over ``--steps`` timed optimisation steps (after two warm-up steps) on random sparse loops,
on the best available device (CUDA with bf16 autocast, else MPS, else CPU). The projection multiplies the
paper's work (120,600 training loops x 2,000 epochs, 150,750 loops in all) by the measured time per loop at
this batch size; the paper's batch of 2,048 runs faster per loop on a GPU. Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from loopgen import device as device_mod
from loopgen import paper
from loopgen.models import AUTOENCODERS, build
from loopgen.seed import seed_everything

PAPER_TRAIN_LOOPS = paper.DATASET.train
PAPER_EPOCHS = paper.TRAINING["epochs"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(name: str, batch: int, steps: int, device: torch.device) -> list[float]:
    """Seconds per optimisation step (forward, backward, AdamW) of model ``name``."""
    seed_everything(0)
    model = build(name).to(device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if name == "prior":
        x = model.example_input(batch).to(device)
    else:
        x = (torch.rand(batch, 128, 93, device=device) < 0.02).float()
    times = []
    for i in range(steps + 2):
        _sync(device)
        t0 = time.perf_counter()
        with device_mod.autocast(device):
            loss, _ = model.training_loss(x, kl_beta=1.0, epoch=0)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        _sync(device)
        if i >= 2:
            times.append(time.perf_counter() - t0)
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
    args = parser.parse_args(argv)
    device = device_mod.pick_device(args.device)
    print(f"device: {device_mod.describe_device(device)}; batch {args.batch}; median of {args.steps} steps\n")
    paper_column = f"paper profile ({PAPER_TRAIN_LOOPS:,} x {PAPER_EPOCHS:,} epochs)"
    print(f"{'model':<16}{'s/step':>9}{'loops/s':>10}{paper_column:>42}")
    for name in args.models:
        step = statistics.median(time_steps(name, args.batch, args.steps, device))
        rate = args.batch / step
        projected = PAPER_TRAIN_LOOPS * PAPER_EPOCHS / rate
        print(f"{name:<16}{step:>9.3f}{rate:>10.0f}{_hours(projected):>42}")
    q, step = quantiser_share(args.batch, args.steps, device)
    print(
        f"\nVQ-VAE quantiser (distances by matmul, EMA update, restarts): {q * 1000:.2f} ms of a {step * 1000:.1f} ms "
        f"step = {q / step:.1%}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
