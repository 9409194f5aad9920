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
* **Copy-through** (``copy_through``, ``vary --copy-through code|bar|off``; "code" by default with the masked
  prior, "off" with the LSTM prior; not in the paper, notebook 09's proposal): where the prior copied the loop in
  code space, the copy is made with the user's own notes instead of the decoder's lossy reading of the codes.
  Real loops repeat (bar 5 is mostly bar 1 again), and a decoder that sees other neighbours blurs the copy.
  "bar": a regenerated bar whose codes are exactly a kept bar's gets that bar's notes (when several kept bars
  have those codes, the one 4 bars away, the loop's repeat partner, comes first, then the nearest before it,
  around the loop). "code" does that, then gives each remaining regenerated code equal to the code at the same
  place 4 bars away, in a kept bar, the steps that code covers there (128 / t steps: 2 at t = 64, 4 at t = 32).
  :func:`copy_sources` says which; ``Variations.copied`` records it. The copies count as such in
  ``benchmarks/real_variations.py``'s novelty figures.
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
# vary's temperature when none is given, per --prior: the masked prior's variations of real songs loop better
# cooler (songs profile, code copy-through: loopability 0.77 at 0.5, 0.73 at 0.7, 0.67 at 1; all 8 variations of
# each song still different; docs/commands.md)
DEFAULT_TEMPERATURE = {"lstm": 1.0, "masked": 0.5}


@dataclass
class Variations:
    """``n`` variations of one loop: the loops (with the kept bars pasted back), their codes and the span."""

    loops: np.ndarray  # uint8 (n, 128, 93)
    codes: np.ndarray  # int64 (n, t): the decoded codes
    original_codes: np.ndarray  # int64 (t,)
    bars: tuple[int, int]  # regenerated bars, 1-based, inclusive
    tail_match: np.ndarray  # (n,): fraction of re-encoded tail codes equal to the original's (1 without a tail
    #                         and with the masked prior, whose tail codes are the original's by construction)
    copied: np.ndarray | None = None  # int (n, t): per latent position, the kept position whose steps it holds
    #                                   by copy-through, -1 where the decoder's (None: copy-through off)


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


COPY_MODES = ("code", "bar", "off")


def copy_through_default(prior: object) -> str:
    """:func:`vary`'s copy-through with ``prior`` when none is asked for: "code" for the masked prior (it raised the
    loopability of variations of real songs, docs/commands.md), "off" for the paper's LSTM prior (as before)."""
    return "code" if isinstance(prior, MaskedCodePrior) else "off"


def copy_mode(copy_through: str | bool | None, prior: object) -> str:
    """The copy-through mode: None -> :func:`copy_through_default`, True -> "code", False -> "off", else one of
    :data:`COPY_MODES`."""
    if copy_through is None:
        return copy_through_default(prior)
    if isinstance(copy_through, bool):
        return "code" if copy_through else "off"
    if copy_through not in COPY_MODES:
        raise ValueError(f"copy_through must be one of {COPY_MODES} (or True, False, None), got {copy_through!r}")
    return copy_through


def copy_sources(codes: np.ndarray, original_codes: np.ndarray, bars: tuple[int, int], mode: str = "code") -> np.ndarray:
    """int (n, t): for each latent position of ``codes`` (n, t) in the regenerated bars ``bars`` (1-based,
    inclusive), the position of a kept bar whose original steps it takes by copy-through, or -1 (and -1 for
    every kept position). ``mode`` "bar": a regenerated bar whose codes all equal a kept bar's takes that bar
    (the bar 4 bars away first, then the nearest kept bar before it around the loop, then the others); "code":
    "bar", then each remaining position whose code equals the original code at the same place 4 bars away,
    when that bar is kept; "off": none."""
    codes = np.asarray(codes)
    n, t = codes.shape
    out = np.full((n, t), -1, dtype=np.int64)
    if mode == "off":
        return out
    per_bar = t // BARS_PER_LOOP
    by_bar = codes.reshape(n, BARS_PER_LOOP, per_bar)
    original_codes = np.asarray(original_codes)
    kept_codes = original_codes.reshape(BARS_PER_LOOP, per_bar)
    a, b = bars
    regenerated = set(range(a - 1, b))
    half = BARS_PER_LOOP // 2
    for j in range(a - 1, b):
        order = [(j + half) % BARS_PER_LOOP] + [(j - d) % BARS_PER_LOOP for d in range(1, BARS_PER_LOOP)]
        order += [(j + d) % BARS_PER_LOOP for d in range(1, BARS_PER_LOOP)]
        here = slice(j * per_bar, (j + 1) * per_bar)
        for k in (k for k in dict.fromkeys(order) if k not in regenerated):  # each kept bar once, by preference
            same = (by_bar[:, j] == kept_codes[k]).all(axis=1) & (out[:, here.start] < 0)
            out[same, here] = np.arange(k * per_bar, (k + 1) * per_bar)
        if mode == "code" and (j + half) % BARS_PER_LOOP not in regenerated:
            partner = (np.arange(here.start, here.stop) + half * per_bar) % t
            same = (codes[:, here] == original_codes[partner]) & (out[:, here] < 0)
            out[:, here] = np.where(same, partner, out[:, here])
    return out


def _paste(loops: np.ndarray, loop: np.ndarray, bars: tuple[int, int], copied: np.ndarray | None) -> np.ndarray:
    """``loops`` with the kept bars pasted back from ``loop`` and (copy-through) each copied position's steps."""
    keep = kept_steps(bars)
    loops[:, keep] = loop[keep]
    if copied is not None:
        span = LOOP_STEPS // copied.shape[1]  # the steps one code covers
        for i, p in zip(*np.nonzero(copied >= 0), strict=True):
            q = copied[i, p]
            loops[i, p * span : (p + 1) * span] = loop[q * span : (q + 1) * span]
    return loops


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
    copy_through: str | bool | None = None,
) -> Variations:
    """``n`` variations of ``loop`` (128, 93) that regenerate bars ``bars`` (1-based, inclusive) and keep the rest
    bit for bit; see the module docstring for how the bars after a middle span condition the choice (the LSTM
    prior) or condition it exactly (the masked prior, ``steps`` decoding rounds; ``candidates`` unused).
    ``copy_through``: "code", "bar" or "off" (see the module docstring; None: the prior's default,
    :func:`copy_through_default`; True: "code"; False: "off")."""
    loop = check_loops(loop, name="loop", one=True)
    a, b = bar_span(f"{bars[0]}-{bars[1]}")
    if n < 1 or candidates < 1:
        raise ValueError("n and candidates must be at least 1")
    vq, prior = model.vq, model.prior
    per_bar = vq.latent_steps // BARS_PER_LOOP
    start, end = (a - 1) * per_bar, b * per_bar
    mode = copy_mode(copy_through, prior)
    original = sample.encode_codes(vq, loop[None])[0]
    tail = original[end:]
    if isinstance(prior, MaskedCodePrior):
        regenerate = masked.bar_positions((a, b), vq.latent_steps)
        codes = masked.infill(prior, np.tile(original, (n, 1)), regenerate, temperature=temperature, seed=seed,
                              steps=min(steps, int(regenerate.sum())))
        copied = copy_sources(codes, original, (a, b), mode) if mode != "off" else None
        loops = _paste(sample.decode_codes(vq, codes), loop, (a, b), copied)
        return Variations(loops, codes, original, (a, b), np.ones(n), copied)
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
    copied = copy_sources(codes, original, (a, b), mode) if mode != "off" else None
    loops = _paste(sample.decode_codes(vq, codes), loop, (a, b), copied)
    return Variations(loops, codes, original, (a, b), tail_match, copied)
