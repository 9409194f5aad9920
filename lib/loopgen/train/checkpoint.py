"""Checkpoints: their keys and file names, what they hold, saving them atomically and reading them safely.

A checkpoint is keyed by (model name, full model configuration, the training settings that change the
weights, the dataset's ``data_key``, the seed): ``checkpoint_dir/<name>[-variant]-<hash>.pt``. It holds the
model, optimiser, scheduler, RNG states (torch, numpy, python), the history so far and a SHA-256 digest of all
of that (checked on every load, with the weights' finiteness), and is written through
:mod:`loopgen.store.atomic` (a temporary ``.<name>.pt.<random>.<pid>.tmp`` renamed over it), so a killed run leaves
the previous checkpoint whole. Everything loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pickle
import random
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from loopgen.errors import UserError
from loopgen.models import build
from loopgen.run.profiles import TrainSettings
from loopgen.runtime import device as device_mod
from loopgen.store.atomic import atomic_path, exclusive_lock, remove_stale_temporaries
from loopgen.store.digest import ContentDigest, json_digest
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
def keyed_precision(precision: str, device: torch.device | str | None = None) -> str:
    """The precision a checkpoint is keyed by: "auto" resolved on ``device`` (default: the device this machine
    trains on, :func:`loopgen.runtime.device.pick_device`), any other setting as given ("tf32" stays "tf32" on a CPU,
    so a profile's keys do not depend on where they are computed)."""
    if precision != "auto":
        return precision
    dev = device_mod.pick_device(warn=False) if device is None else torch.device(device)
    return device_mod.resolve_precision(dev, "auto")


def settings_on(settings: TrainSettings, device: torch.device | str) -> TrainSettings:
    """``settings`` with precision "auto" resolved for ``device`` (what a run on ``device`` uses and is keyed
    by); other precisions unchanged."""
    if settings.precision != "auto":
        return settings
    return dataclasses.replace(settings, precision=keyed_precision("auto", device))


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
    precision = keyed_precision(settings.precision)
    if precision != "fp32":  # float32 is unkeyed, so the keys of every float32 checkpoint stay as they were
        keyed["precision"] = precision
    if settings.kl_beta_max != 1.0 and is_gaussian(name):
        keyed["kl_beta_max"] = settings.kl_beta_max
    if settings.keep_best and settings.validate_every != 1:  # which epochs compete for "best"
        keyed["validate_every"] = settings.validate_every
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
    return json_digest(payload, 12)


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
    digest = ContentDigest()
    for name, tensor in model.state_dict().items():
        digest.text(name)
        digest.bytes(tensor.detach().to("cpu", torch.float32 if tensor.is_floating_point() else tensor.dtype).numpy().tobytes())
    return digest.hex(12)


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
    """Restore what :func:`rng_state` saved, wherever the state's tensors were loaded to (they are copied to
    the CPU first). CUDA generators are restored for the devices both the saved run and this process have: a
    run saved with 8 visible GPUs resumes under ``CUDA_VISIBLE_DEVICES=0`` (and the other way round)."""
    torch.set_rng_state(state["torch"].detach().to("cpu", torch.uint8))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    np.random.set_state(  # noqa: NPY002 - restore the legacy global state
        (
            "MT19937",
            npst["keys"].detach().cpu().numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["cached_gaussian"],
        )
    )
    if torch.device(device).type == "cuda" and state.get("cuda"):
        saved = list(state["cuda"])
        for index in range(min(len(saved), torch.cuda.device_count())):
            torch.cuda.set_rng_state(saved[index].detach().to("cpu", torch.uint8), index)


# --------------------------------------------------------------------------------------- saving, reading
DIGEST_FIELD = "digest"  # SHA-256 over everything else the checkpoint holds (absent in checkpoints before it)
RETRAIN_HINT = "delete it and run again (it is retrained), or retrain with 'python -m loopgen train ... --force'"
_CODE_ON_LOAD = re.compile(r"GLOBAL|REDUCE|Trying to call|Unsupported class|allowed global", re.IGNORECASE)


def contents_digest(checkpoint: dict) -> str:
    """SHA-256 (hex) over every entry of ``checkpoint`` but its digest: the state dicts' tensors (dtype, shape,
    bytes), the history, the settings and the RNG states. The same contents give the same digest wherever
    they were loaded (CPU or GPU)."""
    return ContentDigest().value({k: v for k, v in checkpoint.items() if k != DIGEST_FIELD}).hex()


def save_checkpoint(checkpoint: dict, path: Path) -> None:
    """Write ``checkpoint`` to ``path`` atomically (a killed run leaves the previous file whole), with the
    digest of its contents, which :func:`read_checkpoint` checks."""
    sealed = {**checkpoint, DIGEST_FIELD: contents_digest(checkpoint)}
    with atomic_path(path, with_pid=True) as tmp:
        torch.save(sealed, tmp)


class CheckpointError(UserError):
    """A checkpoint file that cannot be used (truncated, damaged, tampered with, or not a loopgen checkpoint)."""


def _non_finite(state: object) -> str | None:
    """The name of the first floating tensor in a state dict holding NaN or infinity, else None."""
    if not isinstance(state, dict):
        return None
    for name, tensor in state.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return str(name)
    return None


def read_checkpoint(path: Path | str, device: torch.device | str = "cpu") -> dict:
    """Load a checkpoint dictionary safely (``weights_only=True``, so loading never executes code) and check it.

    Refused with :class:`CheckpointError`, one line naming the file and what to do: a truncated or damaged
    file, one whose contents differ from the digest it was saved with, one with NaN or infinite weights, and a
    file that asks to run code on load (not a loopgen checkpoint). Checkpoints written before the digest
    existed (no ``digest`` entry) load without that check. A missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    shown = shlex.quote(str(path))
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except pickle.UnpicklingError as err:
        text = str(err)
        if "Weights only load failed" in text and _CODE_ON_LOAD.search(text):
            raise CheckpointError(
                f"{shown} is not a loopgen checkpoint (it asks to run code on load); refused: delete it, and "
                "retrain with 'python -m loopgen train ... --force' if it stood for one"
            ) from None
        raise CheckpointError(f"checkpoint {shown} is damaged or incomplete (unreadable pickle); {RETRAIN_HINT}") from err
    except Exception as err:  # noqa: BLE001 - zip, EOF, storage errors: all "unreadable"
        reason = " ".join(str(err).split()).split(". ")[0][:160] or type(err).__name__
        raise CheckpointError(
            f"checkpoint {shown} is damaged or incomplete ({type(err).__name__}: {reason}); {RETRAIN_HINT}"
        ) from err
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise CheckpointError(f"{shown} is not a loopgen checkpoint; {RETRAIN_HINT}")
    digest = ckpt.get(DIGEST_FIELD)
    if digest is not None and digest != contents_digest(ckpt):
        raise CheckpointError(
            f"checkpoint {shown} is damaged: its contents do not match the digest it was saved with; {RETRAIN_HINT}"
        )
    for where, state in (("", ckpt["model"]), ("best-epoch ", (ckpt.get("best") or {}).get("model"))):
        bad = _non_finite(state)
        if bad is not None:
            raise CheckpointError(
                f"checkpoint {shown} holds non-finite {where}weights (NaN or infinity in {bad}): the file is "
                f"damaged or the training diverged; {RETRAIN_HINT}"
            )
    return ckpt


@contextlib.contextmanager
def training_lock(path: Path | str, *, wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on checkpoint ``path`` (file ``<path>.lock``): two trainings of one model never
    overlap; the second is refused at once (``wait=False``, :class:`loopgen.store.atomic.LockedError`) or waits.

    Inside the lock, temporaries that killed runs left in the checkpoint folder (``.<name>.pt.*.<pid>.tmp``
    whose process is gone) are removed.
    """
    path = Path(path)
    with exclusive_lock(path.with_name(path.name + ".lock"), what=f"checkpoint {path}", wait=wait):
        for stale in remove_stale_temporaries(path.parent, TEMP_PATTERN, pid_group=-2):
            print(f"removed {stale.name}, a temporary file left by a killed training run", file=sys.stderr)
        yield path
