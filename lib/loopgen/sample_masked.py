"""Sampling with the masked code prior (:mod:`loopgen.models.masked_prior`): from scratch, infill, seam repair.

Everything here is **iterative parallel decoding** (MaskGIT, Chang et al. 2022). The positions to write start as
``[MASK]``; at each of ``steps`` rounds the prior predicts every masked position at once from all the codes it
can see (both sides, across the wrap), a code is drawn for each at ``temperature`` (None: argmax), and the most
confident draws are kept while the rest are masked again. After round s (of S) a share ``cos(pi/2 (s+1)/S)`` of
the positions to write is still masked (MaskGIT's cosine schedule), so few codes are fixed early and many late;
the last round fixes all. Confidence is the log-probability of the drawn code plus Gumbel noise scaled by
``mask_noise (1 - (s+1)/S)`` (MaskGIT's "choice temperature", annealed to 0), so that the order in which codes
are fixed varies between samples.

* :func:`sample_masked`: n loops from scratch (every position masked at the start);
* :func:`infill`: any set of positions regenerated, **every other code held fixed, bit for bit** (exact
  conditioning on both sides, the wrap included);
* :func:`repair_seams`: infill of the codes around the bar 8 -> bar 1 and bar 4 -> bar 5 boundaries
  (:func:`seam_positions`);
* :func:`bar_positions`: the latent positions of a bar span (``vary --prior masked``);
* :func:`lag_agreement`, :func:`masked_cross_entropy`, :func:`continuation_cross_entropy`: notebook 09's
  measures (the last one compares both priors on the same held-out codes).

Seeded by ``seed`` through a private ``torch.Generator`` (the global RNG is left alone); batched; the forward
passes in bf16 on a CPU that supports it (``MaskedCodePrior.sampling_precision``), the draws in float32. On the
CPU each round draws only the masked positions (as the notebooks' results were made); on a GPU a round scores
and draws every position on the device with the device's generator and the mask chooses (:func:`decode_codes`),
so that no round waits for the host or copies probabilities to it. Without numpy (a box with only torch)
:func:`decode_codes` is what there is: tensors in, tensors out.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from loopgen import BARS_PER_LOOP
from loopgen.data.validate import check_codes
from loopgen.models.masked_prior import MaskedCodePrior, random_mask

try:
    import numpy as np
except ModuleNotFoundError:  # a box with only torch (benchmarks/gpu_check.py): decode_codes works on tensors
    np = None

DEFAULT_STEPS = 12  # decoding rounds for a whole loop (the probe used 12)
DEFAULT_MASK_NOISE = 1.0  # Gumbel noise on the confidences at the first round, annealed to 0 (ours)
DEFAULT_BATCH = 512
SEAMS = ((8, 1), (4, 5))  # the wrap (bar 8 -> bar 1) and the middle (bar 4 -> bar 5)


def _check_prior(prior: nn.Module) -> MaskedCodePrior:
    if not isinstance(prior, MaskedCodePrior):
        raise TypeError(f"this needs the masked code prior, not {type(prior).__name__}")
    return prior


def _check_sampling(steps: int, temperature: float | None, mask_noise: float) -> None:
    if steps < 1:
        raise ValueError(f"steps must be at least 1 (got {steps})")
    if temperature is not None and not temperature > 0:
        raise ValueError("temperature must be positive (or None for argmax)")
    if not mask_noise >= 0:
        raise ValueError(f"mask_noise must be >= 0 (got {mask_noise})")


def _generator(seed: int, device: torch.device) -> torch.Generator:
    """The draws' generator: the CPU's on a CPU (and on the meta device, which draws nothing), else the device's."""
    if device.type in ("cpu", "meta"):
        return torch.Generator().manual_seed(int(seed))
    return torch.Generator(device=device).manual_seed(int(seed))


@torch.no_grad()
def decode_codes(
    prior: MaskedCodePrior,
    codes: torch.Tensor,
    regenerate: torch.Tensor,
    *,
    steps: int = DEFAULT_STEPS,
    temperature: float | None = 1.0,
    seed: int = 0,
    mask_noise: float = DEFAULT_MASK_NOISE,
) -> torch.Tensor:
    """One batch of ``codes`` (N, t) on the prior's device with the positions under ``regenerate`` (N, t) bool
    drawn anew, on that device (:func:`infill` without numpy: what the GPU check samples with)."""
    prior = _check_prior(prior)
    _check_sampling(steps, temperature, mask_noise)
    was_training = prior.training
    prior.eval()
    try:
        return _decode_batch(prior, codes, regenerate, steps, temperature, mask_noise, _generator(seed, codes.device))
    finally:
        prior.train(was_training)


@torch.no_grad()
def _decode_batch(
    prior: MaskedCodePrior,
    codes: torch.Tensor,
    regenerate: torch.Tensor,
    steps: int,
    temperature: float | None,
    mask_noise: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """One batch of iterative decoding: only positions under ``regenerate`` are ever written. On the CPU the
    masked positions are gathered and drawn; elsewhere :func:`_decode_batch_on_device`."""
    device = codes.device
    if device.type != "cpu":
        return _decode_batch_on_device(prior, codes, regenerate, steps, temperature, mask_noise, generator)
    current = codes.masked_fill(regenerate, prior.mask_id)
    unknown = regenerate.clone()
    total = regenerate.sum(dim=1)
    for s in range(steps):
        if not unknown.any():
            break
        with prior.sampling_precision(device):
            logits = prior(current)
        where = unknown.nonzero(as_tuple=True)  # only the masked positions are drawn
        scaled = logits[where].float() / (1.0 if temperature is None else temperature)
        probs = torch.softmax(scaled, dim=-1)
        if temperature is None:
            picked = probs.argmax(dim=-1)
        else:
            picked = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0].to(device)
        drawn = current.clone()
        drawn[where] = picked
        score = torch.log(probs.gather(-1, picked[:, None])[:, 0].clamp_min(1e-30))
        noise_scale = mask_noise * (1 - (s + 1) / steps)
        if noise_scale > 0:
            uniform = torch.rand(score.shape, generator=generator).to(device).clamp(1e-9, 1 - 1e-9)
            score = score + noise_scale * -torch.log(-torch.log(uniform))
        confidence = torch.full(current.shape, math.inf, device=device)  # known codes are never masked again
        confidence[where] = score
        still = torch.floor(total * math.cos(math.pi / 2 * (s + 1) / steps)).long()
        still = torch.minimum(still, unknown.sum(dim=1) - 1).clamp_min(0)  # each round fixes at least one
        if s == steps - 1:
            still = torch.zeros_like(still)
        rank = confidence.argsort(dim=1).argsort(dim=1)
        remask = rank < still[:, None]
        fixed_now = unknown & ~remask
        current = torch.where(fixed_now, drawn, current)
        unknown = remask
    return torch.where(regenerate, current, codes)


@torch.no_grad()
def _decode_batch_on_device(
    prior: MaskedCodePrior,
    codes: torch.Tensor,
    regenerate: torch.Tensor,
    steps: int,
    temperature: float | None,
    mask_noise: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """:func:`_decode_batch`'s rounds with nothing that waits for the host: every position is scored and drawn on
    the device (``generator`` is the device's), the mask chooses which draws count, and all ``steps`` rounds run
    (a round after the last masked position is fixed changes nothing)."""
    device = codes.device
    current = codes.masked_fill(regenerate, prior.mask_id)
    unknown = regenerate.clone()
    total = regenerate.sum(dim=1)
    for s in range(steps):
        with prior.sampling_precision(device):
            logits = prior(current)
        probs = torch.softmax(logits.float() / (1.0 if temperature is None else temperature), dim=-1)
        if temperature is None:
            picked = probs.argmax(dim=-1)
        else:
            picked = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator).view(codes.shape)
        score = torch.log(probs.gather(-1, picked[..., None])[..., 0].clamp_min(1e-30))
        noise_scale = mask_noise * (1 - (s + 1) / steps)
        if noise_scale > 0:
            uniform = torch.rand(score.shape, generator=generator, device=device).clamp(1e-9, 1 - 1e-9)
            score = score + noise_scale * -torch.log(-torch.log(uniform))
        confidence = torch.where(unknown, score, math.inf)  # known codes are never masked again
        still = torch.floor(total * math.cos(math.pi / 2 * (s + 1) / steps)).long()
        still = torch.minimum(still, unknown.sum(dim=1) - 1).clamp_min(0)  # each round fixes at least one
        if s == steps - 1:
            still = torch.zeros_like(still)
        rank = confidence.argsort(dim=1).argsort(dim=1)
        remask = rank < still[:, None]
        current = torch.where(unknown & ~remask, picked, current)
        unknown = remask
    return torch.where(regenerate, current, codes)


def infill(
    prior: MaskedCodePrior,
    codes: np.ndarray,
    regenerate: np.ndarray,
    *,
    steps: int = DEFAULT_STEPS,
    temperature: float | None = 1.0,
    seed: int = 0,
    mask_noise: float = DEFAULT_MASK_NOISE,
    batch_size: int = DEFAULT_BATCH,
) -> np.ndarray:
    """``codes`` (N, t) with the positions under ``regenerate`` ((t,) or (N, t) bool) drawn anew; every other
    code is returned unchanged. ``steps`` decoding rounds (see the module docstring)."""
    prior = _check_prior(prior)
    _check_sampling(steps, temperature, mask_noise)
    codes = check_codes(codes, num_codes=prior.num_codes, allow_empty=True)
    if codes.shape[1] != prior.seq_len:
        raise ValueError(f"this prior reads {prior.seq_len} codes per loop, got {codes.shape[1]}")
    regenerate = np.broadcast_to(np.asarray(regenerate, dtype=bool), codes.shape).copy()
    out = codes.copy()
    was_training = prior.training
    prior.eval()
    try:
        device = next(prior.parameters()).device
        generator = _generator(seed, device)
        for s in range(0, len(codes), batch_size):
            c = torch.from_numpy(codes[s : s + batch_size]).to(device)
            r = torch.from_numpy(np.ascontiguousarray(regenerate[s : s + batch_size])).to(device)
            out[s : s + len(c)] = _decode_batch(prior, c, r, steps, temperature, mask_noise, generator).cpu().numpy()
    finally:
        prior.train(was_training)
    out[~regenerate] = codes[~regenerate]  # bit for bit, whatever happened above
    return out


def sample_masked(
    prior: MaskedCodePrior,
    n: int,
    *,
    steps: int = DEFAULT_STEPS,
    temperature: float | None = 1.0,
    seed: int = 0,
    mask_noise: float = DEFAULT_MASK_NOISE,
    batch_size: int = DEFAULT_BATCH,
) -> np.ndarray:
    """``n`` code sequences ``int64 (n, t)`` decoded from an all-masked start."""
    if n < 1:
        raise ValueError("n must be at least 1")
    prior = _check_prior(prior)
    blank = np.zeros((n, prior.seq_len), dtype=np.int64)
    return infill(prior, blank, np.ones(prior.seq_len, dtype=bool), steps=steps, temperature=temperature,
                  seed=seed, mask_noise=mask_noise, batch_size=batch_size)


def bar_positions(bars: tuple[int, int], t: int) -> np.ndarray:
    """(t,) bool: the latent positions of bars ``bars`` (1-based, inclusive) when t codes cover 8 bars."""
    a, b = bars
    if not 1 <= a <= b <= BARS_PER_LOOP:
        raise ValueError(f"bars must satisfy 1 <= first <= last <= {BARS_PER_LOOP}; got {bars}")
    if t % BARS_PER_LOOP:
        raise ValueError(f"{t} latent steps do not divide into {BARS_PER_LOOP} bars")
    per_bar = t // BARS_PER_LOOP
    out = np.zeros(t, dtype=bool)
    out[(a - 1) * per_bar : b * per_bar] = True
    return out


def seam_positions(t: int, seams: tuple[tuple[int, int], ...] = SEAMS, width: int = 1) -> np.ndarray:
    """(t,) bool: ``width`` codes on each side of every seam (bar A -> bar B, A's end meeting B's start; bar 8 ->
    bar 1 wraps around). With t = 32 and width 1: positions 31, 0 (the wrap) and 15, 16 (bar 4 -> 5)."""
    if t % BARS_PER_LOOP:
        raise ValueError(f"{t} latent steps do not divide into {BARS_PER_LOOP} bars")
    per_bar = t // BARS_PER_LOOP
    if not 1 <= width <= per_bar:
        raise ValueError(f"width must lie in 1..{per_bar} (codes per bar); got {width}")
    out = np.zeros(t, dtype=bool)
    for a, b in seams:
        if not (1 <= a <= BARS_PER_LOOP and 1 <= b <= BARS_PER_LOOP) or b != a % BARS_PER_LOOP + 1:
            raise ValueError(f"a seam joins a bar to the next one (8 -> 1 wraps); got {a} -> {b}")
        boundary = (b - 1) * per_bar
        out[(boundary + np.arange(-width, width)) % t] = True
    return out


def repair_seams(
    prior: MaskedCodePrior,
    codes: np.ndarray,
    *,
    seams: tuple[tuple[int, int], ...] = SEAMS,
    width: int = 1,
    steps: int = 4,
    temperature: float | None = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """``codes`` (N, t) with the codes around the seams regenerated from everything else (:func:`infill`)."""
    codes = check_codes(codes, allow_empty=True)
    where = seam_positions(codes.shape[1], seams, width)
    return infill(prior, codes, where, steps=min(steps, int(where.sum())), temperature=temperature, seed=seed)


# ------------------------------------------------------------------------------------------------ measures
def lag_agreement(codes: np.ndarray, lag: int = 16) -> float:
    """Share of latent positions whose code equals the code ``lag`` steps later, around the circle (t = 32,
    lag 16: bar 5's codes equal to bar 1's, bar 1's to bar 5's of the next pass)."""
    codes = check_codes(codes)
    return float((codes == np.roll(codes, -lag, axis=1)).mean())


@torch.no_grad()
def masked_cross_entropy(prior: MaskedCodePrior, codes: np.ndarray, seed: int = 0, repeats: int = 4) -> float:
    """Held-out masked-code cross-entropy (nats per masked code): ``repeats`` seeded cosine-schedule masks per
    sequence, every masked code predicted from the visible ones (the masked prior's training objective)."""
    prior = _check_prior(prior)
    codes = check_codes(codes, num_codes=prior.num_codes)
    generator = torch.Generator().manual_seed(int(seed))
    was_training = prior.training
    prior.eval()
    total, count = 0.0, 0
    try:
        device = next(prior.parameters()).device
        for _ in range(repeats):
            for s in range(0, len(codes), DEFAULT_BATCH):
                c = torch.from_numpy(codes[s : s + DEFAULT_BATCH]).to(device)
                mask = random_mask(len(c), c.shape[1], generator=generator, device=device)
                loss, _ = prior.masked_loss(c, mask, reduction="sum")
                total, count = total + float(loss), count + int(mask.sum())
    finally:
        prior.train(was_training)
    return total / count


@torch.no_grad()
def continuation_cross_entropy(prior: nn.Module, codes: np.ndarray, start: int) -> float:
    """Nats per code of ``codes[:, start:]`` given ``codes[:, :start]``, exactly, for either prior: the LSTM by
    its chain rule (:func:`loopgen.sample.code_log_likelihood`), the masked prior by the same chain rule read
    left to right (codes ``start..i-1`` revealed, ``i..t-1`` masked, the log-probability of code i)."""
    from loopgen import sample

    codes = check_codes(codes, num_codes=getattr(prior, "num_codes", None))
    t = codes.shape[1]
    if not 1 <= start < t:
        raise ValueError(f"start must lie in 1..{t - 1}")
    if not isinstance(prior, MaskedCodePrior):
        return float(-sample.code_log_likelihood(prior, codes, start=start).sum() / (len(codes) * (t - start)))
    was_training = prior.training
    prior.eval()
    total = 0.0
    try:
        device = next(prior.parameters()).device
        for s in range(0, len(codes), DEFAULT_BATCH):
            c = torch.from_numpy(codes[s : s + DEFAULT_BATCH]).to(device)
            for i in range(start, t):
                hidden = c.clone()
                hidden[:, i:] = prior.mask_id
                logp = torch.log_softmax(prior(hidden)[:, i].float(), dim=-1)
                total -= float(logp.gather(-1, c[:, i : i + 1]).sum())
    finally:
        prior.train(was_training)
    return total / (len(codes) * (t - start))
