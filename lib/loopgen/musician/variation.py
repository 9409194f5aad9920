"""Variations of a musician's own loop: ``python -m loopgen vary INPUT.mid --n 8 --keep-bars 4 --out DIR``.

The loop is encoded with the VQ-VAE into t = 32 codes (4 per bar). The codes of the bars to keep stay fixed;
the LSTM prior samples the codes of the bars to regenerate, and the VQ-VAE decodes the result.

* **Continuation** (the span runs to bar 8, e.g. ``--keep-bars 4``): the kept prefix is fed through the prior,
  whose state then conditions every sampled code; this is exact sampling from p(span | prefix).
* **A span in the middle** (e.g. ``--regenerate-bars 3-4``): the prior only looks backwards, so the bars after
  the span condition the choice by selection. ``candidates`` x n continuations of the prefix are sampled; each
  is decoded and re-encoded, and the candidates whose re-encoded codes after the span match the original tail
  codes best are kept (ties broken by the prior's log-likelihood of the original tail after the new span).
  The kept candidates' span codes are then joined with the original tail codes and decoded.
* **With the masked prior** (``--prior masked``, notebook 09, not in the paper) every span is conditioned exactly:
  the codes of the bars to regenerate start masked and are decoded in ``--steps`` rounds from all the other
  codes, on both sides and across the wrap (:func:`loopgen.sample_masked.infill`); the other codes stay as they are,
  and no candidates are drawn.
* **The kept bars are the user's own, bit for bit**: the decoder is lossy, so the original bars are pasted
  back over the decoded loop; only the regenerated bars come from the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loopgen import BARS_PER_LOOP, LOOP_STEPS, STEPS_PER_BAR, sample
from loopgen import sample_masked as masked
from loopgen.data.validate import check_loops
from loopgen.models.masked_prior import MaskedCodePrior
from loopgen.musician.trained import TrainedVQ

DEFAULT_CANDIDATES = 16


@dataclass
class Variations:
    """``n`` variations of one loop: the loops (with the kept bars pasted back), their codes and the span."""

    loops: np.ndarray  # uint8 (n, 128, 93)
    codes: np.ndarray  # int64 (n, t): the decoded codes
    original_codes: np.ndarray  # int64 (t,)
    bars: tuple[int, int]  # regenerated bars, 1-based, inclusive
    tail_match: np.ndarray  # (n,): fraction of re-encoded tail codes equal to the original's (1 without a tail
    #                         and with the masked prior, whose tail codes are the original's by construction)


def bar_span(text: str) -> tuple[int, int]:
    """The bars of ``A-B`` (or ``A``), 1-based and inclusive, with 1 <= A <= B <= 8; ValueError otherwise."""
    parts = text.strip().split("-")
    try:
        a, b = (int(parts[0]), int(parts[-1])) if 1 <= len(parts) <= 2 else (0, 0)
    except ValueError:
        raise ValueError(f"{text!r} is not a bar span like 5-8") from None
    if not 1 <= a <= b <= BARS_PER_LOOP:
        raise ValueError(f"{text!r}: bars must satisfy 1 <= first <= last <= {BARS_PER_LOOP}")
    return a, b


def kept_steps(bars: tuple[int, int]) -> np.ndarray:
    """Boolean (128,): the steps outside the regenerated bars ``bars`` (1-based, inclusive)."""
    keep = np.ones(LOOP_STEPS, dtype=bool)
    keep[(bars[0] - 1) * STEPS_PER_BAR : bars[1] * STEPS_PER_BAR] = False
    return keep


def vary(
    loop: np.ndarray,
    model: TrainedVQ,
    n: int,
    *,
    bars: tuple[int, int] = (5, 8),
    temperature: float | None = 1.0,
    seed: int = 0,
    candidates: int = DEFAULT_CANDIDATES,
    steps: int = masked.DEFAULT_STEPS,
) -> Variations:
    """``n`` variations of ``loop`` (128, 93) that regenerate bars ``bars`` (1-based, inclusive) and keep the rest
    bit for bit; see the module docstring for how the bars after a middle span condition the choice (the LSTM
    prior) or condition it exactly (the masked prior, ``steps`` decoding rounds; ``candidates`` unused)."""
    loop = check_loops(loop, name="loop", one=True)
    a, b = bar_span(f"{bars[0]}-{bars[1]}")
    if n < 1 or candidates < 1:
        raise ValueError("n and candidates must be at least 1")
    vq, prior = model.vq, model.prior
    per_bar = vq.latent_steps // BARS_PER_LOOP
    start, end = (a - 1) * per_bar, b * per_bar
    original = sample.encode_codes(vq, loop[None])[0]
    tail = original[end:]
    if isinstance(prior, MaskedCodePrior):
        regenerate = masked.bar_positions((a, b), vq.latent_steps)
        codes = masked.infill(prior, np.tile(original, (n, 1)), regenerate, temperature=temperature, seed=seed,
                              steps=min(steps, int(regenerate.sum())))
        loops = sample.decode_codes(vq, codes)
        keep = kept_steps((a, b))
        loops[:, keep] = loop[keep]
        return Variations(loops, codes, original, (a, b), np.ones(n))
    m = n if len(tail) == 0 else n * candidates
    drawn = sample.continue_codes(prior, original[:start], m, first_probs=model.first_probs,
                                  temperature=temperature, seed=seed)
    if len(tail):
        reencoded = sample.encode_codes(vq, sample.decode_codes(vq, drawn))
        match = (reencoded[:, end:] == tail).mean(axis=1)
        drawn[:, end:] = tail
        likelihood = sample.code_log_likelihood(prior, drawn, start=end)
        order = np.lexsort((np.arange(m), -likelihood, -match))
        _, first_seen = np.unique(drawn[order], axis=0, return_index=True)
        distinct = order[np.sort(first_seen)]
        chosen = np.concatenate([distinct, order[~np.isin(order, distinct)]])[:n]
        codes, tail_match = drawn[chosen], match[chosen]
    else:
        codes, tail_match = drawn, np.ones(n)
    loops = sample.decode_codes(vq, codes)
    keep = kept_steps((a, b))
    loops[:, keep] = loop[keep]
    return Variations(loops, codes, original, (a, b), tail_match)
