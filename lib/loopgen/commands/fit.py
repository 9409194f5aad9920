"""``python -m loopgen fit MIDI_DIR [--profile songs] --name NAME``: your MIDI folder -> loops -> a trained VQ-VAE
and prior, registered by name, with a preview of its loops (:mod:`loopgen.musician.fit`)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from loopgen import sample
from loopgen.commands import common
from loopgen.commands.vary import say_audio
from loopgen.musician import draws, fit, page, trained
from loopgen.run import profiles
from loopgen.store.paths import Paths


def _name(text: str) -> str:
    try:
        return trained.check_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> common.OneLineParser:
    """The parser of ``python -m loopgen fit``."""
    parser = common.parser("fit", fit.__doc__.split("\n\n")[0])
    parser.add_argument("midi_dir", type=common.existing_dir, help="a folder of MIDI songs (searched recursively)")
    parser.add_argument("--name", type=_name, required=True, help="the name to use with --from NAME")
    parser.add_argument("--profile", default=fit.DEFAULT_PROFILE, choices=sorted(profiles.PROFILES),
                        help=f"training settings (default {fit.DEFAULT_PROFILE}: tuned for real songs, minutes; "
                             "demo: the demo corpus's recipes; smoke: seconds)")
    parser.add_argument("--out", type=common.output_dir, default=None,
                        help="folder for a preview of the new model's loops (default data/models/NAME)")
    parser.add_argument("--seed", type=common.int_at_least(0), default=None,
                        help="seed of the preview loops (default: a fresh random one, printed)")
    parser.add_argument("--no-wav", action="store_true", help="preview as MIDI and PNG only")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--force", action="store_true",
                        help="replace a model of that name fitted on other files, and train it again")
    return parser


def main(argv: list[str]) -> int:
    """Fit and register the model, then write :data:`~loopgen.musician.fit.PREVIEW_LOOPS` loops of it."""
    args = build_parser().parse_args(argv)
    paths = Paths()
    profile = profiles.get(args.profile)
    entry = fit.fit(args.midi_dir, args.name, profile=profile, paths=paths, progress=not args.quiet, force=args.force)
    out = Path(args.out) if args.out is not None else Path(entry["out_dir"])
    model = trained.load_vq(paths, profile, args.name)
    seed = draws.fresh_seed() if args.seed is None else args.seed
    n = fit.PREVIEW_LOOPS
    codes = sample.sample_codes(model.prior, n, model.first_probs, temperature=1.0, seed=seed)
    record = {"command": "fit", "model": "vq_vae", "source": model.label, "checkpoint_key": model.vq_key,
              "prior_key": model.prior_key, "temperature": 1.0, "seed": seed, "batch": n}
    page.add_loops(out, sample.decode_codes(model.vq, codes),
                   [{**record, "index": i} for i in range(n)], prefix=args.name,
                   run={"argv": list(argv), "seed": seed}, wav=not args.no_wav,
                   title=f"Model {args.name}: loops at temperature 1")
    print(f"registered {args.name!r} (profile {profile.name}): python -m loopgen generate --from "
          f"{shlex.quote(args.name)} --out DIR; preview -> {shlex.quote(str(out / page.INDEX_HTML))}")
    say_audio(args)
    return 0
