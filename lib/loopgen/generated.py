"""The generated-samples store: the file interface between notebooks 05, 06 and 07.

Each group of loops (a model and sampling mode, or the training set) is one file
``build/samples/<profile>/<group>.npz`` holding the loops bit-packed along the 93 columns
(12 bytes per step instead of 93) and, for VQ-VAE groups and the training set, the latent code
sequences. Writes are atomic, so a crashed run never leaves half a file behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from loopgen import LOOP_STEPS, N_COLUMNS, registry
from loopgen.atomic import atomic_path
from loopgen.paths import MissingInputError, Paths, require

MADE_BY = "05_musical_metrics.ipynb"
GROUPS: tuple[str, ...] = (
    "training_set",
    "ar_lstm_vae",
    "nonar_lstm_vae",
    "cnn_vae",
    "vq_vae_argmax",
    "vq_vae_temp1",
    "vq_vae_temp1.5",
    "vq_vae_temp2",
    "vq_vae_temp1.2",  # the listening-test group (profile.sample.listening_temperature)
)
CONTINUOUS_GROUPS = registry.continuous()
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


def temperature_group(temperature: float | None) -> str:
    """Group name of VQ-VAE samples at a prior temperature (None = argmax): 1.0 -> 'vq_vae_temp1'."""
    if temperature is None:
        return "vq_vae_argmax"
    return f"vq_vae_temp{float(temperature):g}"


def samples_dir(paths: Paths, profile_name: str) -> Path:
    """``build/samples/<profile>``: every group of one profile."""
    return paths.samples / profile_name


def group_path(paths: Paths, profile_name: str, group: str) -> Path:
    """File of one group of generated loops."""
    if not _NAME.match(group) or not _NAME.match(profile_name):
        raise ValueError(f"group and profile names must be plain file names; got {profile_name!r}/{group!r}")
    return samples_dir(paths, profile_name) / f"{group}.npz"


def midi_dir(paths: Paths, profile_name: str, group: str) -> Path:
    """``build/samples/<profile>/midi/<group>/``: a handful of MIDI files per group."""
    return samples_dir(paths, profile_name) / "midi" / group


def save_generated(
    paths: Paths,
    profile_name: str,
    group: str,
    loops: np.ndarray,
    codes: np.ndarray | None = None,
) -> Path:
    """Store ``loops`` (N, 128, 93) 0/1 and optional ``codes`` (N, t) of one group; return the file."""
    arr = np.asarray(loops)
    if arr.ndim != 3 or arr.shape[1:] != (LOOP_STEPS, N_COLUMNS):
        raise ValueError(f"loops must have shape (N, {LOOP_STEPS}, {N_COLUMNS}); got {arr.shape}")
    if arr.dtype != np.bool_ and ((arr != 0) & (arr != 1)).any():
        raise ValueError("loops must be binary (0/1): binarise model outputs first (metrics.binarize)")
    payload: dict[str, np.ndarray] = {
        "packed": np.packbits(arr.astype(bool), axis=-1),
        "n_loops": np.array(len(arr)),
        "group": np.array(group),
    }
    if codes is not None:
        c = np.asarray(codes)
        if c.ndim != 2 or len(c) != len(arr) or not np.issubdtype(c.dtype, np.integer):
            raise ValueError(
                f"codes must be integers of shape ({len(arr)}, latent_steps); got {c.shape} {c.dtype}"
            )
        payload["codes"] = c.astype(np.int32 if c.max(initial=0) < 2**31 else np.int64)
    target = group_path(paths, profile_name, group)
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **payload)
    return target


def load_generated(paths: Paths, profile_name: str, group: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one group back: (loops uint8 (N, 128, 93), codes (N, t) or None).

    Raises MissingInputError naming notebook 05 when the group was never written.
    """
    path = require(group_path(paths, profile_name, group), made_by=MADE_BY)
    with np.load(path, allow_pickle=False) as data:
        packed = data["packed"]
        loops = np.unpackbits(packed, axis=-1, count=N_COLUMNS)
        codes = data["codes"] if "codes" in data.files else None
    if loops.shape[1:] != (LOOP_STEPS, N_COLUMNS):
        raise MissingInputError(f"{path} does not hold (N, 128, 93) loops: rerun {MADE_BY}")
    return loops, codes


def available_groups(paths: Paths, profile_name: str) -> list[str]:
    """Groups already stored for a profile, in :data:`GROUPS` order first, then any others."""
    folder = samples_dir(paths, profile_name)
    found = {p.stem for p in folder.glob("*.npz")} if folder.exists() else set()
    return [g for g in GROUPS if g in found] + sorted(found - set(GROUPS))


def export_midi(
    paths: Paths,
    profile_name: str,
    group: str,
    loops: np.ndarray,
    *,
    count: int = 4,
    tempo: float = 120,
) -> list[Path]:
    """Write the first ``count`` loops of a group as MIDI files in :func:`midi_dir` (via loopgen.audio)."""
    from loopgen import audio  # the audio module is optional for everything else here

    folder = midi_dir(paths, profile_name, group)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, loop in enumerate(np.asarray(loops)[:count]):
        target = folder / f"{group}_{i:03d}.mid"
        audio.write_midi(loop, target, tempo=tempo)
        written.append(target)
    return written
