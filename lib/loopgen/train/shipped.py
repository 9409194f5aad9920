"""Weights shipped with the package, for the models a CPU demo cannot train in minutes.

The two LSTM-VAEs run a 128-step LSTM per loop: on two CPU cores a few minutes of training leave them
decoding silence or noise from N(0, I). As showyourwork caches expensive steps, the ``demo-long`` profile
trains them with the *same code and data* for longer, and their finished weights ship in
``lib/loopgen/shipped/`` (half precision, well under 3 MB each). A demo recipe that names
``shipped_from="demo-long"`` then installs them instead of training, **only when they match**: the file's
checkpoint key (model configuration, training settings, the dataset's content hash ``data_key``, seed) must
equal the key the demo-long profile gives on this machine's dataset, and its SHA-256 must equal the one in
``index.json``. Otherwise the demo trains its own short recipe, and every table says which rows come from
shipped weights (:func:`loopgen.train.weights_source`).

Re-made by one command per model (after notebook 01 has extracted the demo dataset)::

    python -m loopgen train --profile demo-long --model nonar_lstm_vae   # ~1 h on 2 CPU cores
    python -m loopgen ship --profile demo-long --model nonar_lstm_vae    # writes shipped/<model>-<key>.pt
"""

from __future__ import annotations

import io
import json
import shlex
from pathlib import Path

import torch

from loopgen.errors import UserError
from loopgen.store.digest import bytes_digest

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "shipped"
INDEX_FILE = "index.json"
FORMAT = 1


_WAY_FORWARD = (
    "re-install the package (in a clone: git checkout -- lib/loopgen/shipped; otherwise pip install "
    "--force-reinstall loopgen), or delete that file to train the short demo recipe here instead"
)


class ShippedWeightsError(UserError, ValueError):
    """Shipped weights that fail their check against ``index.json`` (one line saying what to do)."""


def shipped_path(name: str, key: str, folder: Path | None = None) -> Path:
    """``shipped/<name>-<key>.pt``."""
    return Path(folder or SHIPPED_DIR) / f"{name}-{key}.pt"


def read_index(folder: Path | None = None) -> dict:
    """``index.json``: file name -> {sha256, bytes, name, key, profile, data_key}; empty when absent or unreadable.
    Valid JSON of another type (a list, a number) raises :class:`ShippedWeightsError` (one line, what to do)."""
    path = Path(folder or SHIPPED_DIR) / INDEX_FILE
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(index, dict):
        raise ShippedWeightsError(f"{shlex.quote(str(path))} is damaged (a JSON {type(index).__name__}, not an object "
                                  "of file records): re-install the package (in a clone: git checkout -- "
                                  "lib/loopgen/shipped; otherwise pip install --force-reinstall loopgen)")
    return index


def sha256_of(data: bytes) -> str:
    """The SHA-256 hex digest ``index.json`` records for a shipped file."""
    return bytes_digest(data)


def load(name: str, key: str, folder: Path | None = None) -> dict | None:
    """The shipped payload of model ``name`` with checkpoint key ``key``, checked; ``None`` if none ships.

    Raises :class:`ShippedWeightsError` (a ``ValueError``) when a file is there but its SHA-256 or its recorded
    key does not match, saying what to do.
    """
    path = shipped_path(name, key, folder)
    if not path.is_file():
        return None
    data = path.read_bytes()
    entry = read_index(folder).get(path.name)
    if not isinstance(entry, dict) or entry.get("sha256") != sha256_of(data):
        raise ShippedWeightsError(f"shipped weights {shlex.quote(str(path))} do not match {INDEX_FILE} (damaged or "
                                  f"replaced): {_WAY_FORWARD}")
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or (payload.get("key"), payload.get("name"), payload.get("format")) != (
        key, name, FORMAT
    ):
        raise ShippedWeightsError(f"shipped weights {shlex.quote(str(path))} do not hold the run their name says: "
                                  f"{_WAY_FORWARD}")
    payload["model"] = {k: v.float() if v.is_floating_point() else v for k, v in payload["model"].items()}
    return payload
