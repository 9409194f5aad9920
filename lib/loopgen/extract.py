"""Spec section 5: a MIDI folder -> a loop dataset, every input file accounted for.

``extract(midi_dir, out_dir, params)`` reads every ``*.mid`` / ``*.midi`` file below ``midi_dir``
(sorted by relative path), applies the rules of :mod:`loopgen.loops` in a process pool, and writes
the dataset folder described in :mod:`loopgen.dataset`.

- **Accounted:** ``report.json`` gives, for every file (path relative to ``midi_dir``), its loop count
  or exactly one rejection reason; files scanned = files with loops + files rejected.
- **Resumable:** files are processed in chunks; each finished chunk is saved atomically in
  ``out_dir/.partial``. A killed run, started again, skips the saved chunks and ends with exactly
  what an uninterrupted run writes. ``manifest.json`` is written last.
- **Reused:** a finished folder whose manifest has the same parameters and the same input files
  is returned at once. Different parameters or inputs never mix into a folder: that is an error
  (use :func:`loopgen.dataset.dataset_dir`, which names the folder after the parameters).

Rejection reasons (first that applies; see :data:`loopgen.midi.REASONS`):
``too_large`` (file > max_file_bytes, > max_notes note-ons, an event at tick >= max_ticks, > max_bars),
``unreadable`` (mido cannot parse it), ``bad_resolution`` (ticks per quarter < 1: SMPTE or 0),
``no_tracks`` (a header but no track with any event),
``time_signature`` (some non-4/4), ``no_time_signature``, ``no_bass``, ``no_drums``, ``too_short``
(< 8 bars), ``no_loop`` (no window passes), ``error`` (unexpected exception: a bug, with details).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import LOOP_STEPS, N_COLUMNS, __version__
from .atomic import atomic_path
from .dataset import pack_loops
from .loops import LoopParams, assign_splits, find_loops, loop_at, song_roll
from .midi import BACKENDS, REASONS, MidiRejected, read_notes

MIDI_SUFFIXES = (".mid", ".midi")
CHUNK_FILES = 64  # files per resumable unit of work
SHARD_LOOPS = 16384  # loops per shard file
FORMAT_VERSION = 1
PARTIAL = ".partial"


class DatasetMismatchError(ValueError):
    """``out_dir`` already holds a dataset made with other parameters or other input files."""


@dataclass
class FileResult:
    """What one file gives: its loops, or the reason it gives none."""

    loops: np.ndarray  # uint8 (n, 128, 93)
    start_bars: list[int]
    reason: str | None = None  # None when the file was read and scanned (even with 0 loops: "no_loop")
    detail: str = ""

    @property
    def record(self) -> dict:
        return {"loops": len(self.start_bars)} if self.reason is None else {"rejected": self.reason}


def extract_file(path: str | Path, params: LoopParams = LoopParams(), backend: str = "fast") -> FileResult:
    """Spec sections 2-3 for one file; never raises for a bad file (the reason is recorded)."""
    empty = np.zeros((0, LOOP_STEPS, N_COLUMNS), dtype=np.uint8)
    try:
        notes = read_notes(path, backend, **params.read_limits())
        roll = song_roll(notes, params)
        starts = find_loops(roll, params)
    except MidiRejected as rejection:
        return FileResult(empty, [], rejection.reason, rejection.detail)
    except Exception as exc:  # a bug must not end a long run: record it
        return FileResult(empty, [], "error", f"{type(exc).__name__}: {exc}")
    if not starts:
        return FileResult(empty, [], "no_loop")
    return FileResult(np.stack([loop_at(roll, k) for k in starts]), starts)


def list_midi_files(midi_dir: str | Path, limit: int | None = None) -> list[str]:
    """Relative POSIX paths of the MIDI files below ``midi_dir``, sorted; the first ``limit`` only."""
    midi_dir = Path(midi_dir)
    found = []
    for folder, dirs, files in os.walk(midi_dir):
        dirs.sort()
        for name in files:
            if name.lower().endswith(MIDI_SUFFIXES):
                found.append(Path(folder, name).relative_to(midi_dir).as_posix())
    found.sort()
    return found if limit is None else found[:limit]


def _fingerprint(midi_dir: Path, rel_paths: list[str]) -> str:
    digest = hashlib.sha256()
    for rel in rel_paths:
        digest.update(f"{rel}\t{(midi_dir / rel).stat().st_size}\n".encode())
    return digest.hexdigest()


def _atomic_write(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        write(handle)


def _write_json(path: Path, obj: dict) -> None:
    _atomic_write(path, lambda f: f.write(json.dumps(obj, indent=1, sort_keys=True).encode()))


def _chunk_path(partial: Path, index: int) -> Path:
    return partial / f"chunk_{index:06d}.npz"


def _process_chunk(
    index: int, midi_dir: str, rel_paths: list[str], params: dict, backend: str, partial: str
) -> tuple[int, int]:
    """Extract one chunk of files and save it atomically; return (chunk index, files done)."""
    loop_params = LoopParams(**params)
    packed, file_index, start_bar, records = [], [], [], []
    for i, rel in enumerate(rel_paths):
        result = extract_file(Path(midi_dir) / rel, loop_params, backend)
        records.append([rel, result.record, result.detail])
        if result.start_bars:
            packed.append(pack_loops(result.loops))
            file_index.extend([i] * len(result.start_bars))
            start_bar.extend(result.start_bars)
    arrays = dict(
        packed=np.concatenate(packed) if packed else np.zeros((0, LOOP_STEPS * N_COLUMNS // 8), np.uint8),
        file_index=np.asarray(file_index, dtype=np.int32),
        start_bar=np.asarray(start_bar, dtype=np.int32),
        records=np.asarray(json.dumps(records)),
    )
    _atomic_write(_chunk_path(Path(partial), index), lambda f: np.savez(f, **arrays))
    return index, len(rel_paths)


def _check_identity(found: dict, wanted: dict, where: Path) -> None:
    for key, label in (("params", "parameters"), ("inputs", "input files")):
        if found.get(key) != wanted[key]:
            raise DatasetMismatchError(
                f"{where} holds loops extracted with other {label}; refusing to mix them. "
                "Use loopgen.dataset.dataset_dir(paths, corpus, params) for a folder named after the "
                "parameters, or delete the folder."
            )


def _totals(records: list[list]) -> dict:
    by_reason = dict.fromkeys(REASONS, 0)
    with_loops = loops = 0
    for _, record, _ in records:
        if "rejected" in record:
            by_reason[record["rejected"]] += 1
        else:
            with_loops += 1
            loops += record["loops"]
    rejected = sum(by_reason.values())
    assert with_loops + rejected == len(records)
    return {
        "files_scanned": len(records),
        "files_with_loops": with_loops,
        "files_rejected": rejected,
        "loops": loops,
        "by_reason": by_reason,
    }


def _finalize(out_dir: Path, partial: Path, n_chunks: int, identity: dict, backend: str) -> dict:
    records, packed, sources, start_bars = [], [], [], []
    for index in range(n_chunks):
        with np.load(_chunk_path(partial, index), allow_pickle=False) as chunk:
            chunk_records = json.loads(str(chunk["records"]))
            packed.append(chunk["packed"])
            sources.extend(chunk_records[i][0] for i in chunk["file_index"])
            start_bars.append(chunk["start_bar"])
        records.extend(chunk_records)
    packed = np.concatenate(packed) if packed else np.zeros((0, LOOP_STEPS * N_COLUMNS // 8), np.uint8)
    start_bar = np.concatenate(start_bars).astype(np.int32) if start_bars else np.zeros(0, np.int32)
    source = np.asarray(sources, dtype=str)
    split = assign_splits(source)

    digest = hashlib.sha256(packed.tobytes())
    digest.update(json.dumps([list(map(str, source)), start_bar.tolist()]).encode())
    content_hash = digest.hexdigest()

    for old in out_dir.glob("shard_*.npy"):
        old.unlink()
    shards = []
    for number, first in enumerate(range(0, len(packed), SHARD_LOOPS)):
        name = f"shard_{number:05d}.npy"
        part = packed[first : first + SHARD_LOOPS]
        _atomic_write(out_dir / name, lambda f, part=part: np.save(f, part))
        shards.append({"file": name, "loops": len(part)})
    _atomic_write(
        out_dir / "index.npz", lambda f: np.savez(f, source=source, start_bar=start_bar, split=split)
    )

    totals = _totals(records)
    report = {
        "midi_dir": identity["inputs"]["midi_dir"],
        "files": {rel: record for rel, record, _ in records},
        "details": {rel: detail for rel, _, detail in records if detail},
        "totals": totals,
    }
    _write_json(out_dir / "report.json", report)
    counts = {k: v for k, v in totals.items() if k != "by_reason"}
    counts.update({name: int((split == name).sum()) for name in ("train", "val", "test")})
    manifest = {
        "format_version": FORMAT_VERSION,
        "loopgen_version": __version__,
        **identity,
        "params_key": LoopParams(**identity["params"]).key(),
        "counts": counts,
        "content_hash": content_hash,
        "data_key": content_hash[:16],
        "loop_shape": [LOOP_STEPS, N_COLUMNS],
        "packing": "np.packbits(loop.reshape(-1)) per loop, 1488 bytes",
        "shards": shards,
        "backend": backend,
    }
    _write_json(out_dir / "manifest.json", manifest)
    shutil.rmtree(partial, ignore_errors=True)
    return report


def extract(
    midi_dir: str | Path,
    out_dir: str | Path,
    params: LoopParams = LoopParams(),
    *,
    workers: int = 2,
    backend: str = "fast",
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Extract the loops of every MIDI file below ``midi_dir`` into ``out_dir``; return the report.

    ``report["totals"]`` has files_scanned, files_with_loops, files_rejected, loops and by_reason.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    midi_dir, out_dir = Path(midi_dir).resolve(), Path(out_dir)
    if not midi_dir.is_dir():
        raise FileNotFoundError(f"MIDI folder {midi_dir} does not exist")
    rel_paths = list_midi_files(midi_dir, limit)
    identity = {
        "params": params.as_dict(),
        "inputs": {
            "midi_dir": str(midi_dir),
            "n_files": len(rel_paths),
            "limit": limit,
            "fingerprint": _fingerprint(midi_dir, rel_paths),
        },
    }
    manifest_path = out_dir / "manifest.json"
    if manifest_path.exists():
        _check_identity(json.loads(manifest_path.read_text()), identity, out_dir)
        return json.loads((out_dir / "report.json").read_text())

    partial = out_dir / PARTIAL
    run_path = partial / "run.json"
    if run_path.exists():
        _check_identity(json.loads(run_path.read_text()), identity, out_dir)
    else:
        _write_json(run_path, identity)

    chunks = [rel_paths[i : i + CHUNK_FILES] for i in range(0, len(rel_paths), CHUNK_FILES)]
    todo = [i for i in range(len(chunks)) if not _chunk_path(partial, i).exists()]
    done_files = len(rel_paths) - sum(len(chunks[i]) for i in todo)
    jobs = [(i, str(midi_dir), chunks[i], params.as_dict(), backend, str(partial)) for i in todo]
    with tqdm(total=len(rel_paths), initial=done_files, unit="file", disable=not progress) as bar:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                bar.update(_process_chunk(*job)[1])
        else:
            context = multiprocessing.get_context("spawn")  # safe beside torch / Jupyter threads
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = [pool.submit(_process_chunk, *job) for job in jobs]
                for future in as_completed(futures):
                    bar.update(future.result()[1])
    return _finalize(out_dir, partial, len(chunks), identity, backend)


def cli_main(argv: list[str] | None = None) -> int:
    """``python -m loopgen extract MIDI_DIR OUT_DIR [--workers N] [--backend fast|reference] [--limit N]``."""
    parser = argparse.ArgumentParser(prog="python -m loopgen extract", description=__doc__.splitlines()[0])
    parser.add_argument("midi_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=BACKENDS, default="fast")
    parser.add_argument("--limit", type=int, default=None, help="only the first N files (sorted)")
    parser.add_argument("--stride-bars", type=int, default=LoopParams.stride_bars)
    parser.add_argument("--allow-missing-time-signature", action="store_true")
    parser.add_argument("--bass-tracks", choices=("all", "first"), default=LoopParams.bass_tracks)
    parser.add_argument("--drum-map", choices=("default", "magenta"), default=LoopParams.drum_map)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    params = LoopParams(
        stride_bars=args.stride_bars,
        allow_missing_time_signature=args.allow_missing_time_signature,
        bass_tracks=args.bass_tracks,
        drum_map=args.drum_map,
    )
    try:
        report = extract(
            args.midi_dir,
            args.out_dir,
            params,
            workers=args.workers,
            backend=args.backend,
            limit=args.limit,
            progress=not args.quiet,
        )
    except (DatasetMismatchError, FileNotFoundError) as exc:
        print(f"error: {exc}")
        return 2
    totals = report["totals"]
    print(
        f"{totals['files_scanned']} files scanned: {totals['files_with_loops']} with loops, "
        f"{totals['files_rejected']} rejected; {totals['loops']} loops -> {args.out_dir}"
    )
    for reason in REASONS:
        if totals["by_reason"].get(reason):
            print(f"  {reason:<18} {totals['by_reason'][reason]}")
    return 0
