"""Using trained models: reconstruct, sample, encode to codes and back, sample codes from the prior, edit codes.

Every function runs batched, without gradients, in eval mode (the model's mode is restored afterwards),
and is seeded by its ``seed`` argument (a private ``torch.Generator``: the global RNG is left alone).
Loops come back as ``uint8`` arrays ``(N, 128, 93)`` binarised at ``sigmoid >= 0.5`` (``logits >= 0``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from loopgen import LOOP_STEPS, N_COLUMNS
from loopgen.data.validate import check_codes, check_loops
from loopgen.models import VQVAE, CodePrior, ContinuousVAE
from loopgen.models.prior import next_code
from loopgen.runtime.device import eval_mode

DEFAULT_BATCH = 512
LIKELIHOOD_BATCH = 2048  # sequences per forward of code_log_likelihood off the CPU (~130 MB of logits at K = 512)



def _binary(logits: torch.Tensor) -> np.ndarray:
    return (logits >= 0).to(torch.uint8).cpu().numpy()


def reconstruct(model: nn.Module, loops: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Each loop through encoder and decoder (posterior mean for VAEs, nearest codes for the VQ-VAE)."""
    loops = check_loops(loops, allow_empty=True)
    out = np.zeros(loops.shape, dtype=np.uint8)
    with eval_mode(model) as device:
        for s in range(0, len(loops), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(loops[s : s + batch_size])).to(device).float()
            out[s : s + len(x)] = _binary(model.reconstruct_logits(x))
    return out


def sample_vae(model: ContinuousVAE, n: int, seed: int = 0, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """``n`` loops decoded from z ~ N(0, I) (the continuous VAEs' generation; the AR model samples fully)."""
    if not isinstance(model, ContinuousVAE):
        raise TypeError(f"sample_vae needs a continuous VAE, not {type(model).__name__}")
    generator = torch.Generator().manual_seed(int(seed))
    z_all = torch.randn(n, model.latent_size, generator=generator)
    out = np.zeros((n, LOOP_STEPS, N_COLUMNS), dtype=np.uint8)
    with eval_mode(model) as device:
        for s in range(0, n, batch_size):
            out[s : s + batch_size] = _binary(model.decode(z_all[s : s + batch_size].to(device)))
    return out


def encode_codes(vq: VQVAE, loops: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Code indices ``int64 (N, t)`` of loops (the codebook is not updated)."""
    loops = check_loops(loops, allow_empty=True)
    out = np.zeros((len(loops), vq.latent_steps), dtype=np.int64)
    with eval_mode(vq) as device:
        for s in range(0, len(loops), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(loops[s : s + batch_size])).to(device).float()
            out[s : s + len(x)] = vq.encode_codes(x).cpu().numpy()
    return out


def _draws_generator(generator: torch.Generator, seed: int, device: torch.device) -> torch.Generator:
    """The generator of the prior's draws: ``generator`` (the CPU's) on a CPU, else one of ``device`` seeded by
    ``seed``, so that a GPU draws where its probabilities are instead of copying them to the host every step."""
    if device.type == "cpu":
        return generator
    return torch.Generator(device=device).manual_seed(int(seed))


def decode_codes(vq: VQVAE, codes: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Loops ``uint8 (N, 128, 93)`` decoded from code indices ``(N, t)``."""
    codes = check_codes(codes, num_codes=vq.num_codes, allow_empty=True)
    if codes.shape[1] != vq.latent_steps:
        raise ValueError(f"this VQ-VAE decodes {vq.latent_steps} latent steps, got {codes.shape[1]}")
    out = np.zeros((len(codes), LOOP_STEPS, N_COLUMNS), dtype=np.uint8)
    with eval_mode(vq) as device:
        for s in range(0, len(codes), batch_size):
            c = torch.from_numpy(codes[s : s + batch_size]).to(device)
            out[s : s + len(c)] = _binary(vq.decode_codes(c))
    return out


def first_code_distribution(codes: np.ndarray, num_codes: int | None = None) -> np.ndarray:
    """Empirical distribution ``(K,)`` of the first code over a set of code sequences (paper: p(z_0))."""
    codes = check_codes(codes, num_codes=num_codes)
    k = int(codes.max()) + 1 if num_codes is None else int(num_codes)
    counts = np.bincount(codes[:, 0], minlength=k).astype(np.float64)
    return counts / counts.sum()


def sample_codes(
    prior: CodePrior,
    n: int,
    first_probs: np.ndarray,
    temperature: float | None = None,
    seed: int = 0,
    batch_size: int = 1024,
) -> np.ndarray:
    """``n`` code sequences ``int64 (n, t)`` from the prior.

    The first code is drawn from ``first_probs``; each next one is the argmax of the prior's softmax
    (``temperature=None``) or drawn from ``softmax(logits / temperature)``.
    """
    if temperature is not None and temperature <= 0:
        raise ValueError("temperature must be positive (or None for argmax)")
    probs = np.asarray(first_probs, dtype=np.float64)
    if probs.ndim != 1 or probs.sum() <= 0 or (probs < 0).any():
        raise ValueError("first_probs must be a non-negative vector with a positive sum")
    if len(probs) > prior.num_codes:
        raise ValueError(f"first_probs has {len(probs)} entries but the prior knows {prior.num_codes} codes")
    probs = np.pad(probs, (0, prior.num_codes - len(probs)))
    generator = torch.Generator().manual_seed(int(seed))
    first = torch.multinomial(torch.from_numpy(probs / probs.sum()), n, replacement=True, generator=generator)
    out = np.zeros((n, prior.seq_len), dtype=np.int64)
    with eval_mode(prior) as device:
        draws = _draws_generator(generator, seed, device)
        for s in range(0, n, batch_size):
            batch = prior.generate(first[s : s + batch_size].to(device), temperature, draws)
            out[s : s + len(batch)] = batch.cpu().numpy()
    return out


def copy_code_span(
    codes: np.ndarray, src: tuple[int, int] = (0, 2), dst: tuple[int, int] = (16, 18)
) -> np.ndarray:
    """A copy of ``codes`` with latent steps ``src[0]:src[1]`` written over ``dst[0]:dst[1]``.

    The paper copies latent steps 0, 1 onto 16, 17 (t = 32: bar 1 onto bar 5) to strengthen the repetition.
    """
    codes = check_codes(codes, allow_empty=True)
    (a, b), (c, d) = src, dst
    t = codes.shape[1]
    if not (0 <= a < b <= t and 0 <= c < d <= t) or b - a != d - c:
        raise ValueError(f"spans {src} and {dst} must have equal length and lie within 0..{t}")
    out = codes.copy()
    out[:, c:d] = codes[:, a:b]
    return out


def code_frequencies(codes: np.ndarray, num_codes: int | None = None) -> np.ndarray:
    """Counts ``(t, K)``: how often each code appears at each latent time step (paper Figures 4-5)."""
    codes = check_codes(codes, num_codes=num_codes, allow_empty=True)
    k = (int(codes.max()) + 1 if codes.size else 0) if num_codes is None else int(num_codes)
    t = codes.shape[1]
    flat = codes + np.arange(t)[None, :] * k
    return np.bincount(flat.ravel(), minlength=t * k).reshape(t, k)


def continue_codes(
    prior: CodePrior,
    prefix: np.ndarray,
    n: int,
    *,
    first_probs: np.ndarray | None = None,
    temperature: float | None = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """``n`` code sequences ``int64 (n, t)`` that all begin with ``prefix`` (p,) and continue from the prior.

    The prefix is fed through the LSTM (its state conditions every later step), then the remaining
    ``t - p`` codes are drawn as in :func:`sample_codes`. An empty prefix draws the first code from
    ``first_probs`` (required then).
    """
    prefix = np.asarray(prefix)
    if prefix.size == 0:  # an empty list has no integer dtype of its own
        prefix = prefix.astype(np.int64)
    prefix = check_codes(prefix.reshape(1, -1), name="prefix", num_codes=prior.num_codes, min_steps=0)[0]
    t = prior.seq_len
    if len(prefix) > t:
        raise ValueError(f"prefix must hold at most {t} codes; got {len(prefix)}")
    if n < 1:
        raise ValueError("n must be at least 1")
    if temperature is not None and temperature <= 0:
        raise ValueError("temperature must be positive (or None for argmax)")
    if len(prefix) == 0:
        if first_probs is None:
            raise ValueError("an empty prefix needs first_probs for the first code")
        return sample_codes(prior, n, first_probs, temperature=temperature, seed=seed)
    generator = torch.Generator().manual_seed(int(seed))
    out = np.zeros((n, t), dtype=np.int64)
    out[:, : len(prefix)] = prefix
    if len(prefix) == t:
        return out
    with eval_mode(prior) as device:
        draws = _draws_generator(generator, seed, device)
        start = torch.from_numpy(np.tile(prefix, (n, 1))).to(device)
        logits, state = prior(start)
        for step in range(len(prefix), t):
            current = next_code(logits[:, -1], temperature, draws)
            out[:, step] = current[:, 0].cpu().numpy()
            if step + 1 < t:
                logits, state = prior(current, state)
    return out


def _likelihood_batch(device: torch.device, n: int) -> int:
    """Sequences per forward of :func:`code_log_likelihood`: all ``n`` on the CPU (the one pass its results were
    made with), :data:`LIKELIHOOD_BATCH` elsewhere."""
    return max(n, 1) if device.type == "cpu" else LIKELIHOOD_BATCH


def code_log_likelihood(prior: CodePrior, codes: np.ndarray, start: int = 1) -> np.ndarray:
    """``log p(z_start .. z_{t-1} | earlier codes)`` under the prior for each sequence: float64 (N,).

    On a GPU the sequences go through in batches of :data:`LIKELIHOOD_BATCH` (one pass over 15,000 codes would
    hold about 1 GB of logits there); the CPU keeps the one pass its results were made with."""
    codes = check_codes(codes, num_codes=prior.num_codes, allow_empty=True)
    if not 1 <= start <= codes.shape[1]:
        raise ValueError(f"start must lie in 1..{codes.shape[1]}")
    with eval_mode(prior) as device:
        n = len(codes)
        batch = _likelihood_batch(device, n)
        parts = []
        for s in range(0, max(n, 1), batch):
            c = torch.from_numpy(codes[s : s + batch]).to(device)
            logits, _ = prior(c[:, :-1])
            logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, c[:, 1:].unsqueeze(-1))[..., 0]
            parts.append(logp[:, start - 1 :].sum(dim=1).double())
        return torch.cat(parts).cpu().numpy()
