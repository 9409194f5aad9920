"""The training loop of every model: the step, the epoch, and :func:`fit`.

:func:`optimiser_step` is the textbook's step: forward and loss, backward, clip, update (fp16: through a gradient
scaler). :func:`train_epoch` runs it over one epoch's batches; :func:`fit` runs the epochs of a
:class:`~loopgen.train.run.TrainingRun` (resolved once by ``train_model`` / ``train_prior``), validates every
``validate_every`` epochs, keeps the best epoch (``keep_best``), and saves and stops through
:mod:`loopgen.train.resume`. AdamW, the cosine learning rate and the KL weight follow :mod:`loopgen.train.schedule`;
the precision :mod:`loopgen.runtime.device` (autocast for the forward pass, TF32 switches for the whole step).
Under ``torchrun`` each process trains on its slice of every batch (:mod:`loopgen.runtime.distributed`); only
rank 0 validates, shows progress and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import functools
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from loopgen.models import build
from loopgen.models.lstm_vae import ARLSTMVAE, schedule_epoch
from loopgen.run.profiles import TrainSettings
from loopgen.runtime import device as device_mod
from loopgen.runtime import distributed
from loopgen.runtime.seed import seed_everything
from loopgen.train import data, resume
from loopgen.train.evaluate import evaluate_autoencoder, evaluate_prior
from loopgen.train.run import TrainingRun
from loopgen.train.schedule import is_gaussian, is_prior, make_scheduler

if TYPE_CHECKING:  # pandas: imported where the history is returned (a box with only torch trains without it)
    import pandas as pd

FUSED_ADAMW_DEVICES = ("cpu", "cuda")  # device types that get the fused AdamW


@dataclass
class TrainResult:
    """What a training call returns."""

    name: str
    model: nn.Module
    history: pd.DataFrame  # one row per epoch (a dict of columns on a box without pandas, benchmarks/gpu_check.py)
    checkpoint: Path
    key: str
    finished: bool
    reused: bool = False  # True when a finished checkpoint was loaded instead of training
    epochs_this_call: int = 0
    seconds_this_call: float = 0.0
    config: dict = field(default_factory=dict)
    weights: str = "trained here"  # or "shipped (<profile>)": installed from loopgen.train.shipped
    kept_epoch: int | None = None  # finished: the epoch whose weights the model holds (keep_best: the best one)


# fp16: each gradient scaler's scale after its last update, which is the next step's scale before it (a skipped
# update is known from the scale going down; remembering it saves the second host sync of every step).
_SCALE_BEFORE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# ------------------------------------------------------------------------------- the step, as in a textbook
def optimiser_step(
    loss_of: Callable[[torch.Tensor], tuple[torch.Tensor, dict]],
    x: torch.Tensor,
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    grad_clip: float | None,
    autocast: contextlib.AbstractContextManager,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[torch.Tensor, dict]:
    """One optimiser step on batch ``x``: forward and loss, backward, (clip), update, learning-rate step.

    ``loss_of(x)`` returns ``(loss, terms)``; ``autocast`` is the mixed-precision context of the forward pass.

    ``scaler`` (:func:`loopgen.runtime.device.grad_scaler`) is fp16's one addition to the textbook step: float16
    gradients underflow to zero below ~6e-8, so the loss is multiplied by a large scale before the backward
    pass, and the gradients are divided by it again (``unscale_``) before they are clipped and applied. When a
    gradient overflowed (inf or NaN) the scaler skips the update and halves the scale; the learning rate then
    stays where it is too (the schedule counts the updates made, and PyTorch's scheduler does not warn of an
    update it missed). In the other precisions the scaler is disabled and each call below is the plain one.
    """
    if scaler is None:
        scaler = torch.amp.GradScaler(enabled=False)
    with autocast:
        loss, terms = loss_of(x)  # forward pass and loss
    optimiser.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()  # gradients (fp16: of the scaled loss)
    if grad_clip:
        scaler.unscale_(optimiser)  # fp16: the true gradients, so the clip sees their real norm
        params = [p for group in optimiser.param_groups for p in group["params"]]
        nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(optimiser)  # update the weights (fp16: unless a gradient overflowed)
    if not scaler.is_enabled():
        scheduler.step()  # the learning rate of the next step
        return loss.detach(), terms
    scale = _SCALE_BEFORE.get(scaler)
    if scale is None:
        scale = scaler.get_scale()  # the first step: the scale ``step`` used (update() has not run yet)
    scaler.update()  # fp16: halve the scale after an overflow, double it after 2,000 clean steps
    _SCALE_BEFORE[scaler] = after = scaler.get_scale()  # one host sync a step; the next step's "before"
    if after >= scale:  # the update was made (only an overflow lowers the scale)
        scheduler.step()  # the learning rate (and the KL ramp, which reads the scheduler's count) move on
    return loss.detach(), terms


def make_optimiser(model: nn.Module, settings: TrainSettings, device: torch.device) -> torch.optim.AdamW:
    """AdamW with the recipe's learning rate and weight decay (PyTorch's betas and eps): on CPUs and CUDA GPUs
    PyTorch's fused AdamW (one kernel over all parameters; the demo CNN-VAE's CPU step 1.25x as fast,
    ``benchmarks/optimiser_speed.py``), elsewhere (MPS, or a torch without it) the default multi-tensor one."""
    params = list(model.parameters())
    options = {"lr": settings.lr_max, "weight_decay": settings.weight_decay}
    if device.type in FUSED_ADAMW_DEVICES:
        try:
            return torch.optim.AdamW(params, fused=True, **options)
        except (RuntimeError, TypeError, ValueError):
            pass  # this torch has no fused AdamW for this device
    return torch.optim.AdamW(params, **options)


def start(run: TrainingRun) -> resume.TrainState:
    """Seed, build the model, AdamW, the learning-rate schedule and fp16's gradient scaler; then load the run's
    checkpoint, when there is one."""
    seed_everything(run.seed)
    model = build(run.name, **run.model_kwargs).to(run.device)
    if isinstance(model, ARLSTMVAE):  # its output bias starts at the training data's cell density
        model.init_output_bias(data.cell_density(run.train_data))
    optimiser = make_optimiser(model, run.recipe, run.device)
    scheduler = make_scheduler(optimiser, run.recipe, run.epochs * run.steps_per_epoch)
    state = resume.TrainState(model, optimiser, scheduler, device_mod.grad_scaler(run.device, run.precision))
    resume.restore(run, state)
    return state


# ------------------------------------------------------------------------------------------- the epoch
def train_epoch(run: TrainingRun, state: resume.TrainState, forward: Callable, epoch: int,
                stop: resume.StopOnCtrlC) -> dict | None:
    """One pass over the epoch's batches (from where a checkpoint inside it stopped): the mean loss terms, or
    ``None`` when Ctrl-C asked to stop (a checkpoint inside the epoch is written first). ``forward(x, kl_beta=,
    epoch=)`` gives the loss and its terms; batches are gathered on the training device."""
    # A checkpoint inside the epoch holds rank 0's running sums: rank 0 carries them on, the other ranks start from
    # zero, so the epoch's means average the examples actually counted (on one process: all of them).
    sums = resume.EpochSums(run.device, state.partial if distributed.is_main() else {})
    skip, state.partial = int(state.partial.get("step_in_epoch", 0)), {}  # batches done before the checkpoint
    distributed.reseed_for_epoch(run.seed, epoch if not skip else (epoch + 1) * 1_000_003 + skip)
    is_ar = isinstance(state.model, ARLSTMVAE)
    model_epoch = schedule_epoch(epoch, run.epochs, state.model.ss_paper_epochs) if is_ar else epoch
    order = data.epoch_order(len(run.train_data), run.seed, epoch).to(run.train_data.device)
    batches = data.batches(order, run.batch_size)
    augmenting = data.augments(run.recipe) and not is_prior(run.name)  # a prior reads codes (of augmented copies)
    draws = data.augmentation_draws(len(run.train_data), run.seed, epoch).to(order.device) if augmenting else None
    with device_mod.matmul_precision(run.device, run.precision):  # TF32 switches: forward and backward alike
        for i in range(skip, len(batches)):
            index = distributed.local_slice(batches[i])  # this rank's share (all of it on one process)
            batch = run.train_data[index].to(run.device, non_blocking=True)
            if augmenting:
                batch = data.augment(batch, draws[index], rotate_bars=run.recipe.augment_rotate_bars,
                                     transpose=run.recipe.augment_transpose)
            x = batch if is_prior(run.name) else batch.float()  # the prior reads code indices
            updates = state.scheduler.last_epoch  # updates made so far (a skipped fp16 update is not one)
            loss, terms = optimiser_step(
                functools.partial(forward, kl_beta=run.kl_beta(updates), epoch=model_epoch), x, state.optimiser,
                state.scheduler, grad_clip=run.recipe.grad_clip, autocast=device_mod.autocast(run.device, run.precision),
                scaler=state.scaler,
            )
            sums.add(loss, terms, len(index))
            if i + 1 < len(batches) and (stop.requested or resume.overdue(run, state)):  # a checkpoint inside
                partial = sums.saved(i + 1) if distributed.is_main() else None  # only rank 0 writes (a host sync)
                resume.save(run, state, epoch, False, partial=partial)
                if stop.requested:
                    state.stopped_at = i + 1
                    return None
    row = sums.means()
    if is_gaussian(run.name):
        row["kl_beta"] = run.kl_beta(state.scheduler.last_epoch)
    if is_ar:
        row["teacher_prob"] = state.model.teacher_prob_at(epoch, run.epochs)
    return row


# --------------------------------------------------------------------------------------------- fit
def fit(run: TrainingRun) -> TrainResult:
    """Train ``run`` from its checkpoint (or from scratch) to its last epoch, or ``max_epochs_this_call`` more."""
    state = start(run)
    if state.finished:
        return _result(run, state, reused=True)
    forward = distributed.wrap_for_training(state.model, run.device, sync_batchnorm=run.recipe.sync_batchnorm)
    first = state.epoch
    last = run.epochs if run.max_epochs_this_call is None else min(run.epochs, first + run.max_epochs_this_call)
    bar = None
    if run.progress and distributed.is_main():
        from tqdm.auto import tqdm  # a widget in Jupyter (ipywidgets), text in a terminal

        bar = tqdm(total=run.epochs, initial=first, desc=run.name, unit="epoch")
    started = state.saved_at = time.perf_counter()
    state.model.train()
    with resume.StopOnCtrlC() as stop:
        for epoch in range(first, last):
            t0 = time.perf_counter()
            row = train_epoch(run, state, forward, epoch, stop)
            if row is None:  # stopped inside the epoch: its checkpoint is written
                resume.stop_here(run, f"epoch {epoch + 1}, step {state.stopped_at} of {run.steps_per_epoch}")
            row = {"epoch": epoch + 1, **row, **_validate(run, state, epoch)}
            row["lr"] = float(state.optimiser.param_groups[0]["lr"])
            row["seconds"] = time.perf_counter() - t0
            _end_epoch(run, state, epoch, row, save=resume.due_after(run, state, epoch, last) or stop.requested)
            if bar is not None:
                shown = ("loss", "perplexity", "val_recon_error", "accuracy")
                bar.set_postfix({k: f"{row[k]:.4g}" for k in shown if k in row})
                bar.update(1)
            if stop.requested:
                resume.stop_here(run, f"after epoch {epoch + 1}")
    if bar is not None:
        bar.close()
    distributed.barrier()  # every rank has the last checkpoint before any returns
    return _result(run, state, epochs=last - first, seconds=time.perf_counter() - started)


def _validate(run: TrainingRun, state: resume.TrainState, epoch: int) -> dict[str, float]:
    """The validation measures of epoch ``epoch`` (0-based): every ``validate_every`` epochs and the last one,
    on rank 0; otherwise none."""
    if run.val_data is None or not len(run.val_data) or not distributed.is_main():
        return {}
    every = max(1, int(run.recipe.validate_every))
    if (epoch + 1) % every and epoch + 1 != run.epochs:
        return {}
    evaluate = evaluate_prior if is_prior(run.name) else evaluate_autoencoder
    return evaluate(state.model, run.val_data, run.device, run.precision)


def _end_epoch(run: TrainingRun, state: resume.TrainState, epoch: int, row: dict[str, float], *, save: bool) -> None:
    """Keep the best epoch's weights (``keep_best``), add ``row`` to the history and (``save``, always after the
    last epoch) write the checkpoint."""
    val_loss = row.get("val_loss" if is_prior(run.name) else "val_recon")
    if run.recipe.keep_best and val_loss is not None and (state.best is None or val_loss < state.best["loss"]):
        weights = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
        state.best = {"loss": float(val_loss), "epoch": epoch + 1, "model": weights}
    for k in list(state.history) + [k for k in row if k not in state.history]:
        state.history.setdefault(k, [float("nan")] * epoch)
        state.history[k].append(float(row.get(k, float("nan"))))
    finished = epoch + 1 == run.epochs
    if finished and state.best is not None:  # keep_best: the finished model holds the best epoch's weights
        state.model.load_state_dict(state.best["model"])
    if save or finished:
        resume.save(run, state, epoch + 1, finished)


def _result(run: TrainingRun, state: resume.TrainState, *, reused: bool = False, epochs: int = 0,
            seconds: float = 0.0) -> TrainResult:
    """What ``fit`` returns; the model in eval mode."""
    try:
        import pandas as pd

        history = pd.DataFrame(state.history)
    except ModuleNotFoundError:  # a box with only torch
        history = state.history
    state.model.eval()
    finished = reused or len(state.history.get("epoch", [])) == run.epochs
    kept = state.kept_epoch if reused else (state.best or {}).get("epoch", run.epochs) if finished else None
    return TrainResult(run.name, state.model, history, run.checkpoint, run.key, finished, reused=reused,
                       epochs_this_call=epochs, seconds_this_call=seconds, config=dict(state.model.config),
                       weights=run.weights, kept_epoch=kept)
