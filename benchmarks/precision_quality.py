"""Does bf16 autocast train as well as float32? Each model at the demo recipe, once per precision.

    python benchmarks/precision_quality.py                          # every model, the recipe's epochs
    python benchmarks/precision_quality.py --epochs 4 --models cnn_vae vq_vae prior   # shortened, same in both

Needs the demo dataset (notebook 01; ``--make-data`` writes and extracts it here). Each model trains with the
demo recipe (its shipped weights ignored; ``--epochs`` shortens every recipe to that many epochs, the same for
both precisions) once in float32 and once with bf16 autocast, into a temporary checkpoint folder; the prior
trains on the codes of the float32 VQ-VAE in both. Prints the kept epoch's validation error per model and
precision and the ratio bf16 / fp32 (issue 19's goal: within 5 %), and the training seconds. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace

import pandas as pd

from loopgen import sample, train
from loopgen.data import dataset
from loopgen.run import profiles
from loopgen.store.paths import Paths


def recipe_with(settings: profiles.TrainSettings, name: str, epochs: int | None, precision: str) -> profiles.TrainSettings:
    """The demo settings for ``name`` in ``precision``, trained here (not shipped), ``epochs`` when given."""
    per_model = {**settings.per_model, name: {**settings.per_model.get(name, {}), "shipped_from": None}}
    if epochs is not None:
        per_model[name]["epochs"] = epochs
    return replace(settings, per_model=per_model, precision=precision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--models", nargs="+", default=["cnn_vae", "vq_vae", "prior", "nonar_lstm_vae", "ar_lstm_vae"])
    parser.add_argument("--epochs", type=int, default=None, help="shorten every recipe to this many epochs")
    parser.add_argument("--precisions", nargs=2, default=["fp32", "bf16"])
    parser.add_argument("--make-data", action="store_true", help="write and extract the corpus when missing")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    profile = profiles.get(args.profile)
    paths = Paths().ensure()
    folder = dataset.dataset_dir(paths, profile.corpus.name)
    if args.make_data and not (folder / "manifest.json").exists():
        from loopgen.data.corpus import write_demo_corpus
        from loopgen.data.extract import extract

        corpus = write_demo_corpus(paths.corpus_dir(profile.corpus.name), n_songs=profile.corpus.n_songs, seed=0,
                                   progress=False)
        extract(corpus, folder, workers=2, progress=False)
    data = dataset.load_loops(folder)
    tr, va = data.loops[data.split == "train"], data.loops[data.split == "val"]
    rows = []
    vq_codes = None
    with tempfile.TemporaryDirectory(prefix="loopgen-precision-") as tmp:
        common = {"data_key": data.data_key, "checkpoint_dir": tmp, "seed": 0, "progress": False, "device": "cpu"}
        names = list(args.models)
        if "prior" in names and "vq_vae" not in names:
            names.insert(names.index("prior"), "vq_vae")
        for name in names:
            for precision in args.precisions:
                settings = recipe_with(profile.train, name, args.epochs, precision)
                start = time.perf_counter()
                if name == "prior":
                    vq, vq_key = vq_codes
                    result = train.train_prior(
                        sample.encode_codes(vq, tr), settings, vq_key=vq_key, num_codes=vq.num_codes,
                        val_codes=sample.encode_codes(vq, va), **common,
                    )
                    loss_column, error_column = "val_loss", "val_accuracy"
                else:
                    result = train.train_model(name, tr, va, settings, **common)
                    loss_column, error_column = "val_recon", "val_recon_error"
                    if name == "vq_vae" and precision == args.precisions[0]:
                        vq_codes = (result.model, result.key)
                h = result.history.dropna(subset=[loss_column])
                best = h[loss_column].idxmin()
                error = float(h.loc[best, error_column])
                if name == "prior":
                    error = 1 - error  # next-code error rate
                rows.append({"model": name, "precision": precision, "epochs": settings.recipe(name).epochs,
                             "val error (kept epoch)": error, "val loss": float(h.loc[best, loss_column]),
                             "train seconds": round(float(result.history["seconds"].sum()), 1),
                             "call (s)": round(time.perf_counter() - start, 1)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    wide = table.pivot(index="model", columns="precision", values="val error (kept epoch)")
    first, second = args.precisions
    wide[f"{second} / {first}"] = wide[second] / wide[first]
    seconds = table.pivot(index="model", columns="precision", values="train seconds")
    wide[f"speed-up ({first} s / {second} s)"] = seconds[first] / seconds[second]
    print()
    print(wide.to_markdown(floatfmt=".4g"))
    if args.json:
        print(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
