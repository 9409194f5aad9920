"""One training loop for every model: AdamW, cosine learning rate, KL annealing, checkpoints that resume.

The paper trains every model with AdamW and a cosine schedule from 1e-3 down to 5e-6 (2,000 epochs, batch
2,048); the continuous VAEs anneal the KL weight beta from 0 to 1. Here:

* the learning rate follows a cosine from ``lr_max`` to ``lr_min`` over all optimisation steps of the run,
  stepped after every batch;
* beta rises linearly from 0 to ``kl_beta_max`` (1, the paper's) over the first ``kl_anneal_fraction`` of
  those steps, then stays there;
* the AR LSTM-VAE's scheduled sampling is driven by the epoch mapped onto the paper's 2,000-epoch time
  axis (``schedule_epoch``; see ``loopgen.models.lstm_vae``); its output bias starts at zero (He, the paper
  profile) or at the log-odds of the training cells' density (demo, ``TrainSettings.ar_output_bias``);
* the settings also choose the encoder width, the VQ dead-code restart and loss reduction
  (:func:`with_settings`) and the numeric precision (``loopgen.device.autocast``); every choice the paper leaves
  open is listed in ``loopgen.profiles.OPEN_CHOICES``;
* each epoch reshuffles the training loops with a generator seeded by (seed, epoch), so a resumed run sees
  the same batches as an uninterrupted one;
* under ``torchrun`` each process trains on its slice of every batch with DistributedDataParallel
  (:mod:`loopgen.distributed`); only rank 0 writes checkpoints.

Checkpoints are keyed by (model name, full model configuration, the training settings that change the
weights, the dataset's ``data_key``, the seed): ``checkpoint_dir/<name>[-variant]-<hash>.pt``. One is written
atomically after every epoch (and every ``checkpoint_minutes`` inside one, with the steps done and the running
sums) with the model, optimiser, scheduler, RNG states (torch, numpy, python) and the history so far; a killed
run resumes where it stopped and ends as the uninterrupted run would. A finished
checkpoint is reused, not retrained, unless ``force``. Everything loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from loopgen import LOOP_STEPS, N_COLUMNS, distributed, registry
from loopgen import device as device_mod
from loopgen.cli import UserError
from loopgen.models import MODELS, ContinuousVAE, build, perplexity
from loopgen.models.lstm_vae import ARLSTMVAE, schedule_epoch
from loopgen.paths import MissingInputError
from loopgen.profiles import PROFILES, TrainSettings
from loopgen.seed import seed_everything

CHECKPOINT_FORMAT = 1
ARCHITECTURE_VERSION = 1  # bump when a model's code changes so that old checkpoints are not reused
EVAL_BATCH = 512
TRAIN_NOTEBOOK = "02_train_autoencoders.ipynb"
PRIOR_NOTEBOOK = "03_train_prior.ipynb"
def _family(name: str) -> str:
    return registry.MODELS[name].family if name in registry.MODELS else "conv"


def _gaussian(name: str) -> bool:
    return name in registry.MODELS and registry.MODELS[name].kind == registry.CONTINUOUS


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


# --------------------------------------------------------------------------------------------- schedules
def epochs_for(name: str, settings: TrainSettings) -> int:
    """Epochs of ``name`` under ``settings``: ``lstm_epochs`` for the LSTM-VAEs, ``prior_epochs`` for the prior."""
    if _family(name) == "lstm":
        return settings.lstm_epochs
    if name == "prior":
        return settings.prior_epochs
    return settings.epochs


def batch_size_for(name: str, settings: TrainSettings) -> int:
    """Batch size of ``name``: ``conv_batch_size`` (when set) for the CNN-VAE and VQ-VAE, else ``batch_size``."""
    if _family(name) == "conv" and settings.conv_batch_size is not None:
        return settings.conv_batch_size
    return settings.batch_size


def kl_beta_at(step: int, total_steps: int, anneal_fraction: float) -> float:
    """KL weight at optimisation ``step`` (0-based): linear 0 -> 1 over ``anneal_fraction`` of the run."""
    ramp = anneal_fraction * total_steps
    if ramp <= 0:
        return 1.0
    return float(min(1.0, step / ramp))


def cosine_lr(step: int, total_steps: int, lr_max: float, lr_min: float) -> float:
    """The learning rate after ``step`` scheduler steps (the closed form of the cosine schedule)."""
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))


def warmup_cosine_lr(step: int, total_steps: int, warmup_steps: int, lr_max: float, lr_min: float) -> float:
    """Linear warm-up from ``lr_max / warmup_steps`` to ``lr_max``, then the cosine down to ``lr_min``."""
    if step < warmup_steps:
        return lr_max * (step + 1) / warmup_steps
    return cosine_lr(step - warmup_steps, max(1, total_steps - warmup_steps), lr_max, lr_min)


def make_scheduler(optimiser: torch.optim.Optimizer, settings: TrainSettings, total_steps: int):
    """PyTorch's ``CosineAnnealingLR`` (the paper's schedule), or warm-up + cosine when ``warmup_steps`` > 0."""
    if settings.warmup_steps <= 0:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total_steps, eta_min=settings.lr_min)
    warmup = min(settings.warmup_steps, max(1, total_steps - 1))
    return torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: warmup_cosine_lr(step, total_steps, warmup, settings.lr_max, settings.lr_min) / settings.lr_max,
    )


# ------------------------------------------------------------------------------------------ checkpoint keys
def _weight_settings(name: str, settings: TrainSettings) -> dict:
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
    if _gaussian(name):
        keyed["kl_anneal_fraction"] = settings.kl_anneal_fraction
    if settings.precision != "auto":  # keyed only when set, so earlier checkpoints keep their keys
        keyed["precision"] = settings.precision
    if settings.kl_beta_max != 1.0 and _gaussian(name):
        keyed["kl_beta_max"] = settings.kl_beta_max
    # the short-run recipe enters the key only when used, so the keys of plain settings stay as they were
    for extra, plain in (("warmup_steps", 0), ("grad_clip", None), ("keep_best", False)):
        if getattr(settings, extra) != plain:
            keyed[extra] = getattr(settings, extra)
    return keyed


def resolved_kwargs(name: str, settings: TrainSettings, model_kwargs: dict | None = None) -> dict:
    """Model constructor arguments of ``name``: what ``settings`` chooses (``TrainSettings.model_kwargs``: the
    encoder width, AR output bias, dead-code restart, VQ loss reduction, then the profile's per-model
    arguments), overridden by ``model_kwargs``."""
    return {**settings.recipe(name).model_kwargs(name), **(model_kwargs or {})}


with_settings = resolved_kwargs  # the name issue 10's code and tests use


def model_config(name: str, model_kwargs: dict | None = None) -> dict:
    """The full constructor configuration of ``name`` (defaults filled in) for ``model_kwargs``."""
    return dict(build(name, **(model_kwargs or {})).config)


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
        "settings": _weight_settings(name, settings),
        "data_key": str(data_key),
        "seed": int(seed),
    }
    if name == "prior":
        if not vq_key:
            raise ValueError("the prior's checkpoint is keyed by its VQ-VAE: pass vq_key")
        payload["vq_key"] = vq_key
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _variant(name: str, config: dict) -> str:
    if name == "vq_vae":
        return f"-t{config['latent_steps']}-L{config['latent_dim']}-K{config['num_codes']}"
    if name == "prior":
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
def _rng_state(device: torch.device) -> dict:
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


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    np.random.set_state(  # noqa: NPY002 - restore the legacy global state
        (
            "MT19937",
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["cached_gaussian"],
        )
    )
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _atomic_save(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class CheckpointError(UserError):
    """A checkpoint file that cannot be read (truncated, damaged, or not a loopgen checkpoint)."""


def read_checkpoint(path: Path | str, device: torch.device | str = "cpu") -> dict:
    """Load a checkpoint dictionary safely (``weights_only=True``, so loading never executes code).

    A truncated, damaged or foreign file raises :class:`CheckpointError` naming the file and how to retrain;
    a missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as err:  # noqa: BLE001 - zip, unpickling, EOF, safety refusals: all "unreadable"
        reason = " ".join(str(err).split())[:160] or type(err).__name__
        raise CheckpointError(
            f"checkpoint {path} is damaged or incomplete ({type(err).__name__}: {reason}); "
            f"delete it and run again, or retrain with 'python -m loopgen train ... --force'"
        ) from err
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(
            f"{path} is not a loopgen checkpoint; delete it and run again, "
            "or retrain with 'python -m loopgen train ... --force'"
        )
    return ckpt


# ------------------------------------------------------------------------------------------ shipped weights
def _shipped_settings(name: str, settings: TrainSettings) -> TrainSettings | None:
    """The settings of the profile whose shipped weights ``name``'s recipe asks for, or ``None``."""
    source = settings.recipe(name).shipped_from
    if not source:
        return None
    from loopgen.profiles import get

    long = get(source).train
    return long


def _install_shipped(
    name: str, settings: TrainSettings, data_key: str, checkpoint_dir: Path | str, kwargs: dict, seed: int
) -> TrainSettings | None:
    """Install the shipped weights of ``name`` as a finished checkpoint when its recipe asks for them and
    they match this dataset; return the settings they were trained with, or ``None`` (then train here)."""
    from loopgen import shipped

    long = _shipped_settings(name, settings)
    if long is None:
        return None
    key = checkpoint_key(name, long, data_key=data_key, model_kwargs=kwargs, seed=seed)
    path = checkpoint_path(name, long, data_key=data_key, checkpoint_dir=checkpoint_dir, model_kwargs=kwargs, seed=seed)
    if path.exists():
        ckpt = read_checkpoint(path)
        if ckpt.get("finished") and ckpt.get("key") == key:
            return long
    payload = shipped.load(name, key)
    if payload is None:
        print(
            f"{name}: no shipped {settings.recipe(name).shipped_from} weights match this dataset (key {key}); "
            "training the short demo recipe instead",
            file=sys.stderr,
        )
        return None
    long_recipe = long.recipe(name)
    _atomic_save(
        {
            "format": CHECKPOINT_FORMAT,
            "key": key,
            "name": name,
            "config": payload["config"],
            "settings": asdict(long_recipe),
            "meta": {**payload.get("meta", {}), "shipped": shipped.shipped_path(name, key).name},
            "seed": int(seed),
            "epoch": long_recipe.epochs,
            "total_epochs": long_recipe.epochs,
            "finished": True,
            "best_epoch": payload.get("best_epoch"),
            "best": None,
            "model": payload["model"],
            "history": payload["history"],
        },
        path,
    )
    return long


def weights_source(name: str, settings: TrainSettings, *, data_key: str, checkpoint_dir: Path | str, seed: int = 0) -> str:
    """Where the weights ``load_trained`` gives for ``name`` come from: "trained here" or "shipped (<profile>)"."""
    long = _shipped_settings(name, settings)
    if long is not None:
        path = checkpoint_path(name, long, data_key=data_key, checkpoint_dir=checkpoint_dir, seed=seed)
        own = checkpoint_path(name, settings, data_key=data_key, checkpoint_dir=checkpoint_dir, seed=seed)
        if path != own and path.exists():
            ckpt = read_checkpoint(path)
            if ckpt.get("finished"):
                shipped_file = ckpt.get("meta", {}).get("shipped")
                source = settings.recipe(name).shipped_from
                return f"shipped ({source})" if shipped_file else f"{source}, trained here"
    return "trained here"


def recipe_table(name: str, settings: TrainSettings, n_train: int, n_val: int) -> pd.Series:
    """The recipe ``name`` trains with under ``settings``, one row per setting, beside the paper's."""
    from loopgen import paper

    r = settings.recipe(name)
    schedule = f"{r.lr_max:g} -> {r.lr_min:g} (cosine)"
    if r.warmup_steps:
        schedule = f"{r.warmup_steps} warm-up steps, then " + schedule
    rows = {
        "epochs": r.epochs,
        "batch size": r.batch_size,
        "optimiser steps": r.epochs * max(1, min(n_train, r.max_train_loops or n_train) // r.batch_size),
        "training loops used": min(n_train, r.max_train_loops or n_train),
        "validation loops checked each epoch": min(n_val, r.max_val_loops or n_val),
        "learning rate": schedule,
        "gradient-norm clipping": r.grad_clip or "none",
        "weights kept": "the epoch with the lowest validation loss" if r.keep_best else "the last epoch",
        "model arguments set by the profile": settings.model_kwargs(name) or "none (the defaults)",
    }
    if _gaussian(name):
        rows["KL weight"] = f"0 -> 1 over the first {r.kl_anneal_fraction:.0%} of the steps"
    if r.shipped_from:
        rows["shipped weights"] = f"{r.shipped_from} weights when they match this dataset (loopgen.shipped)"
    rows["paper"] = (
        f"{paper.TRAINING['epochs']:,} epochs, batch {paper.TRAINING['batch_size']:,}, "
        f"{paper.DATASET.train:,} training loops"
    )
    return pd.Series(rows, name=name)


def training_notes(
    names: tuple[str, ...] | list[str], settings: TrainSettings, *, data_key: str, checkpoint_dir: Path | str, seed: int = 0
) -> list[str]:
    """One note per model for the tables: its recipe (epochs, batch) and where its weights come from."""
    from loopgen import paper

    parts = []
    for name in names:
        r = settings.recipe(name)
        source = weights_source(name, settings, data_key=data_key, checkpoint_dir=checkpoint_dir, seed=seed)
        if source != "trained here":
            long = _shipped_settings(name, settings).recipe(name)
            how = "SHIPPED" if source.startswith("shipped") else "locally trained"
            parts.append(f"{registry.get(name).title}: {how} {r.shipped_from} weights ({long.epochs} epochs, batch {long.batch_size})")
        else:
            parts.append(f"{registry.get(name).title}: trained here ({r.epochs} epochs, batch {r.batch_size})")
    return [
        "Training: " + "; ".join(parts) + f". The paper: {paper.TRAINING['epochs']:,} epochs, batch "
        f"{paper.TRAINING['batch_size']:,}, on {paper.DATASET.train:,} loops."
    ]


# ------------------------------------------------------------------------------------------ data helpers
def _subsample(n: int, limit: int | None, seed: int, salt: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of ``limit`` out of ``n`` (all when limit is None or >= n)."""
    if limit is None or limit >= n:
        return np.arange(n)
    rng = np.random.default_rng([seed, salt])
    return np.sort(rng.choice(n, size=limit, replace=False))


def _check_loops(loops: np.ndarray, what: str) -> np.ndarray:
    loops = np.asarray(loops)
    if loops.ndim != 3 or loops.shape[1:] != (LOOP_STEPS, N_COLUMNS):
        raise ValueError(f"{what} must have shape (N, {LOOP_STEPS}, {N_COLUMNS}), got {loops.shape}")
    if len(loops) == 0:
        raise ValueError(f"{what} is empty: nothing to train on (did extraction find any loops?)")
    return loops


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=g)


def _batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    chunks = list(torch.split(order, batch_size))
    if len(chunks) > 1 and len(chunks[-1]) < 2:  # batchnorm needs two examples
        chunks = chunks[:-1]
    return chunks


# ------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def _evaluate_autoencoder(
    model: nn.Module, loops: torch.Tensor, device: torch.device, precision: str = "auto"
) -> dict[str, float]:
    """Validation reconstruction error (Hamming fraction, paper Tables 1-2) and BCE per loop."""
    was_training = model.training
    model.eval()
    wrong = 0.0
    bce = 0.0
    for start in range(0, len(loops), EVAL_BATCH):
        x = loops[start : start + EVAL_BATCH].to(device).float()
        with device_mod.autocast(device, precision):
            logits = model.reconstruct_logits(x)
        logits = logits.float()
        wrong += float(((logits >= 0).float() != x).float().sum())
        bce += float(nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum"))
    model.train(was_training)
    n = len(loops)
    return {"val_recon_error": wrong / (n * LOOP_STEPS * N_COLUMNS), "val_recon": bce / n}


@torch.no_grad()
def _evaluate_prior(
    model: nn.Module, codes: torch.Tensor, device: torch.device, precision: str = "auto"
) -> dict[str, float]:
    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0.0, 0
    for start in range(0, len(codes), EVAL_BATCH):
        c = codes[start : start + EVAL_BATCH].to(device)
        with device_mod.autocast(device, precision):
            logits, _ = model(c[:, :-1])
        logits = logits.float()
        target = c[:, 1:]
        loss_sum += float(
            nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum"
            )
        )
        correct += float((logits.argmax(-1) == target).sum())
        count += target.numel()
    model.train(was_training)
    return {"val_loss": loss_sum / count, "val_accuracy": correct / count}


# ------------------------------------------------------------------------------------------ the loop
def _fit(
    *,
    name: str,
    model_kwargs: dict,
    train_data: torch.Tensor,
    val_data: torch.Tensor | None,
    settings: TrainSettings,
    path: Path,
    key: str,
    meta: dict,
    seed: int,
    device: torch.device,
    force: bool,
    progress: bool,
    max_epochs_this_call: int | None,
) -> TrainResult:
    settings = settings.recipe(name)
    model_kwargs = resolved_kwargs(name, settings, model_kwargs)
    epochs = epochs_for(name, settings)
    if epochs < 1:
        raise ValueError(f"{name}: the settings give {epochs} epochs; need at least 1")

    seed_everything(seed)
    model = build(name, **model_kwargs).to(device)
    config = dict(model.config)
    if isinstance(model, ARLSTMVAE):
        model.init_output_bias(float(train_data.float().mean()))
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr_max, weight_decay=settings.weight_decay)
    batch_size = batch_size_for(name, settings)
    steps_per_epoch = len(_batches(torch.arange(len(train_data)), batch_size))
    total_steps = epochs * steps_per_epoch
    scheduler = make_scheduler(optimiser, settings, total_steps)
    history: dict[str, list] = {}
    start_epoch = 0
    best: dict | None = None  # keep_best: {"loss", "epoch", "model"} of the best validated epoch so far
    partial: dict = {}  # a checkpoint written inside an epoch: steps done, running sums

    if path.exists() and force:
        path.unlink()
    if path.exists():
        ckpt = read_checkpoint(path, device)
        if ckpt.get("key") != key or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise RuntimeError(
                f"{path} does not hold the run it is named after; delete it or pass force=True"
            )
        model.load_state_dict(ckpt["model"])
        history = {k: list(v) for k, v in ckpt["history"].items()}
        start_epoch = int(ckpt["epoch"])
        if ckpt["finished"]:
            model.eval()
            return TrainResult(
                name, model, pd.DataFrame(history), path, key, True, reused=True, config=config
            )
        optimiser.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"], device)
        best = ckpt.get("best")
        partial = ckpt.get("partial") or {}

    train_step = distributed.wrap_for_training(model, device, sync_batchnorm=settings.sync_batchnorm)
    main = distributed.is_main()

    is_vae = isinstance(model, ContinuousVAE)
    is_prior = name == "prior"
    last_epoch = epochs if max_epochs_this_call is None else min(epochs, start_epoch + max_epochs_this_call)
    bar = None
    if progress and main:
        from tqdm import tqdm

        bar = tqdm(total=epochs, initial=start_epoch, desc=name, unit="epoch")
    t_call = time.perf_counter()
    t_saved = t_call
    model.train()

    def state(epoch_done: int, finished: bool, **extra) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "key": key,
            "name": name,
            "config": config,
            "settings": asdict(settings),
            "meta": meta,
            "seed": int(seed),
            "epoch": epoch_done,
            "total_epochs": epochs,
            "finished": finished,
            "best_epoch": None if best is None else best["epoch"],
            "best": None if finished else best,
            "model": model.state_dict(),
            "optimizer": optimiser.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_state(device),
            "history": history,
            **extra,
        }

    for epoch in range(start_epoch, last_epoch):
        t0 = time.perf_counter()
        sums: dict[str, float] = dict(partial.get("sums", {}))
        counts = partial.get("counts")
        n_seen = int(partial.get("n_seen", 0))
        skip = int(partial.get("step_in_epoch", 0))  # batches of this epoch done before an interruption
        partial = {}
        distributed.reseed_for_epoch(seed, epoch if not skip else (epoch + 1) * 1_000_003 + skip)
        step = epoch * steps_per_epoch + skip
        # the AR LSTM-VAE reads its scheduled-sampling epoch on the paper's 2,000-epoch time axis
        model_epoch = (
            schedule_epoch(epoch, epochs, model.ss_paper_epochs) if isinstance(model, ARLSTMVAE) else epoch
        )
        epoch_batches = _batches(_epoch_order(len(train_data), seed, epoch), batch_size)
        for i_batch in range(skip, len(epoch_batches)):
            batch_index = distributed.local_slice(epoch_batches[i_batch])  # this rank's share (all of it on one)
            batch = train_data[batch_index].to(device, non_blocking=True)
            x = batch if is_prior else batch.float()
            beta = kl_beta_at(step, total_steps, settings.kl_anneal_fraction) * settings.kl_beta_max if is_vae else 1.0
            with device_mod.autocast(device, settings.precision):
                loss, terms = train_step(x, beta, model_epoch)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimiser.step()
            scheduler.step()
            step += 1
            b = len(batch_index)
            n_seen += b
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) * b
            for term, value in terms.items():
                if term == "code_counts":
                    counts = value.double().cpu() if counts is None else counts + value.double().cpu()
                else:
                    sums[term] = sums.get(term, 0.0) + float(value) * b
            minutes = settings.checkpoint_minutes
            if minutes and main and i_batch + 1 < len(epoch_batches) and time.perf_counter() - t_saved >= 60 * minutes:
                inside = {"step_in_epoch": i_batch + 1, "sums": dict(sums), "counts": counts, "n_seen": n_seen}
                _atomic_save(state(epoch, False, partial=inside), path)
                t_saved = time.perf_counter()
        row: dict[str, float] = {"epoch": epoch + 1}
        row.update({k: v / n_seen for k, v in sums.items()})
        if is_vae:
            row["kl_beta"] = kl_beta_at(step, total_steps, settings.kl_anneal_fraction) * settings.kl_beta_max
        if isinstance(model, ARLSTMVAE):
            row["teacher_prob"] = model.teacher_prob_at(epoch, epochs)
        if counts is not None:
            row["perplexity"] = perplexity(counts)
            row["dead_codes"] = int((counts == 0).sum())
        if val_data is not None and len(val_data) and main:
            row.update(
                _evaluate_prior(model, val_data, device, settings.precision)
                if is_prior
                else _evaluate_autoencoder(model, val_data, device, settings.precision)
            )
        row["lr"] = float(optimiser.param_groups[0]["lr"])
        row["seconds"] = time.perf_counter() - t0
        val_loss = row.get("val_loss" if is_prior else "val_recon")
        if settings.keep_best and val_loss is not None and (best is None or val_loss < best["loss"]):
            best = {
                "loss": float(val_loss),
                "epoch": epoch + 1,
                "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            }
        for k in list(history) + [k for k in row if k not in history]:
            history.setdefault(k, [float("nan")] * epoch)
            history[k].append(float(row.get(k, float("nan"))))
        finished = epoch + 1 == epochs
        if finished and best is not None:  # keep_best: the finished model holds the best epoch's weights
            model.load_state_dict(best["model"])
        if main:  # under DDP only rank 0 writes
            _atomic_save(state(epoch + 1, finished), path)
            t_saved = time.perf_counter()
        if bar is not None:
            shown = {"loss": f"{row['loss']:.4g}"}
            for k in ("perplexity", "val_recon_error", "accuracy"):
                if k in row:
                    shown[k] = f"{row[k]:.4g}"
            bar.set_postfix(shown)
            bar.update(1)
    if bar is not None:
        bar.close()
    distributed.barrier()  # every rank has the last checkpoint before any returns
    model.eval()
    done = len(history.get("epoch", [])) == epochs
    return TrainResult(
        name,
        model,
        pd.DataFrame(history),
        path,
        key,
        done,
        epochs_this_call=last_epoch - start_epoch,
        seconds_this_call=time.perf_counter() - t_call,
        config=config,
    )


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
    device = device_mod.pick_device() if device is None else torch.device(device)
    train_loops = _check_loops(train_loops, "train_loops")
    train_idx = _subsample(len(train_loops), settings.max_train_loops, seed, salt=1)
    train_data = torch.from_numpy(np.ascontiguousarray(train_loops[train_idx], dtype=np.uint8))
    val_data = None
    if val_loops is not None and len(val_loops):
        val_loops = _check_loops(val_loops, "val_loops")
        val_idx = _subsample(len(val_loops), settings.max_val_loops, seed, salt=2)
        val_data = torch.from_numpy(np.ascontiguousarray(val_loops[val_idx], dtype=np.uint8))
    if device.type == "cuda":  # hold the whole dataset on the GPU
        train_data = train_data.to(device)
        val_data = val_data.to(device) if val_data is not None else None
    kwargs = dict(model_kwargs or {})
    original = settings
    shipped_settings = _install_shipped(name, settings, data_key, checkpoint_dir, kwargs, seed)
    if shipped_settings is not None:
        settings = shipped_settings
    key = checkpoint_key(name, settings, data_key=data_key, model_kwargs=kwargs, seed=seed)
    path = checkpoint_path(
        name, settings, data_key=data_key, checkpoint_dir=checkpoint_dir, model_kwargs=kwargs, seed=seed
    )
    meta = {
        "data_key": str(data_key),
        "n_train": len(train_data),
        "n_val": 0 if val_data is None else len(val_data),
    }
    result = _fit(
        name=name,
        model_kwargs=kwargs,
        train_data=train_data,
        val_data=val_data,
        settings=settings,
        path=path,
        key=key,
        meta=meta,
        seed=seed,
        device=device,
        force=force,
        progress=progress,
        max_epochs_this_call=max_epochs_this_call,
    )
    if shipped_settings is not None:
        result.weights = f"shipped ({original.recipe(name).shipped_from})"
    return result


def _check_codes(codes: np.ndarray, num_codes: int, what: str) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise ValueError(f"{what} must have shape (N, t) with t >= 2, got {codes.shape}")
    if len(codes) == 0:
        raise ValueError(f"{what} is empty")
    if codes.min() < 0 or codes.max() >= num_codes:
        raise ValueError(f"{what} holds codes outside 0..{num_codes - 1}")
    return codes.astype(np.int64)


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
    seed: int = 0,
    device: torch.device | str | None = None,
    force: bool = False,
    progress: bool = True,
    max_epochs_this_call: int | None = None,
) -> TrainResult:
    """Train the LSTM prior on VQ-VAE code sequences ``codes`` (N, t) for ``settings.prior_epochs``.

    ``vq_key`` is the VQ-VAE's checkpoint key (``TrainResult.key``); ``num_codes`` its codebook size K.
    History: loss (cross-entropy), accuracy (teacher forcing, training batches), val_loss, val_accuracy, lr.
    """
    device = device_mod.pick_device() if device is None else torch.device(device)
    codes = _check_codes(codes, num_codes, "codes")
    kwargs = {"num_codes": int(num_codes), "seq_len": int(codes.shape[1]), **(model_kwargs or {})}
    train_idx = _subsample(len(codes), settings.max_train_loops, seed, salt=1)
    train_data = torch.from_numpy(codes[train_idx])
    val_data = None
    if val_codes is not None and len(val_codes):
        val_codes = _check_codes(val_codes, num_codes, "val_codes")
        val_data = torch.from_numpy(
            val_codes[_subsample(len(val_codes), settings.max_val_loops, seed, salt=2)]
        )
    if device.type == "cuda":
        train_data = train_data.to(device)
        val_data = val_data.to(device) if val_data is not None else None
    key = checkpoint_key("prior", settings, data_key=data_key, model_kwargs=kwargs, seed=seed, vq_key=vq_key)
    path = checkpoint_path(
        "prior",
        settings,
        data_key=data_key,
        checkpoint_dir=checkpoint_dir,
        model_kwargs=kwargs,
        seed=seed,
        vq_key=vq_key,
    )
    meta = {"data_key": str(data_key), "vq_key": vq_key, "n_train": len(train_data)}
    return _fit(
        name="prior",
        model_kwargs=kwargs,
        train_data=train_data,
        val_data=val_data,
        settings=settings,
        path=path,
        key=key,
        meta=meta,
        seed=seed,
        device=device,
        force=force,
        progress=progress,
        max_epochs_this_call=max_epochs_this_call,
    )


# ---------------------------------------------------------------------------------------------- loading
def _profile_of(settings: TrainSettings) -> str:
    for pname, profile in PROFILES.items():
        if profile.train == settings:
            return pname
    return "<your profile>"


def _how_to_make(
    name: str, settings: TrainSettings, model_kwargs: dict | None, vq_kwargs: dict | None
) -> str:
    profile = _profile_of(settings)
    if name == "prior":
        vq = model_config("vq_vae", vq_kwargs)
        extra = ""
        if (vq["latent_steps"], vq["latent_dim"], vq["num_codes"]) != registry.VQ_DEFAULT:
            extra = " (for this VQ-VAE variant)"
        return f"run notebook {PRIOR_NOTEBOOK} with -p PROFILE {profile}{extra}"
    params = f"-p PROFILE {profile} -p MODEL {name}"
    if name == "vq_vae":
        c = model_config("vq_vae", model_kwargs)
        params += f" -p VQ_T {c['latent_steps']} -p VQ_L {c['latent_dim']} -p VQ_K {c['num_codes']}"
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
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, pd.DataFrame]:
    """The finished model ``name`` trained under these settings on this dataset, in eval mode, and its history.

    For ``name="prior"`` give the VQ-VAE either by ``vq_key`` or by ``vq_kwargs`` (default: the paper's
    t=32, L=16, K=512); the prior's K and t follow from that VQ-VAE. Raises
    :class:`loopgen.paths.MissingInputError` naming the notebook (and its parameters) that trains it.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    kwargs = dict(model_kwargs or {})
    if weights_source(name, settings, data_key=data_key, checkpoint_dir=checkpoint_dir, seed=seed) != "trained here":
        settings = _shipped_settings(name, settings)
    if name == "prior":
        vq_config = model_config("vq_vae", resolved_kwargs("vq_vae", settings, vq_kwargs))
        if vq_key is None:
            vq_key = checkpoint_key("vq_vae", settings, data_key=data_key, model_kwargs=vq_kwargs, seed=seed)
        kwargs = {"num_codes": vq_config["num_codes"], "seq_len": vq_config["latent_steps"], **kwargs}
    path = checkpoint_path(
        name,
        settings,
        data_key=data_key,
        checkpoint_dir=checkpoint_dir,
        model_kwargs=kwargs,
        seed=seed,
        vq_key=vq_key,
    )
    how = _how_to_make(name, settings, kwargs, vq_kwargs)
    if not path.exists():
        raise MissingInputError(f"no trained {name} at {path}: {how}.")
    ckpt = read_checkpoint(path, device)
    if not ckpt.get("finished"):
        raise MissingInputError(
            f"{path} is unfinished ({ckpt.get('epoch')}/{ckpt.get('total_epochs')} epochs): {how} to finish it."
        )
    model = build(name, **resolved_kwargs(name, settings, kwargs)).to(device)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, pd.DataFrame(ckpt["history"])


# ------------------------------------------------------------------------------------------ command line
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


TEMP_PATTERN = ".*.pt.*.tmp"  # what _atomic_save writes: .<checkpoint>.<pid>.tmp


@contextlib.contextmanager
def training_lock(path: Path | str, *, wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on checkpoint ``path`` (file ``<path>.lock``): two trainings of one model never
    overlap; the second is refused at once (``wait=False``, :class:`loopgen.atomic.LockedError`) or waits.

    Inside the lock, temporaries that killed runs left in the checkpoint folder (``.<name>.pt.<pid>.tmp``
    whose process is gone) are removed.
    """
    from loopgen.atomic import exclusive_lock, remove_stale_temporaries

    path = Path(path)
    with exclusive_lock(path.with_name(path.name + ".lock"), what=f"checkpoint {path}", wait=wait):
        for stale in remove_stale_temporaries(path.parent, TEMP_PATTERN, pid_group=-2):
            print(f"removed {stale.name}, a temporary file left by a killed training run", file=sys.stderr)
        yield path


def cli_main(argv: list[str] | None = None) -> int:
    """``python -m loopgen train --model NAME --profile P [--t T --L L --K K] [--seed S] [--force]``.

    Also under ``torchrun --nproc-per-node N -m loopgen train ...`` (DistributedDataParallel, one process per
    GPU; see :mod:`loopgen.distributed`)."""
    try:
        return _cli(argv)
    except MissingInputError as err:  # the usual first-run case: one line naming the notebook to run
        print(f"error: {err}", file=sys.stderr)
        return 1


def _vq_latent_steps(text: str) -> int:
    value = int(text) if text.strip().lstrip("-").isdigit() else None
    if value not in (8, 16, 32, 64, 128):
        raise argparse.ArgumentTypeError(f"must be one of 8, 16, 32, 64, 128 (got {text!r})")
    return value


def _cli(argv: list[str] | None) -> int:
    from loopgen import cli, dataset, profiles
    from loopgen.paths import Paths

    parser = cli.parser("train", description="train one model on the extracted loops")
    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument("--profile", default="demo", choices=sorted(profiles.PROFILES))
    parser.add_argument("--t", type=_vq_latent_steps, default=None, help="VQ-VAE latent time steps (32 or 64)")
    parser.add_argument("--L", type=cli.int_in(1, 1024), default=None, help="VQ-VAE latent dimension (16 or 32)")
    parser.add_argument("--K", type=cli.int_in(2, 65536), default=None, help="VQ-VAE codebook size (256 or 512)")
    parser.add_argument("--seed", type=cli.seed_int, default=0)
    parser.add_argument("--force", action="store_true", help="retrain even if a finished checkpoint exists")
    parser.add_argument(
        "--device", default=None, choices=("cpu", "cuda", "mps"), help="default: the best available"
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise cli.UsageError("--device cuda: no CUDA device is available here (use cpu)")
    if args.device == "mps" and not torch.backends.mps.is_available():
        raise cli.UsageError("--device mps: no Apple GPU is available here (use cpu)")
    if args.model != "vq_vae" and args.model != "prior" and (args.t or args.L or args.K):
        raise cli.UsageError(f"--t, --L and --K are VQ-VAE settings; --model {args.model} takes none")

    profile = profiles.get(args.profile)
    paths = Paths()
    data_dir = dataset.dataset_dir(paths, profile.corpus.name)
    if not (data_dir / "manifest.json").exists():
        raise MissingInputError(
            f"{data_dir} is missing: run notebook 01_extract_loops.ipynb first (profile {args.profile})."
        )
    paths.ensure()
    data = dataset.load_loops(data_dir)
    train = data.loops[data.split == "train"]
    val = data.loops[data.split == "val"]
    # under torchrun: join the process group, one GPU per process (see loopgen.distributed)
    device = distributed.init_from_env(args.device) or device_mod.pick_device(args.device)
    if distributed.is_main():
        ranks = f" x {distributed.world_size()} processes (DDP)" if distributed.active() else ""
        print(
            f"{args.model}: {len(train)} training / {len(val)} validation loops, "
            f"device {device_mod.describe_device(device, profile.train.precision)}{ranks}"
        )
    vq_kwargs = vq_kwargs_from(args.t, args.L, args.K)
    if args.model == "prior":
        from loopgen import sample

        vq, _ = load_trained(
            "vq_vae",
            profile.train,
            data_key=data.data_key,
            model_kwargs=vq_kwargs,
            checkpoint_dir=paths.checkpoints,
            seed=args.seed,
            device=device,
        )
        vq_key = checkpoint_key(
            "vq_vae", profile.train, data_key=data.data_key, model_kwargs=vq_kwargs, seed=args.seed
        )
        train_codes = sample.encode_codes(vq, train)
        target = checkpoint_path(
            "prior", profile.train, data_key=data.data_key, checkpoint_dir=paths.checkpoints,
            model_kwargs={"num_codes": int(vq.num_codes), "seq_len": int(train_codes.shape[1])},
            seed=args.seed, vq_key=vq_key,
        )
        with training_lock(target):
            result = train_prior(
                train_codes,
                profile.train,
                data_key=data.data_key,
                vq_key=vq_key,
                checkpoint_dir=paths.checkpoints,
                num_codes=vq.num_codes,
                val_codes=sample.encode_codes(vq, val) if len(val) else None,
                seed=args.seed,
                device=device,
                force=args.force,
            )
    else:
        model_kwargs = vq_kwargs if args.model == "vq_vae" else None
        target = checkpoint_path(
            args.model, profile.train, data_key=data.data_key, checkpoint_dir=paths.checkpoints,
            model_kwargs=model_kwargs, seed=args.seed,
        )
        with training_lock(target):
            result = train_model(
                args.model,
                train,
                val,
                profile.train,
                data_key=data.data_key,
                model_kwargs=model_kwargs,
                checkpoint_dir=paths.checkpoints,
                seed=args.seed,
                device=device,
                force=args.force,
            )
    if not distributed.is_main():
        return 0
    last = result.history.iloc[-1].to_dict() if len(result.history) else {}
    state = (
        "reused"
        if result.reused
        else f"trained {result.epochs_this_call} epochs in {result.seconds_this_call:.1f} s"
    )
    print(f"{result.checkpoint} ({state}); last epoch: " + ", ".join(f"{k}={v:.4g}" for k, v in last.items()))
    return 0


# ---------------------------------------------------------------------------------------------- figure
def plot_history(history: pd.DataFrame, *, title: str = "", paper_value: float | None = None):
    """Training curves of one run as a matplotlib Figure with three panels.

    Left: training loss terms per loop (or the prior's cross-entropy). Middle: validation reconstruction
    error (or the prior's next-code accuracy), with the paper's value as a dashed line when given. Right:
    VQ-VAE codebook use (perplexity, dead codes), or the schedules (KL weight, teacher forcing, learning rate).
    """
    import matplotlib.pyplot as plt

    h = history
    if "epoch" not in h or not len(h):
        raise ValueError("empty history: nothing to plot")
    x = h["epoch"].to_numpy()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    is_prior = "accuracy" in h

    ax = axes[0]
    terms = ["loss", "val_loss"] if is_prior else [c for c in ("recon", "kl", "commitment") if c in h]
    for c in terms:
        ax.plot(x, h[c], marker=".", label=c)
    ax.set_ylabel("cross-entropy per code" if is_prior else "per loop (sum over cells)")
    ax.set_yscale("log")
    ax.set_title("training loss", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1]
    if is_prior:
        for c in ("accuracy", "val_accuracy"):
            if c in h:
                ax.plot(x, h[c], marker=".", label=c)
        ax.set_ylabel("next-code accuracy (teacher forcing)")
    elif "val_recon_error" in h:
        ax.plot(x, h["val_recon_error"], marker=".", label="ours (validation)")
        ax.set_yscale("log")
        ax.set_ylabel("Hamming error / (128 x 93)")
    if paper_value is not None:
        ax.axhline(paper_value, color="k", ls="--", lw=1, label=f"paper: {paper_value:.3g}")
    ax.set_title("validation", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[2]
    if "perplexity" in h:
        ax.plot(x, h["perplexity"], marker=".", color="C2", label="perplexity")
        ax.set_ylabel("perplexity (codes in use)")
        twin = ax.twinx()
        twin.plot(x, h["dead_codes"], marker=".", color="C3", label="dead codes")
        twin.set_ylabel("codes unused in the epoch")
        lines = ax.get_lines() + twin.get_lines()
        ax.legend(lines, [line.get_label() for line in lines], fontsize=7)
        ax.set_title("codebook use", fontsize=9)
    else:
        for c, label in (("kl_beta", "KL weight beta"), ("teacher_prob", "teacher forcing p")):
            if c in h:
                ax.plot(x, h[c], marker=".", label=label)
        ax.plot(x, h["lr"] / h["lr"].max(), marker=".", label="learning rate / max")
        ax.set_ylim(-0.05, 1.05)
        ax.set_title("schedules", fontsize=9)
        ax.legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("epoch")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
