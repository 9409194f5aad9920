"""docs/rules.md §5: a MIDI folder -> a loop dataset, every input file accounted for.

``extract(midi_dir, out_dir, params)`` reads every ``*.mid`` / ``*.midi`` file below ``midi_dir``
(sorted by relative path), applies the rules of :mod:`loopgen.loops` in a process pool, and writes
the dataset folder described in :mod:`loopgen.data.dataset`.

- **Accounted:** ``report.json`` gives, for every file (path relative to ``midi_dir``), its loop count
  or exactly one rejection reason; files scanned = files with loops + files rejected.
- **Resumable:** files are processed in chunks; each finished chunk is saved atomically in
  ``out_dir/.partial``. A killed run, started again, skips the saved chunks and ends with exactly
  what an uninterrupted run writes. ``manifest.json`` is written last.
- **Swapped in whole:** the finished dataset is written beside the folder's (``out_dir/.partial/dataset``)
  and moved into place only when complete, ``manifest.json`` last; a run that fails (a full disk, a kill) or
  ``--force`` with other parameters leaves the dataset already there whole until then.
- **Sampled (optional):** ``sample=N`` reads a seeded random sample of N of the folder's MIDI entries
  (:func:`sample_files`: the same N files on every machine, whatever order the folder lists them in); the
  manifest's ``inputs`` record it, so another sample of the same folder is another dataset. ``limit`` (the first
  N sorted) is a different thing: it applies after the sample.
- **Reused:** a finished folder whose manifest has the same parameters and the same input files
  is returned at once. Different parameters or inputs never mix into a folder: that is an error
  (use :func:`loopgen.data.dataset.dataset_dir`, which names the folder after the parameters).

Rejection reasons (first that applies; see :data:`loopgen.data.midi.REASONS`):
``too_large`` (file > max_file_bytes, > max_notes note-ons, an event at tick >= max_ticks, > max_bars),
``unreadable`` (mido cannot parse it), ``bad_resolution`` (ticks per quarter < 1: SMPTE or 0),
``no_tracks`` (a header but no track with any event),
``time_signature`` (some non-4/4), ``no_time_signature``, ``no_bass``, ``no_drums``, ``too_short``
(< 8 bars), ``no_loop`` (no window passes), ``error`` (unexpected exception: a bug, with details).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import stat
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from loopgen import LOOP_STEPS, N_COLUMNS, __version__, errors
from loopgen.data.dataset import PACKED_BYTES, pack_loops
from loopgen.data.midi import BACKENDS, REASONS, MidiRejected, read_notes
from loopgen.loops import LoopParams, assign_splits, find_loops, loop_at, song_roll
from loopgen.store import atomic
from loopgen.store.atomic import atomic_path, exclusive_lock
from loopgen.store.digest import ContentDigest

MIDI_SUFFIXES = (".mid", ".midi")
SAMPLE_RULE = "sha256-rank"  # sample_files: the N names with the smallest SHA-256 of "<seed>\n<name>"
CHUNK_FILES = 64  # files per resumable unit of work
SHARD_LOOPS = 16384  # loops per shard file
FORMAT_VERSION = 1
PARTIAL = ".partial"
STAGING = "dataset"  # PARTIAL/STAGING: the finished dataset, complete before it replaces the folder's
MANIFEST = "manifest.json"
REPLACED = "replaced-manifest.json"  # in STAGING while a swap runs: the manifest of the dataset being replaced


class DatasetMismatchError(errors.UserError, ValueError):
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
    """docs/rules.md §2-3 for one file; never raises for a bad file (the reason is recorded)."""
    empty = np.zeros((0, LOOP_STEPS, N_COLUMNS), dtype=np.uint8)
    try:
        notes = read_notes(path, backend, params.limits)
        roll = song_roll(notes, params)
        starts = find_loops(roll, params)
    except MidiRejected as rejection:
        return FileResult(empty, [], rejection.reason, rejection.detail)
    except Exception as exc:  # a bug must not end a long run: record it
        return FileResult(empty, [], "error", f"{type(exc).__name__}: {exc}")
    if not starts:
        return FileResult(empty, [], "no_loop")
    return FileResult(np.stack([loop_at(roll, k) for k in starts]), starts)


@dataclass
class FolderListing:
    """Every entry of an input folder that extraction must account for.

    ``files``: readable regular files (a link to a regular file counts as one) with a MIDI name, sorted
    relative paths; ``rejected``: MIDI-named entries refused up front (never opened), path -> reason;
    ``walk_errors``: sub-folders that could not be listed; ``links_not_followed``: links to folders
    (extraction never follows a link out of the folder tree). Names that are not valid UTF-8 are kept as
    ``os.fsdecode`` gives them (surrogate escapes), so they round-trip to the file on disk.
    """

    files: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    walk_errors: list[dict] = field(default_factory=list)
    links_not_followed: list[str] = field(default_factory=list)
    found: int = 0  # MIDI-named entries in the folder, before any sample or limit

    @property
    def n_entries(self) -> int:
        return len(self.files) + len(self.rejected)


_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
}


def _kind(mode: int) -> str:
    return _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _is_midi_name(name: str) -> bool:
    return name.lower().endswith(MIDI_SUFFIXES)


def _sample_rank(rel: str, seed: int) -> bytes:
    return hashlib.sha256(f"{int(seed)}\n{rel}".encode("utf-8", "surrogateescape")).digest()


def sample_files(names: list[str], n: int | None, seed: int = 0) -> list[str]:
    """A seeded random sample of ``n`` of ``names`` (relative paths), sorted; all of them when ``n`` is None or not
    smaller than their number.

    Our choice of rule: the ``n`` names with the smallest SHA-256 of ``"<seed>\\n<name>"``. It depends on the
    names and the seed alone, so it is the same on every machine and Python or numpy version and whatever order a
    folder lists its files in; a file added to or missing from the folder changes the sample by at most that file.
    """
    if n is None or n >= len(names):
        return sorted(names)
    if n < 1:
        raise ValueError(f"a sample needs at least 1 file (got {n})")
    return sorted(sorted(names, key=lambda rel: _sample_rank(rel, seed))[:n])


def scan_midi_dir(
    midi_dir: str | Path, limit: int | None = None, *, sample: int | None = None, sample_seed: int = 0
) -> FolderListing:
    """List the MIDI entries below ``midi_dir`` without opening any and without following folder links.

    ``sample``: keep a seeded random sample of that many entries (:func:`sample_files`); then ``limit``: keep the
    first ``limit`` entries (sorted by relative path).
    """
    root = os.fsdecode(os.fspath(midi_dir))
    listing = FolderListing()
    candidates: dict[str, str | None] = {}  # rel -> None (readable regular file) or the rejection detail

    def rel_of(path: str) -> str:
        return Path(os.path.relpath(path, root)).as_posix()

    def visit(folder: str) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            listing.walk_errors.append({"path": rel_of(folder), "error": errors.one_line(err)})
            return
        for entry in entries:
            rel = rel_of(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    visit(entry.path)
                    continue
                is_link = entry.is_symlink()
            except OSError as err:
                if _is_midi_name(entry.name):
                    candidates[rel] = f"cannot be examined: {errors.one_line(err)}"
                continue
            if is_link:
                try:
                    target = os.stat(entry.path)
                except OSError as err:
                    if _is_midi_name(entry.name):
                        candidates[rel] = f"a link that leads nowhere ({errors.one_line(err)})"
                    continue
                if stat.S_ISDIR(target.st_mode):
                    listing.links_not_followed.append(rel)
                    if _is_midi_name(entry.name):
                        candidates[rel] = "a link to a folder (not followed)"
                    continue
                mode = target.st_mode
            else:
                if not _is_midi_name(entry.name):
                    continue
                try:
                    mode = entry.stat(follow_symlinks=False).st_mode
                except OSError as err:
                    candidates[rel] = f"cannot be examined: {errors.one_line(err)}"
                    continue
            if not _is_midi_name(entry.name):
                continue
            if stat.S_ISREG(mode):
                candidates[rel] = None if os.access(entry.path, os.R_OK) else "no permission to read it"
            else:
                candidates[rel] = f"{_kind(mode)}, not a regular file: never opened"

    visit(root)
    listing.found = len(candidates)
    chosen = sample_files(list(candidates), sample, sample_seed)
    if limit is not None:
        chosen = chosen[:limit]
    listing.files = [rel for rel in chosen if candidates[rel] is None]
    listing.rejected = {rel: candidates[rel] for rel in chosen if candidates[rel] is not None}
    return listing


def list_midi_files(
    midi_dir: str | Path, limit: int | None = None, *, sample: int | None = None, sample_seed: int = 0
) -> list[str]:
    """Relative POSIX paths of the readable MIDI files below ``midi_dir``, sorted (see :func:`scan_midi_dir`)."""
    return scan_midi_dir(midi_dir, limit, sample=sample, sample_seed=sample_seed).files


def folder_content_key(midi_dir: Path | str, length: int = 16) -> str:
    """A digest of what extraction reads in ``midi_dir``: the relative names and bytes of its MIDI files (through
    links), and the entries it would refuse; the same files give the same key wherever they lie."""
    midi_dir = Path(midi_dir)
    listing = scan_midi_dir(midi_dir)
    digest = ContentDigest()
    for rel in listing.files:
        digest.text(f"{rel}\n", errors="surrogateescape")
        try:
            with open(midi_dir / rel, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.bytes(chunk)
        except OSError as err:  # gone or unreadable since the listing: extraction records it
            digest.text(f"!{type(err).__name__}")
        digest.text("\n")
    for rel, detail in sorted(listing.rejected.items()):
        digest.text(f"{rel}\t!{detail}\n", errors="surrogateescape")
    for error in listing.walk_errors:
        digest.text(f"{error['path']}/\t!walk\n", errors="surrogateescape")
    return digest.hex(length)


def _fingerprint(midi_dir: Path, listing: FolderListing) -> str:
    """The input files' names and sizes (plus any refused entries and walk errors) as one hash."""
    digest = ContentDigest()
    for rel in listing.files:
        digest.text(f"{rel}\t{(midi_dir / rel).stat().st_size}\n", errors="surrogateescape")
    for rel, detail in sorted(listing.rejected.items()):
        digest.text(f"{rel}\t!{detail}\n", errors="surrogateescape")
    for error in listing.walk_errors:
        digest.text(f"{error['path']}/\t!walk\n", errors="surrogateescape")
    return digest.hex()


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
    loop_params = LoopParams.from_dict(params)
    packed, file_index, start_bar, records = [], [], [], []
    for i, rel in enumerate(rel_paths):
        result = extract_file(Path(midi_dir) / rel, loop_params, backend)
        records.append([rel, result.record, result.detail])
        if result.start_bars:
            packed.append(pack_loops(result.loops))
            file_index.extend([i] * len(result.start_bars))
            start_bar.extend(result.start_bars)
    arrays = dict(
        packed=np.concatenate(packed) if packed else np.zeros((0, PACKED_BYTES), np.uint8),
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
                "Use loopgen.data.dataset.dataset_dir(paths, corpus, params) for a folder named after the "
                "parameters, or delete the folder."
            )


def _totals(records: list[list], walk_errors: int = 0) -> dict:
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
        "walk_errors": walk_errors,
    }


def _our_files(out_dir: Path) -> list[Path]:
    """The files of ``out_dir`` that a finished extraction's manifest lists (the only ones it may delete)."""
    return _listed_files(out_dir / MANIFEST, out_dir)


def _listed_files(manifest_path: Path, out_dir: Path) -> list[Path]:
    """The files of ``out_dir`` that the manifest at ``manifest_path`` lists (itself as ``manifest.json``)."""
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(manifest, dict) or "content_hash" not in manifest:
        return []
    names = [shard["file"] for shard in manifest.get("shards", []) if isinstance(shard, dict)]
    names = [n for n in names if isinstance(n, str) and "/" not in n and n.startswith("shard_")]
    return [out_dir / name for name in names + ["index.npz", "report.json", "manifest.json"]]


def _remove_partial(partial: Path) -> None:
    """Delete what a run of ours left in ``partial`` (its chunks, run.json, an unfinished staged dataset), then
    the folder if empty."""
    _clear_staging(partial / STAGING)
    for path in [*partial.glob("chunk_*.npz"), *partial.glob(".chunk_*.tmp"), partial / "run.json"]:
        path.unlink(missing_ok=True)
    try:
        partial.rmdir()
    except OSError:
        pass


OWN_TEMPORARIES = (".shard_*.tmp", ".index.npz.*.tmp", ".report.json.*.tmp", ".manifest.json.*.tmp")
STAGED_FILES = ("shard_*.npy", "index.npz", "report.json", MANIFEST, REPLACED)


def _clear_staging(staging: Path) -> None:
    """Delete a staged dataset of ours (its files and temporaries only), then its folder if empty."""
    for pattern in (*STAGED_FILES, *OWN_TEMPORARIES):
        for path in staging.glob(pattern):
            if path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
    try:
        staging.rmdir()
    except OSError:
        pass


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Move the complete dataset in ``staging`` into ``out_dir``, in place of the dataset there (if any).

    Renames only (no copy, no new space needed), ``manifest.json`` last: until then the folder holds the old
    dataset whole, or no finished one. The old manifest waits in ``staging`` (:data:`REPLACED`) until the old
    dataset's other files are gone, so a swap killed half-way is finished by the next run."""
    replaced = staging / REPLACED
    if (out_dir / MANIFEST).exists() and not replaced.exists():
        os.replace(out_dir / MANIFEST, replaced)  # from here on the folder claims no finished dataset
    new = [path.name for path in _our_files(staging) if path.name != MANIFEST]
    for name in new:
        if (staging / name).exists():  # (moved already when a killed swap is finished)
            os.replace(staging / name, out_dir / name)
    for old in _listed_files(replaced, out_dir):
        if old.name not in new and old.name != MANIFEST:
            old.unlink(missing_ok=True)
    os.replace(staging / MANIFEST, out_dir / MANIFEST)
    _clear_staging(staging)


def _remove_dead_temporaries(out_dir: Path, partial: Path) -> list[Path]:
    """Temporaries a killed run of ours left (we hold the folder's lock, so no live run writes them)."""
    stale = [p for pattern in OWN_TEMPORARIES for p in out_dir.glob(pattern)]
    stale += [p for pattern in (".chunk_*.tmp", ".run.json.*.tmp") for p in partial.glob(pattern)]
    stale += [p for pattern in OWN_TEMPORARIES for p in (partial / STAGING).glob(pattern)]
    for path in stale:
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
    return stale


def made_by_extract(out_dir: Path | str) -> bool:
    """True when ``out_dir`` holds a loop dataset (or a half-done extraction) written by this module."""
    out_dir = Path(out_dir)
    if _our_files(out_dir):
        return True
    partial = out_dir / PARTIAL
    try:  # a run that has just made its staging folder, before it wrote run.json there (it holds the lock)
        if partial.is_dir() and not any(name != "run.json" and not name.startswith(".") for name in os.listdir(partial)):
            return True
    except OSError:
        return False
    try:
        run = json.loads((partial / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(run, dict) and {"params", "inputs"} <= set(run)


def _finalize(
    out_dir: Path, partial: Path, n_chunks: int, identity: dict, backend: str, listing: FolderListing
) -> dict:
    """Join the chunks into the dataset, written complete in ``partial/dataset``, then swapped into ``out_dir``."""
    staging = partial / STAGING
    _clear_staging(staging)  # what a killed run left half written
    staging.mkdir(parents=True, exist_ok=True)
    report = _write_dataset(staging, partial, n_chunks, identity, backend, listing)
    _swap_in(staging, out_dir)
    _remove_partial(partial)
    return report


def _write_dataset(
    out_dir: Path, partial: Path, n_chunks: int, identity: dict, backend: str, listing: FolderListing
) -> dict:
    """Write the dataset of the chunks in ``partial`` into ``out_dir`` (shards, index, report, manifest last)."""
    records, packed, sources, start_bars = [], [], [], []
    for index in range(n_chunks):
        with np.load(_chunk_path(partial, index), allow_pickle=False) as chunk:
            chunk_records = json.loads(str(chunk["records"]))
            packed.append(chunk["packed"])
            sources.extend(chunk_records[i][0] for i in chunk["file_index"])
            start_bars.append(chunk["start_bar"])
        records.extend(chunk_records)
    records.extend([rel, {"rejected": "unreadable"}, detail] for rel, detail in listing.rejected.items())
    records.sort(key=lambda record: record[0])
    packed = np.concatenate(packed) if packed else np.zeros((0, PACKED_BYTES), np.uint8)
    start_bar = np.concatenate(start_bars).astype(np.int32) if start_bars else np.zeros(0, np.int32)
    source = np.asarray(sources, dtype=str)
    split = assign_splits(source)

    content_hash = ContentDigest().array(packed).text(json.dumps([list(map(str, source)), start_bar.tolist()])).hex()

    shards = []
    for number, first in enumerate(range(0, len(packed), SHARD_LOOPS)):
        name = f"shard_{number:05d}.npy"
        part = packed[first : first + SHARD_LOOPS]
        _atomic_write(out_dir / name, lambda f, part=part: np.save(f, part))
        shards.append({"file": name, "loops": len(part)})
    _atomic_write(
        out_dir / "index.npz", lambda f: np.savez(f, source=source, start_bar=start_bar, split=split)
    )

    totals = _totals(records, len(listing.walk_errors))
    report = {
        "midi_dir": identity["inputs"]["midi_dir"],
        "files": {rel: record for rel, record, _ in records},
        "details": {rel: detail for rel, _, detail in records if detail},
        "totals": totals,
    }
    if listing.walk_errors or listing.links_not_followed:
        report["walk"] = {"errors": listing.walk_errors, "links_not_followed": listing.links_not_followed}
    if "sample" in identity["inputs"]:
        report["sample"] = {**identity["inputs"]["sample"], "of_files": listing.found}
    _write_json(out_dir / "report.json", report)
    counts = {k: v for k, v in totals.items() if k != "by_reason"}
    counts.update({name: int((split == name).sum()) for name in ("train", "val", "test")})
    manifest = {
        "format_version": FORMAT_VERSION,
        "loopgen_version": __version__,
        "written_by": "loopgen.data.extract",
        **identity,
        "params_key": LoopParams.from_dict(identity["params"]).key(),
        "counts": counts,
        "content_hash": content_hash,
        "data_key": content_hash[:16],
        "loop_shape": [LOOP_STEPS, N_COLUMNS],
        "packing": "np.packbits(loop.reshape(-1)) per loop, 1488 bytes",
        "shards": shards,
        "backend": backend,
    }
    if "sample" in identity["inputs"]:  # how many MIDI entries the folder held when the sample was drawn
        manifest["sample_of_files"] = listing.found
    _write_json(out_dir / MANIFEST, manifest)
    return report


# ------------------------------------------------------------------------------- pool workers and orphans
def _exit_with_parent(parent_pid: int, poll_seconds: float = 0.5) -> None:
    """Pool initializer: end this worker as soon as the process that started it is gone (``kill -9``).

    A daemon thread polls ``os.getppid()``; when the parent dies the worker is re-parented and exits at once.
    Works on every POSIX system (no ``prctl``), costs nothing measurable.
    """

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(poll_seconds)

    threading.Thread(target=watch, name="loopgen-parent-watch", daemon=True).start()


def extract(
    midi_dir: str | Path,
    out_dir: str | Path,
    params: LoopParams = LoopParams(),
    *,
    workers: int = 2,
    backend: str = "fast",
    limit: int | None = None,
    sample: int | None = None,
    sample_seed: int = 0,
    progress: bool = True,
    force: bool = False,
) -> dict:
    """Extract the loops of every MIDI file below ``midi_dir`` into ``out_dir``; return the report.

    ``report["totals"]`` has files_scanned, files_with_loops, files_rejected, loops, by_reason and
    walk_errors. ``out_dir`` must be new, empty, or a folder this function wrote (else
    :class:`loopgen.errors.UserError`); ``force=True`` writes into any folder and replaces a dataset made with
    other parameters, deleting only files its own manifest lists. A lock file refuses a second run into the
    same folder while one is running (:class:`loopgen.store.atomic.LockedError`). ``sample``: only a seeded
    random sample of that many files (:func:`sample_files`, seed ``sample_seed``), recorded in the manifest's
    ``inputs``; ``limit``: then only the first N of them (sorted).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1 (got {workers})")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1 (got {limit})")
    if sample is not None and sample < 1:
        raise ValueError(f"sample must be at least 1 (got {sample})")
    midi_dir, out_dir = Path(midi_dir).resolve(), Path(out_dir)
    if not midi_dir.is_dir():
        raise FileNotFoundError(f"MIDI folder {midi_dir} does not exist")
    listing = scan_midi_dir(midi_dir, limit, sample=sample, sample_seed=sample_seed)
    if listing.n_entries == 0 and not listing.walk_errors:
        raise errors.UsageError(f"no MIDI files (*.mid, *.midi) found in {errors.shown_name(str(midi_dir))}")
    inputs = {
        "midi_dir": str(midi_dir),
        "n_files": listing.n_entries,
        "limit": limit,
        "fingerprint": _fingerprint(midi_dir, listing),
    }
    if sample is not None:  # (absent otherwise: datasets extracted before samples existed keep their identity)
        inputs["sample"] = {"files": sample, "seed": int(sample_seed), "rule": SAMPLE_RULE}
    identity = {"params": params.as_dict(), "inputs": inputs}
    atomic.check_output_folder(out_dir, made_by_us=made_by_extract, what="loop dataset", force=force)
    with exclusive_lock(out_dir / atomic.OWN_LOCK_FILE, what=f"the output folder {out_dir}"):
        return _extract_locked(midi_dir, out_dir, params, identity, listing, workers, backend, progress, force)


def _extract_locked(
    midi_dir: Path,
    out_dir: Path,
    params: LoopParams,
    identity: dict,
    listing: FolderListing,
    workers: int,
    backend: str,
    progress: bool,
    force: bool,
) -> dict:
    manifest_path = out_dir / MANIFEST
    partial = out_dir / PARTIAL
    _remove_dead_temporaries(out_dir, partial)
    if (partial / STAGING / MANIFEST).exists():  # a complete dataset whose swap a killed run left half done
        _swap_in(partial / STAGING, out_dir)
        _remove_partial(partial)  # the chunks it was made of
    if manifest_path.exists():
        try:
            _check_identity(json.loads(manifest_path.read_text()), identity, out_dir)
            return json.loads((out_dir / "report.json").read_text())
        except (DatasetMismatchError, ValueError, OSError):
            if not force:
                raise
        # --force: the new dataset is built beside this one and replaces it only when complete (_finalize)

    run_path = partial / "run.json"
    if run_path.exists():
        try:
            _check_identity(json.loads(run_path.read_text()), identity, out_dir)
        except (DatasetMismatchError, ValueError):
            if not force:
                raise
            _remove_partial(partial)
    if not run_path.exists():
        _write_json(run_path, identity)

    rel_paths = listing.files
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
            with ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_exit_with_parent, initargs=(os.getpid(),)
            ) as pool:
                futures = [pool.submit(_process_chunk, *job) for job in jobs]
                for future in as_completed(futures):
                    bar.update(future.result()[1])
    return _finalize(out_dir, partial, len(chunks), identity, backend, listing)


def summary_lines(report: dict, out_dir: Path | str) -> list[str]:
    """The lines ``extract`` prints: the totals, the count per reason and any walk errors."""
    totals = report["totals"]
    lines = [
        f"{totals['files_scanned']} files scanned: {totals['files_with_loops']} with loops, "
        f"{totals['files_rejected']} rejected; {totals['loops']} loops -> {errors.shown_name(str(out_dir))}"
    ]
    for reason in REASONS:
        if totals["by_reason"].get(reason):
            lines.append(f"  {reason:<18} {totals['by_reason'][reason]}")
    if totals.get("walk_errors"):
        lines.append(
            f"  {totals['walk_errors']} sub-folder(s) could not be read (listed under 'walk' in report.json)"
        )
    return lines
