"""The calls notebooks and the command line make: :func:`train_model` (the autoencoders), :func:`train_prior`.

Each plans its run once (:func:`loopgen.train.run.plan_run`: data, shipped weights, the recipe, the checkpoint)
and, holding the checkpoint's lock (one writer per checkpoint, whoever starts it), trains it with
:func:`loopgen.train.loop.fit`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from loopgen import registry
from loopgen.data.validate import check_codes, check_loops
from loopgen.run.profiles import TrainSettings
from loopgen.runtime import distributed
from loopgen.train.checkpoint import training_lock
from loopgen.train.loop import TrainResult, fit
from loopgen.train.run import TrainCall, plan_run

if TYPE_CHECKING:  # the data may be tensors already: a box with only torch trains without numpy
    import numpy as np


def _train(name: str, train: np.ndarray, val: np.ndarray | None, settings: TrainSettings, call: TrainCall,
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
    call = TrainCall(data_key=data_key, checkpoint_dir=checkpoint_dir, seed=seed, device=device, force=force,
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

    return _train(name, codes, val_codes, settings, TrainCall(data_key=data_key, checkpoint_dir=checkpoint_dir, **options),
                  check=check, names=("codes", "val_codes"),
                  model_kwargs={"num_codes": int(num_codes), **(model_kwargs or {})}, vq_key=vq_key)
