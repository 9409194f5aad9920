"""A training run, resolved once: :class:`TrainingRun`, made by :func:`plan_run` at the start of every training.

:func:`plan_run` checks and prepares the data (:mod:`loopgen.train.data`), installs shipped weights where the
recipe asks for them (:mod:`loopgen.train.recipes`), and resolves everything the training needs into one frozen
:class:`TrainingRun`: the model's recipe (``TrainSettings.recipe``, precision "auto" resolved for the device),
epochs, batch size, the checkpoint's key and path. The loop (:mod:`loopgen.train.loop`) reads it and never
resolves anything again; :mod:`loopgen.train.calls` makes it for ``train_model`` and ``train_prior``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from loopgen.run.profiles import TrainSettings
from loopgen.runtime import device as device_mod
from loopgen.train import data
from loopgen.train.checkpoint import checkpoint_key, checkpoint_path, resolved_kwargs, settings_on
from loopgen.train.recipes import install_shipped
from loopgen.train.schedule import batch_size_for, epochs_for, is_gaussian, is_prior, kl_beta_at

if TYPE_CHECKING:  # the data may be tensors already: a box with only torch trains without numpy
    import numpy as np


@dataclass(frozen=True, eq=False)
class TrainingRun:
    """One training, resolved at its start and read, unchanged, by the loop."""

    name: str
    recipe: TrainSettings  # the model's own settings (``TrainSettings.recipe``), precision resolved
    model_kwargs: dict  # the model's constructor arguments
    train_data: torch.Tensor
    val_data: torch.Tensor | None
    checkpoint: Path
    key: str  # the checkpoint's key: what the weights depend on
    meta: dict  # what the checkpoint records of the data
    seed: int
    device: torch.device
    epochs: int
    batch_size: int
    steps_per_epoch: int
    force: bool = False  # train from scratch, even over a finished checkpoint
    progress: bool = True
    max_epochs_this_call: int | None = None  # stop early; the next call resumes
    weights: str = "trained here"  # or "shipped (<profile>)"

    @property
    def precision(self) -> str:
        return self.recipe.precision

    def kl_beta(self, step: int) -> float:
        """The KL weight at optimiser step ``step`` (1 for the models without a Gaussian latent)."""
        if not is_gaussian(self.name):
            return 1.0
        total = self.epochs * self.steps_per_epoch
        return kl_beta_at(step, total, self.recipe.kl_anneal_fraction) * self.recipe.kl_beta_max


@dataclass(frozen=True)
class TrainCall:
    """The options every training call takes."""

    data_key: str
    checkpoint_dir: Path | str
    seed: int = 0
    device: torch.device | str | None = None
    force: bool = False
    progress: bool = True
    max_epochs_this_call: int | None = None
    wait: bool = False  # another process trains this checkpoint: wait for it (True) or refuse at once (False)


def plan_run(
    name: str,
    train: np.ndarray,
    val: np.ndarray | None,
    settings: TrainSettings,
    call: TrainCall,
    *,
    check: Callable[[np.ndarray, str], np.ndarray],
    names: tuple[str, str],
    model_kwargs: dict,
    vq_key: str | None = None,
) -> TrainingRun:
    """Resolve a training call into its :class:`TrainingRun` (installing matching shipped weights on the way)."""
    device = device_mod.pick_device() if call.device is None else torch.device(call.device)
    device_mod.keep_freed_memory()  # also when the device was given (pick_device does it otherwise)
    device_mod.resolve_precision(device, settings.precision)  # fp16 off CUDA: refused before any work
    data.check_augmentation(settings.recipe(name))
    settings = settings_on(settings, device)  # precision "auto" resolved for this device (and keyed so)
    train_data, val_data = data.prepare(train, val, settings, check=check, names=names, seed=call.seed, device=device)
    if is_prior(name):  # its sequence length is the codes' (unless given)
        model_kwargs = {"seq_len": int(train_data.shape[1]), **model_kwargs}
    shipped = install_shipped(name, settings, call.data_key, call.checkpoint_dir, model_kwargs, call.seed,
                              vq_key=vq_key, force=call.force)
    recipe = (settings if shipped is None else shipped).recipe(name)  # the one resolution of the recipe
    epochs, batch_size = epochs_for(name, recipe), batch_size_for(name, recipe)
    if epochs < 1:
        raise ValueError(f"{name}: the settings give {epochs} epochs; need at least 1")
    where = {"data_key": call.data_key, "model_kwargs": model_kwargs, "seed": call.seed, "vq_key": vq_key}
    meta = {"data_key": str(call.data_key), **({"vq_key": vq_key} if vq_key else {}), "n_train": len(train_data),
            "n_val": 0 if val_data is None else len(val_data)}
    return TrainingRun(
        name, recipe, resolved_kwargs(name, recipe, model_kwargs), train_data, val_data,
        checkpoint=checkpoint_path(name, recipe, checkpoint_dir=call.checkpoint_dir, **where),
        key=checkpoint_key(name, recipe, **where), meta=meta, seed=call.seed, device=device, epochs=epochs,
        batch_size=batch_size, steps_per_epoch=data.steps_per_epoch(len(train_data), batch_size), force=call.force,
        progress=call.progress, max_epochs_this_call=call.max_epochs_this_call,
        weights="trained here" if shipped is None else f"shipped ({settings.recipe(name).shipped_from})",
    )
