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

import hashlib
import io
import json
import shlex
from pathlib import Path

import torch

from loopgen.atomic import exclusive_lock, write_bytes
from loopgen.cli import UserError, quoted

SHIPPED_DIR = Path(__file__).with_name("shipped")
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
    """``index.json``: file name -> {sha256, bytes, name, key, profile, data_key}; empty when absent."""
    try:
        return json.loads((Path(folder or SHIPPED_DIR) / INDEX_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export(checkpoint: Path | str, profile: str, folder: Path | None = None) -> Path:
    """Write the finished training checkpoint ``checkpoint`` as a shipped half-precision file; update the index."""
    from loopgen.train import read_checkpoint

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
            "sha256": _sha256(data),
            "bytes": len(data),
            "name": ckpt["name"],
            "key": ckpt["key"],
            "profile": profile,
            "data_key": ckpt.get("meta", {}).get("data_key"),
        }
        write_bytes(Path(folder) / INDEX_FILE, (json.dumps(index, indent=1, sort_keys=True) + "\n").encode())
    return out


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
    if entry is None or entry.get("sha256") != _sha256(data):
        raise ShippedWeightsError(f"shipped weights {shlex.quote(str(path))} do not match {INDEX_FILE} (damaged or "
                                  f"replaced): {_WAY_FORWARD}")
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if payload.get("key") != key or payload.get("name") != name or payload.get("format") != FORMAT:
        raise ShippedWeightsError(f"shipped weights {shlex.quote(str(path))} do not hold the run their name says: "
                                  f"{_WAY_FORWARD}")
    payload["model"] = {k: v.float() if v.is_floating_point() else v for k, v in payload["model"].items()}
    return payload


def cli_main(argv: list[str]) -> int:
    """``python -m loopgen ship --profile demo-long --model NAME [--seed S]``."""
    from loopgen import cli, dataset, profiles, train
    from loopgen.models import AUTOENCODERS
    from loopgen.paths import MissingInputError, Paths

    parser = cli.parser("ship", "write a finished checkpoint as shipped half-precision weights")
    parser.add_argument("--profile", default="demo-long", choices=sorted(profiles.PROFILES),
                        help="the profile the checkpoint was trained with")
    parser.add_argument("--model", required=True, choices=AUTOENCODERS, help="the model whose weights to ship")
    parser.add_argument("--seed", type=cli.nonnegative_int, default=0, help="the training seed")
    args = parser.parse_args(argv)
    profile = profiles.get(args.profile)
    paths = Paths()
    data_dir = dataset.dataset_dir(paths, profile.corpus.name)
    if not data_dir.exists():
        raise MissingInputError(f"{cli.quoted(data_dir)} is missing: run notebook 01_extract_loops.ipynb first")
    data_key = dataset.load_loops(data_dir).data_key
    path = train.checkpoint_path(
        args.model, profile.train, data_key=data_key, checkpoint_dir=paths.checkpoints, seed=args.seed
    )
    if not path.exists():
        raise MissingInputError(
            f"no trained {args.model} at {cli.quoted(path)}: run python -m loopgen train --profile {args.profile} "
            f"--model {args.model} first"
        )
    out = export(path, args.profile)
    print(f"{cli.quoted(out)} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0
