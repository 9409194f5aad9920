"""Where the MIDI comes from: the built-in procedural demo corpus, or LMD-full.

* :func:`write_demo_corpus` writes a seeded, reproducible corpus of multitrack songs (bass, drums,
  keys, guitar, strings, lead) standing in for the Lakh MIDI Dataset, defects included.
* :func:`download_lmd` fetches and unpacks LMD-full itself, for the paper profile.

Command line::

    python -m loopgen corpus demo OUT_DIR [--n-songs N] [--seed S]
    python -m loopgen corpus download-lmd DEST [--url U] [--md5 M]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from loopgen.commands import common
from loopgen.store.atomic import write_bytes
from loopgen.data.corpus.lmd import LMD_FULL_MD5, LMD_FULL_URL, DownloadError, download_lmd, file_md5, safe_extract
from loopgen.data.corpus.songwriter import EXPECTED_REJECTION, SongPlan, plan_song, render_song

# Bump whenever the songwriter's output changes: a corpus written by another version is rewritten.
GENERATOR_VERSION = "2"
MANIFEST = "corpus.json"


def read_manifest(out_dir: Path | str) -> dict | None:
    """The ``corpus.json`` of a demo corpus folder, or ``None`` if there is none (or it is unreadable)."""
    path = Path(out_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _is_complete(out_dir: Path, n_songs: int, seed: int) -> bool:
    manifest = read_manifest(out_dir)
    if not manifest:
        return False
    if (manifest.get("n_songs"), manifest.get("seed"), manifest.get("generator_version")) != (
        n_songs,
        seed,
        GENERATOR_VERSION,
    ):
        return False
    return all((out_dir / song["file"]).is_file() for song in manifest.get("songs", []))


def _write_song(job: tuple[str, int, int]) -> dict:
    """Plan, render and write song ``index`` of corpus ``seed`` into folder ``out``; return its summary."""
    out, seed, index = job
    plan = plan_song(seed, index)
    write_bytes(Path(out) / plan.file, render_song(plan, seed))
    return plan.summary()


def write_demo_corpus(
    out_dir: Path | str, n_songs: int = 300, seed: int = 0, *, progress: bool = True, workers: int = 1
) -> Path:
    """Write ``n_songs`` procedural songs (``song_00000.mid`` ...) and ``corpus.json`` into ``out_dir``.

    Deterministic: the same ``(n_songs, seed)`` gives the same bytes, and song ``i`` does not depend on
    ``n_songs`` (nor on ``workers``, the number of processes that write songs side by side). Idempotent: returns at once if ``corpus.json`` already describes this corpus.
    ``corpus.json`` records per song its genre, tempo, meter, form and intended defects (with the
    rejection reason the extractor should give, if any). Returns ``out_dir``.
    """
    if n_songs < 0:
        raise ValueError(f"n_songs must be >= 0, not {n_songs}")
    out = Path(out_dir)
    if _is_complete(out, n_songs, seed):
        return out
    out.mkdir(parents=True, exist_ok=True)
    stale = out / MANIFEST  # written last: its presence means the corpus is complete
    if stale.exists():
        stale.unlink()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers}")
    jobs = [(str(out), seed, index) for index in range(n_songs)]
    report_every = max(1, n_songs // 10)
    songs: list[dict] = []
    pool = None
    if workers > 1 and n_songs > 1:
        import multiprocessing

        pool = multiprocessing.get_context("spawn").Pool(workers)
    try:
        summaries = pool.imap(_write_song, jobs, chunksize=32) if pool else map(_write_song, jobs)
        for summary in summaries:
            songs.append(summary)
            if progress and len(songs) % report_every == 0:
                print(f"  wrote {len(songs)}/{n_songs} songs", file=sys.stderr)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    manifest = {
        "n_songs": n_songs,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "generator": "loopgen.data.corpus.songwriter",
        "expected_rejection_reasons": EXPECTED_REJECTION,
        "songs": songs,
    }
    write_bytes(out / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    return out


SONG_NAME = re.compile(r"song_\d{5}\.mid")


def made_by_corpus(out_dir: Path | str) -> bool:
    """True when ``out_dir`` holds a demo corpus (or a half-written one) from :func:`write_demo_corpus`."""
    out = Path(out_dir)
    manifest = read_manifest(out)
    if isinstance(manifest, dict) and manifest.get("generator") == "loopgen.data.corpus.songwriter":
        return True
    names = [os.fsdecode(n) for n in os.listdir(out)]
    return bool(names) and all(
        SONG_NAME.fullmatch(n) or (n.startswith(".song_") and n.endswith(".tmp")) or n == atomic.OWN_LOCK_FILE
        for n in names
    )


def _md5_hex(text: str) -> str:
    value = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{32}", value):
        raise argparse.ArgumentTypeError(f"must be 32 hexadecimal digits (got {text!r})")
    return value


def _http_url(text: str) -> str:
    if not re.match(r"https?://[^/\s]+", text.strip()):
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// address (got {text!r})")
    return text.strip()


def cli_main(argv: list[str]) -> int:
    """``python -m loopgen corpus {demo,download-lmd} ...``."""
    parser = common.parser("corpus", description=__doc__.split("\n\n")[0])
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
    lmd.add_argument("--url", type=_http_url, default=LMD_FULL_URL, help="where to download lmd_full.tar.gz from")
    lmd.add_argument(
        "--md5", type=_md5_hex, default=LMD_FULL_MD5,
        help="expected MD5 of the archive (default: none; it must be given, as LMD publishes none)",
    )
    lmd.add_argument("--no-extract", action="store_true", help="download and check only, do not unpack")
    lmd.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.command == "demo":
        atomic.check_output_folder(args.out_dir, made_by_us=made_by_corpus, what="demo corpus", force=args.force)
        out = write_demo_corpus(args.out_dir, args.n_songs, args.seed, progress=not args.quiet)
        print(out)
        return 0
    if not args.md5:
        raise errors.UsageError(
            "--md5 is required: the LMD page publishes no checksum, so compute it from a copy you trust "
            "(md5sum lmd_full.tar.gz) and pass it"
        )
    try:
        out = download_lmd(
            args.dest, args.url, args.md5, extract=not args.no_extract, progress=not args.quiet
        )
    except DownloadError as err:
        raise errors.UserError(str(err)) from None
    print(out)
    return 0


__all__ = [
    "GENERATOR_VERSION",
    "LMD_FULL_MD5",
    "LMD_FULL_URL",
    "DownloadError",
    "SongPlan",
    "download_lmd",
    "file_md5",
    "made_by_corpus",
    "plan_song",
    "read_manifest",
    "render_song",
    "safe_extract",
    "write_demo_corpus",
]
