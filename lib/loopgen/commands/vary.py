"""``python -m loopgen vary INPUT.mid --n 8 --keep-bars 4 --out DIR``: variations of a musician's own loop
(:mod:`loopgen.musician.variation`).

Also the options ``generate`` shares (:func:`add_common_options`) and the note on missing audio that ``generate``
and ``fit`` print too (:func:`say_audio`).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import numpy as np

from loopgen import BARS_PER_LOOP, errors
from loopgen import sample_masked as masked
from loopgen.commands import common
from loopgen.musician import draws, loopfile, page, variation
from loopgen.musician.trained import PRIORS, load_vq
from loopgen.run import profiles
from loopgen.store.paths import Paths


def bar_span(text: str) -> tuple[int, int]:
    """``type=`` for ``--regenerate-bars``: ``A-B`` (or ``A``) with 1 <= A <= B <= 8."""
    try:
        return variation.bar_span(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


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


def build_parser() -> common.OneLineParser:
    """The parser of ``python -m loopgen vary``."""
    parser = common.parser("vary", variation.__doc__.split("\n\n")[0])
    parser.add_argument("input", type=common.existing_file, help="an 8-bar bass+drum MIDI loop, or a whole song")
    parser.add_argument("--n", type=common.positive_int, default=8, help="how many variations")
    span = parser.add_mutually_exclusive_group()
    span.add_argument("--keep-bars", type=common.int_at_least(0), default=None,
                      help="keep bars 1..K and regenerate the rest (default 4)")
    span.add_argument("--regenerate-bars", type=bar_span, default=None, metavar="A-B",
                      help="regenerate bars A..B (1-based) and keep the others (default: --keep-bars 4, i.e. 5-8)")
    parser.add_argument("--temperature", type=common.positive_float, default=None,
                        help="prior temperature (> 0; higher: more surprising codes) (default: "
                             f"{variation.DEFAULT_TEMPERATURE['lstm']:g} with --prior lstm, "
                             f"{variation.DEFAULT_TEMPERATURE['masked']:g} with --prior masked)")
    parser.add_argument("--start-bar", type=common.positive_int, default=None,
                        help="for a song: the loop's first bar (default: its first extracted loop)")
    parser.add_argument("--candidates", type=common.positive_int, default=variation.DEFAULT_CANDIDATES,
                        help="continuations sampled per variation for a span in the middle, the best kept (LSTM prior)")
    parser.add_argument("--prior", choices=sorted(PRIORS), default="lstm",
                        help="lstm (the paper's) or masked (notebook 09, not in the paper: every span conditioned exactly)")
    parser.add_argument("--steps", type=common.int_in(1, 256), default=masked.DEFAULT_STEPS,
                        help=f"--prior masked: rounds of parallel decoding (default {masked.DEFAULT_STEPS})")
    parser.add_argument("--copy-through", choices=variation.COPY_MODES, default=None,
                        help="where the prior repeats a kept bar's codes, use that bar's own notes: code (each code "
                             "equal to the one 4 bars away), bar (whole bars only) or off (default: code with "
                             "--prior masked, off with lstm)")
    add_common_options(parser)
    return parser


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options ``generate`` and ``vary`` share: model, seed, loopability filter, export."""
    parser.add_argument("--profile", default="demo", choices=sorted(profiles.PROFILES),
                        help="whose trained VQ-VAE and prior to use (ignored with --from)")
    parser.add_argument("--from", dest="from_name", type=common.non_empty, default=None, metavar="NAME",
                        help="use the model registered by `python -m loopgen fit --name NAME` (default: the profile's)")
    parser.add_argument("--seed", type=common.int_at_least(0), default=None,
                        help="base seed (default: a fresh random one, printed and saved in loops.json)")
    parser.add_argument("--min-loopability", type=common.float_in(0.0, 1.0), default=None,
                        help="keep only loops with loopability >= X (0-1), drawing more until --n are found (default: keep all)")
    parser.add_argument("--max-draws", type=common.positive_int, default=None,
                        help="cap on loops drawn for --min-loopability (default 20 x --n)")
    parser.add_argument("--bpm", "--tempo", dest="bpm", type=common.float_in(20.0, 400.0), default=120.0,
                        help="tempo of the written files")
    parser.add_argument("--repeats", type=common.int_at_least(1), default=1, help="times the loop is written in each file")
    parser.add_argument("--stems", action="store_true", help="also write bass-only and drums-only WAV files")
    parser.add_argument("--no-wav", action="store_true", help="MIDI and PNG only")
    parser.add_argument("--out", type=common.output_dir, required=True, help="output folder (new files are added)")


def say_audio(args: argparse.Namespace) -> None:
    """One line when WAV files were asked for but cannot be rendered."""
    from loopgen.book import audio

    if not args.no_wav and not audio.fluidsynth_available():
        print("No WAV files: FluidSynth is not installed (apt-get install libfluidsynth3); MIDI and PNG written.")


def main(argv: list[str]) -> int:
    """Write the original loop and ``--n`` variations of it, with ``loops.json`` and ``index.html``."""
    args = build_parser().parse_args(argv)
    bars = _span_from(args)
    seed = draws.fresh_seed() if args.seed is None else args.seed
    user = loopfile.read_loop(args.input, args.start_bar)
    model = load_vq(Paths(), profiles.get(args.profile), args.from_name, prior=args.prior)
    print(f"seed {seed}  (again: --seed {seed})")
    copy_through = variation.copy_mode(args.copy_through, model.prior)
    temperature = variation.DEFAULT_TEMPERATURE[args.prior] if args.temperature is None else args.temperature

    def draw(round_seed: int, batch: int) -> np.ndarray:
        return variation.vary(user.loop, model, batch, bars=bars, temperature=temperature, seed=round_seed,
                              candidates=args.candidates, steps=args.steps, copy_through=copy_through).loops

    kept = draws.draw_until(draw, args.n, seed=seed, min_loopability=args.min_loopability, max_draws=args.max_draws)
    draws.report_shortfall(kept, args.n, args.min_loopability)
    shown = errors.shown_name(Path(args.input).name)  # a name that is not UTF-8: \xNN in pages, files and messages
    shared = {
        "command": "vary", "model": "vq_vae", "source": model.label, "checkpoint_key": model.vq_key,
        "prior_key": model.prior_key, "temperature": temperature,
        "input": errors.shown_name(str(Path(args.input).resolve())),
        "start_bar": user.start_bar + 1, "regenerate_bars": list(bars), "candidates": args.candidates,
        "prior": args.prior, **({"steps": args.steps} if args.prior == "masked" else {}),
        "copy_through": copy_through,
    }
    options = dict(prefix="variation", bpm=args.bpm, repeats=args.repeats, wav=not args.no_wav,
                   with_stems=args.stems, title=f"Variations of {shown}")
    run = {"argv": [errors.shown_name(a) for a in argv], "seed": seed, "min_loopability": args.min_loopability, "drawn": kept.drawn}
    original = {**shared, "caption": "the original loop", "prefix": "original"}
    changed = [{**shared, **r, "caption": f"bars {bars[0]}-{bars[1]} new; {kept_text(bars)}"} for r in kept.records]
    entries = page.add_loops(args.out, np.concatenate([user.loop[None], kept.loops]), [original, *changed],
                             **options, run=run)[1:]
    print(f"{len(entries)} variations of bars {bars[0]}-{bars[1]} of {shown} "
          f"(from bar {user.start_bar + 1}) -> {shlex.quote(errors.shown_name(str(Path(args.out) / page.INDEX_HTML)))}")
    say_audio(args)
    return 0 if len(entries) else 1
