"""AdamW fused or not: seconds per training step of each model at the demo's recipe, both optimisers taking turns.

    .venv/bin/python benchmarks/optimiser_speed.py [--models cnn_vae vq_vae ...] [--steps 20] [--rounds 5]

Training uses PyTorch's fused AdamW on CPUs and CUDA GPUs (``loopgen.train.loop.make_optimiser``). This prints,
per model at its demo batch size and precision, the median seconds per step (forward, loss, backward, gradient
clipping, update) with the multi-tensor ("foreach") AdamW and with the fused one, and their ratio. The two take
turns round by round on identical models, so a machine whose load changes slows them alike. Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from loopgen.models import build
from loopgen.run import profiles
from loopgen.runtime import device as device_mod
from loopgen.runtime.seed import seed_everything
from loopgen.train.loop import optimiser_step


def seconds_per_step(name: str, steps: int, rounds: int) -> dict[str, float]:
    """Median seconds per step of ``name`` with the foreach and the fused AdamW (demo recipe)."""
    settings = profiles.get("demo").train.recipe(name)
    device = torch.device("cpu")
    precision = device_mod.resolve_precision(device, settings.precision)
    runs = {}
    for variant in ("foreach", "fused"):
        seed_everything(0)
        model = build(name, **profiles.get("demo").train.model_kwargs(name)).train()
        optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr_max, weight_decay=settings.weight_decay,
                                      **{variant: True})
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1.0)
        runs[variant] = (model, optimiser, scheduler)
    model0 = runs["foreach"][0]
    batch = settings.batch_size
    x = model0.example_input(batch)  # code indices for a prior, a random sparse loop batch for an autoencoder
    times: dict[str, list[float]] = {v: [] for v in runs}
    for i in range(rounds + 1):
        for variant, (model, optimiser, scheduler) in runs.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                optimiser_step(lambda x, model=model: model.training_loss(x), x, optimiser, scheduler,
                               grad_clip=settings.grad_clip, autocast=device_mod.autocast(device, precision))
            if i:  # the first round warms up
                times[variant].append((time.perf_counter() - t0) / steps)
    return {v: statistics.median(t) for v, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cnn_vae", "vq_vae", "prior"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"CPU, {torch.get_num_threads()} thread(s); median seconds per step over {args.rounds} rounds of "
          f"{args.steps} steps")
    for name in args.models:
        t = seconds_per_step(name, args.steps, args.rounds)
        print(f"{name:>15}: foreach {t['foreach'] * 1e3:7.2f} ms  fused {t['fused'] * 1e3:7.2f} ms  "
              f"fused is {t['foreach'] / t['fused']:.2f}x as fast")


if __name__ == "__main__":
    main()
