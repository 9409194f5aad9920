"""The writing side of the shipped weights: a finished checkpoint -> ``lib/loopgen/shipped/<name>-<key>.pt``.

:mod:`loopgen.train.shipped` reads and verifies those files; this module writes them and their ``index.json``
entry (``python -m loopgen ship``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from loopgen.errors import quoted
from loopgen.store.atomic import exclusive_lock, write_bytes
from loopgen.train.checkpoint import read_checkpoint
from loopgen.train.shipped import FORMAT, INDEX_FILE, SHIPPED_DIR, read_index, sha256_of, shipped_path


def export(checkpoint: Path | str, profile: str, folder: Path | None = None) -> Path:
    """Write the finished training checkpoint ``checkpoint`` as a shipped half-precision file; update the index."""
    folder = Path(folder or SHIPPED_DIR)
    ckpt = read_checkpoint(checkpoint)
    if not ckpt.get("finished"):
        raise ValueError(f"{quoted(checkpoint)} is not finished ({ckpt.get('epoch')}/{ckpt.get('total_epochs')} epochs)")
    state = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    payload = {
        "format": FORMAT,
        "name": ckpt["name"],
        "key": ckpt["key"],
        "profile": profile,
        "config": ckpt["config"],
        "meta": ckpt.get("meta", {}),
        "best_epoch": ckpt.get("best_epoch"),
        "history": ckpt["history"],
        "model": state,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    out = shipped_path(ckpt["name"], ckpt["key"], folder)
    with exclusive_lock(Path(folder) / (INDEX_FILE + ".lock"), what=f"the shipped weights' {INDEX_FILE}", wait=True):
        write_bytes(out, data)
        index = read_index(folder)
        index[out.name] = {
            "sha256": sha256_of(data),
            "bytes": len(data),
            "name": ckpt["name"],
            "key": ckpt["key"],
            "profile": profile,
            "data_key": ckpt.get("meta", {}).get("data_key"),
        }
        write_bytes(Path(folder) / INDEX_FILE, (json.dumps(index, indent=1, sort_keys=True) + "\n").encode())
    return out
