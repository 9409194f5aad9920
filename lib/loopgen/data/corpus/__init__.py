"""Where the MIDI comes from: the built-in procedural demo corpus, or LMD-full.

* :func:`write_demo_corpus` writes a seeded, reproducible corpus of multitrack songs (bass, drums,
  keys, guitar, strings, lead) standing in for the Lakh MIDI Dataset, defects included.
* :func:`download_lmd` fetches and unpacks LMD-full itself, for the paper profile.

Command line (:mod:`loopgen.commands.corpus`)::

    python -m loopgen corpus demo OUT_DIR [--n-songs N] [--seed S]
    python -m loopgen corpus download-lmd DEST [--url U] [--md5 M]
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from loopgen.store import atomic
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
