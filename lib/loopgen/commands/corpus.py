"""``python -m loopgen corpus {demo,download-lmd} ...``: write the procedural demo corpus, or download LMD-full."""

from __future__ import annotations

import argparse
import re

from loopgen import errors
from loopgen.commands import common
from loopgen.data import corpus
from loopgen.store import atomic


def _md5_hex(text: str) -> str:
    value = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{32}", value):
        raise argparse.ArgumentTypeError(f"must be 32 hexadecimal digits (got {text!r})")
    return value


def _http_url(text: str) -> str:
    if not re.match(r"https?://[^/\s]+", text.strip()):
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// address (got {text!r})")
    return text.strip()


def build_parser() -> common.OneLineParser:
    """The parser of ``python -m loopgen corpus`` and its two sub-commands."""
    parser = common.parser("corpus", description=corpus.__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=common.OneLineParser)
    shown = {"formatter_class": common.DefaultsShown}
    demo = sub.add_parser("demo", help="write the procedural demo corpus", **shown)
    demo.add_argument("out_dir", type=common.output_dir, help="folder for the songs: new, empty, or a demo corpus")
    demo.add_argument("--n-songs", type=common.int_in(1, 1_000_000), default=300, help="songs to write, 1 to 1,000,000")
    demo.add_argument("--seed", type=common.seed_int, default=0, help="seed of the procedural songs")
    demo.add_argument("--force", action="store_true", help="write into a non-empty folder that is not a corpus")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    lmd = sub.add_parser("download-lmd", help="download and unpack LMD-full", **shown)
    lmd.add_argument("dest", type=common.output_dir, help="folder for the archive and the unpacked lmd_full/")
    lmd.add_argument("--url", type=_http_url, default=corpus.LMD_FULL_URL, help="where to download lmd_full.tar.gz from")
    lmd.add_argument(
        "--md5", type=_md5_hex, default=corpus.LMD_FULL_MD5,
        help="expected MD5 of the archive (default: none; it must be given, as LMD publishes none)",
    )
    lmd.add_argument("--no-extract", action="store_true", help="download and check only, do not unpack")
    lmd.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str]) -> int:
    """``python -m loopgen corpus demo OUT_DIR ...`` or ``corpus download-lmd DEST --md5 M ...``."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        atomic.check_output_folder(args.out_dir, made_by_us=corpus.made_by_corpus, what="demo corpus", force=args.force)
        out = corpus.write_demo_corpus(args.out_dir, args.n_songs, args.seed, progress=not args.quiet)
        print(out)
        return 0
    if not args.md5:
        raise errors.UsageError(
            "--md5 is required: the LMD page publishes no checksum, so compute it from a copy you trust "
            "(md5sum lmd_full.tar.gz) and pass it"
        )
    try:
        out = corpus.download_lmd(
            args.dest, args.url, args.md5, extract=not args.no_extract, progress=not args.quiet
        )
    except corpus.DownloadError as err:
        raise errors.UserError(str(err)) from None
    print(out)
    return 0
