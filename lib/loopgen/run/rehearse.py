"""A dress rehearsal of a profile's trainings before a GPU is rented: ``python -m loopgen rehearse --profile paper``.

Every training of the profile (the four autoencoders, the five other Table 2 VQ-VAE variants, the prior; on request
also the masked prior of notebook 09) runs for a few optimiser steps at the profile's batch size and model sizes,
on synthetic random loops (no dataset needed), through the same code path as a real run
(:func:`loopgen.train.train_model` / ``train_prior`` with the profile's settings, only the epoch counts
overridden). Each training

1. runs one epoch of ``ceil(steps / 2)`` steps and stops (a checkpoint is written),
2. is called again and must *resume* that checkpoint for its last two epochs: a warm-up epoch of the rebuilt
   model, then the timed epoch (its speed is the one projected: no first-step costs of a fresh model in it),
3. samples a batch on the training device (the continuous VAEs from N(0, I); the VQ-VAE variants from uniformly
   random codes; the priors sample codes that the default VQ-VAE decodes) and computes a Table 3 metric row
   there (:func:`table3_row`, equal to :func:`loopgen.metrics.metric_row`'s columns),

and reports samples/s (the timed epoch), peak memory (CUDA: the largest allocation of this training; CPU: the
process's peak resident set so far, which only grows), the device its weights ended on, and the projected time of
the paper's full run (``paper.TRAINING['epochs']`` epochs over ``paper.DATASET.train`` loops) at that speed on this
device; a second projection adds the profile's validations (``validate_every``, timed on one batch after a warm-up
pass and scaled to ``max_val_loops``) and checkpoints (``checkpoint_every``, timed by writing the rehearsal's
checkpoint again).

:func:`rehearsal_rows` is the core, in torch and the standard library only (the GPU check runs it on a box with
nothing but torch); with ``keep_going`` a failing training gives a row with its ``error`` and the others still run.
:func:`rehearse` makes the table of it (pandas).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from loopgen import (
    BAR_CELLS,
    BARS_PER_LOOP,
    LOOP_STEPS,
    N_COLUMNS,
    N_DRUM,
    STEPS_PER_BAR,
    paper,
    registry,
    train,
)
from loopgen.run import profiles
from loopgen.runtime import device as device_mod
from loopgen.store.outputs import TABLE2_SETTINGS, VQ_DEFAULT, vq_variant_name

if TYPE_CHECKING:  # the table of rehearse() only: the rows need torch and the standard library alone
    import pandas as pd

SYNTHETIC_DENSITY = 0.03  # share of active cells in the random loops (real loops: a few per cent)
METRIC_COLUMNS = ("HD", "FNB", "DB", "UP", "ND")
EPOCHS = 3  # one, a stop; then, resumed, a warm-up epoch and the timed one
ENCODE_BATCH = 2048  # loops per forward when the default VQ-VAE encodes the rehearsal's loops for the priors
MASKED_STEPS = 8  # decoding rounds of the masked prior's samples


@dataclass(frozen=True)
class Training:
    """One training of a profile: a label, the model name and its constructor arguments."""

    label: str
    name: str
    model_kwargs: dict


def trainings(masked_prior: bool = False) -> list[Training]:
    """The ten trainings of a full run: four autoencoders, five other Table 2 variants, the prior (and, with
    ``masked_prior``, notebook 09's masked prior last)."""
    runs = [
        Training(vq_variant_name(*VQ_DEFAULT) if n == "vq_vae" else n, n, train.vq_kwargs_from(*VQ_DEFAULT) if n == "vq_vae" else {})
        for n in registry.autoencoders()
    ]
    for t, L, K in TABLE2_SETTINGS:  # noqa: N806 - the paper's symbols
        if (t, L, K) != VQ_DEFAULT:
            runs.append(Training(vq_variant_name(t, L, K), "vq_vae", train.vq_kwargs_from(t, L, K)))
    runs.append(Training("prior", "prior", {}))
    if masked_prior:
        runs.append(Training("masked_prior", "masked_prior", {}))
    return runs


def synthetic_loops(n: int, seed: int = 0, density: float = SYNTHETIC_DENSITY) -> torch.Tensor:
    """``n`` random 0/1 loops (uint8 tensor, (n, 128, 93)) with about ``density`` of the cells on."""
    generator = torch.Generator().manual_seed(int(seed))
    return (torch.rand(n, LOOP_STEPS, N_COLUMNS, generator=generator) < density).to(torch.uint8)


def table3_row(loops: torch.Tensor) -> dict[str, float]:
    """HD, FNB, DB, UP and ND of a batch of 0/1 loops (N, 128, 93), counted on the loops' device with one copy of
    five integers to the host; the same numbers as :func:`loopgen.metrics.metric_row` (a test holds them equal)."""
    x = loops.to(torch.uint8)
    n = len(x)
    first, fifth = x[:, :STEPS_PER_BAR], x[:, 4 * STEPS_PER_BAR : 5 * STEPS_PER_BAR]  # HD: bar 1 against bar 5
    bass = x[:, :, N_DRUM:].sum(dim=-1)
    bars = x.reshape(n, BARS_PER_LOOP, STEPS_PER_BAR, N_COLUMNS).amax(dim=2)
    active = (x[:, :, :N_DRUM].amax(dim=-1) > 0) | (bass > 0)
    counts = torch.stack([
        (first != fifth).sum(dtype=torch.int64),  # cells differing between bar 1 and bar 5
        (x[:, 0, N_DRUM:] != 0).any(dim=1).sum(dtype=torch.int64),  # loops with a bass note at step 0
        (bass > 1).sum(dtype=torch.int64),  # steps with more than one bass pitch
        bars.amax(dim=1).sum(dtype=torch.int64),  # distinct active columns, summed over loops
        active.sum(dtype=torch.int64),  # steps at which anything is active
    ]).tolist()
    hd, fnb, db, up, nd = counts
    return {"HD": hd / BAR_CELLS / n, "FNB": float(fnb) / n, "DB": float(db) / LOOP_STEPS / n,
            "UP": float(up) / n, "ND": float(nd) / LOOP_STEPS / n}


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


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _validation_seconds(name: str, model, data: torch.Tensor, n_val: int, device: torch.device, precision: str) -> float:
    """Seconds of one validation pass over ``n_val`` examples, timed on ``data`` (after one untimed pass, so that
    no first-call costs count) and scaled linearly."""
    from loopgen.train.evaluate import evaluate_autoencoder, evaluate_prior

    tensor = data.to(device)
    evaluate = evaluate_prior if registry.get(name).kind == registry.PRIOR else evaluate_autoencoder
    evaluate(model, tensor, device, precision)
    _synchronize(device)
    t0 = time.perf_counter()
    evaluate(model, tensor, device, precision)
    _synchronize(device)
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


def history_column(history: pd.DataFrame | dict[str, list], key: str) -> list:
    """One column of a training's history as a list (a DataFrame's, or the lists of a box without pandas)."""
    return list(history[key])



def _generator(seed: int, device: torch.device) -> torch.Generator:
    """A generator of ``device`` (draws stay there), seeded."""
    if device.type == "cpu":
        return torch.Generator().manual_seed(int(seed))
    return torch.Generator(device=device).manual_seed(int(seed))


def _encode(vq, loops: torch.Tensor) -> torch.Tensor:
    """The default VQ-VAE's codes of the rehearsal's loops (int64, on the CPU: the priors train on them)."""
    with device_mod.eval_mode(vq) as device:
        parts = [vq.encode_codes(loops[s : s + ENCODE_BATCH].to(device).float()) for s in range(0, len(loops), ENCODE_BATCH)]
    return torch.cat(parts).cpu()


def _sampled_loops(run: Training, model, n: int, seed: int, default_vq, codes: torch.Tensor | None) -> torch.Tensor:
    """``n`` loops drawn on the model's device as the run's family generates them (0/1 uint8, on that device)."""
    with device_mod.eval_mode(model) as device:
        if run.name == "vq_vae":
            random_codes = torch.randint(0, model.num_codes, (n, model.latent_steps), generator=_generator(seed, torch.device("cpu")))
            return (model.decode_codes(random_codes.to(device)) >= 0).to(torch.uint8)
        if registry.get(run.name).kind != registry.PRIOR:
            z = torch.randn(n, model.latent_size, generator=_generator(seed, torch.device("cpu")))
            return (model.decode(z.to(device)) >= 0).to(torch.uint8)
        vq = default_vq[0]
        if run.name == "masked_prior":
            from loopgen import sample_masked

            blank = torch.zeros(n, model.seq_len, dtype=torch.int64, device=device)
            generated = sample_masked.decode_codes(model, blank, torch.ones_like(blank, dtype=torch.bool),
                                                   steps=MASKED_STEPS, temperature=1.0, seed=seed)
        else:
            counts = torch.bincount(codes[:, 0], minlength=model.num_codes).double()
            first = torch.multinomial(counts / counts.sum(), n, replacement=True,
                                      generator=_generator(seed, torch.device("cpu")))
            generated = model.generate(first.to(device), temperature=1.0, generator=_generator(seed, device))
    with device_mod.eval_mode(vq) as vq_device:
        return (vq.decode_codes(generated.to(vq_device)) >= 0).to(torch.uint8)


@dataclass
class _Rehearsal:
    """What every training of one rehearsal shares."""

    profile: str
    base: profiles.TrainSettings  # the profile's own settings (its projections)
    settings: profiles.TrainSettings  # the rehearsal's (epochs and, when asked, batch and precision overridden)
    device: torch.device
    steps_per_epoch: int
    n_samples: int
    checkpoint_dir: Path | str
    seed: int
    default_vq: tuple | None = None  # (model, checkpoint key) of the default VQ-VAE, once rehearsed
    codes: torch.Tensor | None = None  # its codes of the rehearsal's loops (what the priors train on)


def _rehearse_one(run: Training, r: _Rehearsal) -> dict:
    """One training: an epoch, a stop, a resumed warm-up and timed epoch, samples and a metric row."""
    recipe = r.settings.recipe(run.name)
    batch = recipe.batch_size
    loops = synthetic_loops(batch * r.steps_per_epoch, seed=r.seed)
    if r.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(r.device)
    common = {"checkpoint_dir": r.checkpoint_dir, "seed": r.seed, "device": r.device, "progress": False}
    prior = registry.get(run.name).kind == registry.PRIOR
    if prior:
        if r.default_vq is None:
            raise RuntimeError("the priors learn the default VQ-VAE's codes, and it did not train")
        vq, vq_key = r.default_vq
        if r.codes is None:
            r.codes = _encode(vq, loops)
        call = lambda **kw: train.train_prior(  # noqa: E731 - the same call twice
            r.codes, r.settings, data_key="rehearsal", vq_key=vq_key, num_codes=vq.num_codes, name=run.name,
            **common, **kw)
    else:
        call = lambda **kw: train.train_model(  # noqa: E731
            run.name, loops, None, r.settings, data_key="rehearsal", model_kwargs=run.model_kwargs, **common, **kw)
    t0 = time.perf_counter()
    first = call(max_epochs_this_call=1)
    if first.finished:
        raise RuntimeError(f"{run.label}: one epoch of {EPOCHS} should leave the checkpoint unfinished")
    second = call()
    losses = history_column(second.history, "loss")
    resumed = second.epochs_this_call == EPOCHS - 1 and len(losses) == EPOCHS and second.finished
    seconds = float(history_column(second.history, "seconds")[-1])
    rate = batch * r.steps_per_epoch / seconds
    memory = _peak_memory_mb(r.device)
    model = second.model
    if run.name == "vq_vae" and run.label == vq_variant_name(*VQ_DEFAULT):
        r.default_vq = (model, second.key)
    row_metrics = table3_row(_sampled_loops(run, model, r.n_samples, r.seed, r.default_vq, r.codes))
    n_val = r.base.max_val_loops or paper.DATASET.val
    validation = _validation_seconds(run.name, model, r.codes[:batch] if prior else loops[:batch], n_val, r.device,
                                     r.settings.precision)
    saving = _checkpoint_seconds(second.checkpoint, r.checkpoint_dir)
    return {
        "training": run.label,
        "model": registry.get(run.name).title,
        "batch": batch,
        "steps": EPOCHS * r.steps_per_epoch,
        "samples/s": rate,
        "peak memory (MB)": memory,
        "projected full run (h)": projected_hours(rate),
        "validation (s)": validation,
        "checkpoint (s)": saving,
        "projected with validation and checkpoints (h)": projected_hours(rate) + overhead_hours(r.base, validation, saving),
        f"projected {r.profile} run (h)": profile_hours(r.profile, run.name, run.label, rate),
        "resumed": bool(resumed),
        "device": str(next(model.parameters()).device),
        "loss": float(losses[-1]),
        **{k: row_metrics[k] for k in METRIC_COLUMNS},
        "wall (s)": time.perf_counter() - t0,
    }


def rehearsal_settings(
    base: profiles.TrainSettings, batch_size: int | None, precision: str | None
) -> profiles.TrainSettings:
    """The profile's settings with the rehearsal's epochs (the recipes' own epoch counts dropped too) and, when
    given, its batch and precision."""
    dropped = {"epochs", "batch_size"} if batch_size is not None else {"epochs"}
    per_model = {name: {k: v for k, v in recipe.items() if k not in dropped} for name, recipe in base.per_model.items()}
    changes = {"epochs": EPOCHS, "lstm_epochs": EPOCHS, "prior_epochs": EPOCHS, "max_train_loops": None,
               "max_val_loops": None, "per_model": per_model}
    if batch_size is not None:
        changes.update(batch_size=batch_size, conv_batch_size=None)
    if precision is not None:
        changes["precision"] = precision
    return dataclasses.replace(base, **changes)


def rehearsal_rows(
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
    masked_prior: bool = False,
    keep_going: bool = False,
    log: Callable[..., None] = print,
) -> list[dict]:
    """Rehearse every training of ``profile`` (see the module docstring); one row (a dict) per training.

    ``batch_size`` and ``precision`` override the profile's (for a quick test); ``only`` keeps the trainings
    whose label contains one of these strings (a prior needs the default VQ-VAE and rehearses it too);
    ``masked_prior`` adds notebook 09's masked prior. ``keep_going``: a training that fails gives a row with its
    ``error`` (and the traceback in the log) and the others still run; otherwise the error is raised.
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (one epoch, a checkpoint, then a resumed epoch), got {steps}")
    dev = device_mod.pick_device(device if isinstance(device, str) or device is None else str(device))
    base = profiles.get(profile).train
    settings = rehearsal_settings(base, batch_size, precision)
    runs = trainings(masked_prior)
    if only:
        wanted = [r for r in runs if any(key in r.label for key in only)]
        if any(registry.get(r.name).kind == registry.PRIOR for r in wanted) and not any(
                r.label == vq_variant_name(*VQ_DEFAULT) for r in wanted):
            wanted.insert(0, next(r for r in runs if r.label == vq_variant_name(*VQ_DEFAULT)))
        runs = [r for r in runs if r in wanted]
    steps_per_epoch = math.ceil(steps / 2)
    log(
        f"rehearsal of profile {profile!r} on {device_mod.describe_device(dev, settings.precision)}: "
        f"{steps_per_epoch} step(s) x {EPOCHS} epochs per training (stopped after the first; the last is timed); "
        f"projection = {paper.TRAINING['epochs']:,} epochs x {paper.DATASET.train:,} loops"
    )
    with contextlib.ExitStack() as stack:
        if checkpoint_dir is None:
            checkpoint_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="loopgen-rehearsal-"))
        rehearsal = _Rehearsal(profile, base, settings, dev, steps_per_epoch, n_samples, checkpoint_dir, seed)
        rows = []
        for run in runs:
            try:
                row = _rehearse_one(run, rehearsal)
            except Exception as err:  # noqa: BLE001 - keep_going: every training's outcome is reported
                if not keep_going:
                    raise
                log(f"  {run.label:<22} failed: {type(err).__name__}: {err}\n"
                    + "".join(traceback.format_exception(err)[-6:]).rstrip())
                rows.append({"training": run.label, "model": registry.get(run.name).title,
                             "error": f"{type(err).__name__}: {err}"})
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            rows.append(row)
            log(
                f"  {run.label:<22} {row['samples/s']:9.1f} samples/s  peak {row['peak memory (MB)']:8.0f} MB  "
                f"full run {row['projected full run (h)']:9.1f} h (+ validation and checkpoints: "
                f"{row['projected with validation and checkpoints (h)']:.1f} h)  resumed={row['resumed']}  "
                f"on {row['device']}  loss {row['loss']:.4g}"
            )
    return rows


def rehearse(profile: str = "paper", **options) -> pd.DataFrame:
    """:func:`rehearsal_rows` as a table, one row per training (indexed by its label); a failing training raises
    (``keep_going`` is the GPU check's). ``options`` are :func:`rehearsal_rows`'."""
    import pandas as pd

    return pd.DataFrame(rehearsal_rows(profile, **options)).set_index("training")
