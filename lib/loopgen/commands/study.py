"""``python -m loopgen study --profile P [--out DIR] [--per-group N] ...``: build a listening-test study folder from
the generated groups notebook 05 saved (:mod:`loopgen.book.listening`)."""

from __future__ import annotations

import sys

from loopgen import errors
from loopgen.book import listening
from loopgen.commands import common
from loopgen.run import profiles
from loopgen.store import atomic
from loopgen.store.paths import MissingInputError, Paths


def build_parser() -> common.OneLineParser:
    """The parser of ``python -m loopgen study``."""
    parser = common.parser("study", description=listening.build_study.__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo", choices=sorted(profiles.PROFILES),
                        help="whose generated groups to put in the study")
    parser.add_argument(
        "--out", type=common.output_dir, default=None, help="study folder (default build/study/<profile>)"
    )
    parser.add_argument(
        "--per-group", type=common.int_in(1, 1000), default=None, help="loops per group (default: the profile's)"
    )
    parser.add_argument(
        "--familiarisation", type=common.int_in(0, 100), default=None, help="familiarisation loops (default: profile)"
    )
    parser.add_argument(
        "--seed", type=common.seed_int, default=None,
        help="FOR REPRODUCIBLE DEMOS ONLY: anyone who knows it can recompute the key. Default: a secret "
        "random seed, saved only in the private key.json",
    )
    parser.add_argument(
        "--samples-seed", type=common.seed_int, default=0, help="the SEED notebook 05 generated the groups with (0)"
    )
    parser.add_argument("--tempo", type=common.float_in(20.0, 400.0), default=120.0, help="BPM, 20-400")
    parser.add_argument("--repeats", type=common.int_in(1, 64), default=2, help="times each loop plays (1-64)")
    parser.add_argument("--no-audio", action="store_true", help="write MIDI only, no WAV")
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty folder that is not a study (nothing deleted)"
    )
    return parser


def main(argv: list[str]) -> int:
    """Build (or keep, once rated) the study folder and print how to serve it and where ratings go."""
    args = build_parser().parse_args(argv)
    profile = profiles.get(args.profile)
    paths = Paths()
    out = args.out or paths.study_dir(profile.name)
    atomic.check_output_folder(out, made_by_us=listening.made_by_study, what="study folder", force=args.force)
    try:
        groups = listening.load_groups(profile.name, args.samples_seed, paths=paths)
    except MissingInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    study, built = listening.ensure_study(
        groups,
        out,
        per_group=args.per_group or profile.listening.per_group,
        familiarisation=profile.listening.familiarisation
        if args.familiarisation is None
        else args.familiarisation,
        seed=args.seed,
        tempo=args.tempo,
        repeats=args.repeats,
        render_audio=not args.no_audio,
        force=args.force,
    )
    layout = listening.StudyLayout(study)
    if built:
        print(f"study written to {errors.quoted(study)}")
        if args.seed is not None:
            print(f"  built with --seed {args.seed}: reproducible, NOT blind to anyone who knows the seed")
    else:
        print(f"kept the study in {errors.quoted(study)}: listeners have rated it (delete the folder to build a new one)")
    print(f"  serve it:  cd {errors.quoted(layout.site)} && {listening.study.SERVE_COMMAND}   (then open {listening.study.SERVE_URL})")
    print(f"  collect ratings_<listener>.csv into {errors.quoted(layout.ratings)}; keep {errors.quoted(layout.key)} and "
          f"{errors.quoted(layout.private_seed)} private")
    return 0
