"""``python -m loopgen expected-ranges --profile P --runs ROOT ... | --run-seeds S ...``: the notebooks' expected
ranges of a profile, from the headline files of reference runs (:mod:`loopgen.book.expectations`)."""

from __future__ import annotations

import os
from pathlib import Path

from loopgen import errors
from loopgen.book import expectations
from loopgen.commands import common
from loopgen.run.profiles import PROFILES
from loopgen.store.paths import Paths


def build_parser() -> common.OneLineParser:
    """The parser of ``python -m loopgen expected-ranges``."""
    parser = common.parser("expected-ranges", description=expectations.__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True, choices=sorted(p for p in PROFILES if p != "paper"))
    parser.add_argument("--runs", nargs="+", type=Path, default=[],
                        help="roots of finished runs (folders holding build/headlines/<profile>/seed*/)")
    parser.add_argument("--run-seeds", nargs="+", type=common.seed_int, default=[],
                        help="first run every notebook once per seed into --scratch (one after another)")
    parser.add_argument("--scratch", type=Path, default=None, help="root for --run-seeds (default: build/reference)")
    parser.add_argument("--out", type=Path, default=expectations.RANGES_FILE, help="the ranges file to update")
    parser.add_argument("--note", default=None,
                        help="how the reference runs were gathered, kept in the profile's source (default: none)")
    return parser


def main(argv: list[str]) -> int:
    """Run the reference notebooks if asked, then write the profile's ranges (and refresh the paper's)."""
    args = build_parser().parse_args(argv)
    roots = list(args.runs)
    if args.run_seeds:
        from loopgen.run import runner

        scratch = (args.scratch or Paths().build / "reference" / args.profile).resolve()
        scratch.mkdir(parents=True, exist_ok=True)
        os.environ["LOOPGEN_ROOT"] = str(scratch)  # the notebooks' kernels inherit it
        for seed in args.run_seeds:
            results = runner.run(args.profile, paths=Paths(scratch), seed=seed)
            failed = [r.output_name for r, _, e in results if e is not None]
            if failed:
                raise errors.UserError(f"seed {seed}: notebooks failed ({', '.join(failed)}); no ranges written")
        roots.append(scratch)
    if not roots:
        raise errors.UsageError("give --runs ROOT ... (finished runs) or --run-seeds S ... (run them now)")
    runs = expectations.collect_runs(roots, args.profile)
    if not runs:
        raise errors.UserError(f"no headline files under {', '.join(map(str, roots))} for the {args.profile} profile")
    path = expectations.write_ranges(args.profile, runs, roots, args.out, note=args.note)
    print(f"{path}: {args.profile} ranges from {len(runs)} run(s) (seeds {', '.join(r['_seed'] for r in runs)}); "
          "paper ranges refreshed")
    return 0
