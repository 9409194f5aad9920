"""The generated-samples store: the file interface between notebooks 05, 06 and 07.

Each group of loops (a model and sampling mode, or the training set) is one file
``build/samples/<profile>/<group>.npz`` (:meth:`loopgen.store.paths.Paths.sample_group`) holding the loops bit-packed as
the dataset's shards are (:func:`loopgen.data.dataset.pack_loops`, 1,488 bytes a loop), for VQ-VAE groups and the
training set the latent code sequences, and the group's :class:`Provenance`: what made it (model, checkpoint keys, data key, seed, n,
sampling). A reader passes the provenance it expects, so samples of an older model or dataset are never taken
for this run's. Writes are atomic, so a crashed run never leaves half a file behind.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from loopgen.data.dataset import pack_loops, unpack_loops
from loopgen.data.midi.write import write_loop_midi
from loopgen.data.validate import check_codes, check_loops
from loopgen.errors import quoted
from loopgen.store.atomic import atomic_path
from loopgen.store.digest import ContentDigest
from loopgen.store.paths import MissingInputError, Paths, require

MADE_BY = "05_musical_metrics.ipynb"


@dataclass(frozen=True)
class Provenance:
    """What made a group of loops; two groups with the same provenance hold the same loops."""

    model: str  # the model sampled ("training_set" for the training set)
    checkpoint: str  # checkpoint key(s) of the weights (for the training set: the VQ-VAE that encoded its codes)
    data_key: str  # the loop dataset the models were trained on (loopgen.data.dataset.LoopSet.data_key)
    seed: int
    n: int
    sampling: str  # "N(0, I)", "argmax", "temperature 1.2", or "all training loops"

    def differences(self, other: Provenance) -> list[str]:
        """``'field: mine != other's'`` for every field that differs."""
        return [
            f"{f.name}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


def save_generated(
    paths: Paths,
    profile_name: str,
    group: str,
    loops: np.ndarray,
    codes: np.ndarray | None = None,
    *,
    provenance: Provenance,
) -> Path:
    """Store ``loops`` (N, 128, 93) 0/1, optional ``codes`` (N, t) and the ``provenance`` of one group; return
    the file."""
    arr = check_loops(loops, name="loops", allow_empty=True)
    payload: dict[str, np.ndarray] = {
        "packed": pack_loops(arr),
        "n_loops": np.array(len(arr)),
        "group": np.array(group),
        "provenance": np.array(json.dumps(asdict(provenance), sort_keys=True)),
    }
    if codes is not None:
        c = check_codes(codes, name="codes", rows=len(arr), allow_empty=True)
        payload["codes"] = c.astype(np.int32 if c.max(initial=0) < 2**31 else np.int64)
    payload["digest"] = np.array(_digest(payload))
    target = paths.sample_group(profile_name, group)
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **payload)
    return target


def _digest(payload: dict[str, np.ndarray]) -> str:
    """SHA-256 over a group's arrays (loops, codes, provenance): checked when the group is read back."""
    digest = ContentDigest()
    for key in ("packed", "n_loops", "group", "provenance", "codes"):
        if key in payload:
            digest.array(payload[key], with_layout=True, label=key)
    return digest.hex()


def _damaged(path: Path, what: str) -> MissingInputError:
    return MissingInputError(f"{quoted(path)} is damaged ({what}): run notebook {MADE_BY} again (same PROFILE and SEED)")


def _read(path: Path) -> dict[str, np.ndarray]:
    """Every array of a stored group, checked against the digest it was saved with (when it has one)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # truncated, or a bad CRC
        raise _damaged(path, f"{type(err).__name__}: {' '.join(str(err).split())[:100]}") from None
    if "digest" in arrays and str(arrays["digest"]) != _digest(arrays):
        raise _damaged(path, "its contents do not match the digest it was saved with")
    return arrays


def _provenance(arrays: dict[str, np.ndarray]) -> Provenance | None:
    if "provenance" not in arrays:
        return None
    try:
        return Provenance(**json.loads(str(arrays["provenance"])))
    except (TypeError, ValueError):  # written by a loopgen whose record had other fields: not this run's
        return None


def stored_provenance(paths: Paths, profile_name: str, group: str) -> Provenance | None:
    """The provenance a stored group records; None when the group or its record is missing (a damaged file
    raises :class:`MissingInputError` naming notebook 05)."""
    path = paths.sample_group(profile_name, group)
    if not path.exists():
        return None
    return _provenance(_read(path))


def load_generated(
    paths: Paths, profile_name: str, group: str, expected: Provenance | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one group back: (loops uint8 (N, 128, 93), codes (N, t) or None).

    With ``expected`` (what every notebook passes, through :mod:`loopgen.book.evaluation`), a group made by other
    weights, data, seed, n or sampling raises MissingInputError saying what differs; a group never written
    raises it too, and so does a damaged one (its digest, loop count or code shape wrong). All name notebook 05.
    """
    path = require(paths.sample_group(profile_name, group), made_by=MADE_BY)
    arrays = _read(path)
    if expected is not None:
        stored = _provenance(arrays)
        if stored != expected:
            what = "; ".join(stored.differences(expected)) if stored else "no provenance recorded"
            raise MissingInputError(
                f"{quoted(path)} was not made by this run's models (stored != expected: {what}): run notebook {MADE_BY} "
                "again (same PROFILE and SEED)"
            )
    packed, codes = arrays.get("packed"), arrays.get("codes")
    if packed is None:
        raise _damaged(path, "no loops in it")
    try:
        loops = unpack_loops(packed)
    except ValueError as err:  # e.g. a file of an older loopgen, packed along the columns
        raise MissingInputError(f"{quoted(path)} does not hold loops in the current format ({err}): rerun {MADE_BY}") from None
    if "n_loops" in arrays and int(arrays["n_loops"]) != len(loops):
        raise _damaged(path, f"{len(loops)} loops, but it records {int(arrays['n_loops'])}")
    if codes is not None:
        try:
            check_codes(codes, name="codes", rows=len(loops), allow_empty=True)
        except ValueError as err:
            raise _damaged(path, " ".join(str(err).split())) from None
    return loops, codes


def export_midi(
    paths: Paths,
    profile_name: str,
    group: str,
    loops: np.ndarray,
    *,
    count: int = 4,
    tempo: float = 120,
) -> list[Path]:
    """Write the first ``count`` loops of a group as MIDI files in ``build/samples/<profile>/midi/<group>/``."""

    folder = paths.sample_midi(profile_name, group)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, loop in enumerate(np.asarray(loops)[:count]):
        target = folder / f"{group}_{i:03d}.mid"
        write_loop_midi(loop, target, bpm=tempo)
        written.append(target)
    return written
