"""``python -m loopgen run-notebooks --profile P [--only ...] [--workers N]``: every notebook headless with
papermill, what ``run_all.sh`` calls (:mod:`loopgen.run.runner`)."""

from __future__ import annotations

import sys

from loopgen import errors
from loopgen.book import extraction
from loopgen.commands import common
from loopgen.run import profiles, runner
from loopgen.run.profiles import PROFILES
from loopgen.store.paths import Paths


def build_parser() -> common.OneLineParser:
    """The parser of ``python -m loopgen run-notebooks``."""
    parser = common.parser("run-notebooks", description=runner.__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo", choices=sorted(PROFILES), help="the profile every notebook runs")
    parser.add_argument(
        "--only", nargs="+", type=common.non_empty,
        help="run only notebooks whose executed name contains one of these (default: all)",
    )
    parser.add_argument(
        "--cell-timeout",
        type=common.int_in(0, 7 * 24 * 3600),
        default=None,
        help="seconds per cell (papermill); 0 = no limit; default: 3600, none for the paper profile",
    )
    parser.add_argument("--seed", type=common.seed_int, default=0, help="SEED passed to every notebook")
    parser.add_argument(
        "--midi-dir", type=common.existing_dir, default=None,
        help="run every notebook on this MIDI folder (MIDI_DIR): its dataset, models and samples are its own, its "
        "tables and figures go to figures/<corpus>/ (default: the profile's own corpus)",
    )
    parser.add_argument(
        "--workers", type=common.int_in(1, 64), default=None,
        help="notebooks run side by side, each after the notebooks it reads (default: 2 with two or more CPU "
        "cores, 1 for the paper and colab profiles)",
    )
    return parser


def main(argv: list[str]) -> int:
    """Run the notebooks and print the summary; exit 1 when one failed, 130 on Ctrl-C."""
    args = build_parser().parse_args(argv)
    if args.only:
        names = [r.output_name for r in runner.plan(args.profile, args.seed, args.midi_dir or "")]
        unknown = [key for key in args.only if not any(key in name for name in names)]
        if unknown:
            raise errors.UsageError(
                f"--only {' '.join(unknown)} matches no notebook; choose parts of: {', '.join(names)}"
            )
    midi_dir = str(args.midi_dir.resolve()) if args.midi_dir else ""
    _, paths = extraction.run_paths(profiles.get(args.profile), Paths(), midi_dir)
    if paths.corpus:
        print(f"MIDI_DIR {errors.quoted(midi_dir)}: corpus {paths.corpus}; tables and figures go to "
              f"{runner.shown_path(paths.figures)}", flush=True)
    try:
        results = runner.run(args.profile, only=args.only, cell_timeout=args.cell_timeout, seed=args.seed,
                             paths=paths, workers=args.workers, midi_dir=midi_dir)
    except KeyboardInterrupt:
        print(runner.outcome(args.profile, 130, paths=paths), file=sys.stderr, flush=True)
        return 130
    print("\n" + runner.summary(results))
    failed = [r.output_name for r, _, e in results if e is not None]
    if failed:
        print("\n" + runner.outcome(args.profile, 1, paths=paths))
        return 1
    runs = f"{len(results)} notebook run{'' if len(results) == 1 else 's'}"
    print(f"\nAll {runs} succeeded; outputs in {runner.shown_path(paths.figures)}; the run as web pages: "
          f"{runner.shown_path(runner.html_dir(paths, args.profile) / 'index.html')}")
    return 0
