"""A training run, resolved once: :func:`train_model` (the autoencoders) and :func:`train_prior` (the priors).

Each call checks and prepares its data (:mod:`loopgen.train.data`), installs shipped weights where the recipe
asks for them (:mod:`loopgen.train.recipes`), and resolves everything the training needs into one frozen
:class:`TrainingRun`: the model's recipe (``TrainSettings.recipe``, precision "auto" resolved for the device),
epochs, batch size, the checkpoint's key and path. Holding the checkpoint's lock (one writer per checkpoint,
whoever starts it) it hands the run to :func:`loopgen.train.loop.fit`, which reads it and never resolves again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from loopgen import registry
from loopgen.data.validate import check_codes, check_loops
from loopgen.run.profiles import TrainSettings
from loopgen.runtime import device as device_mod
from loopgen.runtime import distributed
from loopgen.train import data
from loopgen.train.checkpoint import (
    checkpoint_key,
    checkpoint_path,
    resolved_kwargs,
    settings_on,
    training_lock,
)
from loopgen.train.loop import TrainResult, fit
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
class _Call:
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
    call: _Call,
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


def _train(name: str, train: np.ndarray, val: np.ndarray | None, settings: TrainSettings, call: _Call,
           **plan) -> TrainResult:
    """Plan the run, then :func:`fit` it inside the checkpoint's lock (:func:`~loopgen.train.checkpoint.
    training_lock`), so a notebook, the CLI, ``fit`` and ``rehearse`` never write one checkpoint at once: the
    second is refused in one line (:class:`loopgen.store.atomic.LockedError`) or, with ``wait``, waits. Under
    torchrun rank 0 takes the lock."""
    run = plan_run(name, train, val, settings, call, **plan)
    run.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    lock = training_lock(run.checkpoint, wait=call.wait) if distributed.is_main() else contextlib.nullcontext()
    with lock:
        return fit(run)


def train_model(
    name: str,
    train_loops: np.ndarray,
    val_loops: np.ndarray | None,
    settings: TrainSettings,
    *,
    data_key: str,
    model_kwargs: dict | None = None,
    checkpoint_dir: Path | str,
    seed: int = 0,
    device: torch.device | str | None = None,
    force: bool = False,
    progress: bool = True,
    max_epochs_this_call: int | None = None,
    wait: bool = False,
) -> TrainResult:
    """Train autoencoder ``name`` on ``train_loops`` (N, 128, 93) 0/1, validating on ``val_loops`` each epoch.

    ``settings.max_train_loops`` / ``max_val_loops`` take seeded random subsets. Resumes an unfinished
    checkpoint, reuses a finished one (unless ``force``); ``max_epochs_this_call`` stops early (the run can
    be continued by calling again). Another process training the same checkpoint makes this call refuse at
    once (``wait=False``, :class:`loopgen.store.atomic.LockedError`) or wait for it. The history has one row per
    epoch: loss, recon (BCE per loop), kl and kl_beta (VAEs), teacher_prob (AR), commitment, perplexity and
    dead_codes (VQ), val_recon_error, val_recon, lr, seconds.
    """
    if name not in registry.autoencoders():
        raise ValueError(f"train_model trains the autoencoders {registry.autoencoders()}; for the prior use train_prior")
    call = _Call(data_key=data_key, checkpoint_dir=checkpoint_dir, seed=seed, device=device, force=force,
                 progress=progress, max_epochs_this_call=max_epochs_this_call, wait=wait)
    return _train(name, train_loops, val_loops, settings, call, check=lambda array, what: check_loops(array, name=what),
                  names=("train_loops", "val_loops"), model_kwargs=model_kwargs or {})


def train_prior(
    codes: np.ndarray,
    settings: TrainSettings,
    *,
    data_key: str,
    vq_key: str,
    checkpoint_dir: Path | str,
    num_codes: int,
    val_codes: np.ndarray | None = None,
    model_kwargs: dict | None = None,
    name: str = "prior",
    **options,
) -> TrainResult:
    """Train the LSTM prior on VQ-VAE code sequences ``codes`` (N, t) for ``settings.prior_epochs``.
    ``name="masked_prior"`` trains the masked code prior (notebook 09) the same way.

    ``vq_key`` is the VQ-VAE's checkpoint key (``TrainResult.key``); ``num_codes`` its codebook size K.
    ``options`` are :func:`train_model`'s: ``seed``, ``device``, ``force``, ``progress``, ``max_epochs_this_call``,
    ``wait``.
    History: loss (cross-entropy), accuracy (teacher forcing, training batches), val_loss, val_accuracy, lr.
    """
    def check(array: np.ndarray, what: str) -> np.ndarray:
        return check_codes(array, name=what, num_codes=num_codes, min_steps=2)

    return _train(name, codes, val_codes, settings, _Call(data_key=data_key, checkpoint_dir=checkpoint_dir, **options),
                  check=check, names=("codes", "val_codes"),
                  model_kwargs={"num_codes": int(num_codes), **(model_kwargs or {})}, vq_key=vq_key)
