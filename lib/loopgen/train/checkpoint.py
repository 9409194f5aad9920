"""Checkpoints: their keys and file names, what they hold, saving them atomically and reading them safely.

A checkpoint is keyed by (model name, full model configuration, the training settings that change the
weights, the dataset's ``data_key``, the seed): ``checkpoint_dir/<name>[-variant]-<hash>.pt``. It holds the
model, optimiser, scheduler, RNG states (torch, numpy, python) and the history so far, and is written through
:mod:`loopgen.atomic` (a temporary ``.<name>.pt.<random>.<pid>.tmp`` renamed over it), so a killed run leaves
the previous checkpoint whole. Everything loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from loopgen.atomic import atomic_path, exclusive_lock, remove_stale_temporaries
from loopgen.cli import UserError
from loopgen.models import build
from loopgen.profiles import TrainSettings
from loopgen.train.schedule import batch_size_for, epochs_for, is_gaussian, is_prior

CHECKPOINT_FORMAT = 1
ARCHITECTURE_VERSION = 1  # bump when a model's code changes so that old checkpoints are not reused
TEMP_PATTERN = ".*.pt.*.tmp"  # what save_checkpoint writes: .<checkpoint>.<random>.<pid>.tmp


# ------------------------------------------------------------------------------------------ model arguments
def resolved_kwargs(name: str, settings: TrainSettings, model_kwargs: dict | None = None) -> dict:
    """Model constructor arguments of ``name``: what ``settings`` chooses (``TrainSettings.model_kwargs``: the
    encoder width, AR output bias, dead-code restart, VQ loss reduction, then the profile's per-model
    arguments), overridden by ``model_kwargs``."""
    return {**settings.recipe(name).model_kwargs(name), **(model_kwargs or {})}


with_settings = resolved_kwargs  # the name issue 10's code and tests use


def model_config(name: str, model_kwargs: dict | None = None) -> dict:
    """The full constructor configuration of ``name`` (defaults filled in) for ``model_kwargs``."""
    return dict(build(name, **(model_kwargs or {})).config)


def vq_kwargs_from(t: int | None, L: int | None, K: int | None) -> dict:  # noqa: N803 - the paper's letters
    """VQ-VAE constructor arguments from the paper's (t, L, K); ``None`` keeps a default."""
    out = {}
    if t is not None:
        out["latent_steps"] = int(t)
    if L is not None:
        out["latent_dim"] = int(L)
    if K is not None:
        out["num_codes"] = int(K)
    return out


# ------------------------------------------------------------------------------------------ keys and paths
def weight_settings(name: str, settings: TrainSettings) -> dict:
    """The training settings that change ``name``'s weights (validation caps and other models' epochs do not)."""
    settings = settings.recipe(name)
    keyed = {
        "epochs": epochs_for(name, settings),
        "batch_size": batch_size_for(name, settings),
        "max_train_loops": settings.max_train_loops,
        "lr_max": settings.lr_max,
        "lr_min": settings.lr_min,
        "weight_decay": settings.weight_decay,
    }
    if is_gaussian(name):
        keyed["kl_anneal_fraction"] = settings.kl_anneal_fraction
    if settings.precision != "auto":  # keyed only when set, so earlier checkpoints keep their keys
        keyed["precision"] = settings.precision
    if settings.kl_beta_max != 1.0 and is_gaussian(name):
        keyed["kl_beta_max"] = settings.kl_beta_max
    # the short-run recipe enters the key only when used, so the keys of plain settings stay as they were
    for extra, plain in (("warmup_steps", 0), ("grad_clip", None), ("keep_best", False)):
        if getattr(settings, extra) != plain:
            keyed[extra] = getattr(settings, extra)
    return keyed


def checkpoint_key(
    name: str,
    settings: TrainSettings,
    *,
    data_key: str,
    model_kwargs: dict | None = None,
    seed: int = 0,
    vq_key: str | None = None,
) -> str:
    """12-hex-digit hash of everything that determines the trained weights."""
    payload = {
        "name": name,
        "architecture": ARCHITECTURE_VERSION,
        "config": model_config(name, resolved_kwargs(name, settings, model_kwargs)),
        "settings": weight_settings(name, settings),
        "data_key": str(data_key),
        "seed": int(seed),
    }
    if is_prior(name):
        if not vq_key:
            raise ValueError("the prior's checkpoint is keyed by its VQ-VAE: pass vq_key")
        payload["vq_key"] = vq_key
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _variant(name: str, config: dict) -> str:
    if name == "vq_vae":
        return f"-t{config['latent_steps']}-L{config['latent_dim']}-K{config['num_codes']}"
    if is_prior(name):
        return f"-K{config['num_codes']}"
    return ""


def checkpoint_path(
    name: str,
    settings: TrainSettings,
    *,
    data_key: str,
    checkpoint_dir: Path | str,
    model_kwargs: dict | None = None,
    seed: int = 0,
    vq_key: str | None = None,
) -> Path:
    """``checkpoint_dir/<name>[-t..-L..-K..]-<hash>.pt``."""
    key = checkpoint_key(
        name, settings, data_key=data_key, model_kwargs=model_kwargs, seed=seed, vq_key=vq_key
    )
    config = model_config(name, resolved_kwargs(name, settings, model_kwargs))
    return Path(checkpoint_dir) / f"{name}{_variant(name, config)}-{key}.pt"


# ------------------------------------------------------------------------------------------- RNG states
def weights_digest(model: torch.nn.Module) -> str:
    """12 hex digits of SHA-256 over a model's parameters and buffers (names and bytes, in state-dict order):
    two models with the same digest hold the same weights, wherever they were loaded from."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32 if tensor.is_floating_point() else tensor.dtype).numpy().tobytes())
    return h.hexdigest()[:12]


def rng_state(device: torch.device) -> dict:
    """The torch, numpy (legacy global) and python RNG states, as tensors and numbers ``weights_only`` loads."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002 - the legacy global state seed_everything sets
    state = {
        "torch": torch.get_rng_state(),
        "python": [int(version), [int(v) for v in internal], gauss],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"].cpu())
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    np.random.set_state(  # noqa: NPY002 - restore the legacy global state
        (
            "MT19937",
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["cached_gaussian"],
        )
    )
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# --------------------------------------------------------------------------------------- saving, reading
def save_checkpoint(checkpoint: dict, path: Path) -> None:
    """Write ``checkpoint`` to ``path`` atomically (a killed run leaves the previous file whole)."""
    with atomic_path(path, with_pid=True) as tmp:
        torch.save(checkpoint, tmp)


class CheckpointError(UserError):
    """A checkpoint file that cannot be read (truncated, damaged, or not a loopgen checkpoint)."""


def read_checkpoint(path: Path | str, device: torch.device | str = "cpu") -> dict:
    """Load a checkpoint dictionary safely (``weights_only=True``, so loading never executes code).

    A truncated, damaged or foreign file raises :class:`CheckpointError` naming the file and how to retrain;
    a missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as err:  # noqa: BLE001 - zip, unpickling, EOF, safety refusals: all "unreadable"
        reason = " ".join(str(err).split())[:160] or type(err).__name__
        raise CheckpointError(
            f"checkpoint {path} is damaged or incomplete ({type(err).__name__}: {reason}); "
            f"delete it and run again, or retrain with 'python -m loopgen train ... --force'"
        ) from err
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(
            f"{path} is not a loopgen checkpoint; delete it and run again, "
            "or retrain with 'python -m loopgen train ... --force'"
        )
    return ckpt


@contextlib.contextmanager
def training_lock(path: Path | str, *, wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on checkpoint ``path`` (file ``<path>.lock``): two trainings of one model never
    overlap; the second is refused at once (``wait=False``, :class:`loopgen.atomic.LockedError`) or waits.

    Inside the lock, temporaries that killed runs left in the checkpoint folder (``.<name>.pt.*.<pid>.tmp``
    whose process is gone) are removed.
    """
    path = Path(path)
    with exclusive_lock(path.with_name(path.name + ".lock"), what=f"checkpoint {path}", wait=wait):
        for stale in remove_stale_temporaries(path.parent, TEMP_PATTERN, pid_group=-2):
            print(f"removed {stale.name}, a temporary file left by a killed training run", file=sys.stderr)
        yield path
