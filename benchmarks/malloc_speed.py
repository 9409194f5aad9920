"""Training speed with glibc malloc's defaults and with loopgen's setting (``loopgen.runtime.device.keep_freed_memory``).

    .venv/bin/python benchmarks/malloc_speed.py [--models vq_vae cnn_vae prior ...] [--steps 10] [--rounds 3]

Per model at its demo recipe (batch size, precision "auto" resolved here), the median seconds per training step
(forward, loss, backward, fused AdamW) in fresh processes that take turns: one with malloc's defaults (the
environment sets ``LOOPGEN_DEFAULT_MALLOC=1``), one with :data:`loopgen.runtime.device.KEEP_FREED_MEMORY`; so a machine
whose load changes slows both alike. Asserts nothing; run it with ``OMP_NUM_THREADS=1`` to see one notebook's
share of a 2-core machine (the runner gives each of two side-by-side notebooks one thread there).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from loopgen.models import build
from loopgen.run import profiles
from loopgen.runtime import device as device_mod
from loopgen.runtime.seed import seed_everything
from loopgen.train.loop import make_optimiser


def child(name: str, steps: int) -> float:
    """In a fresh process: the median seconds per training step of ``name`` (after three warm-up steps)."""
    tuned = device_mod.keep_freed_memory()
    demo = profiles.get("demo").train
    recipe = demo.recipe(name)
    device = torch.device("cpu")
    precision = device_mod.resolve_precision(device, recipe.precision)
    seed_everything(0)
    model = build(name, **demo.model_kwargs(name)).train()
    optimiser = make_optimiser(model, recipe, device)
    x = model.example_input(recipe.batch_size)
    times = []
    for i in range(steps + 3):
        t0 = time.perf_counter()
        with device_mod.autocast(device, precision):
            loss, _ = model.training_loss(x)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"tuned": tuned, "seconds": statistics.median(times)}))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vq_vae", "cnn_vae", "prior", "ar_lstm_vae", "masked_prior"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.steps)
        return
    print(f"CPU, {os.environ.get('OMP_NUM_THREADS', torch.get_num_threads())} thread(s); median seconds per step, "
          f"{args.rounds} fresh processes each with {args.steps} steps")
    for name in args.models:
        times: dict[str, list[float]] = {"malloc defaults": [], "keep freed memory": []}
        for _ in range(args.rounds):
            for label in times:
                env = {**os.environ, device_mod.MALLOC_OPT_OUT: "1" if label == "malloc defaults" else "0"}
                out = subprocess.run([sys.executable, __file__, "--child", name, "--steps", str(args.steps)],
                                     env=env, capture_output=True, text=True, check=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                assert result["tuned"] == (label == "keep freed memory"), result
                times[label].append(result["seconds"])
        default, kept = (statistics.median(times[k]) for k in ("malloc defaults", "keep freed memory"))
        print(f"{name:>15}: malloc defaults {default * 1e3:7.1f} ms  keep freed memory {kept * 1e3:7.1f} ms  "
              f"{default / kept:.2f}x as fast")


if __name__ == "__main__":
    main()
