"""Loop datasets on disk <-> arrays.

A dataset folder (written by :func:`loopgen.data.extract.extract`) holds ``manifest.json`` (written last:
its presence means "finished"), ``report.json`` (every input file accounted for), ``index.npz``
(per loop: source path, start bar, split) and ``shard_*.npy`` (loops bit-packed by :func:`pack_loops`,
one row of 1488 bytes per (128, 93) loop: the one packed form of loops on disk).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loopgen import LOOP_CELLS, LOOP_STEPS, N_COLUMNS
from loopgen.data.validate import check_loops
from loopgen.errors import UserError
from loopgen.loops import SPLITS, LoopParams
from loopgen.store.digest import ContentDigest
from loopgen.store.paths import Paths, require

MADE_BY = "01_extract_loops.ipynb"
PACKED_BYTES = LOOP_CELLS // 8  # 1488 bytes per packed loop


def pack_loops(loops: np.ndarray) -> np.ndarray:
    """(N, 128, 93) 0/1 loops -> (N, 1488) uint8: each loop's cells in row-major order, 8 to a byte."""
    loops = check_loops(loops, allow_empty=True)
    return np.packbits(loops.reshape(len(loops), LOOP_CELLS), axis=1)


def unpack_loops(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_loops`: (N, 1488) uint8 -> (N, 128, 93) uint8 0/1."""
    packed = np.asarray(packed)
    if packed.ndim != 2 or packed.shape[1] != PACKED_BYTES or packed.dtype != np.uint8:
        raise ValueError(
            f"packed loops must be uint8 of shape (N, {PACKED_BYTES}); got {packed.dtype} {packed.shape}"
        )
    return np.unpackbits(packed, axis=1, count=LOOP_CELLS).reshape(-1, LOOP_STEPS, N_COLUMNS)


@dataclass
class LoopSet:
    """Loops of one dataset (or one split of it), in (source path, start bar) order."""

    loops: np.ndarray  # uint8 (N, 128, 93)
    source: np.ndarray  # str (N,): source file, relative to the corpus folder
    start_bar: np.ndarray  # int (N,): window start bar in the source song
    split: np.ndarray  # str (N,): "train" / "val" / "test"
    manifest: dict = field(repr=False)
    report: dict = field(repr=False)
    data_key: str = ""  # content hash of the whole dataset (same for every split): keys checkpoints

    def __len__(self) -> int:
        return len(self.loops)

    def select(self, mask: np.ndarray) -> LoopSet:
        """The loops where ``mask`` holds (same manifest, report and data_key)."""
        return LoopSet(
            self.loops[mask],
            self.source[mask],
            self.start_bar[mask],
            self.split[mask],
            self.manifest,
            self.report,
            self.data_key,
        )


class DamagedDatasetError(UserError, ValueError):
    """A dataset folder whose files do not match its manifest (one line naming the folder and what to do)."""


def _damaged(out_dir: Path, what: str) -> DamagedDatasetError:
    return DamagedDatasetError(
        f"loop dataset {shlex.quote(str(out_dir))} is damaged ({what}): extract it again (delete the folder and "
        f"run notebook {MADE_BY} or python -m loopgen extract, or extract with --force)"
    )


def load_loops(out_dir: str | Path, split: str | None = None) -> LoopSet:
    """Load an extracted dataset; ``split`` ("train", "val", "test") keeps only that split.

    Every shard is checked before use against the manifest (loop count, dtype and shape) and, with the index,
    against the manifest's ``content_hash``; a mismatch raises :class:`DamagedDatasetError`.
    """
    out_dir = Path(out_dir)
    manifest_path = require(out_dir / "manifest.json", made_by=MADE_BY)
    try:
        manifest = json.loads(manifest_path.read_text())
        report = json.loads((out_dir / "report.json").read_text())
        with np.load(out_dir / "index.npz", allow_pickle=False) as index:
            source, start_bar, splits = index["source"], index["start_bar"], index["split"]
    except (OSError, ValueError, KeyError) as err:
        raise _damaged(out_dir, f"{type(err).__name__}: {' '.join(str(err).split())[:120]}") from None
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, not {split!r}")
    if not len(source) == len(start_bar) == len(splits):
        raise _damaged(out_dir, "index.npz's columns differ in length")
    keep = np.ones(len(source), dtype=bool) if split is None else splits == split
    digest = ContentDigest()
    parts, offset = [], 0
    for shard in manifest["shards"]:
        n = shard["loops"]
        try:
            packed = np.load(out_dir / shard["file"], allow_pickle=False)
        except (OSError, ValueError) as err:
            raise _damaged(out_dir, f"{shard['file']}: {type(err).__name__}") from None
        if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape != (n, PACKED_BYTES):
            raise _damaged(out_dir, f"{shard['file']} holds {packed.dtype} {packed.shape}, the manifest says "
                                    f"{n} loops of {PACKED_BYTES} bytes")
        digest.array(packed)
        wanted = keep[offset : offset + n]
        if wanted.any():
            parts.append(unpack_loops(packed[wanted]))
        offset += n
    if offset != len(source):
        raise _damaged(out_dir, f"the shards hold {offset} loops, index.npz {len(source)}")
    if "content_hash" in manifest:
        digest.text(json.dumps([list(map(str, source)), start_bar.tolist()]))
        if digest.hex() != manifest["content_hash"]:
            raise _damaged(out_dir, "its loops do not match the content hash in manifest.json")
    loops = np.concatenate(parts) if parts else np.zeros((0, LOOP_STEPS, N_COLUMNS), dtype=np.uint8)
    return LoopSet(
        loops=loops,
        source=source[keep],
        start_bar=start_bar[keep],
        split=splits[keep],
        manifest=manifest,
        report=report,
        data_key=manifest["data_key"],
    )


def dataset_dir(paths: Paths, corpus_name: str, params: LoopParams = LoopParams()) -> Path:
    """The folder of the dataset extracted from corpus ``corpus_name`` with ``params``."""
    return paths.loops_dir(f"{corpus_name}-{params.key()}")
