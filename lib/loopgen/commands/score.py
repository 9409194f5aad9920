"""``python -m loopgen score MIDI_DIR --from NAME [--json]``: how well a fitted model, or a profile's models, know
the songs of a MIDI folder (:mod:`loopgen.musician.score`)."""

from __future__ import annotations

import json

from loopgen.commands import common
from loopgen.musician import score
from loopgen.store.paths import Paths


def build_parser() -> common.OneLineParser:
    """The parser of ``python -m loopgen score``."""
    parser = common.parser("score", "How well a fitted model, or a profile's models, know the loops of a MIDI folder.")
    parser.add_argument("midi_dir", type=common.existing_dir, metavar="MIDI_DIR",
                        help="a folder of MIDI songs (searched recursively; never written to)")
    parser.add_argument("--from", dest="from_name", type=common.non_empty, required=True, metavar="NAME",
                        help="a model fitted with 'fit' (its VQ-VAE) or a profile (smoke, demo, ...: the VQ-VAE, "
                             "CNN-VAE and LSTM-VAEs its notebooks trained); a fitted model comes first")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--cache", type=common.output_dir, default=None, metavar="DIR",
                        help="folder for the extracted loops, reused while the songs are the same "
                             "(default: data/scores)")
    parser.add_argument("--workers", type=common.int_in(1, 256), default=2, help="extraction processes (1-256)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str]) -> int:
    """Score the folder's loops and print the table (or, with ``--json``, one JSON object)."""
    args = build_parser().parse_args(argv)
    report = score.score(args.midi_dir, args.from_name, paths=Paths(), cache=args.cache, workers=args.workers,
                         progress=not args.quiet)
    print(json.dumps(report.as_dict(), indent=1) if args.json else "\n".join(report.lines()))
    return 0
