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
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from loopgen.errors import UserError
from loopgen.models import build
from loopgen.run.profiles import TrainSettings
from loopgen.runtime import device as device_mod
from loopgen.store.atomic import atomic_path, exclusive_lock, is_locked, remove_stale_temporaries
from loopgen.store.digest import ContentDigest, json_digest, tensor_bytes
from loopgen.train.schedule import batch_size_for, epochs_for, is_gaussian, is_prior

try:
    import numpy as np
except ModuleNotFoundError:  # a box with only torch (benchmarks/gpu_check.py): no numpy RNG state to keep
    np = None

CHECKPOINT_FORMAT = 1
ARCHITECTURE_VERSION = 1  # bump when a model's code changes so that old checkpoints are not reused
TEMP_PATTERN = ".*.pt.*.tmp"  # what save_checkpoint writes: .<checkpoint>.<random>.<pid>.tmp


# ------------------------------------------------------------------------------------------ model arguments
def resolved_kwargs(name: str, settings: TrainSettings, model_kwargs: dict | None = None) -> dict:
    """Model constructor arguments of ``name``: what ``settings`` chooses (``TrainSettings.model_kwargs``: the
    encoder width, AR output bias, dead-code restart, VQ loss reduction, then the profile's per-model
    arguments), overridden by ``model_kwargs``."""
    return {**settings.recipe(name).model_kwargs(name), **(model_kwargs or {})}


with_settings = resolved_kwargs  # the older name, still used by callers


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
    for extra in ("augment_rotate_bars", "augment_transpose"):  # augmentation enters the key only when used
        if getattr(settings, extra):
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
        digest.bytes(tensor_bytes(tensor.detach().to("cpu", torch.float32 if tensor.is_floating_point() else tensor.dtype)))
    return digest.hex(12)


def rng_state(device: torch.device) -> dict:
    """The torch, numpy (legacy global) and python RNG states, as tensors and numbers ``weights_only`` loads."""
    version, internal, gauss = random.getstate()
    state = {"torch": torch.get_rng_state(), "python": [int(version), [int(v) for v in internal], gauss]}
    if np is not None:  # without numpy (a box with only torch) there is no numpy state to keep
        np_state = np.random.get_state()  # noqa: NPY002 - the legacy global state seed_everything sets
        state["numpy"] = {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
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
    npst = state.get("numpy")
    if npst is not None and np is not None:  # absent when saved, or restored, where numpy is not installed
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
# The older format a checkpoint without a digest may be: CHECKPOINT_FORMAT 1 as written before the digest came
# (December 2026), when the saved training settings did not yet hold these fields. Every checkpoint written
# since holds them and a digest, so one that holds them without a digest had its digest removed.
FORMATS_BEFORE_THE_DIGEST = (1,)
SETTINGS_SINCE_THE_DIGEST = ("validate_every", "checkpoint_every")
_WRITE_FAILED = re.compile(r"file write failed|unexpected pos|inline_container|PytorchStreamWriter", re.IGNORECASE)


def contents_digest(checkpoint: dict) -> str:
    """SHA-256 (hex) over every entry of ``checkpoint`` but its digest: the state dicts' tensors (dtype, shape,
    bytes), the history, the settings and the RNG states. The same contents give the same digest wherever
    they were loaded (CPU or GPU)."""
    return ContentDigest().value({k: v for k, v in checkpoint.items() if k != DIGEST_FIELD}).hex()


def save_checkpoint(checkpoint: dict, path: Path) -> None:
    """Write ``checkpoint`` to ``path`` atomically (a killed run leaves the previous file whole), with the
    digest of its contents, which :func:`read_checkpoint` checks."""
    sealed = {**checkpoint, DIGEST_FIELD: contents_digest(checkpoint)}
    try:
        with atomic_path(path, with_pid=True) as tmp:
            torch.save(sealed, tmp)
    except RuntimeError as err:  # PyTorch's writer reports a full disk as "[enforce fail at inline_container.cc]"
        if not _WRITE_FAILED.search(str(err)):
            raise
        raise CheckpointError(_write_failed(Path(path), sealed)) from err


def _tensor_bytes(value: object) -> int:
    """The bytes of every tensor in a nested checkpoint value (about what the file needs on disk)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def _write_failed(path: Path, sealed: dict) -> str:
    """One line for a checkpoint the disk refused: why (as far as can be told) and which checkpoint is kept."""
    shown = shlex.quote(str(path))
    try:
        full = shutil.disk_usage(path.parent).free < _tensor_bytes(sealed) + (1 << 20)
    except OSError:
        full = True
    why = "No space left on device" if full else "The disk refused the write"
    kept = (f"the last good checkpoint is {shown}, kept as it was: the next run resumes from it" if path.exists()
            else "no checkpoint of this run was written yet")
    return f"{why}: {shown}: free some disk space and run the command again; {kept}"


class CheckpointError(UserError):
    """A checkpoint file that cannot be used (truncated, damaged, tampered with, not a loopgen checkpoint, or not
    the one asked for), or one the disk refused to write."""


@dataclasses.dataclass(frozen=True)
class CheckpointIdentity:
    """What a checkpoint must hold to be the one asked for: the model's name, its checkpoint key, its full
    configuration and the key of the dataset it was trained on (``meta["data_key"]``)."""

    name: str
    key: str
    config: dict
    data_key: str

    @classmethod
    def held_by(cls, ckpt: dict) -> CheckpointIdentity:
        """The identity ``ckpt`` says it has (``None`` for what it lacks)."""
        meta = ckpt.get("meta") if isinstance(ckpt.get("meta"), dict) else {}
        config = ckpt.get("config")
        return cls(ckpt.get("name"), ckpt.get("key"), config if isinstance(config, dict) else None,
                   meta.get("data_key"))

    def describe(self) -> str:
        """'vq_vae (t32 L16 K512), key 0123456789ab, trained on dataset 0123456789abcdef'."""
        try:
            variant = _variant(str(self.name), self.config or {}).strip("-").replace("-", " ")
        except (KeyError, TypeError):  # a configuration that is not this model's
            variant = ""
        name = f"{self.name} ({variant})" if variant else self.name or "no model name"
        return f"{name}, key {self.key or 'none'}, trained on dataset {self.data_key or 'unknown'}"


def _plain(value: object) -> object:
    """Tuples as lists, recursively: a configuration compares the same however it was stored."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _config_difference(held: dict | None, wanted: dict) -> str:
    """'; its configuration differs: latent_dim 32 (asked 16)' for the first differing entries, else ''."""
    if held is None:
        return "; it holds no configuration"
    held, wanted = _plain(held), _plain(wanted)
    names = sorted(k for k in set(held) | set(wanted) if held.get(k, "absent") != wanted.get(k, "absent"))
    if not names:
        return ""
    shown = ", ".join(f"{k} {held.get(k, 'absent')} (asked {wanted.get(k, 'absent')})" for k in names[:3])
    return f"; its configuration differs: {shown}{', ...' if len(names) > 3 else ''}"


def check_identity(ckpt: dict, path: Path | str, expected: CheckpointIdentity) -> None:
    """Refuse ``ckpt`` (read from ``path``) in one line, naming the file and what it holds, unless its name, key,
    configuration and dataset key are the ones ``expected``: a checkpoint copied or renamed over another, or one
    whose stored configuration disagrees with its file name, is never loaded as the model asked for."""
    held = CheckpointIdentity.held_by(ckpt)
    config_note = _config_difference(held.config, expected.config)
    same = (held.name, held.key, str(held.data_key)) == (expected.name, expected.key, str(expected.data_key))
    if same and not config_note:
        return
    shown_note = config_note if held.name == expected.name else ""  # another model's: its name says enough
    raise CheckpointError(
        f"checkpoint {shlex.quote(str(path))} is not the one asked for: it holds {held.describe()}, not "
        f"{expected.describe()}{shown_note} (copied or renamed into place?); {RETRAIN_HINT}"
    )


def _from_before_the_digest(ckpt: dict) -> bool:
    """True when ``ckpt``, which has no digest, is a checkpoint of the format loopgen wrote before the digest."""
    settings = ckpt.get("settings")
    newer = isinstance(settings, dict) and any(field in settings for field in SETTINGS_SINCE_THE_DIGEST)
    return ckpt.get("format", 1) in FORMATS_BEFORE_THE_DIGEST and not newer


def _non_finite(state: object) -> str | None:
    """The name of the first floating tensor in a state dict holding NaN or infinity, else None."""
    if not isinstance(state, dict):
        return None
    for name, tensor in state.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return str(name)
    return None


def read_checkpoint(
    path: Path | str, device: torch.device | str = "cpu", *, expect: CheckpointIdentity | None = None
) -> dict:
    """Load a checkpoint dictionary safely (``weights_only=True``, so loading never executes code) and check it.

    Refused with :class:`CheckpointError`, one line naming the file and what to do: a truncated or damaged
    file, one whose contents differ from the digest it was saved with, one without a digest that is not of the
    format written before the digest existed (:data:`FORMATS_BEFORE_THE_DIGEST`; such older checkpoints load
    without that check), one with NaN or infinite weights, a file that asks to run code on load (not a loopgen
    checkpoint) and, with ``expect``, a checkpoint that is not the one asked for (:func:`check_identity`). A
    missing file raises ``FileNotFoundError``.
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
    if digest is None and not _from_before_the_digest(ckpt):
        raise CheckpointError(
            f"checkpoint {shown} has no digest, though every checkpoint of its kind is saved with one (edited by "
            f"hand?); {RETRAIN_HINT}"
        )
    for where, state in (("", ckpt["model"]), ("best-epoch ", (ckpt.get("best") or {}).get("model"))):
        bad = _non_finite(state)
        if bad is not None:
            raise CheckpointError(
                f"checkpoint {shown} holds non-finite {where}weights (NaN or infinity in {bad}): the file is "
                f"damaged or the training diverged; {RETRAIN_HINT}"
            )
    if expect is not None:
        check_identity(ckpt, path, expect)
    return ckpt


@contextlib.contextmanager
def training_lock(path: Path | str, *, wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on checkpoint ``path`` (file ``<path>.lock``): two trainings of one model never
    overlap; the second is refused at once (``wait=False``, :class:`loopgen.store.atomic.LockedError`) or waits.

    Inside the lock, temporaries that killed runs left in the checkpoint folder (``.<name>.pt.*.<pid>.tmp``
    whose process is gone) are removed.
    """
    path = Path(path)
    lock = path.with_name(path.name + ".lock")
    if wait and is_locked(lock):
        print(f"{path.name}: another run is training this checkpoint; waiting for it to finish", file=sys.stderr)
    with exclusive_lock(lock, what=f"checkpoint {path}", wait=wait):
        for stale in remove_stale_temporaries(path.parent, TEMP_PATTERN, pid_group=-2):
            print(f"removed {stale.name}, a temporary file left by a killed training run", file=sys.stderr)
        yield path
