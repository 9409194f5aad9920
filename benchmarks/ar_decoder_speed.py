"""The AR LSTM-VAE's training step with its decoder recurrence against the former decoders.

    .venv/bin/python benchmarks/ar_decoder_speed.py [--batch 64] [--steps 7] [--precision fp32 bf16] [--threads N]

One training step = ``training_loss`` (encoder, scheduled-sampling decoder, loss) + backward + AdamW, on random
sparse loops, at the demo profile's batch size and encoder width, on the CPU. Three decoders, each swapped into its
own copy of the same model:

* ``former``: one call of ``nn.LSTM`` with a sequence of length 1 per step, 128 per batch (the model's plain
  loop, ``ARLSTMVAE.plain_steps``);
* ``stepped``: the decoder before the hand-written backward pass (kept here, :func:`stepped_stepwise`): the LSTM's
  own weights stepped by hand, autograd recording every step;
* ``new``: the library's decoder (``ARLSTMVAE.fused_steps``: one autograd node, hand-written backward pass).

Their steps take turns, so that all see the same load on a shared machine. Prints, per precision, the median
seconds per step of each, the ratios former/new and stepped/new, and the largest absolute difference between the
former and the new decoder's logits on the same latent and teacher mask (random weights; under bf16 the former
runs oneDNN's bf16 LSTM, the new one keeps its cell state in float32, so they differ by bf16 rounding); then the
float32-former to bf16-new ratio; the same for each decoder alone (forward and backward on one latent batch, in
the same turns), and how much of each step the encoder (forward and backward, the same turns) takes: the encoder
is the same ``nn.LSTM`` in all three models, so its share bounds what any decoder can gain. Asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import types
from contextlib import nullcontext

import torch

from loopgen import LOOP_STEPS, N_COLUMNS
from loopgen.models import ARLSTMVAE, build
from loopgen.models.lstm_vae import _autocast_dtype
from loopgen.run import profiles
from loopgen.runtime.seed import seed_everything


def _precision(name: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if name == "bf16" else nullcontext()


def stepped_stepwise(
    model: ARLSTMVAE, z: torch.Tensor, x: torch.Tensor | None, teacher_mask: torch.Tensor | None
) -> torch.Tensor:
    """The decoder as it was before its hand-written backward pass: the ``nn.LSTM`` weights stepped directly
    (``z W_z^T + b`` once, two products and the gate arithmetic per step), autograd recording every step."""
    lstm = model.decoder
    w_prev, w_z = lstm.weight_ih_l0.split([N_COLUMNS, model.latent_size], dim=1)
    latent_gates = torch.addmm(lstm.bias_ih_l0 + lstm.bias_hh_l0, z, w_z.t())
    dtype = _autocast_dtype(z.device) or z.dtype
    w_prev_t, w_hh_t = w_prev.t().to(dtype), lstm.weight_hh_l0.t().to(dtype)
    latent_gates = latent_gates.to(dtype)
    with torch.no_grad():
        w_out_t, b_out = model.output.weight.t().to(dtype), model.output.bias.to(dtype)
    if x is not None:
        x = x.to(dtype)
    h, c = z.to(dtype), z
    previous = z.new_zeros(z.shape[0], N_COLUMNS, dtype=dtype)
    hidden = []
    for t in range(LOOP_STEPS):
        if t > 0:
            with torch.no_grad():
                own = (torch.addmm(b_out, h, w_out_t) >= 0).to(dtype)
            previous = own if teacher_mask is None or x is None else torch.where(teacher_mask[:, t : t + 1], x[:, t - 1], own)
        gates = torch.addmm(torch.addmm(latent_gates, previous, w_prev_t), h, w_hh_t)
        i, f, _, o = torch.sigmoid(gates).chunk(4, dim=1)
        g = torch.tanh(gates[:, 2 * model.latent_size : 3 * model.latent_size])
        c = torch.addcmul(f * c, i, g)
        h = (o * torch.tanh(c)).to(dtype)
        hidden.append(h)
    return model.output(torch.stack(hidden, dim=1))


DECODERS = {"former": ARLSTMVAE.plain_steps, "stepped": stepped_stepwise, "new": ARLSTMVAE.fused_steps}


def step_times(batch: int, steps: int, precision: str, encoder_hidden: int) -> dict[str, list[float]]:
    """Seconds per training step with each decoder of :data:`DECODERS`, measured in turns; in the same turns, of
    each decoder alone (forward and backward, ``"<name> decoder"``) and of the encoder alone (``"encoder"``)."""
    seed_everything(0)
    new = build("ar_lstm_vae", encoder_hidden=encoder_hidden).train()
    runs = {}
    for name, decoder in DECODERS.items():
        model = copy.deepcopy(new)
        model.decode_steps = types.MethodType(decoder, model)
        runs[name] = (model, torch.optim.AdamW(model.parameters()))
    x = (torch.rand(batch, LOOP_STEPS, N_COLUMNS) < 0.05).float()
    times: dict[str, list[float]] = {name: [] for name in [*runs, *(f"{n} decoder" for n in runs), "encoder"]}
    for i in range(steps + 1):  # the first round warms up
        for name, (model, optimiser) in runs.items():
            torch.manual_seed(i)  # the same noise and teacher coins for all
            t0 = time.perf_counter()
            with _precision(precision):
                loss, _ = model.training_loss(x, kl_beta=1.0, epoch=0)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if i:
                times[name].append(time.perf_counter() - t0)
        for name, (model, _) in runs.items():  # the decoder alone: forward and backward, as in training
            torch.manual_seed(i)
            z = torch.randn(batch, model.latent_size, requires_grad=True)
            mask = torch.rand(batch, LOOP_STEPS) < 0.95  # epoch 0's teacher-forcing probability
            t0 = time.perf_counter()
            with _precision(precision):
                logits = model.decode_steps(z, x, mask)
            logits.float().sum().backward()
            if i:
                times[f"{name} decoder"].append(time.perf_counter() - t0)
            model.zero_grad(set_to_none=True)
        model = runs["new"][0]
        t0 = time.perf_counter()
        with _precision(precision):
            mu, logvar = model.encode(x)
        (mu.float().sum() + logvar.float().sum()).backward()
        if i:
            times["encoder"].append(time.perf_counter() - t0)
    return times


@torch.no_grad()
def logits_difference(batch: int, precision: str, encoder_hidden: int) -> float:
    """Largest |former - new| decoder logit on one latent and teacher mask (p = 0.5), random weights."""
    seed_everything(1)
    model = build("ar_lstm_vae", encoder_hidden=encoder_hidden)
    model.init_output_bias(0.05)
    x = (torch.rand(batch, LOOP_STEPS, N_COLUMNS) < 0.05).float()
    z = torch.randn(batch, model.latent_size)
    mask = torch.rand(batch, LOOP_STEPS) < 0.5
    with _precision(precision):
        former = model.plain_steps(z, x, mask).float()
        new = model.fused_steps(z, x, mask).float()
    return float((former - new).abs().max())


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
        f"batch {args.batch}, encoder {hidden} per direction; median of {args.steps} steps, the decoders taking turns\n"
    )
    print(
        f"{'precision':<11}{'former s/step':>15}{'stepped s/step':>16}{'new s/step':>12}"
        f"{'former/new':>12}{'stepped/new':>13}{'max |diff| logits':>20}"
    )
    medians = {}
    for precision in args.precision:
        times = step_times(args.batch, args.steps, precision, hidden)
        m = medians[precision] = {name: statistics.median(t) for name, t in times.items()}
        diff = logits_difference(args.batch, precision, hidden)
        print(
            f"{precision:<11}{m['former']:>15.3f}{m['stepped']:>16.3f}{m['new']:>12.3f}"
            f"{m['former'] / m['new']:>11.2f}x{m['stepped'] / m['new']:>12.2f}x{diff:>20.2e}"
        )
    print("\nthe decoder alone (forward + backward, s):")
    for precision, m in medians.items():
        print(
            f"{precision:<11}{m['former decoder']:>15.3f}{m['stepped decoder']:>16.3f}{m['new decoder']:>12.3f}"
            f"{m['former decoder'] / m['new decoder']:>11.2f}x{m['stepped decoder'] / m['new decoder']:>12.2f}x"
        )
    if {"fp32", "bf16"} <= medians.keys():
        print(
            f"\nformer decoder in float32 -> new decoder under bf16 autocast: "
            f"{medians['fp32']['former'] / medians['bf16']['new']:.2f}x"
        )
    for precision, m in medians.items():
        print(
            f"{precision}: the encoder (forward + backward) takes {m['encoder']:.3f} s, "
            f"{m['encoder'] / m['new']:.0%} of the new step and {m['encoder'] / m['former']:.0%} of the former's"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
