"""The masked code prior's training budget (issue 21: at most 3 minutes at the demo profile on two CPU cores).

    .venv/bin/python benchmarks/masked_prior_speed.py [--threads 2] [--steps 12] [--train-codes 5997]

Times ``--steps`` optimisation steps (after two warm-up steps) of the demo recipe's masked prior on random codes,
with bf16 autocast where the CPU supports it and float32, and prints the median wall and CPU seconds per step
and the projected training time of the demo recipe (epochs x steps per epoch at ``--train-codes`` sequences; the
per-epoch validation is not counted). On a shared machine the wall time is inflated; the CPU time per step of a
one-thread run is the better estimate of what one quiet core does. Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from loopgen.models import build
from loopgen.models.masked_prior import cpu_bf16_supported
from loopgen.run import profiles
from loopgen.runtime.seed import seed_everything
from loopgen.train.data import steps_per_epoch


def time_steps(bf16: bool, batch: int, steps: int, model_kwargs: dict, lr: float) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds per optimisation step (forward, backward, AdamW)."""
    seed_everything(0)
    model = build("masked_prior", **{**model_kwargs, "cpu_bf16": bf16}).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    codes = model.example_input(batch)
    wall, cpu = [], []
    for i in range(steps + 2):
        w, c = time.perf_counter(), time.process_time()
        loss, _ = model.training_loss(codes)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if i >= 2:
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--train-codes", type=int, default=5997, help="training sequences (demo: 5,997)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipe = profiles.get("demo").train.recipe("masked_prior")
    kwargs = profiles.get("demo").train.model_kwargs("masked_prior")
    total = recipe.epochs * steps_per_epoch(args.train_codes, recipe.batch_size)
    print(f"demo recipe: {recipe.epochs} epochs x batch {recipe.batch_size} = {total:,} steps; model {kwargs}; "
          f"{args.threads} thread(s); CPU bf16 support: {cpu_bf16_supported()}")
    for bf16 in (True, False):
        wall, cpu = time_steps(bf16, recipe.batch_size, args.steps, kwargs, recipe.lr_max)
        w, c = statistics.median(wall), statistics.median(cpu)
        label = "bf16 autocast (where supported)" if bf16 else "float32"
        print(f"{label:32s} median {w * 1e3:7.1f} ms/step wall, {c * 1e3:7.1f} ms/step CPU; "
              f"projected {w * total:6.0f} s wall, {c * total / args.threads:6.0f} s if the CPU time split evenly "
              f"over {args.threads} quiet thread(s)")


if __name__ == "__main__":
    main()
