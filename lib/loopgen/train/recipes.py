"""Recipes and shipped weights: what a model trains with, and when the weights shipped with the package
(:mod:`loopgen.train.shipped`) stand in for a short local run.

A profile's recipe for a model may name another profile (``shipped_from``) whose weights are shipped: when
they were trained on this very dataset (matched by checkpoint key and SHA-256), they are installed as a
finished checkpoint instead of training the short recipe here. ``force`` (``train --force``) trains the short
recipe here instead; once a checkpoint of the short recipe exists (trained with ``force``, or because no shipped
weights matched), it is the one used, and deleting it brings the shipped weights back.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from loopgen import registry
from loopgen.run import profiles
from loopgen.run.profiles import TrainSettings
from loopgen.train import shipped
from loopgen.train.checkpoint import (
    CHECKPOINT_FORMAT,
    checkpoint_key,
    checkpoint_path,
    read_checkpoint,
    save_checkpoint,
)
from loopgen.train.data import steps_per_epoch
from loopgen.train.schedule import is_gaussian

if TYPE_CHECKING:  # pandas is imported where a table is made: a box with only torch trains without it
    import pandas as pd


def shipped_settings(name: str, settings: TrainSettings) -> TrainSettings | None:
    """The settings of the profile whose shipped weights ``name``'s recipe asks for, or ``None``."""
    source = settings.recipe(name).shipped_from
    return profiles.get(source).train if source else None


def install_shipped(
    name: str,
    settings: TrainSettings,
    data_key: str,
    checkpoint_dir: Path | str,
    kwargs: dict,
    seed: int,
    vq_key: str | None = None,
    *,
    force: bool = False,
) -> TrainSettings | None:
    """Install the shipped weights of ``name`` as a finished checkpoint when its recipe asks for them and
    they match this dataset; return the settings they were trained with, or ``None`` (then train here).

    Nothing is installed with ``force`` (said in one line), nor when this recipe's own checkpoint exists (trained
    here before: it is reused or resumed)."""
    long = shipped_settings(name, settings)
    if long is None:
        return None
    recipe = settings.recipe(name)
    if force:
        print(f"{name}: force: training this profile's own recipe here ({recipe.epochs} epochs, batch "
              f"{recipe.batch_size}) instead of installing the shipped {recipe.shipped_from} weights", file=sys.stderr)
        return None
    where = {"data_key": data_key, "model_kwargs": kwargs, "seed": seed, "vq_key": vq_key}  # vq_key: the prior's
    key = checkpoint_key(name, long, **where)
    path = checkpoint_path(name, long, checkpoint_dir=checkpoint_dir, **where)
    own = checkpoint_path(name, settings, checkpoint_dir=checkpoint_dir, **where)
    if own != path and own.exists():  # this recipe trained here before: reuse or resume it
        return None
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
    save_checkpoint(
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
    long = shipped_settings(name, settings)
    if long is not None:
        path = checkpoint_path(name, long, data_key=data_key, checkpoint_dir=checkpoint_dir, seed=seed)
        own = checkpoint_path(name, settings, data_key=data_key, checkpoint_dir=checkpoint_dir, seed=seed)
        if path != own and path.exists() and not own.exists():  # a checkpoint trained here comes first
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
        "optimiser steps": r.epochs * steps_per_epoch(min(n_train, r.max_train_loops or n_train), r.batch_size),
        "training loops used": min(n_train, r.max_train_loops or n_train),
        "validation loops checked each epoch": min(n_val, r.max_val_loops or n_val),
        "learning rate": schedule,
        "gradient-norm clipping": r.grad_clip or "none",
        "weights kept": "the epoch with the lowest validation loss" if r.keep_best else "the last epoch",
        "model arguments set by the profile": settings.model_kwargs(name) or "none (the defaults)",
    }
    if is_gaussian(name):
        rows["KL weight"] = f"0 -> 1 over the first {r.kl_anneal_fraction:.0%} of the steps"
    if r.shipped_from:
        rows["shipped weights"] = f"{r.shipped_from} weights when they match this dataset (loopgen.train.shipped)"
    rows["paper"] = (
        f"{paper.TRAINING['epochs']:,} epochs, batch {paper.TRAINING['batch_size']:,}, "
        f"{paper.DATASET.train:,} training loops"
    )
    import pandas as pd

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
            long = shipped_settings(name, settings).recipe(name)
            how = "SHIPPED" if source.startswith("shipped") else "locally trained"
            parts.append(f"{registry.get(name).title}: {how} {r.shipped_from} weights ({long.epochs} epochs, batch {long.batch_size})")
        else:
            parts.append(f"{registry.get(name).title}: trained here ({r.epochs} epochs, batch {r.batch_size})")
    return [
        "Training: " + "; ".join(parts) + f". The paper: {paper.TRAINING['epochs']:,} epochs, batch "
        f"{paper.TRAINING['batch_size']:,}, on {paper.DATASET.train:,} loops."
    ]
