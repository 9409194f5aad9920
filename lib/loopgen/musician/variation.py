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

import argparse
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loopgen import BARS_PER_LOOP, LOOP_STEPS, STEPS_PER_BAR, errors, sample
from loopgen import sample_masked as masked
from loopgen.commands import common as cli
from loopgen.data.validate import check_loops
from loopgen.models.masked_prior import MaskedCodePrior
from loopgen.musician import draws, loopfile, page
from loopgen.musician.trained import PRIORS, TrainedVQ, load_vq
from loopgen.run import profiles
from loopgen.store.paths import Paths

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
    """``type=`` for ``--regenerate-bars``: ``A-B`` (or ``A``) with 1 <= A <= B <= 8."""
    parts = text.strip().split("-")
    try:
        a, b = (int(parts[0]), int(parts[-1])) if 1 <= len(parts) <= 2 else (0, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a bar span like 5-8") from None
    if not 1 <= a <= b <= BARS_PER_LOOP:
        raise argparse.ArgumentTypeError(f"{text!r}: bars must satisfy 1 <= first <= last <= {BARS_PER_LOOP}")
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


# ------------------------------------------------------------------------------------------ command line
def kept_text(bars: tuple[int, int]) -> str:
    """'kept bars 1, 2, 3, 4' for a regenerated span."""
    return "kept bars " + ", ".join(str(i) for i in range(1, BARS_PER_LOOP + 1) if not bars[0] <= i <= bars[1])


def _span_from(args: argparse.Namespace) -> tuple[int, int]:
    if args.regenerate_bars is not None:
        return args.regenerate_bars
    keep = 4 if args.keep_bars is None else args.keep_bars
    if keep >= BARS_PER_LOOP:
        raise errors.UsageError(f"--keep-bars {keep} keeps the whole loop: keep at most {BARS_PER_LOOP - 1} bars")
    return keep + 1, BARS_PER_LOOP


def build_parser() -> argparse.ArgumentParser:
    parser = cli.parser("vary", __doc__.split("\n\n")[0])
    parser.add_argument("input", type=cli.existing_file, help="an 8-bar bass+drum MIDI loop, or a whole song")
    parser.add_argument("--n", type=cli.positive_int, default=8, help="how many variations")
    span = parser.add_mutually_exclusive_group()
    span.add_argument("--keep-bars", type=cli.int_at_least(0), default=None,
                      help="keep bars 1..K and regenerate the rest (default 4)")
    span.add_argument("--regenerate-bars", type=bar_span, default=None, metavar="A-B",
                      help="regenerate bars A..B (1-based) and keep the others (default: --keep-bars 4, i.e. 5-8)")
    parser.add_argument("--temperature", type=cli.positive_float, default=1.0, help="prior temperature (> 0; higher: more surprising codes)")
    parser.add_argument("--start-bar", type=cli.positive_int, default=None,
                        help="for a song: the loop's first bar (default: its first extracted loop)")
    parser.add_argument("--candidates", type=cli.positive_int, default=DEFAULT_CANDIDATES,
                        help="continuations sampled per variation for a span in the middle, the best kept (LSTM prior)")
    parser.add_argument("--prior", choices=sorted(PRIORS), default="lstm",
                        help="lstm (the paper's) or masked (notebook 09, not in the paper: every span conditioned exactly)")
    parser.add_argument("--steps", type=cli.int_in(1, 256), default=masked.DEFAULT_STEPS,
                        help=f"--prior masked: rounds of parallel decoding (default {masked.DEFAULT_STEPS})")
    add_common_options(parser)
    return parser


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options ``generate`` and ``vary`` share: model, seed, loopability filter, export."""
    parser.add_argument("--profile", default="demo", choices=sorted(profiles.PROFILES),
                        help="whose trained VQ-VAE and prior to use (ignored with --from)")
    parser.add_argument("--from", dest="from_name", type=cli.non_empty, default=None, metavar="NAME",
                        help="use the model registered by `python -m loopgen fit --name NAME` (default: the profile's)")
    parser.add_argument("--seed", type=cli.int_at_least(0), default=None,
                        help="base seed (default: a fresh random one, printed and saved in loops.json)")
    parser.add_argument("--min-loopability", type=cli.float_in(0.0, 1.0), default=None,
                        help="keep only loops with loopability >= X (0-1), drawing more until --n are found (default: keep all)")
    parser.add_argument("--max-draws", type=cli.positive_int, default=None,
                        help="cap on loops drawn for --min-loopability (default 20 x --n)")
    parser.add_argument("--bpm", "--tempo", dest="bpm", type=cli.float_in(20.0, 400.0), default=120.0,
                        help="tempo of the written files")
    parser.add_argument("--repeats", type=cli.int_at_least(1), default=1, help="times the loop is written in each file")
    parser.add_argument("--stems", action="store_true", help="also write bass-only and drums-only WAV files")
    parser.add_argument("--no-wav", action="store_true", help="MIDI and PNG only")
    parser.add_argument("--out", type=cli.output_dir, required=True, help="output folder (new files are added)")


def say_audio(args: argparse.Namespace) -> None:
    """One line when WAV files were asked for but cannot be rendered."""
    from loopgen.book import audio

    if not args.no_wav and not audio.fluidsynth_available():
        print("No WAV files: FluidSynth is not installed (apt-get install libfluidsynth3); MIDI and PNG written.")


def cli_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    bars = _span_from(args)
    seed = draws.fresh_seed() if args.seed is None else args.seed
    user = loopfile.read_loop(args.input, args.start_bar)
    model = load_vq(Paths(), profiles.get(args.profile), args.from_name, prior=args.prior)
    print(f"seed {seed}  (again: --seed {seed})")

    def draw(round_seed: int, batch: int) -> np.ndarray:
        return vary(user.loop, model, batch, bars=bars, temperature=args.temperature, seed=round_seed,
                    candidates=args.candidates, steps=args.steps).loops

    kept = draws.draw_until(draw, args.n, seed=seed, min_loopability=args.min_loopability, max_draws=args.max_draws)
    draws.report_shortfall(kept, args.n, args.min_loopability)
    shown = errors.shown_name(Path(args.input).name)  # a name that is not UTF-8: \xNN in pages, files and messages
    common = {
        "command": "vary", "model": "vq_vae", "source": model.label, "checkpoint_key": model.vq_key,
        "prior_key": model.prior_key, "temperature": args.temperature,
        "input": errors.shown_name(str(Path(args.input).resolve())),
        "start_bar": user.start_bar + 1, "regenerate_bars": list(bars), "candidates": args.candidates,
        "prior": args.prior, **({"steps": args.steps} if args.prior == "masked" else {}),
    }
    options = dict(prefix="variation", bpm=args.bpm, repeats=args.repeats, wav=not args.no_wav,
                   with_stems=args.stems, title=f"Variations of {shown}")
    run = {"argv": [errors.shown_name(a) for a in argv], "seed": seed, "min_loopability": args.min_loopability, "drawn": kept.drawn}
    original = {**common, "caption": "the original loop", "prefix": "original"}
    changed = [{**common, **r, "caption": f"bars {bars[0]}-{bars[1]} new; {kept_text(bars)}"} for r in kept.records]
    entries = page.add_loops(args.out, np.concatenate([user.loop[None], kept.loops]), [original, *changed],
                             **options, run=run)[1:]
    print(f"{len(entries)} variations of bars {bars[0]}-{bars[1]} of {shown} "
          f"(from bar {user.start_bar + 1}) -> {shlex.quote(errors.shown_name(str(Path(args.out) / page.INDEX_HTML)))}")
    say_audio(args)
    return 0 if len(entries) else 1
