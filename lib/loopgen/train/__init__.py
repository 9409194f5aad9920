"""One training loop for every model: AdamW, cosine learning rate, KL annealing, checkpoints that resume.

The paper trains every model with AdamW and a cosine schedule from 1e-3 down to 5e-6 (2,000 epochs, batch
2,048); the continuous VAEs anneal the KL weight beta from 0 to 1. The package, one job per module:

* :mod:`~loopgen.train.schedule`: epochs and batch size per model, the cosine learning rate (with an optional
  warm-up) stepped after every batch, the KL weight rising linearly over ``kl_anneal_fraction`` of the steps;
* :mod:`~loopgen.train.checkpoint`: checkpoint keys and file names, RNG states, atomic saving, safe reading,
  the training lock;
* :mod:`~loopgen.train.data`: the one data-preparation path (checks, seeded subsets, epoch order, batches);
* :mod:`~loopgen.train.calls`: :func:`train_model` (autoencoders) and :func:`train_prior` resolve a call once
  into a :class:`~loopgen.train.run.TrainingRun` (:mod:`~loopgen.train.run`) and hand it to
  :func:`~loopgen.train.loop.fit`;
* :mod:`~loopgen.train.loop`: the loop (the step, the epoch, ``fit``); :mod:`~loopgen.train.evaluate` measures
  each epoch; :mod:`~loopgen.train.resume`: the state of a run in progress, its checkpoints, Ctrl-C;
* :mod:`~loopgen.train.recipes`: the recipe table, training notes and the shipped weights of
  :mod:`loopgen.train.shipped`;
* :mod:`~loopgen.train.load`: :func:`load_trained`, whose error names the notebook that trains the model;
* :mod:`~loopgen.commands.train`: ``python -m loopgen train`` (also under ``torchrun``, see :mod:`loopgen.runtime.distributed`).

The settings also choose the encoder width, the AR output bias, the VQ dead-code restart and loss reduction
(:func:`with_settings`) and the numeric precision (``loopgen.runtime.device.autocast``); every choice the paper leaves
open is listed in ``loopgen.run.choices.OPEN_CHOICES``. Training curves are drawn by
:func:`loopgen.book.plots.plot_history` (also importable from here).

May import the models, the method, data, runtime, store and ``run.profiles``; of the notebooks' code only
``book.plots``, on demand, for :func:`plot_history`; never the command line.
"""

from __future__ import annotations

from loopgen.run.profiles import TrainSettings
from loopgen.train.calls import train_model, train_prior
from loopgen.train.checkpoint import (
    ARCHITECTURE_VERSION,
    CHECKPOINT_FORMAT,
    TEMP_PATTERN,
    CheckpointError,
    checkpoint_key,
    checkpoint_path,
    model_config,
    read_checkpoint,
    resolved_kwargs,
    training_lock,
    vq_kwargs_from,
    weights_digest,
    with_settings,
)
from loopgen.train.load import PRIOR_NOTEBOOK, TRAIN_NOTEBOOK, load_trained
from loopgen.train.loop import TrainResult
from loopgen.train.recipes import recipe_table, training_notes, weights_source
from loopgen.train.run import TrainingRun
from loopgen.train.schedule import (
    batch_size_for,
    cosine_lr,
    epochs_for,
    kl_beta_at,
    make_scheduler,
    warmup_cosine_lr,
)

__all__ = [
    "ARCHITECTURE_VERSION",
    "CHECKPOINT_FORMAT",
    "PRIOR_NOTEBOOK",
    "TEMP_PATTERN",
    "TRAIN_NOTEBOOK",
    "CheckpointError",
    "TrainResult",
    "TrainSettings",
    "TrainingRun",
    "batch_size_for",
    "checkpoint_key",
    "checkpoint_path",
    "cosine_lr",
    "epochs_for",
    "kl_beta_at",
    "load_trained",
    "make_scheduler",
    "model_config",
    "plot_history",
    "read_checkpoint",
    "recipe_table",
    "resolved_kwargs",
    "train_model",
    "train_prior",
    "training_lock",
    "training_notes",
    "vq_kwargs_from",
    "weights_digest",
    "warmup_cosine_lr",
    "weights_source",
    "with_settings",
]


def __getattr__(name: str):
    """``train.plot_history`` (notebooks 02 and 03) without importing matplotlib with the training code."""
    if name == "plot_history":
        from loopgen.book.plots import plot_history

        return plot_history
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
