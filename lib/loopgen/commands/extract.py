"""``python -m loopgen extract MIDI_DIR OUT_DIR [--workers N] [--backend B] [--sample N [--sample-seed S]] [--limit N]
[--force]``: a MIDI folder -> a loop dataset (:mod:`loopgen.data.extract`)."""

from __future__ import annotations

from loopgen import errors
from loopgen.commands import common
from loopgen.data import extract as extraction
from loopgen.data.midi import BACKENDS
from loopgen.loops import LoopParams


def build_parser() -> common.OneLineParser:
    """The parser of ``python -m loopgen extract``."""
    parser = common.parser("extract", description=extraction.__doc__.splitlines()[0])
    parser.add_argument("midi_dir", type=common.existing_dir, help="folder of MIDI files (searched recursively)")
    parser.add_argument("out_dir", type=common.output_dir, help="dataset folder: new, empty, or one extract wrote")
    parser.add_argument("--workers", type=common.int_in(1, 256), default=2, help="worker processes (1-256)")
    parser.add_argument("--backend", choices=BACKENDS, default="fast",
                        help="MIDI parser: fast (compiled) or reference (pretty_midi, the paper's; slow); same loops")
    parser.add_argument("--sample", type=common.positive_int, default=None,
                        help="only a seeded random sample of N files (the same on every machine; default: all)")
    parser.add_argument("--sample-seed", type=common.seed_int, default=0, help="seed of --sample")
    parser.add_argument("--limit", type=common.positive_int, default=None,
                        help="only the first N files (sorted; after --sample; default: all)")
    parser.add_argument("--stride-bars", type=common.int_in(1, 64), default=LoopParams.stride_bars,
                        help="bars between the starts of two candidate 8-bar windows (1-64)")
    parser.add_argument("--allow-missing-time-signature", action="store_true",
                        help="read a song without a time signature as 4/4 (default: rejected)")
    parser.add_argument("--bass-tracks", choices=("all", "first"), default=LoopParams.bass_tracks,
                        help="bass instruments merged into the bass part: all, or the first one")
    parser.add_argument("--drum-map", choices=("default", "magenta"), default=LoopParams.drum_map,
                        help="how drum notes map to the drum columns: default (the authors' code) or magenta")
    parser.add_argument(
        "--force", action="store_true",
        help="write into a non-empty folder, or replace a dataset made with other settings "
        "(only files loopgen wrote are deleted)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str]) -> int:
    """Extract the loops of ``MIDI_DIR`` into ``OUT_DIR`` and print the totals and the count per reason."""
    args = build_parser().parse_args(argv)
    params = LoopParams(
        stride_bars=args.stride_bars,
        allow_missing_time_signature=args.allow_missing_time_signature,
        bass_tracks=args.bass_tracks,
        drum_map=args.drum_map,
    )
    try:
        report = extraction.extract(
            args.midi_dir,
            args.out_dir,
            params,
            workers=args.workers,
            backend=args.backend,
            limit=args.limit,
            sample=args.sample,
            sample_seed=args.sample_seed,
            progress=not args.quiet,
            force=args.force,
        )
    except extraction.DatasetMismatchError as exc:
        raise errors.UserError(f"{exc} Or pass --force to replace it.") from None
    print("\n".join(extraction.summary_lines(report, args.out_dir)))
    return 0
