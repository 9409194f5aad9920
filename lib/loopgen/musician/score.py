"""How well a model knows some music: ``python -m loopgen score MIDI_DIR --from NAME``.

The loops of MIDI_DIR (the extraction rules, :mod:`loopgen.data.extract`) go through every autoencoder NAME has:
a model registered by ``fit`` (its VQ-VAE), or a profile's own models (the VQ-VAE, CNN-VAE and both LSTM-VAEs the
notebooks train). For each model: its reconstruction error on these loops (Tables 1-2's measure) beside its own
validation error (the kept epoch's, from its checkpoint history), the ratio of the two (1 = these songs are as
familiar as its validation songs), and the loopability (:func:`loopgen.metrics.loopability`) of the loops and of
their reconstructions.

The loops are extracted once into ``data/scores/<key>`` (or another cache folder), keyed by the content of
MIDI_DIR's files; nothing is ever written into MIDI_DIR.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from loopgen import errors, metrics, registry, sample
from loopgen.data.dataset import MADE_BY, LoopSet, dataset_dir, load_loops
from loopgen.data.extract import (
    DatasetMismatchError,
    extract,
    folder_content_key,
    summary_lines,
)
from loopgen.loops import LoopParams
from loopgen.musician import trained
from loopgen.musician.fit import report_summary
from loopgen.run import profiles
from loopgen.run.profiles import Profile
from loopgen.store.paths import MissingInputError, Paths
from loopgen.train import CheckpointError, load_trained, weights_source


@dataclass
class ModelScore:
    """One autoencoder on the scored loops, beside its own validation loops."""

    model: str
    title: str
    reconstruction_error: float
    validation_error: float | None  # at the kept epoch (None: the checkpoint has no validation)
    validation_epoch: int | None
    ratio: float | None  # reconstruction_error / validation_error
    loopability: float  # mean loopability of the reconstructions
    weights: str  # "trained here" or where the weights came from ("shipped (demo-long)")


@dataclass
class MissingModel:
    """An autoencoder NAME should have that cannot be loaded, and what to run."""

    model: str
    title: str
    error: str


@dataclass
class ScoreReport:
    """What ``score`` reports: the loops found (and the files that gave none) and every model's scores."""

    midi_dir: str
    name: str
    models_of: str  # "profile demo" or "fit NAME"
    profile: str
    loops_dir: str
    extraction: dict  # extract's report totals: files_scanned, files_with_loops, files_rejected, loops, by_reason
    loops: int
    loopability: float  # mean loopability of the loops themselves
    models: list[ModelScore] = field(default_factory=list)
    missing: list[MissingModel] = field(default_factory=list)

    def as_dict(self) -> dict:
        """A JSON-ready dictionary (``--json``)."""
        return asdict(self)

    def lines(self) -> list[str]:
        """The human-readable report: the extraction summary, then one row per model."""
        out = summary_lines({"totals": self.extraction}, self.loops_dir)
        out += ["", f"models of {self.models_of} (validation error: the kept epoch's, on the model's own "
                    "validation loops; ratio: error here / validation error)"]
        rows = [(s.title, f"{s.reconstruction_error:.2e}", _validation_text(s),
                 "-" if s.ratio is None else f"{s.ratio:.2f}x", f"{self.loopability:.2f} -> {s.loopability:.2f}")
                for s in self.models]
        header = ("model", "error here", "validation error", "ratio", "loopability: loops -> reconstructions")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
        for row in [header, *rows]:
            out.append("  ".join(text.ljust(width) for text, width in zip(row[:-1], widths, strict=True))
                       + "  " + row[-1])
        out += [f"  {s.title}: {s.weights} weights" for s in self.models if s.weights != "trained here"]
        out += [f"missing {m.title}: {m.error}" for m in self.missing]
        return out


def _validation_text(score: ModelScore) -> str:
    if score.validation_error is None:
        return "none recorded"
    return f"{score.validation_error:.2e} (epoch {score.validation_epoch})"


# ------------------------------------------------------------------------------------------ the loops
folder_key = folder_content_key  # the key ``score`` files a folder's loops under


def extract_cached(
    midi_dir: Path | str, cache: Path | str, *, workers: int = 2, progress: bool = True
) -> tuple[LoopSet, Path]:
    """The loops of ``midi_dir`` by the extraction rules, extracted into ``cache/<content key>-<rules key>`` (reused
    while the files are the same) and the folder they are in."""
    params = LoopParams()
    folder = Path(cache) / f"{folder_key(midi_dir)}-{params.key()}"
    try:
        extract(midi_dir, folder, params, workers=workers, progress=progress)
    except DatasetMismatchError:  # the same files scored before from another folder: extracted again for this one
        extract(midi_dir, folder, params, workers=workers, progress=progress, force=True)
    return load_loops(folder), folder


# ------------------------------------------------------------------------------------------ the models
def models_of(paths: Paths, name: str) -> tuple[Profile, LoopSet, str, tuple[str, ...], str | None]:
    """(profile, the models' own loop dataset, label, autoencoders to score, registered name or None) for
    ``--from NAME``: a model registered by ``fit`` (its VQ-VAE) first, else a profile (its autoencoders)."""
    if name in trained.read_registry(paths):
        # a registered model's own profile comes from its registry entry (the profile passed is not used)
        profile, data, label = trained.loops_of(paths, profiles.get("demo"), name)
        return profile, data, label, ("vq_vae",), name
    if name not in profiles.PROFILES:
        fitted = ", ".join(sorted(trained.read_registry(paths))) or "none yet"
        raise errors.UsageError(
            f"--from {name!r} is neither a fitted model (fitted: {fitted}) nor a profile ({', '.join(profiles.PROFILES)}): "
            f"fit one with python -m loopgen fit MIDI_DIR --name {shlex.quote(name)}"
        )
    profile = profiles.get(name)
    if not (dataset_dir(paths, profile.corpus.name) / "manifest.json").exists():
        raise MissingInputError(f"profile {name} has no loops and models yet: run its notebooks first "
                                f"(./run_all.sh --profile {name}, or notebook {MADE_BY}, then 02 per model)")
    _, data, label = trained.loops_of(paths, profile)
    return profile, data, label, registry.autoencoders(), None


def _not_ready(err: Exception, paths: Paths, profile: Profile, model: str, fitted: str | None, data: LoopSet) -> str:
    """One line: why ``model`` cannot be loaded and what to run."""
    if fitted is not None or isinstance(err, CheckpointError):
        return errors.one_line(trained.not_ready(err, paths, profile, fitted, data))
    return f"{errors.one_line(err).rstrip('.')} (or: python -m loopgen train --model {model} --profile {profile.name})"


def kept_validation(history: pd.DataFrame) -> tuple[float | None, int | None]:
    """(validation error, epoch) of the epoch whose weights a checkpoint kept (``attrs["kept_epoch"]`` of
    :func:`loopgen.train.load_trained`'s history), else of its last validated epoch; (None, None) without one."""
    if "val_recon_error" not in history or "epoch" not in history:
        return None, None
    validated = history.dropna(subset=["val_recon_error"])
    if validated.empty:
        return None, None
    kept = validated[validated["epoch"] == history.attrs.get("kept_epoch")]
    row = (kept if len(kept) else validated).iloc[-1]
    return float(row["val_recon_error"]), int(row["epoch"])


def score_model(net, history: pd.DataFrame, loops: np.ndarray, *, model: str, weights: str) -> ModelScore:
    """``net``'s reconstruction error and the loopability of its reconstructions of ``loops``, beside its own
    validation error."""
    reconstructed = sample.reconstruct(net, loops)
    error = metrics.reconstruction_error(loops, reconstructed)
    validation, epoch = kept_validation(history)
    ratio = error / validation if validation else None
    return ModelScore(model, registry.get(model).title, error, validation, epoch, ratio,
                      float(metrics.loopability(reconstructed).mean()), weights)


def load_models(paths: Paths, profile: Profile, own: LoopSet, names: tuple[str, ...], fitted: str | None
                ) -> tuple[list[tuple[str, object, pd.DataFrame, str]], list[MissingModel]]:
    """The trained autoencoders ``names`` of ``own``'s dataset as (name, model, history, weights source), and those
    that cannot be loaded, with what to run; when none can, the first one's error is raised (one line)."""
    where = {"data_key": own.data_key, "checkpoint_dir": paths.checkpoints}
    loaded, missing, failures = [], [], []
    for model in names:
        try:
            net, history = load_trained(model, profile.train, **where)
        except (MissingInputError, CheckpointError) as err:
            failures.append(err)
            missing.append(MissingModel(model, registry.get(model).title,
                                        _not_ready(err, paths, profile, model, fitted, own)))
            continue
        loaded.append((model, net, history, weights_source(model, profile.train, **where)))
    if not loaded:
        first = missing[0].error
        raise CheckpointError(first) if isinstance(failures[0], CheckpointError) else MissingInputError(first)
    return loaded, missing


def score(
    midi_dir: Path | str,
    name: str,
    *,
    paths: Paths,
    cache: Path | str | None = None,
    workers: int = 2,
    progress: bool = True,
) -> ScoreReport:
    """Score the loops of ``midi_dir`` with every autoencoder of ``name`` (a fitted model or a profile).

    The models are loaded first (:func:`load_models`: nothing is extracted when none can be), then the loops are
    extracted into ``cache`` (default ``data/scores``). A folder without loops raises
    :class:`loopgen.errors.UserError` with the count of files per reason.
    """
    profile, own, label, names, fitted = models_of(paths, name)
    loaded, missing = load_models(paths, profile, own, names, fitted)
    data, folder = extract_cached(midi_dir, paths.scores if cache is None else cache, workers=workers,
                                  progress=progress)
    totals = data.report["totals"]
    if not len(data):
        raise errors.UserError(f"no loops in {errors.quoted(midi_dir)}: nothing to score ({report_summary(totals)})")
    return ScoreReport(
        str(Path(midi_dir).resolve()), name, label, profile.name, str(folder), totals, len(data),
        float(metrics.loopability(data.loops).mean()),
        [score_model(net, history, data.loops, model=model, weights=weights) for model, net, history, weights in loaded],
        missing,
    )
