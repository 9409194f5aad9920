"""A dress rehearsal of a profile's trainings before a GPU is rented: ``python -m loopgen rehearse --profile paper``.

Every training of the profile (the four autoencoders, the five other Table 2 VQ-VAE variants, the prior) runs
for a few optimiser steps at the profile's batch size and model sizes, on synthetic random loops (no dataset
needed), through the same code path as a real run (:func:`loopgen.train.train_model` / ``train_prior`` with
the profile's settings, only the epoch counts overridden). Each training

1. runs one epoch of ``ceil(steps / 2)`` steps and stops (a checkpoint is written),
2. is called again and must *resume* that checkpoint for its second and last epoch,
3. samples a batch (the continuous VAEs from N(0, I); the VQ-VAE variants from uniformly random codes; the
   prior samples codes that the default VQ-VAE decodes) and computes a Table 3 metric row,

and reports samples/s (second epoch), peak memory (CUDA: the largest allocation of this training; CPU: the
process's peak resident set so far, which only grows) and the projected time of the paper's full run
(``paper.TRAINING['epochs']`` epochs over ``paper.DATASET.train`` loops) at that speed on this device; a second
projection adds the profile's validations (``validate_every``, timed on one batch and scaled to
``max_val_loops``) and checkpoints (``checkpoint_every``, timed by writing the rehearsal's checkpoint again).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from loopgen import LOOP_STEPS, N_COLUMNS, metrics, paper, registry, sample, train
from loopgen.run import profiles
from loopgen.runtime import device as device_mod
from loopgen.store.outputs import TABLE2_SETTINGS, VQ_DEFAULT, vq_variant_name

SYNTHETIC_DENSITY = 0.03  # share of active cells in the random loops (real loops: a few per cent)
METRIC_COLUMNS = ("HD", "FNB", "DB", "UP", "ND")


@dataclass(frozen=True)
class Training:
    """One training of a profile: a label, the model name and its constructor arguments."""

    label: str
    name: str
    model_kwargs: dict


def trainings() -> list[Training]:
    """The ten trainings of a full run: four autoencoders, five other Table 2 variants, the prior."""
    runs = [
        Training(vq_variant_name(*VQ_DEFAULT) if n == "vq_vae" else n, n, train.vq_kwargs_from(*VQ_DEFAULT) if n == "vq_vae" else {})
        for n in registry.autoencoders()
    ]
    for t, L, K in TABLE2_SETTINGS:  # noqa: N806 - the paper's symbols
        if (t, L, K) != VQ_DEFAULT:
            runs.append(Training(vq_variant_name(t, L, K), "vq_vae", train.vq_kwargs_from(t, L, K)))
    runs.append(Training("prior", "prior", {}))
    return runs


def synthetic_loops(n: int, seed: int = 0, density: float = SYNTHETIC_DENSITY) -> np.ndarray:
    """``n`` random 0/1 loops (uint8, (n, 128, 93)) with about ``density`` of the cells on."""
    rng = np.random.default_rng(seed)
    return (rng.random((n, LOOP_STEPS, N_COLUMNS), dtype=np.float32) < density).astype(np.uint8)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def projected_hours(samples_per_second: float) -> float:
    """Hours of the paper's full run (its epochs over its training loops) at this speed."""
    return paper.TRAINING["epochs"] * paper.DATASET.train / samples_per_second / 3600


def profile_hours(profile: str, name: str, label: str, samples_per_second: float) -> float:
    """Hours of ``profile``'s own run of training ``label`` (its epochs over the training loops its dataset is
    expected to hold, ``profiles.TRAIN_LOOPS_ESTIMATE``; the paper's split for the paper profile)."""
    p = profiles.get(profile)
    table2 = name == "vq_vae" and label != vq_variant_name(*VQ_DEFAULT)
    settings = (p.table2_train if table2 else p.train).recipe(name)
    loops = profiles.TRAIN_LOOPS_ESTIMATE.get(profile, paper.DATASET.train)
    return train.epochs_for(name, settings) * loops / samples_per_second / 3600


def overhead_hours(settings: profiles.TrainSettings, validation_seconds: float, checkpoint_seconds: float) -> float:
    """Hours the paper's full run spends validating (every ``validate_every`` epochs) and writing checkpoints
    (every ``checkpoint_every`` epochs; the ``checkpoint_minutes`` ones inside long epochs are not counted)."""
    epochs = paper.TRAINING["epochs"]
    validations = math.ceil(epochs / max(1, settings.validate_every))
    checkpoints = math.ceil(epochs / max(1, settings.checkpoint_every))
    return (validations * validation_seconds + checkpoints * checkpoint_seconds) / 3600


def _validation_seconds(name: str, model, data: np.ndarray, n_val: int, device: torch.device, precision: str) -> float:
    """Seconds of one validation pass over ``n_val`` examples, timed on ``data`` and scaled linearly."""
    from loopgen.train.evaluate import evaluate_autoencoder, evaluate_prior

    tensor = torch.from_numpy(np.ascontiguousarray(data)).to(device)
    evaluate = evaluate_prior if name == "prior" else evaluate_autoencoder
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    evaluate(model, tensor, device, precision)
    return (time.perf_counter() - t0) * n_val / len(data)


def _checkpoint_seconds(path: Path, folder: Path | str) -> float:
    """Seconds to write the run's checkpoint (model, AdamW state, RNG, history) once more, as the loop does."""
    ckpt = train.read_checkpoint(path)
    target = Path(folder) / f"timing-{path.name}"
    t0 = time.perf_counter()
    train.checkpoint.save_checkpoint(ckpt, target)
    seconds = time.perf_counter() - t0
    target.unlink(missing_ok=True)
    return seconds


def rehearse(
    profile: str = "paper",
    *,
    steps: int = 4,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    precision: str | None = None,
    only: list[str] | None = None,
    n_samples: int = 64,
    checkpoint_dir: Path | str | None = None,
    seed: int = 0,
    log=print,
) -> pd.DataFrame:
    """Rehearse every training of ``profile`` (see the module docstring); one row per training.

    ``batch_size`` and ``precision`` override the profile's (for a quick test); ``only`` keeps the trainings
    whose label contains one of these strings (the prior needs the default VQ-VAE and rehearses it too).
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (one epoch, a checkpoint, then a resumed epoch), got {steps}")
    dev = device_mod.pick_device(device if isinstance(device, str) or device is None else str(device))
    base = profiles.get(profile).train
    changes = {"epochs": 2, "lstm_epochs": 2, "prior_epochs": 2, "max_train_loops": None, "max_val_loops": None}
    if batch_size is not None:
        changes.update(batch_size=batch_size, conv_batch_size=None)
    if precision is not None:
        changes["precision"] = precision
    settings = dataclasses.replace(base, **changes)
    steps_per_epoch = math.ceil(steps / 2)
    runs = trainings()
    if only:
        wanted = [r for r in runs if any(key in r.label for key in only)]
        if any(r.name == "prior" for r in wanted) and not any(r.label == vq_variant_name(*VQ_DEFAULT) for r in wanted):
            wanted.insert(0, next(r for r in runs if r.label == vq_variant_name(*VQ_DEFAULT)))
        runs = [r for r in runs if r in wanted]
    tmp = None
    if checkpoint_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="loopgen-rehearsal-")
        checkpoint_dir = tmp.name
    log(
        f"rehearsal of profile {profile!r} on {device_mod.describe_device(dev, settings.precision)}: "
        f"{steps_per_epoch} step(s) x 2 epochs per training; projection = {paper.TRAINING['epochs']:,} epochs x "
        f"{paper.DATASET.train:,} loops"
    )
    rows = []
    default_vq = None
    try:
        for run in runs:
            batch = train.batch_size_for(run.name, settings)
            n_train = batch * steps_per_epoch
            loops = synthetic_loops(n_train, seed=seed)
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            common = {"checkpoint_dir": checkpoint_dir, "seed": seed, "device": dev, "progress": False}
            if run.name == "prior":
                if default_vq is None:
                    raise RuntimeError("the prior is rehearsed on the default VQ-VAE's codes: rehearse it first")
                vq, vq_key = default_vq
                codes = sample.encode_codes(vq, loops)
                call = functools.partial(
                    train.train_prior, codes, settings, data_key="rehearsal", vq_key=vq_key,
                    num_codes=vq.num_codes, **common,
                )
            else:
                call = functools.partial(
                    train.train_model, run.name, loops, None, settings, data_key="rehearsal",
                    model_kwargs=run.model_kwargs, **common,
                )

            t0 = time.perf_counter()
            first = call(max_epochs_this_call=1)
            if first.finished:
                raise RuntimeError(f"{run.label}: one epoch of two should leave the checkpoint unfinished")
            second = call()
            resumed = second.epochs_this_call == 1 and len(second.history) == 2 and second.finished
            seconds = float(second.history["seconds"].iloc[-1])
            rate = batch * steps_per_epoch / seconds
            memory = _peak_memory_mb(dev)
            model = second.model
            if run.name == "vq_vae":
                if run.label == vq_variant_name(*VQ_DEFAULT):
                    default_vq = (model, second.key)
                rng = np.random.default_rng(seed)
                codes = rng.integers(0, model.num_codes, size=(n_samples, model.latent_steps))
                generated = sample.decode_codes(model, codes)
                row_metrics = metrics.metric_row(generated, codes)
            elif run.name == "prior":
                first_probs = sample.first_code_distribution(codes, num_codes=vq.num_codes)
                gen_codes = sample.sample_codes(model, n_samples, first_probs, temperature=1.0, seed=seed)
                row_metrics = metrics.metric_row(sample.decode_codes(vq, gen_codes), gen_codes, codes)
            else:
                row_metrics = metrics.metric_row(sample.sample_vae(model, n_samples, seed=seed))
            n_val = base.max_val_loops or paper.DATASET.val
            validation = _validation_seconds(run.name, model, codes[:batch] if run.name == "prior" else loops[:batch],
                                             n_val, dev, settings.precision)
            saving = _checkpoint_seconds(second.checkpoint, checkpoint_dir)
            row = {
                "training": run.label,
                "model": registry.get(run.name).title,
                "batch": batch,
                "steps": 2 * steps_per_epoch,
                "samples/s": rate,
                "peak memory (MB)": memory,
                "projected full run (h)": projected_hours(rate),
                "validation (s)": validation,
                "checkpoint (s)": saving,
                "projected with validation and checkpoints (h)": projected_hours(rate)
                + overhead_hours(base, validation, saving),
                f"projected {profile} run (h)": profile_hours(profile, run.name, run.label, rate),
                "resumed": bool(resumed),
                "loss": float(second.history["loss"].iloc[-1]),
                **{k: row_metrics[k] for k in METRIC_COLUMNS},
                "wall (s)": time.perf_counter() - t0,
            }
            rows.append(row)
            log(
                f"  {run.label:<22} {rate:9.1f} samples/s  peak {memory:8.0f} MB  full run "
                f"{row['projected full run (h)']:9.1f} h (+ validation and checkpoints: "
                f"{row['projected with validation and checkpoints (h)']:.1f} h)  resumed={resumed}  loss {row['loss']:.4g}"
            )
    finally:
        if tmp is not None:
            tmp.cleanup()
    return pd.DataFrame(rows).set_index("training")


def cli_main(argv: list[str]) -> int:
    """``python -m loopgen rehearse --profile paper [--steps N] [--device D] [--batch-size B] ...``."""
    from loopgen.commands import common as cli

    parser = cli.parser("rehearse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="paper", choices=sorted(profiles.PROFILES),
                        help="whose trainings to rehearse")
    parser.add_argument("--steps", type=cli.int_at_least(2), default=4, help="optimiser steps per training (>= 2)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--batch-size", type=cli.positive_int, default=None, help="override the profile's batch (default: the profile's)")
    parser.add_argument(
        "--precision", default=None, choices=device_mod.PRECISIONS, help="override the profile's precision (default: the profile's)"
    )
    parser.add_argument("--only", nargs="*", help="rehearse only trainings whose label contains one of these (default: all)")
    parser.add_argument("--samples", type=cli.positive_int, default=64, help="loops sampled for the metric row")
    args = parser.parse_args(argv)
    table = rehearse(
        args.profile,
        steps=args.steps,
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        only=args.only,
        n_samples=args.samples,
    )
    shown = table.copy()
    for col, fmt in (("samples/s", "{:.1f}"), ("peak memory (MB)", "{:.0f}"), ("projected full run (h)", "{:.1f}"),
                     ("validation (s)", "{:.2f}"), ("checkpoint (s)", "{:.2f}"),
                     ("projected with validation and checkpoints (h)", "{:.1f}"),
                     (f"projected {args.profile} run (h)", "{:.2f}")):
        shown[col] = shown[col].map(fmt.format)
    print()
    print(shown.drop(columns=["wall (s)"]).to_markdown())
    total = table["projected with validation and checkpoints (h)"].sum()
    print(
        f"\nAll {len(table)} trainings one after another: {total:,.1f} h on this device "
        f"(the paper: each model in under {paper.TRAINING_HOURS_BELOW} h on one {paper.TRAINING_GPU})."
    )
    if args.profile != "paper":
        own = table[f"projected {args.profile} run (h)"]
        print(f"The {args.profile} profile's own run ({profiles.TRAIN_LOOPS_ESTIMATE.get(args.profile, '?')} training "
              f"loops expected): {own.max():,.2f} h for the longest training, {own.sum():,.2f} h for all of them.")
    if not table["resumed"].all():
        print("error: some trainings did not resume their checkpoint", file=sys.stderr)
        return 1
    return 0
