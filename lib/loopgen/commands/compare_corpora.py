"""``python -m loopgen compare-corpora FOLDER FOLDER ... [--label NAME ...] [--out FILE]``: finished runs side by
side (:mod:`loopgen.book.corpora`)."""

from __future__ import annotations

from pathlib import Path

from loopgen import errors
from loopgen.book import corpora
from loopgen.commands import common
from loopgen.store import atomic


def build_parser() -> common.OneLineParser:
    """The parser of ``python -m loopgen compare-corpora``."""
    parser = common.parser("compare-corpora", description=corpora.__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path,
                        help="figure folders of finished runs: figures (the demo corpus), figures/<corpus>, ...")
    parser.add_argument("--label", nargs="+", default=None,
                        help="a name per folder for the column headers (default: the folders' names)")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here (default: print only)")
    return parser


def main(argv: list[str]) -> int:
    """Print (and optionally write) the side-by-side report."""
    args = build_parser().parse_args(argv)
    labels = args.label or [folder.name for folder in args.folders]
    if len(labels) != len(args.folders):
        raise errors.UsageError(f"--label gives {len(labels)} names for {len(args.folders)} folders")
    if len(set(labels)) != len(labels):
        raise errors.UsageError("the folders need different labels: pass --label NAME ... (one per folder)")
    try:
        text = corpora.report(dict(zip(labels, args.folders, strict=True)))
    except FileNotFoundError as err:
        raise errors.UserError(str(err)) from None
    if args.out:
        atomic.write_text(args.out, text)
    print(text, end="")
    return 0
