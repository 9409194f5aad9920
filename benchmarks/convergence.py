"""Is each demo recipe near its plateau? Train every model once at its budget and once at FACTOR x the epochs.

    python benchmarks/convergence.py                      # demo profile, factor 4, the models it trains itself
    python benchmarks/convergence.py --models prior --factor 2
    python benchmarks/convergence.py --profile demo-long --models nonar_lstm_vae --factor 2   # hours

Needs the profile's dataset (notebook 01) and, for the prior, the profile's VQ-VAE (notebook 02). Checkpoints go to
the project's checkpoint folder, keyed by their settings, so a second run reuses both trainings. Prints, per model,
the validation loss and error (reconstruction Hamming error, or the prior's next-code accuracy) at 1x and at FACTOR x
the budget, and their ratio; the goal of issue 9 is a 1x error within 20 % of the FACTOR x one. Asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import pandas as pd

from loopgen import sample, train
from loopgen.data import dataset
from loopgen.run import profiles
from loopgen.store.paths import Paths


def scaled(settings: profiles.TrainSettings, name: str, factor: int) -> profiles.TrainSettings:
    """``settings`` with model ``name``'s epochs multiplied by ``factor`` (and its shipped weights ignored)."""
    recipe = settings.recipe(name)
    per_model = {**settings.per_model, name: {**settings.per_model.get(name, {}), "epochs": recipe.epochs * factor}}
    per_model[name]["shipped_from"] = None
    return replace(settings, per_model=per_model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--models", nargs="+", default=["vq_vae", "cnn_vae", "prior"])
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    profile = profiles.get(args.profile)
    paths = Paths().ensure()
    data = dataset.load_loops(dataset.dataset_dir(paths, profile.corpus.name))
    tr, va = data.loops[data.split == "train"], data.loops[data.split == "val"]
    rows = []
    for name in args.models:
        for factor in (1, args.factor):
            settings = scaled(profile.train, name, factor) if factor > 1 else profile.train
            if factor == 1 and settings.recipe(name).shipped_from:
                settings = scaled(profile.train, name, 1)  # this benchmark trains the recipe itself
            start = time.perf_counter()
            if name == "prior":
                vq, _ = train.load_trained(
                    "vq_vae", profile.train, data_key=data.data_key, checkpoint_dir=paths.checkpoints, seed=args.seed
                )
                vq_key = train.checkpoint_key("vq_vae", profile.train, data_key=data.data_key, seed=args.seed)
                result = train.train_prior(
                    sample.encode_codes(vq, tr), settings, data_key=data.data_key, vq_key=vq_key,
                    checkpoint_dir=paths.checkpoints, num_codes=vq.num_codes,
                    val_codes=sample.encode_codes(vq, va), seed=args.seed, progress=False,
                )
                loss_column, error_column = "val_loss", "val_accuracy"
            else:
                result = train.train_model(
                    name, tr, va, settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints,
                    seed=args.seed, progress=False,
                )
                loss_column, error_column = "val_recon", "val_recon_error"
            h = result.history
            best = int(h[loss_column].idxmin())
            rows.append({
                "model": name,
                "budget": f"{factor}x",
                "epochs": settings.recipe(name).epochs,
                "optimiser steps": settings.recipe(name).epochs * (len(tr) // settings.recipe(name).batch_size),
                "val loss (kept epoch)": float(h[loss_column].iloc[best]),
                error_column.replace("val_", "val "): float(h[error_column].iloc[best]),
                "train seconds": round(float(h["seconds"].sum()), 1),
                "this call (s)": round(time.perf_counter() - start, 1),
            })
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows).set_index(["model", "budget"])
    print()
    print(table.to_string())
    print()
    for name in args.models:
        pair = table.loc[name]
        for column in [c for c in ("val recon_error", "val accuracy", "val loss (kept epoch)") if c in pair.columns]:
            one, more = pair[column].iloc[0], pair[column].iloc[1]
            if pd.notna(one) and pd.notna(more) and more:
                print(f"{name}: {column} 1x / {args.factor}x = {one / more:.3f}")


if __name__ == "__main__":
    main()
