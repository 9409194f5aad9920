"""A masked code prior over VQ-VAE codes that sees the whole loop (not in the paper; notebook 09).

The paper's prior (:mod:`loopgen.models.prior`) is a left-to-right LSTM: it predicts code ``i`` from codes
``0 .. i-1`` only. A loop, though, is a circle: bar 8 leads back into bar 1, and in code space bar 5 is mostly a
copy of bar 1 (the code 16 steps away). :class:`MaskedCodePrior` is a small **bidirectional transformer** over the
t codes of a loop, trained MaskGIT-style (Chang et al. 2022): hide a random share of the codes behind a ``[MASK]``
token and predict them from all the others, on both sides and across the wrap.

* **Circular relative position bias**: every attention head adds one learned number per circular offset
  ``(j - i) mod t`` to its attention score from position i to position j, so "the code 16 steps later" (and
  "the code 16 steps earlier", the same offset on a circle of 32) is one learned relation wherever it is.
  A learned absolute position embedding is added too (ours): a loop does start somewhere (bar 1 opens with kick
  and crash), so the model may also know where in the loop a code sits.
* **Cosine masking schedule** (MaskGIT): for each training sequence draw r ~ U(0, 1) and mask
  ``ceil(cos(pi r / 2) t)`` positions chosen at random (at least one); the loss is the cross-entropy of the
  masked codes only.
* Sampling, infill and seam repair are iterative parallel decoding: :mod:`loopgen.sample_masked`.

Sizes, dropout and the bf16 choice are ours (``loopgen.run.profiles.DEMO_RECIPES["masked_prior"]``).
``cpu_bf16``: on a CPU whose oneDNN supports bf16 (:func:`cpu_bf16_supported`), the training forward runs under
``torch.autocast("cpu", dtype=torch.bfloat16)`` (several times faster on such CPUs), and so do the forward passes
of sampling (:meth:`MaskedCodePrior.sampling_precision`); float32 otherwise, and always for the validation
cross-entropy.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from loopgen.models.base import LossTerms

VALIDATION_SEED = 12345  # the fixed masks of the validation cross-entropy (the same every epoch and model)


def cpu_bf16_supported() -> bool:
    """Whether this CPU runs bf16 matrix products natively (oneDNN's check); False when torch cannot tell."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cosine_mask_ratio(r: torch.Tensor) -> torch.Tensor:
    """MaskGIT's schedule gamma(r) = cos(pi r / 2): the share of codes hidden at progress r in [0, 1]."""
    return torch.cos(math.pi / 2 * r)


def random_mask(batch: int, t: int, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """A training mask (batch, t) bool: per row ``ceil(cos(pi r / 2) t)`` positions (at least 1), r ~ U(0, 1).

    Drawn by ``generator`` (a CPU one: the validation's fixed masks) or, without one, by the global RNG of
    ``device``: on a GPU the training masks are drawn there, with no copy from the host (the CPU's masks are the
    CPU generator's, as its checkpoints were made with)."""
    where = None if generator is not None or device is None or torch.device(device).type == "cpu" else device
    r = torch.rand(batch, generator=generator, device=where)
    count = torch.ceil(cosine_mask_ratio(r) * t).clamp(1, t).long()
    rank = torch.rand(batch, t, generator=generator, device=where).argsort(dim=1).argsort(dim=1)
    return (rank < count[:, None]).to(device)


def circular_offsets(t: int, device=None) -> torch.Tensor:
    """(t, t) long: ``(j - i) mod t``, the circular offset from query position i to key position j."""
    idx = torch.arange(t, device=device)
    return (idx[None, :] - idx[:, None]) % t


def masked_terms(
    logits: torch.Tensor, codes: torch.Tensor, mask: torch.Tensor, reduction: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The cross-entropy (``"mean"`` or ``"sum"``) and argmax accuracy of the codes under ``mask``, computed over
    every position with the mask as weights: no boolean index, so no host sync (equal to the gathered form up to
    float rounding)."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    flat = logits.reshape(-1, logits.shape[-1]).float()
    target, weight = codes.reshape(-1), mask.reshape(-1)
    per_code = nn.functional.cross_entropy(flat, target, reduction="none")
    count = weight.sum()
    loss = torch.where(weight, per_code, 0.0).sum()
    correct = ((flat.argmax(-1) == target) & weight).sum()
    return (loss / count if reduction == "mean" else loss), correct.float() / count


class _Block(nn.Module):
    """Pre-norm transformer block: self-attention with an additive bias, then a GELU feed-forward layer."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))
        self.drop = nn.Dropout(dropout)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype), dropout_p=self.dropout if self.training else 0.0
        )
        x = x + self.drop(self.proj(attn.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.ff(self.norm2(x)))


class MaskedCodePrior(nn.Module):
    """Bidirectional transformer over a loop's t codes, with a circular relative position bias per head."""

    name = "masked_prior"

    def __init__(
        self,
        num_codes: int = 512,
        seq_len: int = 32,
        dim: int = 256,
        layers: int = 4,
        heads: int = 8,
        ff_mult: int = 4,
        dropout: float = 0.1,
        cpu_bf16: bool = True,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.config = {
            "num_codes": num_codes,
            "seq_len": seq_len,
            "dim": dim,
            "layers": layers,
            "heads": heads,
            "ff_mult": ff_mult,
            "dropout": dropout,
            "cpu_bf16": cpu_bf16,
        }
        self.num_codes, self.seq_len, self.cpu_bf16 = num_codes, seq_len, cpu_bf16
        self.mask_id = num_codes  # the [MASK] token: one index past the codebook
        self.embedding = nn.Embedding(num_codes + 1, dim)
        self.position = nn.Parameter(torch.zeros(seq_len, dim))
        self.relative_bias = nn.Parameter(torch.zeros(heads, seq_len))  # one per head and circular offset
        self.blocks = nn.ModuleList(_Block(dim, heads, ff_mult * dim, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.output = nn.Linear(dim, num_codes)
        self.drop = nn.Dropout(dropout)
        self._init()

    def _init(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
        nn.init.normal_(self.position, std=0.02)

    def example_input(self, batch: int = 2) -> torch.Tensor:
        return torch.randint(0, self.num_codes, (batch, self.seq_len))

    def attention_bias(self) -> torch.Tensor:
        """(heads, t, t): the learned bias of each head for every (query i, key j), read at ``(j - i) mod t``."""
        return self.relative_bias[:, circular_offsets(self.seq_len, self.relative_bias.device)]

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Logits (batch, t, K) for every position of ``codes`` (batch, t); ``mask_id`` marks hidden codes."""
        if codes.shape[1] != self.seq_len:
            raise ValueError(f"this prior reads {self.seq_len} codes per loop, got {codes.shape[1]}")
        x = self.drop(self.embedding(codes) + self.position)
        bias = self.attention_bias()[None]
        for block in self.blocks:
            x = block(x, bias)
        return self.output(self.norm(x))

    def _precision(self, codes: torch.Tensor) -> contextlib.AbstractContextManager:
        """bf16 autocast while training on a CPU that supports it (``cpu_bf16``), unless one is already active."""
        use = (
            self.cpu_bf16 and self.training and codes.device.type == "cpu"
            and not torch.is_autocast_enabled("cpu") and cpu_bf16_supported()
        )
        return torch.autocast("cpu", dtype=torch.bfloat16) if use else contextlib.nullcontext()

    def sampling_precision(self, device: torch.device) -> contextlib.AbstractContextManager:
        """bf16 autocast for the forward passes of sampling on a CPU that supports it (``cpu_bf16``)."""
        use = self.cpu_bf16 and device.type == "cpu" and not torch.is_autocast_enabled("cpu") and cpu_bf16_supported()
        return torch.autocast("cpu", dtype=torch.bfloat16) if use else contextlib.nullcontext()

    def masked_loss(
        self, codes: torch.Tensor, mask: torch.Tensor, reduction: str = "mean"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of the codes under ``mask`` (batch, t) bool, predicted with those codes hidden, and
        the argmax accuracy on them. On the CPU the masked positions are gathered (as the CPU's checkpoints were
        made); elsewhere every position is scored and the mask weighs them (:func:`masked_terms`), so that a GPU
        step waits for nothing (a boolean index must first count the masked positions on the host)."""
        with self._precision(codes):
            logits = self(codes.masked_fill(mask, self.mask_id))
        if codes.device.type != "cpu":
            return masked_terms(logits, codes, mask, reduction)
        logits, target = logits[mask].float(), codes[mask]
        loss = nn.functional.cross_entropy(logits, target, reduction=reduction)
        return loss, (logits.argmax(-1) == target).float().mean()

    def training_loss(self, codes: torch.Tensor, *, kl_beta: float = 1.0, epoch: int = 0) -> tuple[torch.Tensor, LossTerms]:
        """MaskGIT's objective: the cross-entropy of randomly masked codes (cosine schedule), mean per code."""
        mask = random_mask(codes.shape[0], codes.shape[1], device=codes.device)
        loss, accuracy = self.masked_loss(codes, mask)
        return loss, {"accuracy": accuracy.detach()}

    @torch.no_grad()
    def evaluate_codes(self, codes: torch.Tensor, device: torch.device, precision: str = "auto") -> dict[str, float]:
        """Held-out masked-code cross-entropy and accuracy (float32) under fixed cosine-schedule masks
        (seeded by :data:`VALIDATION_SEED`, the same every epoch): the training loop's validation."""
        was_training = self.training
        self.eval()
        try:
            generator = torch.Generator().manual_seed(VALIDATION_SEED)
            loss_sum, correct, count = 0.0, 0.0, 0
            for start in range(0, len(codes), 512):
                c = codes[start : start + 512].to(device)
                mask = random_mask(len(c), c.shape[1], generator=generator, device=device)
                loss, accuracy = self.masked_loss(c, mask, reduction="sum")
                n = int(mask.sum())
                loss_sum, correct, count = loss_sum + float(loss), correct + float(accuracy) * n, count + n
        finally:
            self.train(was_training)
        return {"val_loss": loss_sum / count, "val_accuracy": correct / count}
