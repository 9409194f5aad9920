"""The two LSTM-VAEs of the paper (Appendix A, tables (a) and (b)).

Both share the encoder: a bi-LSTM (``encoder_hidden`` units per direction) over the 128 steps; the last forward
and backward hidden states are concatenated (2 x ``encoder_hidden``) and fed to ``mu = LayerNorm(Linear(h))``
and ``logvar = Linear(h)``, latent size 128. The table prints the encoder state as "h shape: (1, 256)": the
paper profile reads that h as the concatenated state (128 per direction, ``TrainSettings.lstm_encoder_hidden``);
the constructor default, 256 per direction (h of 512), is the other reading (the smoke profile's).

AR LSTM-VAE (a), a flat MusicVAE: the decoder LSTM has hidden size 128 = the latent size (the table gives the
decoder output ``x_t`` shape (128)), so its hidden and cell states start as ``h = c = z`` with no projection.
Its input at step t is ``concat(x_{t-1}, z)`` (93 + 128), with ``x_{-1} = 0``; ``Linear(128 -> 93)`` gives
the logits. Training uses teacher forcing with scheduled sampling (Bengio et al. 2015): at each step and
for each loop, the previous *target* step is fed with probability ``p = k / (k + exp(epoch / k))``
(inverse-sigmoid decay, rate k = 20, counted in **epochs** of the paper's 2,000-epoch run, 0-based), else
the model's own previous prediction (``sigmoid >= 0.5``). Inference is full sampling (own predictions fed
back). A shorter run follows the same schedule on the paper's time axis: epoch e of an E-epoch run is
schedule epoch ``e * 2000 / E`` (:func:`schedule_epoch`), so teacher forcing fades over the first ~5% of the
run as in the paper (p = 0.5 at paper epoch 60, ~0 after 200) instead of staying ~0.9 for a whole 40-epoch
run, which left the model never trained on its own predictions (exposure bias). The paper profile
(2,000 epochs) is unchanged.

With ``output_bias_init="data_rate"`` (the default and the demo's) the output bias starts at the log-odds of the
training data's cell density (:meth:`ARLSTMVAE.init_output_bias`, called by the training loop; the usual "prior
probability" initialisation of a sparse sigmoid output): with zero biases a short run spends its first epochs
only learning that cells are mostly off. The paper profile uses ``"zero"`` (He initialisation, as the paper says).

The decoder's loop is :meth:`ARLSTMVAE.plain_steps`, 128 calls of the decoder ``nn.LSTM``; training and sampling
run the same steps fused (:mod:`loopgen.runtime.recurrence`, one autograd node with a hand-written backward pass),
chosen in :meth:`ARLSTMVAE.decode_steps`.

NonAR LSTM-VAE (b): z repeated 128 times -> LSTM (hidden 256) -> Linear(256 -> 93) at every step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from loopgen import LOOP_STEPS, N_COLUMNS
from loopgen.models.base import ContinuousVAE
from loopgen.models.blocks import BiLSTMEncoder, GaussianHead, he_init
from loopgen.runtime.recurrence import ScheduledSamplingRecurrence

SCHEDULED_SAMPLING_RATE = 20.0
PAPER_EPOCHS = 2000  # the time axis of the paper's scheduled-sampling schedule


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The dtype autocast gives matrix products on ``device`` now, or None outside autocast."""
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        enabled = torch.is_autocast_enabled(device.type)
        return torch.get_autocast_dtype(device.type) if enabled else None
    if device.type == "cpu":
        return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
    return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None


def schedule_epoch(epoch: int, total_epochs: int, paper_epochs: int = PAPER_EPOCHS) -> float:
    """Epoch ``epoch`` (0-based) of a ``total_epochs`` run on the paper's ``paper_epochs`` time axis."""
    if total_epochs < 1:
        raise ValueError(f"total_epochs must be >= 1, got {total_epochs}")
    return epoch * paper_epochs / total_epochs


def teacher_forcing_prob(epoch: int | float, rate: float = SCHEDULED_SAMPLING_RATE) -> float:
    """Inverse-sigmoid decay of the teacher-forcing probability: ``k / (k + exp(epoch / k))``."""
    x = epoch / rate
    if x > 700:  # exp overflow: the probability is 0 to double precision
        return 0.0
    return rate / (rate + math.exp(x))


class _LSTMEncoderVAE(ContinuousVAE):
    def __init__(self, encoder_hidden: int, latent: int) -> None:
        super().__init__()
        self.latent_size = latent
        self.encoder = BiLSTMEncoder(N_COLUMNS, encoder_hidden)
        self.head = GaussianHead(self.encoder.out_features, latent)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.encoder(x))


class ARLSTMVAE(_LSTMEncoderVAE):
    """Autoregressive LSTM-VAE (paper table (a))."""

    name = "ar_lstm_vae"

    def __init__(
        self,
        encoder_hidden: int = 256,
        latent: int = 128,
        ss_rate: float = SCHEDULED_SAMPLING_RATE,
        ss_paper_epochs: int = PAPER_EPOCHS,
        output_bias_init: str = "data_rate",
    ) -> None:
        super().__init__(encoder_hidden, latent)
        if output_bias_init not in ("data_rate", "zero"):
            raise ValueError(f"output_bias_init must be 'data_rate' or 'zero', got {output_bias_init!r}")
        self.config = {
            "encoder_hidden": encoder_hidden,
            "latent": latent,
            "ss_rate": ss_rate,
            "ss_paper_epochs": ss_paper_epochs,
            "output_bias_init": output_bias_init,
        }
        self.ss_rate = ss_rate
        self.ss_paper_epochs = ss_paper_epochs
        self.output_bias_init = output_bias_init
        self.decoder = nn.LSTM(N_COLUMNS + latent, latent, batch_first=True)
        self.recurrence = ScheduledSamplingRecurrence()  # no parameters: the 128 steps on the decoder's weights
        self.fused_recurrence = True  # decode_steps: the fused recurrence (faster), or False: the plain loop
        self.cuda_graphs = False  # fused_steps on CUDA: replay the 128 steps as captured CUDA graphs (opt-in)
        self.output = nn.Linear(latent, N_COLUMNS)
        he_init(self)

    @torch.no_grad()
    def init_output_bias(self, cell_rate: float) -> None:
        """Set the output bias to ``log(r / (1 - r))`` for the training data's density r (if so configured)."""
        if self.output_bias_init != "data_rate":
            return
        r = min(max(float(cell_rate), 1e-4), 1 - 1e-4)
        self.output.bias.fill_(math.log(r / (1 - r)))

    def teacher_prob_at(self, epoch: int, total_epochs: int) -> float:
        """Teacher-forcing probability in epoch ``epoch`` (0-based) of a ``total_epochs`` run."""
        return teacher_forcing_prob(schedule_epoch(epoch, total_epochs, self.ss_paper_epochs), self.ss_rate)

    def _initial_state(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h0 = z.unsqueeze(0).contiguous()
        return h0, h0.clone()

    def _teacher_forced(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        previous = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        inputs = torch.cat([previous, z.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)
        out, _ = self.decoder(inputs, self._initial_state(z))
        return self.output(out)

    def decode_steps(
        self, z: torch.Tensor, x: torch.Tensor | None, teacher_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """The decoder's 128 steps; step t is fed ``x[:, t-1]`` where ``teacher_mask[:, t]``, else its own previous
        prediction (``x`` or ``teacher_mask`` None: always its own).

        The one place the implementation is chosen: :meth:`plain_steps` is the loop to read;
        :meth:`fused_steps` (the default, ``fused_recurrence``) computes the same logits and gradients
        (tests/test_ar_decoder.py) in about half the time on a CPU (``benchmarks/ar_decoder_speed.py``,
        docs/gpu.md).
        """
        if self.fused_recurrence:
            return self.fused_steps(z, x, teacher_mask)
        return self.plain_steps(z, x, teacher_mask)

    def plain_steps(
        self, z: torch.Tensor, x: torch.Tensor | None, teacher_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """The AR decoder written the plain way: one call of the decoder ``nn.LSTM`` on a one-step sequence per
        step, 128 per loop. Its input is ``concat(previous, z)``: ``previous`` is the target's previous step
        where the teacher-forcing coin says so, else the decoder's own previous prediction (``logit >= 0``, data
        that carries no gradient), and zeros at step 0; h and c start as z."""
        state = self._initial_state(z)
        previous = z.new_zeros(z.shape[0], N_COLUMNS)
        logits = []
        for t in range(LOOP_STEPS):
            if t > 0:
                own = (logits[-1] >= 0).to(z.dtype).detach()
                if teacher_mask is None or x is None:
                    previous = own
                else:
                    previous = torch.where(teacher_mask[:, t : t + 1], x[:, t - 1], own)
            out, state = self.decoder(torch.cat([previous, z], dim=-1).unsqueeze(1), state)
            logits.append(self.output(out[:, 0]))
        return torch.stack(logits, dim=1)

    def fused_steps(
        self, z: torch.Tensor, x: torch.Tensor | None, teacher_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """:meth:`plain_steps` fused: the same weights, coins, logits and gradients, in one autograd node.

        The decoder's ``nn.LSTM`` weights are stepped here directly, not by 128 calls of ``nn.LSTM`` with a
        one-step sequence (each with its own set-up and autograd record, each redoing the latent's share of
        the input projection). The input at step t is ``concat(x_{t-1}, z)``, so ``W_ih = [W_prev | W_z]``
        splits: ``z W_z^T + b_ih + b_hh`` is the same at every step and is computed once, by ordinary autograd;
        the 128 steps run in :class:`~loopgen.runtime.recurrence.ScheduledSamplingRecurrence`, one autograd node
        with a hand-written backward pass (the fed-back inputs carry no gradient, so only h and c link the
        steps; see that module). The logits that decide a step's own prediction are computed there without
        autograd; the returned logits come from one ``Linear`` over all 128 hidden states (the same numbers to
        rounding; one matrix product instead of 128 in the backward pass). Same state-dict keys.

        On CUDA the recurrence pads the fed-back columns so that its products' operands are aligned, and with
        ``cuda_graphs`` (off by default, ignored off CUDA) replays the 128 steps as CUDA graphs: one captured
        forward and one captured backward per batch shape, the same functions (docs/gpu.md projects the gain).
        A captured training run needs each forward pass's backward pass before the next forward pass.
        """
        lstm = self.decoder
        w_prev, w_z = lstm.weight_ih_l0.split([N_COLUMNS, self.latent_size], dim=1)
        latent_gates = torch.addmm(lstm.bias_ih_l0 + lstm.bias_hh_l0, z, w_z.t())
        # matmul operands in the dtype autocast would give them, cast once here and not at every step
        dtype = _autocast_dtype(z.device) or z.dtype
        hidden = self.recurrence(
            latent_gates.to(dtype),
            torch.cat([w_prev, lstm.weight_hh_l0], dim=1).to(dtype),  # [W_prev | W_hh]: one product per step
            z.to(dtype),  # h_0 = z
            z,  # c_0 = z; the cell state keeps z's dtype (float32 under autocast)
            None if x is None else x.to(dtype),
            teacher_mask,
            self.output.weight.to(dtype),
            self.output.bias.to(dtype),
            LOOP_STEPS,
            cuda_graphs=self.cuda_graphs,
        )
        return self.output(hidden)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Full sampling: each step is fed the previous step's prediction (sigmoid >= 0.5)."""
        return self.decode_steps(z, None, None)

    def decode_train(self, z: torch.Tensor, x: torch.Tensor, epoch: int | float) -> torch.Tensor:
        """Scheduled sampling; ``epoch`` is on the paper's time axis (see :func:`schedule_epoch`).

        A batch whose coins all say "teacher" takes the one-pass decoder (the same logits, to rounding); on the
        CPU only, as asking a GPU would make the host wait for it at every step (p < 1 always, and for a batch
        of hundreds of loops all 127 coins of every loop never come up "teacher" anyway).
        """
        p = teacher_forcing_prob(epoch, self.ss_rate)
        mask = torch.rand(x.shape[0], LOOP_STEPS, device=x.device) < p
        if mask.device.type == "cpu" and bool(mask[:, 1:].all()):
            return self._teacher_forced(z, x)
        return self.decode_steps(z, x, mask)



class NonARLSTMVAE(_LSTMEncoderVAE):
    """Non-autoregressive LSTM-VAE (paper table (b))."""

    name = "nonar_lstm_vae"

    def __init__(self, encoder_hidden: int = 256, latent: int = 128, decoder_hidden: int = 256) -> None:
        super().__init__(encoder_hidden, latent)
        self.config = {"encoder_hidden": encoder_hidden, "latent": latent, "decoder_hidden": decoder_hidden}
        self.decoder = nn.LSTM(latent, decoder_hidden, batch_first=True)
        self.output = nn.Linear(decoder_hidden, N_COLUMNS)
        he_init(self)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        repeated = z.unsqueeze(1).expand(-1, LOOP_STEPS, -1)
        out, _ = self.decoder(repeated)
        return self.output(out)

