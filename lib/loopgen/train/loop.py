"""The training loop: one path for the autoencoders (:func:`train_model`) and the prior (:func:`train_prior`).

Each call prepares its data (:mod:`loopgen.train.data`), sets up a :class:`Run` (model, recipe, checkpoint)
and :func:`fit` trains it: AdamW, the cosine learning rate and KL weight of :mod:`loopgen.train.schedule`,
one checkpoint after every epoch (and every ``checkpoint_minutes`` inside one, with the steps done and the
running sums), so a killed run resumes where it stopped and ends as the uninterrupted run would. A finished
checkpoint is reused, not retrained, unless ``force``. The AR LSTM-VAE's scheduled sampling reads the epoch
mapped onto the paper's 2,000-epoch time axis (``loopgen.models.lstm_vae.schedule_epoch``). Under
``torchrun`` each process trains on its slice of every batch (:mod:`loopgen.distributed`); only rank 0
validates, shows progress and writes checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from loopgen import device as device_mod
from loopgen import distributed, registry
from loopgen.models import ContinuousVAE, build, perplexity
from loopgen.models.lstm_vae import ARLSTMVAE, schedule_epoch
from loopgen.profiles import TrainSettings
from loopgen.seed import seed_everything
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
)
from loopgen.train.evaluate import evaluate_autoencoder, evaluate_prior
from loopgen.train.recipes import install_shipped
from loopgen.train.schedule import batch_size_for, epochs_for, is_prior, kl_beta_at, make_scheduler
from loopgen.validate import check_codes, check_loops


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
    weights: str = "trained here"  # or "shipped (<profile>)": installed from loopgen.shipped


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
    best: dict | None = None  # keep_best: {"loss", "epoch", "model"} of the best validated epoch so far
    partial: dict = field(default_factory=dict)  # a checkpoint written inside an epoch: steps done, sums
    saved_at: float = 0.0  # time.perf_counter() of the last checkpoint


# ------------------------------------------------------------------------------------------- the loop
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
    for epoch in range(first, last):
        t0 = time.perf_counter()
        row = {"epoch": epoch + 1, **_train_epoch(run, st, train_step, epoch)}
        if run.val_data is not None and len(run.val_data) and distributed.is_main():
            evaluate = evaluate_prior if is_prior(run.name) else evaluate_autoencoder
            row.update(evaluate(st.model, run.val_data, run.device, run.settings.precision))
        row["lr"] = float(st.optimiser.param_groups[0]["lr"])
        row["seconds"] = time.perf_counter() - t0
        _end_epoch(run, st, epoch, row)
        if bar is not None:
            shown = ("loss", "perplexity", "val_recon_error", "accuracy")
            bar.set_postfix({k: f"{row[k]:.4g}" for k in shown if k in row})
            bar.update(1)
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
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr_max, weight_decay=settings.weight_decay)
    batch_size = batch_size_for(run.name, settings)
    steps_per_epoch = data.steps_per_epoch(len(run.train_data), batch_size)
    scheduler = make_scheduler(optimiser, settings, epochs * steps_per_epoch)
    st = _State(model, optimiser, scheduler, epochs, batch_size, steps_per_epoch)
    if run.force and distributed.is_main():
        run.path.unlink(missing_ok=True)
    distributed.barrier()  # under DDP no rank looks for the checkpoint before rank 0 has removed it
    if not run.path.exists():
        return st
    ckpt = read_checkpoint(run.path, run.device)
    if ckpt.get("key") != run.key or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise RuntimeError(f"{run.path} does not hold the run it is named after; delete it or pass force=True")
    model.load_state_dict(ckpt["model"])
    st.history = {k: list(v) for k, v in ckpt["history"].items()}
    st.epoch, st.finished = int(ckpt["epoch"]), bool(ckpt["finished"])
    if not st.finished:
        optimiser.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"], run.device)
        st.best = ckpt.get("best")
        st.partial = ckpt.get("partial") or {}
    return st


def _kl_beta(run: Run, st: _State, step: int) -> float:
    if not isinstance(st.model, ContinuousVAE):
        return 1.0
    total = st.epochs * st.steps_per_epoch
    return kl_beta_at(step, total, run.settings.kl_anneal_fraction) * run.settings.kl_beta_max


def _train_epoch(run: Run, st: _State, train_step: Callable, epoch: int) -> dict[str, float]:
    """One pass over the epoch's batches (from where an interrupted one stopped): the mean loss terms."""
    partial, st.partial = st.partial, {}
    sums: dict[str, float] = dict(partial.get("sums", {}))
    counts = partial.get("counts")
    n_seen = int(partial.get("n_seen", 0))
    skip = int(partial.get("step_in_epoch", 0))  # batches of this epoch done before an interruption
    distributed.reseed_for_epoch(run.seed, epoch if not skip else (epoch + 1) * 1_000_003 + skip)
    step = epoch * st.steps_per_epoch + skip
    is_ar = isinstance(st.model, ARLSTMVAE)
    model_epoch = schedule_epoch(epoch, st.epochs, st.model.ss_paper_epochs) if is_ar else epoch
    batches = data.batches(data.epoch_order(len(run.train_data), run.seed, epoch), st.batch_size)
    for i_batch in range(skip, len(batches)):
        batch_index = distributed.local_slice(batches[i_batch])  # this rank's share (all of it on one)
        batch = run.train_data[batch_index].to(run.device, non_blocking=True)
        with device_mod.autocast(run.device, run.settings.precision):
            x = batch if is_prior(run.name) else batch.float()  # a prior reads code indices
            loss, terms = train_step(x, _kl_beta(run, st, step), model_epoch)
        st.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if run.settings.grad_clip:
            nn.utils.clip_grad_norm_(st.model.parameters(), run.settings.grad_clip)
        st.optimiser.step()
        st.scheduler.step()
        step += 1
        b = len(batch_index)
        n_seen += b
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) * b
        for term, value in terms.items():
            if term == "code_counts":
                counts = value.double().cpu() if counts is None else counts + value.double().cpu()
            else:
                sums[term] = sums.get(term, 0.0) + float(value) * b
        minutes = run.settings.checkpoint_minutes
        if minutes and i_batch + 1 < len(batches) and time.perf_counter() - st.saved_at >= 60 * minutes:
            inside = {"step_in_epoch": i_batch + 1, "sums": dict(sums), "counts": counts, "n_seen": n_seen}
            _save(run, st, epoch, False, partial=inside)
    row = {k: v / n_seen for k, v in sums.items()}
    if isinstance(st.model, ContinuousVAE):
        row["kl_beta"] = _kl_beta(run, st, step)
    if is_ar:
        row["teacher_prob"] = st.model.teacher_prob_at(epoch, st.epochs)
    if counts is not None:
        row["perplexity"] = perplexity(counts)
        row["dead_codes"] = int((counts == 0).sum())
    return row


def _end_epoch(run: Run, st: _State, epoch: int, row: dict[str, float]) -> None:
    """Keep the best epoch's weights (``keep_best``), add ``row`` to the history and write the checkpoint."""
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
    """The one path of every training: data, shipped weights, the checkpoint's key and path, then :func:`fit`."""
    device = device_mod.pick_device() if call.device is None else torch.device(call.device)
    train_data, val_data = data.prepare(
        train, val, settings, check=check, names=names, seed=call.seed, device=device
    )
    kwargs = dict(model_kwargs)
    if is_prior(name):  # its sequence length is the codes' (unless given)
        kwargs = {"seq_len": int(train_data.shape[1]), **kwargs}
    shipped = install_shipped(name, settings, call.data_key, call.checkpoint_dir, kwargs, call.seed, vq_key=vq_key)
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
) -> TrainResult:
    """Train autoencoder ``name`` on ``train_loops`` (N, 128, 93) 0/1, validating on ``val_loops`` each epoch.

    ``settings.max_train_loops`` / ``max_val_loops`` take seeded random subsets. Resumes an unfinished
    checkpoint, reuses a finished one (unless ``force``); ``max_epochs_this_call`` stops early (the run can
    be continued by calling again). The history has one row per epoch: loss, recon (BCE per loop), kl and
    kl_beta (VAEs), teacher_prob (AR), commitment, perplexity and dead_codes (VQ), val_recon_error,
    val_recon, lr, seconds.
    """
    if name not in registry.autoencoders():
        raise ValueError(f"train_model trains the autoencoders {registry.autoencoders()}; for the prior use train_prior")
    call = _Call(data_key=data_key, checkpoint_dir=checkpoint_dir, seed=seed, device=device, force=force,
                 progress=progress, max_epochs_this_call=max_epochs_this_call)
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
    ``options`` are :func:`train_model`'s: ``seed``, ``device``, ``force``, ``progress``, ``max_epochs_this_call``.
    History: loss (cross-entropy), accuracy (teacher forcing, training batches), val_loss, val_accuracy, lr.
    """
    return _train(name, codes, val_codes, settings, _Call(data_key=data_key, checkpoint_dir=checkpoint_dir, **options),
                  check=lambda array, what: check_codes(array, name=what, num_codes=num_codes, min_steps=2), names=("codes", "val_codes"),
                  model_kwargs={"num_codes": int(num_codes), **(model_kwargs or {})}, vq_key=vq_key)
