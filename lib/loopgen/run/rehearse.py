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

For a CPU profile (not ``paper`` or ``colab``) the command also projects the *whole run* of ``run_all.sh``
(:func:`project_run`): the extraction of notebook 01, every training of notebooks 02, 03, 08 and 09 at the rehearsed
speeds (timed with the threads the runner gives each notebook, and taken at their speed on a quiet core,
:data:`QUIET_RATE`, so that other jobs on the machine do not inflate the projection), the rest of every notebook
(kernel start, evaluation, sampling: measured constants, :data:`OTHER_SECONDS`), scheduled two side by side as the
runner does.
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
# On a CPU: the timed speed scaled by the resumed call's wall / CPU seconds when above 1, i.e. the speed had no other
# process shared the cores (what a quiet core gives a one-thread training; with more threads the ratio stays <= 1)
QUIET_RATE = "samples/s on a quiet core"


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


def rehearsed_validation_loops(settings: profiles.TrainSettings) -> int:
    """Validation loops the rehearsal's "validation (s)" is for: the profile's ``max_val_loops``, else the paper's
    validation split."""
    return settings.max_val_loops or paper.DATASET.validation


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
    wall0, cpu0 = time.perf_counter(), time.process_time()
    second = call()
    busy = (time.perf_counter() - wall0) / max(time.process_time() - cpu0, 1e-9)  # > 1: other processes had the cores
    losses = history_column(second.history, "loss")
    resumed = second.epochs_this_call == EPOCHS - 1 and len(losses) == EPOCHS and second.finished
    seconds = float(history_column(second.history, "seconds")[-1])
    # the priors share the codes of the first prior's loops: an epoch is all of them (not batch x steps when the
    # batches differ, e.g. the masked prior's 64 after the LSTM prior's 128)
    seen = len(r.codes) if prior else len(loops)
    rate = seen / seconds
    memory = _peak_memory_mb(r.device)
    model = second.model
    if run.name == "vq_vae" and run.label == vq_variant_name(*VQ_DEFAULT):
        r.default_vq = (model, second.key)
    row_metrics = table3_row(_sampled_loops(run, model, r.n_samples, r.seed, r.default_vq, r.codes))
    n_val = rehearsed_validation_loops(r.base)
    validation = _validation_seconds(run.name, model, r.codes[:batch] if prior else loops[:batch], n_val, r.device,
                                     r.settings.precision)
    saving = _checkpoint_seconds(second.checkpoint, r.checkpoint_dir)
    return {
        "training": run.label,
        "model": registry.get(run.name).title,
        "batch": batch,
        "steps": EPOCHS * math.ceil(seen / batch),
        "samples/s": rate,
        QUIET_RATE: rate * max(1.0, busy) if r.device.type == "cpu" else rate,
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
    threads: int | None = None,
    log: Callable[..., None] = print,
) -> list[dict]:
    """Rehearse every training of ``profile`` (see the module docstring); one row (a dict) per training.

    ``batch_size`` and ``precision`` override the profile's (for a quick test); ``only`` keeps the trainings
    whose label contains one of these strings (a prior needs the default VQ-VAE and rehearses it too);
    ``masked_prior`` adds notebook 09's masked prior. ``keep_going``: a training that fails gives a row with its
    ``error`` (and the traceback in the log) and the others still run; otherwise the error is raised. ``threads``:
    the CPU threads torch computes with meanwhile (None: as it is; the runner gives each notebook one share).
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (one epoch, a checkpoint, then a resumed epoch), got {steps}")
    if threads is not None:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return rehearsal_rows(profile, steps=steps, device=device, batch_size=batch_size, precision=precision,
                                  only=only, n_samples=n_samples, checkpoint_dir=checkpoint_dir, seed=seed,
                                  masked_prior=masked_prior, keep_going=keep_going, log=log)
        finally:
            torch.set_num_threads(before)
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


# ------------------------------------------------------------------------------ a CPU profile's whole run
CPU_STEPS = 32  # the command's default for a CPU profile: a timed epoch of 16 small batches (4 are mostly noise)
# Extraction, fast backend, 2 workers (notebook 01 extracts twice: stride 1, then stride 8 for its comparison).
# Measured with benchmark-like runs of `extract` on ../shared/midi/dev (1,200 real songs, the first 300 and all) on
# the README's machine (2 CPU cores, 24 GB) while other jobs shared its cores (load average ~5): 6.2 s for 300
# files, 8.5 s for 1,200, i.e. ~380 files/s beyond a start of ~5.5 s (worker start, listing, writing the dataset).
# We project with 350 files/s; when the profile's folder is here, 64 of its own files are timed instead.
EXTRACT_FILES_PER_SECOND = 350.0
EXTRACT_START_SECONDS = 5.5  # per extraction
EXTRACT_PROBE_FILES = 64
LIST_SECONDS_PER_ENTRY = 5e-5  # listing a folder (34 us an entry measured, warm cache); notebook 01 lists it 3 times
DEMO_CORPUS_SECONDS_PER_SONG = 0.005  # notebook 01 of a demo profile writes its corpus (52 s for notebook 01 in all
#   at 3,000 songs on a quiet machine, docs/running.md)
DEMO_SAMPLES = 5997  # the demo's generated loops per group (as many as its training loops)
MAX_SAMPLES_09 = 2000  # notebook 09's MAX_SAMPLES: loops sampled per prior
# Seconds of each notebook beyond its trainings and extraction (kernel start, loading, evaluation, sampling,
# figures, audio) at one thread, on the same machine: (fixed, more at the demo's 5,997 generated loops), from the
# executed notebooks' cell times of a demo run and a smoke run (two side by side, other jobs beside them). The second
# part scales with the profile's generated loops per group (its n_samples, else its training loops); notebook 09's
# with min(that, MAX_SAMPLES_09) / 2,000.
OTHER_SECONDS: dict[str, tuple[float, float]] = {
    "01": (13.0, 0.0), "02": (13.0, 2.0), "03": (13.0, 12.0), "04": (13.0, 10.0), "05": (13.0, 66.0),
    "06": (13.0, 10.0), "07": (13.0, 5.0), "08": (13.0, 27.0), "09": (13.0, 229.0),
}
# Notebook 08's trainings (loopgen.book.sensitivity, a fifth of the profile's epochs): (model, the rehearsal row
# whose speed it trains at, runs): the CNN-VAE with two KL weights; the VQ-VAE with three commitment weights and two
# more seeds; the t=64 VQ-VAE; the prior on four of them (the runs that repeat a checkpoint key are reused).
NOTEBOOK_08_TRAININGS = (("cnn_vae", "cnn_vae", 2), ("vq_vae", "vq_vae", 5), ("vq_vae", "vq_vae_t64_L16_K512", 1),
                         ("prior", "prior", 4))


@dataclass
class RunProjection:
    """A CPU profile's projected run: seconds per notebook run (executed name), how they were scheduled."""

    profile: str
    seconds: dict[str, float]
    wall_seconds: float  # scheduled as the runner does: ``workers`` side by side, each after what it reads
    workers: int
    train_loops: int
    extraction_seconds: float
    extraction_note: str
    training_seconds: float  # the trainings' share of the notebooks' seconds

    @property
    def serial_seconds(self) -> float:
        return sum(self.seconds.values())

    def lines(self) -> list[str]:
        """What ``rehearse`` prints about the whole run."""
        minutes = self.wall_seconds / 60
        return [
            f"Projected run of the {self.profile} profile (./run_all.sh --profile {self.profile}"
            f"{', download excluded' if profiles.get(self.profile).corpus.source == 'lmd' else ''}; "
            f"{self.train_loops:,} training loops expected):",
            f"  extraction (notebook 01) {self.extraction_seconds / 60:.1f} min: {self.extraction_note}",
            f"  trainings (notebooks 02, 03, 08, 09) {self.training_seconds / 60:.1f} min, the rest (kernel starts, "
            f"evaluation, sampling) {(self.serial_seconds - self.training_seconds - self.extraction_seconds) / 60:.1f} "
            f"min; {len(self.seconds)} notebook runs, {self.serial_seconds / 60:.1f} min one after another",
            f"  total: {minutes:.1f} min with {self.workers} notebook(s) side by side, as the runner schedules them",
        ]


def _timed_training(row: dict, epochs: int, loops: int, settings: profiles.TrainSettings, quiet: bool = True) -> float:
    """Seconds of ``epochs`` epochs over ``loops`` training loops at the row's speed (``quiet``: on a quiet core),
    with the validations (of the validation split, an eighth of ``loops``, or ``max_val_loops`` of it) and the
    checkpoints."""
    validations = math.ceil(epochs / max(1, settings.validate_every))
    checkpoints = math.ceil(epochs / max(1, settings.checkpoint_every))
    val_loops = min(settings.max_val_loops or loops, max(1, loops // 8))
    validation = row["validation (s)"] * val_loops / rehearsed_validation_loops(settings)
    rate = row.get(QUIET_RATE, row["samples/s"]) if quiet else row["samples/s"]
    return epochs * loops / rate + validations * validation + checkpoints * row["checkpoint (s)"]


def extraction_projection(profile: str, midi_dir: str | Path | None = None, *, workers: int | None = None,
                          probe_files: int = EXTRACT_PROBE_FILES) -> tuple[float, str]:
    """Seconds notebook 01 spends writing the corpus (demo profiles) or listing and extracting the profile's MIDI
    folder twice (stride 1, stride 8), and a note saying how that was estimated.

    An LMD profile reads ``midi_dir`` (default: ``data/lmd/lmd_full``); when the folder is here, its own files are
    timed (``probe_files`` of its sample, one process, divided among the workers), else
    :data:`EXTRACT_FILES_PER_SECOND` is used and the folder is assumed to hold LMD-full's 176,581 files."""
    from loopgen.data.extract import extract_file, scan_midi_dir
    from loopgen.store.paths import Paths

    p = profiles.get(profile)
    workers = workers or p.extract.workers
    corpus = p.corpus
    if corpus.source == "demo":
        files = corpus.n_songs
        seconds = files * DEMO_CORPUS_SECONDS_PER_SONG + 2 * (EXTRACT_START_SECONDS + files / EXTRACT_FILES_PER_SECOND)
        return seconds, f"{files:,} demo songs written and extracted twice"
    folder = Path(midi_dir) if midi_dir else Paths().lmd_full
    rate, how = EXTRACT_FILES_PER_SECOND, f"{EXTRACT_FILES_PER_SECOND:.0f} files/s (measured on real songs, 2 workers)"
    found = profiles.LMD_FULL_FILES
    if folder.is_dir():
        listing = scan_midi_dir(folder)
        found = listing.found
        probe = scan_midi_dir(folder, sample=min(probe_files, corpus.sample_files or probe_files),
                              sample_seed=corpus.sample_seed).files
        if len(probe) >= 2:
            extract_file(folder / probe[0])  # the parser's first call compiles it
            t0 = time.perf_counter()
            for rel in probe:
                extract_file(folder / rel)
            per_file = (time.perf_counter() - t0) / len(probe)
            rate = workers / per_file
            how = f"{rate:.0f} files/s ({len(probe)} files of {folder} timed here, {workers} workers)"
    files = min(found, corpus.sample_files) if corpus.sample_files else found
    seconds = 3 * found * LIST_SECONDS_PER_ENTRY + 2 * (EXTRACT_START_SECONDS + files / rate)
    what = f"a sample of {files:,} of {found:,} files" if corpus.sample_files else f"{files:,} files"
    return seconds, f"{what}, twice, at {how}"


def project_run(
    profile: str,
    rows: list[dict],
    *,
    train_loops: int | None = None,
    workers: int = 2,
    extraction: tuple[float, str] | None = None,
    midi_dir: str | Path | None = None,
    quiet: bool = True,
) -> RunProjection:
    """The whole run of a CPU profile from its rehearsal ``rows`` (every training, the masked prior included,
    rehearsed at the threads each notebook gets): seconds per notebook run and the wall time of the runner's
    schedule (``workers`` side by side, :data:`loopgen.run.runner.NEEDS`).

    ``train_loops``: the dataset's training loops (default: ``profiles.TRAIN_LOOPS_ESTIMATE``); ``extraction``:
    (seconds, note) of notebook 01's extraction (default: :func:`extraction_projection`). A training whose recipe
    names shipped weights (``shipped_from``) is taken as installed, not trained (the demo dataset's case).
    ``quiet``: the trainings at the rows' quiet-core speeds (:data:`QUIET_RATE`), else at the speeds as timed."""
    from loopgen.book.sensitivity import short_settings
    from loopgen.run import runner

    p = profiles.get(profile)
    loops = train_loops or profiles.TRAIN_LOOPS_ESTIMATE.get(profile, paper.DATASET.train)
    by_label = {row["training"]: row for row in rows if "error" not in row}
    samples = p.sample.n_samples or loops
    extraction = extraction or extraction_projection(profile, midi_dir, workers=p.extract.workers)

    def other(number: str) -> float:
        fixed, demo_scaled = OTHER_SECONDS[number]
        scale = min(samples, MAX_SAMPLES_09) / MAX_SAMPLES_09 if number == "09" else samples / DEMO_SAMPLES
        return fixed + demo_scaled * scale

    def training(label: str, name: str, settings: profiles.TrainSettings) -> float:
        recipe = settings.recipe(name)
        if recipe.shipped_from:
            return 0.0
        if label not in by_label:
            raise ValueError(f"the rehearsal has no row {label!r} (rehearse every training, the masked prior too)")
        return _timed_training(by_label[label], recipe.epochs, loops, recipe, quiet)

    seconds, trained = {}, 0.0
    for nb_run in runner.plan(profile):
        number = nb_run.notebook[:2]
        params = nb_run.parameters
        work = 0.0
        if number == "02":
            model = params["MODEL"]
            if model == "vq_vae":
                label = vq_variant_name(params["VQ_T"], params["VQ_L"], params["VQ_K"])
                work = training(label, "vq_vae", p.table2_train if params.get("TABLE2") else p.train)
            else:
                work = training(model, model, p.train)
        elif number == "03":
            work = training("prior", "prior", p.train)
        elif number == "08":
            short = short_settings(p.train)
            work = sum(count * training(label, name, short) for name, label, count in NOTEBOOK_08_TRAININGS)
        elif number == "09":
            work = training("masked_prior", "masked_prior", p.train)
        trained += work
        seconds[nb_run.output_name] = other(number) + work + (extraction[0] if number == "01" else 0.0)
    wall = scheduled_seconds(runner.plan(profile), seconds, workers)
    return RunProjection(profile, seconds, wall, workers, loops, extraction[0], extraction[1], trained)


def scheduled_seconds(runs: list, seconds: dict[str, float], workers: int) -> float:
    """Wall seconds of ``runs`` (:class:`loopgen.run.runner.NotebookRun`) taking ``seconds`` each, started as the
    runner starts them: up to ``workers`` at once, each once the runs it reads have finished, :data:`FIRST` first."""
    from loopgen.run import runner

    waiting = {r.output_name: set(runner.waits_for(r, runs)) for r in runs}
    first = {name: i for i, name in enumerate(runner.FIRST)}
    pending = sorted(runs, key=lambda r: first.get(r.output_name, len(first)))
    running: dict[str, float] = {}  # name -> the time it ends
    finished: set[str] = set()
    now = 0.0
    while pending or running:
        while len(running) < workers:
            ready = runner.next_ready(pending, waiting, finished)
            if ready is None:
                break
            running[ready.output_name] = now + seconds[ready.output_name]
        if not running:
            raise ValueError("the runs wait for each other in a circle")
        name = min(running, key=running.get)
        now = running.pop(name)
        finished.add(name)
    return now
