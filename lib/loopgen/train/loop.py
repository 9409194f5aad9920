"""The training loop: one path for the autoencoders (:func:`train_model`) and the prior (:func:`train_prior`).

Each call prepares its data (:mod:`loopgen.train.data`), sets up a :class:`Run` (model, recipe, checkpoint)
and, holding the checkpoint's lock (one writer per checkpoint, whoever starts it), :func:`fit` trains it.
The step itself, :func:`optimiser_step`, is the textbook's: forward and loss, backward, clip, update (in fp16,
through a gradient scaler). Around it:
AdamW, the cosine learning rate and KL weight of :mod:`loopgen.train.schedule`, the precision of
:mod:`loopgen.runtime.device` (autocast for the forward pass, TF32 switches for the whole step), validation every
``validate_every`` epochs, a checkpoint every ``checkpoint_every`` epochs (and every ``checkpoint_minutes``
inside one, and on Ctrl-C, with the steps done and the running sums), so a killed or interrupted run resumes
where it stopped and ends as the uninterrupted run would. A finished
checkpoint is reused, not retrained, unless ``force``. The AR LSTM-VAE's scheduled sampling reads the epoch
mapped onto the paper's 2,000-epoch time axis (``loopgen.models.lstm_vae.schedule_epoch``). Under
``torchrun`` each process trains on its slice of every batch (:mod:`loopgen.runtime.distributed`); only rank 0
validates, shows progress and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from loopgen import registry
from loopgen.data.validate import check_codes, check_loops
from loopgen.models import ContinuousVAE, build, perplexity
from loopgen.models.lstm_vae import ARLSTMVAE, schedule_epoch
from loopgen.run.profiles import TrainSettings
from loopgen.runtime import device as device_mod
from loopgen.runtime import distributed
from loopgen.runtime.seed import seed_everything
from loopgen.train import data
from loopgen.train.checkpoint import (
    CHECKPOINT_FORMAT,
    checkpoint_key,
    checkpoint_path,
    read_checkpoint,
    resolved_kwargs,
    rng_state,
    save_checkpoint,
    set_rng_state,
    settings_on,
    training_lock,
)
from loopgen.train.evaluate import evaluate_autoencoder, evaluate_prior
from loopgen.train.recipes import install_shipped
from loopgen.train.schedule import batch_size_for, epochs_for, is_prior, kl_beta_at, make_scheduler


@dataclass
class TrainResult:
    """What a training call returns."""

    name: str
    model: nn.Module
    history: pd.DataFrame
    checkpoint: Path
    key: str
    finished: bool
    reused: bool = False  # True when a finished checkpoint was loaded instead of training
    epochs_this_call: int = 0
    seconds_this_call: float = 0.0
    config: dict = field(default_factory=dict)
    weights: str = "trained here"  # or "shipped (<profile>)": installed from loopgen.train.shipped


@dataclass
class Run:
    """One training call's set-up: which model trains on what, with which recipe, into which checkpoint."""

    name: str
    settings: TrainSettings  # the model's recipe (``TrainSettings.recipe``)
    model_kwargs: dict  # the resolved constructor arguments
    train_data: torch.Tensor
    val_data: torch.Tensor | None
    path: Path
    key: str
    meta: dict
    seed: int
    device: torch.device
    force: bool = False
    progress: bool = True
    max_epochs_this_call: int | None = None


@dataclass
class _State:
    """A run in progress: what its checkpoint holds, and the sizes its schedule follows."""

    model: nn.Module
    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    epochs: int
    batch_size: int
    steps_per_epoch: int
    history: dict[str, list] = field(default_factory=dict)
    epoch: int = 0  # epochs done
    finished: bool = False
    scaler: torch.amp.GradScaler | None = None  # fp16's loss scaling (disabled in the other precisions)
    best: dict | None = None  # keep_best: {"loss", "epoch", "model"} of the best validated epoch so far
    partial: dict = field(default_factory=dict)  # a checkpoint written inside an epoch: steps done, sums
    saved_at: float = 0.0  # time.perf_counter() of the last checkpoint
    partial_saved: int = 0  # the step inside an epoch an interrupt's checkpoint was written at


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
    Everything else a training needs (DDP, the schedule, checkpoints, progress) happens around this function.

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
    scale = scaler.get_scale()
    scaler.step(optimiser)  # update the weights (fp16: unless a gradient overflowed)
    scaler.update()  # fp16: halve the scale after an overflow, double it after 2,000 clean steps
    if scaler.get_scale() >= scale:  # the update was made (only an overflow lowers the scale)
        scheduler.step()  # the learning rate of the next step
    return loss.detach(), terms


# ------------------------------------------------------------------------------------------- the loop
class _StopRequested:
    """Ctrl-C during a training (SIGINT, also a notebook's "interrupt"): the loop finishes the step it is in,
    writes a checkpoint it can resume from, then raises ``KeyboardInterrupt``. A second Ctrl-C stops at once.
    Installed only in the main thread of a single process (under DDP every rank would have to agree on the
    step; there the ``checkpoint_minutes`` checkpoints are what a restart resumes)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> _StopRequested:
        if threading.current_thread() is threading.main_thread() and not distributed.active():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
            except ValueError:  # not the main interpreter
                self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # the second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def fit(run: Run) -> TrainResult:
    """Train ``run`` from its checkpoint (or from scratch) to its last epoch, or ``max_epochs_this_call`` more."""
    st = _start(run)
    if st.finished:
        st.model.eval()
        return TrainResult(run.name, st.model, pd.DataFrame(st.history), run.path, run.key, True, reused=True,
                           config=dict(st.model.config))
    train_step = distributed.wrap_for_training(st.model, run.device, sync_batchnorm=run.settings.sync_batchnorm)
    first = st.epoch
    last = st.epochs if run.max_epochs_this_call is None else min(st.epochs, first + run.max_epochs_this_call)
    bar = None
    if run.progress and distributed.is_main():
        from tqdm import tqdm

        bar = tqdm(total=st.epochs, initial=first, desc=run.name, unit="epoch")
    t_call = st.saved_at = time.perf_counter()
    st.model.train()
    with _StopRequested() as stop:
        for epoch in range(first, last):
            t0 = time.perf_counter()
            row = _train_epoch(run, st, train_step, epoch, stop)
            if row is None:  # stopped inside the epoch: its checkpoint is written
                _say_interrupted(run, f"epoch {epoch + 1}, step {st.partial_saved} of {st.steps_per_epoch}")
                raise KeyboardInterrupt
            row = {"epoch": epoch + 1, **row}
            if _validates(run, st, epoch):
                evaluate = evaluate_prior if is_prior(run.name) else evaluate_autoencoder
                row.update(evaluate(st.model, run.val_data, run.device, run.settings.precision))
            row["lr"] = float(st.optimiser.param_groups[0]["lr"])
            row["seconds"] = time.perf_counter() - t0
            _end_epoch(run, st, epoch, row, save=_checkpoints(run, st, epoch, last) or stop.requested)
            if bar is not None:
                shown = ("loss", "perplexity", "val_recon_error", "accuracy")
                bar.set_postfix({k: f"{row[k]:.4g}" for k in shown if k in row})
                bar.update(1)
            if stop.requested:
                _say_interrupted(run, f"after epoch {epoch + 1}")
                raise KeyboardInterrupt
    if bar is not None:
        bar.close()
    distributed.barrier()  # every rank has the last checkpoint before any returns
    st.model.eval()
    return TrainResult(
        run.name,
        st.model,
        pd.DataFrame(st.history),
        run.path,
        run.key,
        len(st.history.get("epoch", [])) == st.epochs,
        epochs_this_call=last - first,
        seconds_this_call=time.perf_counter() - t_call,
        config=dict(st.model.config),
    )


def _say_interrupted(run: Run, where: str) -> None:
    print(f"{run.name}: interrupted; checkpoint {run.path} holds the run up to {where}; "
          "the same call again resumes there", file=sys.stderr, flush=True)


def _validates(run: Run, st: _State, epoch: int) -> bool:
    """Whether epoch ``epoch`` (0-based) is validated: every ``validate_every`` epochs and the last one."""
    if run.val_data is None or not len(run.val_data) or not distributed.is_main():
        return False
    every = max(1, int(run.settings.validate_every))
    return (epoch + 1) % every == 0 or epoch + 1 == st.epochs


def _checkpoints(run: Run, st: _State, epoch: int, last: int) -> bool:
    """Whether the end of epoch ``epoch`` writes a checkpoint: every ``checkpoint_every`` epochs, the last
    epoch of the run and of this call, and whenever ``checkpoint_minutes`` have passed since the last one."""
    every = max(1, int(run.settings.checkpoint_every))
    minutes = run.settings.checkpoint_minutes
    overdue = bool(minutes) and time.perf_counter() - st.saved_at >= 60 * minutes
    return (epoch + 1) % every == 0 or epoch + 1 in (st.epochs, last) or overdue


def _density(train_data: torch.Tensor) -> float:
    """The share of active cells in the training loops (the AR decoder's initial output rate). On CUDA the
    cells are counted as integers, so no float copy of the whole set (7 GB at the paper's size) is made; the CPU
    keeps the float32 mean its checkpoints were made with."""
    if train_data.is_cuda:
        return int(train_data.sum(dtype=torch.int64)) / train_data.numel()
    return float(train_data.float().mean())


def _start(run: Run) -> _State:
    """Seed, build the model, optimiser and schedule; resume from the run's checkpoint when there is one."""
    settings = run.settings
    epochs = epochs_for(run.name, settings)
    if epochs < 1:
        raise ValueError(f"{run.name}: the settings give {epochs} epochs; need at least 1")
    seed_everything(run.seed)
    model = build(run.name, **run.model_kwargs).to(run.device)
    if isinstance(model, ARLSTMVAE):
        model.init_output_bias(_density(run.train_data))
    optimiser = make_optimiser(model, settings, run.device)
    batch_size = batch_size_for(run.name, settings)
    steps_per_epoch = data.steps_per_epoch(len(run.train_data), batch_size)
    scheduler = make_scheduler(optimiser, settings, epochs * steps_per_epoch)
    scaler = device_mod.grad_scaler(run.device, settings.precision)
    st = _State(model, optimiser, scheduler, epochs, batch_size, steps_per_epoch, scaler=scaler)
    if run.force and distributed.is_main():
        run.path.unlink(missing_ok=True)
    distributed.barrier()  # under DDP no rank looks for the checkpoint before rank 0 has removed it
    if not run.path.exists():
        return st
    # Read to the CPU, then let each piece go where it belongs: the weights and AdamW's moments to the
    # model's device (load_state_dict copies them), AdamW's step counters where torch keeps them (CPU numbers
    # for the multi-tensor AdamW, the parameters' device for the fused one), the RNG states are CPU tensors,
    # the running code counts go to the training device.
    ckpt = read_checkpoint(run.path, "cpu")
    if ckpt.get("key") != run.key or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise RuntimeError(f"{run.path} does not hold the run it is named after; delete it or pass force=True")
    model.load_state_dict(ckpt["model"])
    st.history = {k: list(v) for k, v in ckpt["history"].items()}
    st.epoch, st.finished = int(ckpt["epoch"]), bool(ckpt["finished"])
    if not st.finished:
        load_optimiser_state(optimiser, ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler.is_enabled():  # fp16: the loss scale and its count of clean steps
            scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"], run.device)
        st.best = ckpt.get("best")
        st.partial = ckpt.get("partial") or {}
    return st


FUSED_ADAMW_DEVICES = ("cpu", "cuda")  # device types that get the fused AdamW


def make_optimiser(model: nn.Module, settings: TrainSettings, device: torch.device) -> torch.optim.AdamW:
    """AdamW with the recipe's learning rate and weight decay (PyTorch's betas and eps).

    On CPUs and CUDA GPUs it is PyTorch's fused AdamW (one kernel over all parameters; the demo CNN-VAE's CPU
    step 1.25x as fast, ``benchmarks/optimiser_speed.py``); elsewhere (MPS, or a torch without it) the default
    multi-tensor one. Fused AdamW keeps its step counters on the parameters' device, where its kernel reads them.
    """
    params = list(model.parameters())
    options = {"lr": settings.lr_max, "weight_decay": settings.weight_decay}
    if device.type in FUSED_ADAMW_DEVICES:
        try:
            return torch.optim.AdamW(params, fused=True, **options)
        except (RuntimeError, TypeError, ValueError):
            pass  # this torch has no fused AdamW for this device
    return torch.optim.AdamW(params, **options)


def load_optimiser_state(optimiser: torch.optim.Optimizer, state: dict) -> None:
    """Load a saved AdamW state into ``optimiser``, which keeps its own implementation: torch's
    ``load_state_dict`` would take the saved groups' ``fused``/``foreach`` flags too, so a checkpoint written
    by the fused AdamW on a CPU would turn the multi-tensor one of a device without fused kernels fused."""
    saved_groups = state["param_groups"]
    if len(saved_groups) == len(optimiser.param_groups):  # otherwise torch's own error says what differs
        own = ("fused", "foreach", "capturable")
        saved_groups = [
            {**saved, **{k: now[k] for k in own if k in now}}
            for saved, now in zip(saved_groups, optimiser.param_groups, strict=True)
        ]
    optimiser.load_state_dict({**state, "param_groups": saved_groups})


def _kl_beta(run: Run, st: _State, step: int) -> float:
    if not isinstance(st.model, ContinuousVAE):
        return 1.0
    total = st.epochs * st.steps_per_epoch
    return kl_beta_at(step, total, run.settings.kl_anneal_fraction) * run.settings.kl_beta_max


def _sum_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64


def _train_epoch(run: Run, st: _State, train_step: Callable, epoch: int, stop: _StopRequested | None = None):
    """One pass over the epoch's batches (from where an interrupted one stopped): the mean loss terms, or
    ``None`` when a stop was requested (a checkpoint inside the epoch is written first).

    The running sums and code counts stay on the training device (one host sync per epoch, not per step);
    the batch order is moved to the device once per epoch, so batches are gathered there.
    """
    partial, st.partial = st.partial, {}
    dev, dtype = run.device, _sum_dtype(run.device)
    sums = {k: torch.tensor(float(v), dtype=dtype, device=dev) for k, v in partial.get("sums", {}).items()}
    counts = partial.get("counts")
    counts = None if counts is None else counts.to(dev, dtype)
    n_seen = int(partial.get("n_seen", 0))
    skip = int(partial.get("step_in_epoch", 0))  # batches of this epoch done before an interruption
    distributed.reseed_for_epoch(run.seed, epoch if not skip else (epoch + 1) * 1_000_003 + skip)
    step = epoch * st.steps_per_epoch + skip
    is_ar = isinstance(st.model, ARLSTMVAE)
    model_epoch = schedule_epoch(epoch, st.epochs, st.model.ss_paper_epochs) if is_ar else epoch
    order = data.epoch_order(len(run.train_data), run.seed, epoch).to(run.train_data.device)
    batches = data.batches(order, st.batch_size)

    def inside() -> dict:  # what a checkpoint inside this epoch holds (a host sync: only when saving)
        return {"step_in_epoch": i_batch + 1, "sums": {k: float(v) for k, v in sums.items()},
                "counts": None if counts is None else counts.double().cpu(), "n_seen": n_seen}

    with device_mod.matmul_precision(dev, run.settings.precision):  # forward and backward alike
        for i_batch in range(skip, len(batches)):
            batch_index = distributed.local_slice(batches[i_batch])  # this rank's share (all of it on one)
            batch = run.train_data[batch_index].to(dev, non_blocking=True)
            x = batch if is_prior(run.name) else batch.float()  # the prior reads code indices
            kl_beta = _kl_beta(run, st, step)
            loss, terms = optimiser_step(
                lambda x, kl_beta=kl_beta: train_step(x, kl_beta, model_epoch), x, st.optimiser, st.scheduler,
                grad_clip=run.settings.grad_clip, autocast=device_mod.autocast(dev, run.settings.precision),
                scaler=st.scaler,
            )
            step += 1
            b = len(batch_index)
            n_seen += b
            _accumulate(sums, "loss", loss, b, dtype)
            for term, value in terms.items():
                if term == "code_counts":
                    value = value.detach().to(dtype)
                    counts = value if counts is None else counts + value
                else:
                    _accumulate(sums, term, value, b, dtype)
            if i_batch + 1 < len(batches):
                if stop is not None and stop.requested:
                    _save(run, st, epoch, False, partial=inside())
                    st.partial_saved = i_batch + 1
                    return None
                minutes = run.settings.checkpoint_minutes
                if minutes and time.perf_counter() - st.saved_at >= 60 * minutes:
                    _save(run, st, epoch, False, partial=inside())
    sums, counts, n_seen = _reduce_over_ranks(sums, counts, n_seen)
    row = {k: float(v) / n_seen for k, v in sums.items()}
    if isinstance(st.model, ContinuousVAE):
        row["kl_beta"] = _kl_beta(run, st, step)
    if is_ar:
        row["teacher_prob"] = st.model.teacher_prob_at(epoch, st.epochs)
    if counts is not None:
        counts = counts.double().cpu()
        row["perplexity"] = perplexity(counts)
        row["dead_codes"] = int((counts == 0).sum())
    return row


def _accumulate(sums: dict, term: str, value: torch.Tensor, b: int, dtype: torch.dtype) -> None:
    """``sums[term] += value * b`` on the device (float64: the same sums as Python floats would give)."""
    value = value.detach().to(dtype) * b
    sums[term] = value if term not in sums else sums[term] + value


def _reduce_over_ranks(sums: dict, counts: torch.Tensor | None, n_seen: int):
    """Under DDP: the epoch's sums, code counts and example count over all ranks (the history then describes
    the global batches, not rank 0's slices). On one process: unchanged."""
    if not distributed.active() or not sums:
        return sums, counts, n_seen
    names = sorted(sums)
    stacked = torch.stack([sums[k].reshape(()) for k in names] + [sums[names[0]].new_tensor(float(n_seen))])
    distributed.all_reduce_sum_(stacked)
    if counts is not None:
        counts = distributed.all_reduce_sum_(counts.clone())
    return dict(zip(names, stacked[:-1], strict=True)), counts, int(round(float(stacked[-1])))


def _end_epoch(run: Run, st: _State, epoch: int, row: dict[str, float], *, save: bool = True) -> None:
    """Keep the best epoch's weights (``keep_best``), add ``row`` to the history and (``save``, always after the
    last epoch) write the checkpoint."""
    val_loss = row.get("val_loss" if is_prior(run.name) else "val_recon")
    if run.settings.keep_best and val_loss is not None and (st.best is None or val_loss < st.best["loss"]):
        weights = {k: v.detach().clone() for k, v in st.model.state_dict().items()}
        st.best = {"loss": float(val_loss), "epoch": epoch + 1, "model": weights}
    for k in list(st.history) + [k for k in row if k not in st.history]:
        st.history.setdefault(k, [float("nan")] * epoch)
        st.history[k].append(float(row.get(k, float("nan"))))
    finished = epoch + 1 == st.epochs
    if finished and st.best is not None:  # keep_best: the finished model holds the best epoch's weights
        st.model.load_state_dict(st.best["model"])
    if save or finished:
        _save(run, st, epoch + 1, finished)


def _save(run: Run, st: _State, epoch_done: int, finished: bool, **extra) -> None:
    """Write the run's checkpoint (under DDP only rank 0 writes)."""
    if not distributed.is_main():
        return
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "key": run.key,
        "name": run.name,
        "config": dict(st.model.config),
        "settings": asdict(run.settings),
        "meta": run.meta,
        "seed": int(run.seed),
        "epoch": epoch_done,
        "total_epochs": st.epochs,
        "finished": finished,
        "best_epoch": None if st.best is None else st.best["epoch"],
        "best": None if finished else st.best,
        "model": st.model.state_dict(),
        "optimizer": st.optimiser.state_dict(),
        "scheduler": st.scheduler.state_dict(),
        "rng": rng_state(run.device),
        "history": st.history,
        **({"scaler": st.scaler.state_dict()} if st.scaler is not None and st.scaler.is_enabled() else {}),
        **extra,
    }
    save_checkpoint(checkpoint, run.path)
    st.saved_at = time.perf_counter()


# ---------------------------------------------------------------------------------------- entry points
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


def _train(
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
) -> TrainResult:
    """The one path of every training: data, shipped weights, the checkpoint's key and path, then :func:`fit`
    inside the checkpoint's lock (:func:`~loopgen.train.checkpoint.training_lock`), so a notebook, the CLI,
    ``fit`` and ``rehearse`` never write one checkpoint at once: the second is refused in one line
    (:class:`loopgen.store.atomic.LockedError`) or, with ``wait``, waits. Under torchrun rank 0 takes the lock."""
    device = device_mod.pick_device() if call.device is None else torch.device(call.device)
    device_mod.keep_freed_memory()  # also when the device was given (pick_device does it otherwise)
    device_mod.resolve_precision(device, settings.precision)  # fp16 off CUDA: refused before any work
    settings = settings_on(settings, device)  # precision "auto" resolved for this device (and keyed so)
    train_data, val_data = data.prepare(
        train, val, settings, check=check, names=names, seed=call.seed, device=device
    )
    kwargs = dict(model_kwargs)
    if is_prior(name):  # its sequence length is the codes' (unless given)
        kwargs = {"seq_len": int(train_data.shape[1]), **kwargs}
    shipped = install_shipped(name, settings, call.data_key, call.checkpoint_dir, kwargs, call.seed, vq_key=vq_key,
                              force=call.force)
    own = settings if shipped is None else shipped
    where = {"data_key": call.data_key, "model_kwargs": kwargs, "seed": call.seed, "vq_key": vq_key}
    meta = {"data_key": str(call.data_key), **({"vq_key": vq_key} if vq_key else {}), "n_train": len(train_data)}
    meta["n_val"] = 0 if val_data is None else len(val_data)
    run = Run(
        name, own.recipe(name), resolved_kwargs(name, own, kwargs), train_data, val_data,
        path=checkpoint_path(name, own, checkpoint_dir=call.checkpoint_dir, **where),
        key=checkpoint_key(name, own, **where), meta=meta, seed=call.seed, device=device,
        force=call.force, progress=call.progress, max_epochs_this_call=call.max_epochs_this_call,
    )
    run.path.parent.mkdir(parents=True, exist_ok=True)
    lock = training_lock(run.path, wait=call.wait) if distributed.is_main() else contextlib.nullcontext()
    with lock:
        result = fit(run)
    if shipped is not None:
        result.weights = f"shipped ({settings.recipe(name).shipped_from})"
    return result


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
    once (``wait=False``, :class:`loopgen.store.atomic.LockedError`) or wait for it. The history has one row per epoch: loss, recon (BCE per loop), kl and
    kl_beta (VAEs), teacher_prob (AR), commitment, perplexity and dead_codes (VQ), val_recon_error,
    val_recon, lr, seconds.
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
    return _train(name, codes, val_codes, settings, _Call(data_key=data_key, checkpoint_dir=checkpoint_dir, **options),
                  check=lambda array, what: check_codes(array, name=what, num_codes=num_codes, min_steps=2), names=("codes", "val_codes"),
                  model_kwargs={"num_codes": int(num_codes), **(model_kwargs or {})}, vq_key=vq_key)
