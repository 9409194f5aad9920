"""The AR LSTM-VAE's training step with the fused decoder step against the former one-``nn.LSTM``-call-per-step decoder.

    .venv/bin/python benchmarks/ar_decoder_speed.py [--batch 64] [--steps 7] [--precision fp32 bf16] [--threads N]

One training step = ``training_loss`` (encoder, scheduled-sampling decoder, loss) + backward + AdamW, on random
sparse loops, at the demo profile's batch size and encoder width, on the CPU. The former decoder (one call of
``nn.LSTM`` with a sequence of length 1 per step, 128 per batch) is the library's ``lstm_vae.reference_stepwise``, and is
swapped into a second copy of the same model; old and new steps alternate, so that both see the same load on a
shared machine. Prints, per precision, the median seconds per step of each, their ratio, and the largest absolute
difference between the two decoders' logits on the same latent and teacher mask (random weights; under bf16 the
former runs oneDNN's bf16 LSTM, the fused one keeps its cell state in float32, so they differ by bf16 rounding);
then the float32-former to bf16-fused ratio. Asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import types
from contextlib import nullcontext

import torch

from loopgen import LOOP_STEPS, N_COLUMNS, profiles
from loopgen.models import build
from loopgen.models.lstm_vae import reference_stepwise
from loopgen.seed import seed_everything


def _precision(name: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if name == "bf16" else nullcontext()


def step_times(
    batch: int, steps: int, precision: str, encoder_hidden: int
) -> tuple[list[float], list[float]]:
    """Seconds per training step of the former and the fused decoder, measured alternately."""
    seed_everything(0)
    fused = build("ar_lstm_vae", encoder_hidden=encoder_hidden).train()
    former = copy.deepcopy(fused)
    former._stepwise = types.MethodType(reference_stepwise, former)
    x = (torch.rand(batch, LOOP_STEPS, N_COLUMNS) < 0.05).float()
    runs = {
        "former": (former, torch.optim.AdamW(former.parameters())),
        "fused": (fused, torch.optim.AdamW(fused.parameters())),
    }
    times: dict[str, list[float]] = {"former": [], "fused": []}
    for i in range(steps + 1):  # the first round warms up
        for name, (model, optimiser) in runs.items():
            torch.manual_seed(i)  # the same noise and teacher coins for both
            t0 = time.perf_counter()
            with _precision(precision):
                loss, _ = model.training_loss(x, kl_beta=1.0, epoch=0)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if i:
                times[name].append(time.perf_counter() - t0)
    return times["former"], times["fused"]


@torch.no_grad()
def logits_difference(batch: int, precision: str, encoder_hidden: int) -> float:
    """Largest |former - fused| decoder logit on one latent and teacher mask (p = 0.5), random weights."""
    seed_everything(1)
    model = build("ar_lstm_vae", encoder_hidden=encoder_hidden)
    model.init_output_bias(0.05)
    x = (torch.rand(batch, LOOP_STEPS, N_COLUMNS) < 0.05).float()
    z = torch.randn(batch, model.latent_size)
    mask = torch.rand(batch, LOOP_STEPS) < 0.5
    with _precision(precision):
        former = reference_stepwise(model, z, x, mask).float()
        fused = model._stepwise(z, x, mask).float()
    return float((former - fused).abs().max())


def main(argv: list[str] | None = None) -> int:
    demo = profiles.PROFILES["demo"].train
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=demo.batch_size, help="default: the demo profile's")
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--precision", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as issue 19 measured)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    hidden = demo.lstm_encoder_hidden
    print(
        f"AR LSTM-VAE training step (forward, backward, AdamW) on the CPU, {torch.get_num_threads()} thread(s), "
        f"batch {args.batch}, encoder {hidden} per direction; median of {args.steps} steps, old and new alternating\n"
    )
    print(
        f"{'precision':<11}{'former s/step':>15}{'fused s/step':>14}{'speed-up':>10}{'max |diff| logits':>20}"
    )
    medians = {}
    for precision in args.precision:
        former, fused = step_times(args.batch, args.steps, precision, hidden)
        old, new = medians[precision] = statistics.median(former), statistics.median(fused)
        diff = logits_difference(args.batch, precision, hidden)
        print(f"{precision:<11}{old:>15.3f}{new:>14.3f}{old / new:>9.2f}x{diff:>20.2e}")
    if {"fp32", "bf16"} <= medians.keys():
        print(
            f"\nformer decoder in float32 -> fused decoder under bf16 autocast: {medians['fp32'][0] / medians['bf16'][1]:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
