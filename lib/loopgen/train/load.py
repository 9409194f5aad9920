"""Loading a finished model, with a message naming the notebook (and its parameters) that makes it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from loopgen import errors, registry
from loopgen.models import MODELS, build
from loopgen.run.profiles import PROFILES, TrainSettings
from loopgen.runtime.device import pick_device
from loopgen.store.paths import MissingInputError
from loopgen.train.checkpoint import (
    RETRAIN_HINT,
    CheckpointError,
    CheckpointIdentity,
    checkpoint_key,
    checkpoint_path,
    model_config,
    read_checkpoint,
    resolved_kwargs,
    settings_on,
)
from loopgen.train.recipes import shipped_settings, weights_source
from loopgen.train.schedule import is_prior

if TYPE_CHECKING:  # pandas is imported when a history is returned (a box with only torch trains without it)
    import pandas as pd

TRAIN_NOTEBOOK = "02_train_autoencoders.ipynb"
PRIOR_NOTEBOOK = "03_train_prior.ipynb"
MASKED_PRIOR_NOTEBOOK = "09_beyond_the_paper.ipynb"


def _profile_of(settings: TrainSettings) -> tuple[str, bool]:
    """The profile whose training settings these are, and whether they are its Table 2 recipe."""
    for pname, profile in PROFILES.items():  # "auto" may have been resolved for a device: compare without it
        if profile.train == dataclasses.replace(settings, precision=profile.train.precision):
            return pname, False
    for pname, profile in PROFILES.items():
        if profile.table2_train == dataclasses.replace(settings, precision=profile.table2_train.precision):
            return pname, True
    return "<your profile>", False


def _how_to_make(
    name: str, settings: TrainSettings, model_kwargs: dict | None, vq_kwargs: dict | None, seed: int = 0
) -> str:
    profile, table2 = _profile_of(settings)
    seed_param = f" -p SEED {seed}" if seed else ""
    if is_prior(name):
        vq = model_config("vq_vae", vq_kwargs)
        extra = ""
        if (vq["latent_steps"], vq["latent_dim"], vq["num_codes"]) != registry.VQ_DEFAULT:
            extra = " (for this VQ-VAE variant)"
        notebook = PRIOR_NOTEBOOK if name == "prior" else MASKED_PRIOR_NOTEBOOK
        return f"run notebook {notebook} with -p PROFILE {profile}{seed_param}{extra}"
    params = f"-p PROFILE {profile}{seed_param} -p MODEL {name}"
    if name == "vq_vae":
        c = model_config("vq_vae", model_kwargs)
        params += f" -p VQ_T {c['latent_steps']} -p VQ_L {c['latent_dim']} -p VQ_K {c['num_codes']}"
        params += " -p TABLE2 True" if table2 else ""
    return f"run notebook {TRAIN_NOTEBOOK} with {params}"


def load_trained(
    name: str,
    settings: TrainSettings,
    *,
    data_key: str,
    model_kwargs: dict | None = None,
    checkpoint_dir: Path | str,
    seed: int = 0,
    vq_key: str | None = None,
    vq_kwargs: dict | None = None,
    device: torch.device | str | None = None,
) -> tuple[nn.Module, pd.DataFrame]:
    """The finished model ``name`` trained under these settings on this dataset, in eval mode, and its history.

    For ``name="prior"`` give the VQ-VAE either by ``vq_key`` or by ``vq_kwargs`` (default: the paper's
    t=32, L=16, K=512); the prior's K and t follow from that VQ-VAE. Raises
    :class:`loopgen.store.paths.MissingInputError` naming the notebook (and its parameters) that trains it, and
    :class:`loopgen.train.checkpoint.CheckpointError` (one line) for a file that is not the checkpoint asked for:
    its name, key, configuration and dataset key must be the ones these arguments give. ``device``: where the
    model is loaded (default: the one training uses, :func:`~loopgen.runtime.device.pick_device`). The history's
    ``attrs["kept_epoch"]`` is the epoch whose weights the model holds (the best one with ``keep_best``).
    """
    import pandas as pd

    device = pick_device() if device is None else device
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    kwargs = dict(model_kwargs or {})
    if weights_source(name, settings, data_key=data_key, checkpoint_dir=checkpoint_dir, seed=seed) != "trained here":
        settings = shipped_settings(name, settings)
    # precision "auto" means what it resolved to where the model was trained: this device's first, then the others
    candidates = [settings_on(settings, device)]
    if settings.precision == "auto":
        candidates += [dataclasses.replace(settings, precision=p) for p in ("bf16", "fp16", "fp32")]
    for candidate in candidates:
        found = _path_of(name, candidate, data_key, checkpoint_dir, kwargs, seed, vq_key, vq_kwargs)
        if found[0].exists():
            break
    else:
        candidate = candidates[0]
    settings = candidate
    path, kwargs, key = _path_of(name, settings, data_key, checkpoint_dir, kwargs, seed, vq_key, vq_kwargs)
    how = _how_to_make(name, settings, kwargs, vq_kwargs, seed)
    if not path.exists():
        raise MissingInputError(f"no trained {name} at {path}: {how}.")
    config = model_config(name, resolved_kwargs(name, settings, kwargs))
    expected = CheckpointIdentity(name, key, config, str(data_key))
    ckpt = read_checkpoint(path, "cpu", expect=expected)  # to the CPU first; load_state_dict copies to the device
    if not ckpt.get("finished"):
        raise MissingInputError(
            f"{path} is unfinished ({ckpt.get('epoch')}/{ckpt.get('total_epochs')} epochs): {how} to finish it."
        )
    model = build(name, **resolved_kwargs(name, settings, kwargs)).to(device)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError:  # PyTorch lists every missing and unexpected key: one line instead
        raise CheckpointError(
            f"checkpoint {errors.quoted(path)} holds weights that do not fit {name} ({len(ckpt['model'])} tensors "
            f"for a model of {len(model.state_dict())}); {RETRAIN_HINT}"
        ) from None
    model.eval()
    history = pd.DataFrame(ckpt["history"])
    # the epoch whose weights were kept: the best validated one (keep_best), else the last
    history.attrs["kept_epoch"] = int(ckpt.get("best_epoch") or ckpt.get("epoch") or len(history))
    return model, history


def _path_of(name, settings, data_key, checkpoint_dir, kwargs, seed, vq_key, vq_kwargs) -> tuple[Path, dict, str]:
    """The checkpoint path of ``name`` under ``settings``, the model arguments it is keyed with and its key."""
    kwargs = dict(kwargs)
    if is_prior(name):
        vq_config = model_config("vq_vae", resolved_kwargs("vq_vae", settings, vq_kwargs))
        if vq_key is None:
            vq_key = checkpoint_key("vq_vae", settings, data_key=data_key, model_kwargs=vq_kwargs, seed=seed)
        kwargs = {"num_codes": vq_config["num_codes"], "seq_len": vq_config["latent_steps"], **kwargs}
    where = {"data_key": data_key, "model_kwargs": kwargs, "seed": seed, "vq_key": vq_key}
    path = checkpoint_path(name, settings, checkpoint_dir=checkpoint_dir, **where)
    return path, kwargs, checkpoint_key(name, settings, **where)
