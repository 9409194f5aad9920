"""The AR LSTM-VAE's training step with its decoder recurrence against the former decoders.

    .venv/bin/python benchmarks/ar_decoder_speed.py [--device auto] [--batch N] [--steps 7]
        [--precision fp32 bf16 tf32] [--threads N]

One training step = ``training_loss`` (encoder, scheduled-sampling decoder, loss) + backward + AdamW, on random
sparse loops: on the CPU at the demo profile's batch size and encoder width; on a CUDA GPU (``--device auto``
picks one when torch sees it) at the paper profile's (batch 2,048, encoder 128 per direction), in TF32 and bf16 by
default. Three decoders, each swapped into its own copy of the same model (four on a GPU):

* ``former``: one call of ``nn.LSTM`` with a sequence of length 1 per step, 128 per batch (the model's plain
  loop, ``ARLSTMVAE.plain_steps``);
* ``stepped``: the decoder before the hand-written backward pass (kept here, :func:`stepped_stepwise`): the LSTM's
  own weights stepped by hand, autograd recording every step;
* ``new``: the library's decoder (``ARLSTMVAE.fused_steps``: one autograd node, hand-written backward pass);
* ``graphed`` (CUDA only): ``new`` with ``cuda_graphs`` on: its 128 steps forward and backward replayed as two
  captured CUDA graphs (the first, untimed round captures them).

Their steps take turns, so that all see the same load on a shared machine. Prints, per precision, the median
seconds per step of each, the ratios former/new and stepped/new, and the largest absolute difference between the
former and the new decoder's logits on the same latent and teacher mask (random weights; under bf16 the former
runs oneDNN's bf16 LSTM, the new one keeps its cell state in float32, so they differ by bf16 rounding); then the
float32-former to bf16-new ratio; the same for each decoder alone (forward and backward on one latent batch, in
the same turns), and how much of each step the encoder (forward and backward, the same turns) takes: the encoder
is the same ``nn.LSTM`` in all three models, so its share bounds what any decoder can gain. On CUDA also the
graphed decoder's seconds and new/graphed, its largest logit difference from ``new``, and the hours of the paper
profile's AR training (2,000 epochs x 59 steps) at the new and graphed medians. Asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
import types
from contextlib import nullcontext

import torch

from loopgen import LOOP_STEPS, N_COLUMNS, paper
from loopgen.models import ARLSTMVAE, build
from loopgen.models.lstm_vae import _autocast_dtype
from loopgen.run import profiles
from loopgen.runtime.device import matmul_precision
from loopgen.runtime.seed import seed_everything


def _precision(name: str, device: torch.device):
    """The forward pass's context: bf16 autocast, or nothing (float32; TF32 is :func:`_matmuls`')."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if name == "bf16" else nullcontext()


def _matmuls(name: str, device: torch.device):
    """The TF32 switches around a whole step on CUDA: on for "tf32", off otherwise; nothing on a CPU."""
    return matmul_precision(device, "tf32" if name == "tf32" else "fp32")


def _clock(device: torch.device) -> float:
    """Seconds now, after the GPU finished what was queued (kernels run after their launch returns)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


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


def decoders(device: torch.device) -> list[str]:
    """The decoders timed on ``device``: :data:`DECODERS`, and on CUDA ``graphed`` too."""
    return [*DECODERS, "graphed"] if device.type == "cuda" else list(DECODERS)


def step_times(
    batch: int, steps: int, precision: str, encoder_hidden: int, device: torch.device
) -> dict[str, list[float]]:
    """Seconds per training step with each decoder of :func:`decoders`, measured in turns; in the same turns, of
    each decoder alone (forward and backward, ``"<name> decoder"``) and of the encoder alone (``"encoder"``)."""
    seed_everything(0)
    new = build("ar_lstm_vae", encoder_hidden=encoder_hidden).train().to(device)
    runs = {}
    for name in decoders(device):
        model = copy.deepcopy(new)
        if name == "graphed":
            model.cuda_graphs = True
        else:
            model.decode_steps = types.MethodType(DECODERS[name], model)
        runs[name] = (model, torch.optim.AdamW(model.parameters()))
    x = (torch.rand(batch, LOOP_STEPS, N_COLUMNS, device=device) < 0.05).float()
    times: dict[str, list[float]] = {name: [] for name in [*runs, *(f"{n} decoder" for n in runs), "encoder"]}
    for i in range(steps + 1):  # the first round warms up
        for name, (model, optimiser) in runs.items():
            torch.manual_seed(i)  # the same noise and teacher coins for all
            t0 = _clock(device)
            with _matmuls(precision, device):
                with _precision(precision, device):
                    loss, _ = model.training_loss(x, kl_beta=1.0, epoch=0)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            if i:
                times[name].append(_clock(device) - t0)
        for name, (model, _) in runs.items():  # the decoder alone: forward and backward, as in training
            torch.manual_seed(i)
            z = torch.randn(batch, model.latent_size, device=device, requires_grad=True)
            mask = torch.rand(batch, LOOP_STEPS, device=device) < 0.95  # epoch 0's teacher-forcing probability
            t0 = _clock(device)
            with _matmuls(precision, device):
                with _precision(precision, device):
                    logits = model.decode_steps(z, x, mask)
                logits.float().sum().backward()
            if i:
                times[f"{name} decoder"].append(_clock(device) - t0)
            model.zero_grad(set_to_none=True)
        model = runs["new"][0]
        t0 = _clock(device)
        with _matmuls(precision, device):
            with _precision(precision, device):
                mu, logvar = model.encode(x)
            (mu.float().sum() + logvar.float().sum()).backward()
        if i:
            times["encoder"].append(_clock(device) - t0)
    return times


@torch.no_grad()
def logits_difference(batch: int, precision: str, encoder_hidden: int, device: torch.device) -> dict[str, float]:
    """Largest |former - new| decoder logit on one latent and teacher mask (p = 0.5), random weights; on CUDA
    also |new - graphed|."""
    seed_everything(1)
    model = build("ar_lstm_vae", encoder_hidden=encoder_hidden).to(device)
    model.init_output_bias(0.05)
    x = (torch.rand(batch, LOOP_STEPS, N_COLUMNS, device=device) < 0.05).float()
    z = torch.randn(batch, model.latent_size, device=device)
    mask = torch.rand(batch, LOOP_STEPS, device=device) < 0.5
    with _matmuls(precision, device), _precision(precision, device):
        former = model.plain_steps(z, x, mask).float()
        new = model.fused_steps(z, x, mask).float()
        differences = {"former": float((former - new).abs().max())}
        if device.type == "cuda":
            model.cuda_graphs = True
            differences["graphed"] = float((model.fused_steps(z, x, mask).float() - new).abs().max())
    return differences


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when torch sees a GPU, else cpu), cpu, cuda")
    parser.add_argument("--batch", type=int, help="default: the demo profile's on a CPU, the paper's on CUDA")
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument(
        "--precision", nargs="+", choices=["fp32", "bf16", "tf32"],
        help="default: fp32 bf16 on a CPU, tf32 (the paper profile's) bf16 on CUDA",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as issue 19 measured)")
    args = parser.parse_args(argv)
    device = _device(args.device)
    on_gpu = device.type == "cuda"
    profile = profiles.PROFILES["paper" if on_gpu else "demo"].train
    batch = args.batch or profile.batch_size
    precisions = args.precision or (["tf32", "bf16"] if on_gpu else ["fp32", "bf16"])
    if args.threads:
        torch.set_num_threads(args.threads)
    hidden = profile.lstm_encoder_hidden
    where = torch.cuda.get_device_name(device) if on_gpu else f"the CPU, {torch.get_num_threads()} thread(s)"
    print(
        f"AR LSTM-VAE training step (forward, backward, AdamW) on {where}, "
        f"batch {batch}, encoder {hidden} per direction; median of {args.steps} steps, the decoders taking turns\n"
    )
    graphed = f"{'graphed s/step':>16}{'new/graphed':>13}" if on_gpu else ""
    print(
        f"{'precision':<11}{'former s/step':>15}{'stepped s/step':>16}{'new s/step':>12}"
        f"{'former/new':>12}{'stepped/new':>13}{'max |diff| logits':>20}{graphed}"
    )
    medians, differences = {}, {}
    for precision in precisions:
        times = step_times(batch, args.steps, precision, hidden, device)
        m = medians[precision] = {name: statistics.median(t) for name, t in times.items()}
        diff = differences[precision] = logits_difference(batch, precision, hidden, device)
        graphed = f"{m['graphed']:>16.4f}{m['new'] / m['graphed']:>12.2f}x" if on_gpu else ""
        print(
            f"{precision:<11}{m['former']:>15.3f}{m['stepped']:>16.3f}{m['new']:>12.3f}"
            f"{m['former'] / m['new']:>11.2f}x{m['stepped'] / m['new']:>12.2f}x{diff['former']:>20.2e}{graphed}"
        )
    print("\nthe decoder alone (forward + backward, s):")
    for precision, m in medians.items():
        graphed = (
            f"{'':>20}{m['graphed decoder']:>16.4f}{m['new decoder'] / m['graphed decoder']:>12.2f}x" if on_gpu else ""
        )
        print(
            f"{precision:<11}{m['former decoder']:>15.3f}{m['stepped decoder']:>16.3f}{m['new decoder']:>12.3f}"
            f"{m['former decoder'] / m['new decoder']:>11.2f}x{m['stepped decoder'] / m['new decoder']:>12.2f}x"
            f"{graphed}"
        )
    if on_gpu:
        for precision in precisions:
            graphed_difference = differences[precision]["graphed"]
            print(f"{precision}: max |new - graphed| logit {graphed_difference:.2e} (the same kernels, replayed)")
            steps = math.ceil(paper.DATASET.train / batch) * profile.lstm_epochs
            m = medians[precision]
            print(
                f"{precision}: {steps:,} training steps of the paper profile at these medians: "
                f"new {m['new'] * steps / 3600:.2f} h, graphed {m['graphed'] * steps / 3600:.2f} h"
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
