"""The VQ-VAE + prior pair a musician's command samples from: a profile's models, or one registered by ``fit``.

The prior is the paper's LSTM (``--prior lstm``, the default) or the masked code prior of notebook 09
(``--prior masked``, not in the paper): when its checkpoint is missing, :func:`load_prior` trains it on the
VQ-VAE's codes first (keyed and resumable like every training; a few minutes at the demo profile).

The registry is ``data/models.json`` (:attr:`loopgen.store.paths.Paths.model_registry`): for each NAME, the loop
dataset it was trained on and the profile whose training settings it used. The checkpoints themselves live
with every other checkpoint (``data/checkpoints``), keyed by the dataset's content hash, so a registered model
is loaded exactly like a notebook's (``train.load_trained``, ``weights_only=True``).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from loopgen import sample
from loopgen.data.dataset import LoopSet, dataset_dir, load_loops
from loopgen.errors import UserError
from loopgen.models import VQVAE, CodePrior
from loopgen.run import profiles
from loopgen.run.profiles import Profile, TrainSettings
from loopgen.store.atomic import exclusive_lock, write_text
from loopgen.store.paths import MissingInputError, Paths, require
from loopgen.train import CheckpointError, checkpoint_key, load_trained, train_prior
from loopgen.train.checkpoint import RETRAIN_HINT
from loopgen.train.data import augmented_copies, augments

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PRIORS = {"lstm": "prior", "masked": "masked_prior"}  # --prior choice -> registered model


@dataclass
class TrainedVQ:
    """A trained VQ-VAE, its prior, the training set's first-code distribution and the checkpoint keys."""

    vq: VQVAE
    prior: CodePrior  # or the masked code prior (loopgen.models.masked_prior.MaskedCodePrior)
    first_probs: np.ndarray
    train_loops: np.ndarray
    vq_key: str
    prior_key: str
    label: str  # "profile demo" or "fit NAME"
    prior_name: str = "prior"  # the prior's registered name: "prior" (LSTM) or "masked_prior"

    @property
    def bars_per_code(self) -> float:
        return 8 / self.vq.latent_steps


def check_name(name: str) -> str:
    """A model name: letters, digits, ``_ . -``, at most 64 characters (it names a folder)."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"{name!r} is not a valid model name (letters, digits, '_', '.', '-'; up to 64)")
    return name


def registry_lock(paths: Paths, *, wait: bool = True):
    """The one lock (:func:`loopgen.store.atomic.exclusive_lock`) on ``data/models.json``: every writer of an entry
    holds it for its read-modify-write, so two ``fit`` runs never lose each other's entry."""
    lock = paths.model_registry.with_name(paths.model_registry.name + ".lock")
    return exclusive_lock(lock, what=f"the model registry {shlex.quote(str(paths.model_registry))}", wait=wait)


class DamagedRegistryError(UserError):
    """``data/models.json`` (or one entry of it) that cannot be used as it is."""


def _bad_registry(paths: Paths, what: str) -> DamagedRegistryError:
    return DamagedRegistryError(
        f"the model registry {shlex.quote(str(paths.model_registry))} is damaged ({what}): fix or delete that file "
        "and fit the models again (python -m loopgen fit MIDI_DIR --name NAME --force)"
    )


def _check_entry(paths: Paths, name: str, entry: object) -> dict:
    """A registry entry checked before use: a known profile and a dataset folder path."""
    if not isinstance(entry, dict):
        raise _bad_registry(paths, f"the entry of {name!r} is not a record")
    if entry.get("profile") not in profiles.PROFILES:
        raise _bad_registry(paths, f"the entry of {name!r} names profile {entry.get('profile')!r}, which loopgen "
                                   "does not know")
    if not isinstance(entry.get("dataset"), str) or not entry["dataset"]:
        raise _bad_registry(paths, f"the entry of {name!r} names no dataset folder")
    return entry


def read_registry(paths: Paths) -> dict:
    """NAME -> entry of every model registered by ``fit`` (empty when none); a file that is not a JSON object
    of records raises :class:`DamagedRegistryError` (one line, what to do)."""
    path = paths.model_registry
    if not path.exists():
        return {}
    try:
        registry = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise _bad_registry(paths, f"{type(err).__name__}: {' '.join(str(err).split())[:100]}") from None
    if not isinstance(registry, dict):
        raise _bad_registry(paths, "not a JSON object of NAME -> record")
    return registry


def register(paths: Paths, name: str, *, dataset: Path, profile: str, report_totals: dict, out_dir: Path,
             data_key: str | None = None) -> dict:
    """Record NAME -> (dataset folder, profile, the dataset's ``data_key``) in the registry (replacing an older
    entry of that name), under the registry's lock."""
    check_name(name)
    with registry_lock(paths):
        registry = read_registry(paths)
        registry[name] = {
            "dataset": str(Path(dataset).resolve()),
            "profile": profile,
            "out_dir": str(Path(out_dir).resolve()),
            "extraction": report_totals,
            "registered": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **({"data_key": data_key} if data_key else {}),
        }
        write_text(paths.model_registry, json.dumps(registry, indent=2, sort_keys=True) + "\n")
    return registry[name]


def unregister(paths: Paths, name: str) -> bool:
    """Remove NAME from the registry (under its lock); True when it was there."""
    with registry_lock(paths):
        registry = read_registry(paths)
        if registry.pop(name, None) is None:
            return False
        write_text(paths.model_registry, json.dumps(registry, indent=2, sort_keys=True) + "\n")
    return True


def resolve(paths: Paths, profile: Profile, name: str | None) -> tuple[Profile, Path, str]:
    """(profile, dataset folder, label) for ``--from NAME`` or, without a name, the profile's own dataset."""
    if name is None:
        folder = require(dataset_dir(paths, profile.corpus.name), made_by="01_extract_loops.ipynb")
        return profile, folder, f"profile {profile.name}"
    registry = read_registry(paths)
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none yet"
        raise UserError(f"no model called {name!r} (registered: {known}); make one with "
                        f"python -m loopgen fit MIDI_DIR --name {shlex.quote(name)}")
    entry = _check_entry(paths, name, registry[name])
    return profiles.get(entry["profile"]), Path(entry["dataset"]), f"fit {name}"


def registered_name_of(paths: Paths, dataset: Path | str) -> str | None:
    """The name of the model ``fit`` registered with the dataset folder ``dataset`` (the path
    :func:`resolve` gives for ``--from NAME``); None for a profile's own dataset."""
    for name, entry in read_registry(paths).items():
        if isinstance(entry, dict) and entry.get("dataset") == str(dataset):
            return name
    return None


def not_ready(err: Exception, paths: Paths, profile: Profile, name: str | None, data) -> Exception:
    """``err`` (a missing, unfinished or unusable checkpoint) with the hint that fits how the model is made:
    ``fit`` again for a model registered as ``name``; for a profile's own models the notebook, or
    ``python -m loopgen train``."""
    text = " ".join(str(err).split())
    if isinstance(err, CheckpointError):
        if name is None:
            return err
        return CheckpointError(text.replace(RETRAIN_HINT, f"delete it and fit model {name!r} again: "
                                                          f"{_fit_command(paths, name, profile, data)} --force"))
    if name is not None:  # a model fit made: fit finishes it (it resumes the checkpoints), not a notebook
        what = text.split(": run notebook", 1)[0]
        return MissingInputError(f"model {name!r} is not ready ({what}): run {_fit_command(paths, name, profile, data)} "
                                 "again to finish it")
    model = "prior" if "prior" in text.split(":", 1)[0] else "vq_vae"
    return MissingInputError(f"{text.rstrip('.')} (or from the command line: python -m loopgen train --model {model} "
                             f"--profile {profile.name})")


def _fit_command(paths: Paths, name: str, profile: Profile, data) -> str:
    """The command that (re)makes the model registered as ``name``."""
    midi_dir = data.manifest.get("inputs", {}).get("midi_dir") or "MIDI_DIR"
    return (f"python -m loopgen fit {shlex.quote(str(midi_dir))} --name {shlex.quote(name)} "
            f"--profile {profile.name}")


def prior_name_of(choice: str) -> str:
    """The registered prior behind a ``--prior`` choice ("lstm" -> "prior", "masked" -> "masked_prior")."""
    try:
        return PRIORS[choice]
    except KeyError:
        raise ValueError(f"unknown prior {choice!r}; choose one of {sorted(PRIORS)}") from None


def prior_training_codes(vq: VQVAE, train_loops: np.ndarray, settings: TrainSettings, prior_name: str) -> np.ndarray:
    """The codes prior ``prior_name`` trains on: ``vq``'s codes of ``train_loops`` and, when the prior's recipe sets
    ``augment_rotate_bars`` / ``augment_transpose``, of every augmented copy of them
    (:func:`loopgen.train.data.augmented_copies`; the songs profile's masked prior: ten transpositions more)."""
    r = settings.recipe(prior_name)
    loops = augmented_copies(train_loops, rotate_bars=r.augment_rotate_bars, transpose=r.augment_transpose)
    return sample.encode_codes(vq, loops)


def load_prior(
    prior_name: str,
    settings: TrainSettings,
    *,
    data_key: str,
    checkpoint_dir: Path,
    vq: VQVAE,
    vq_key: str,
    train_codes: np.ndarray,
    val_codes: np.ndarray | None = None,
    train_loops: np.ndarray | None = None,
) -> tuple[object, str]:
    """The trained prior ``prior_name`` over ``vq``'s codes and its checkpoint key. A missing LSTM prior is an
    error naming notebook 03; a missing masked prior is trained here first on ``train_codes`` (validated on
    ``val_codes``), under the checkpoint's lock, and said so on stderr with its training time. When its recipe
    augments (:func:`prior_training_codes`) it trains on the codes of ``train_loops`` and their augmented copies."""
    kwargs = {"num_codes": vq.num_codes, "seq_len": vq.latent_steps}
    key = checkpoint_key(prior_name, settings, data_key=data_key, seed=0, vq_key=vq_key, model_kwargs=kwargs)
    try:
        prior, _ = load_trained(prior_name, settings, data_key=data_key, checkpoint_dir=checkpoint_dir, seed=0,
                                vq_key=vq_key, model_kwargs=kwargs)
        return prior, key
    except MissingInputError:
        if prior_name == "prior":
            raise
    recipe = settings.recipe(prior_name)
    if augments(recipe):
        if train_loops is None:
            raise ValueError(f"{prior_name}: its recipe augments the training loops: pass train_loops")
        train_codes = prior_training_codes(vq, train_loops, settings, prior_name)
    print(f"{prior_name}: no finished checkpoint for this VQ-VAE yet; training it first "
          f"({recipe.epochs} epochs over {len(train_codes):,} code sequences)", file=sys.stderr)
    started = time.perf_counter()
    # the training takes the checkpoint's lock itself; wait=True: a second caller waits for the first to finish
    result = train_prior(train_codes, settings, data_key=data_key, vq_key=vq_key, checkpoint_dir=checkpoint_dir,
                         num_codes=vq.num_codes, val_codes=val_codes, seed=0, progress=False, name=prior_name,
                         wait=True)
    if not result.reused:
        print(f"{prior_name}: trained in {(time.perf_counter() - started) / 60:.1f} minutes", file=sys.stderr)
    return result.model, key


def loops_of(paths: Paths, profile: Profile, name: str | None = None) -> tuple[Profile, LoopSet, str]:
    """(profile, loop dataset, label) of the model registered as ``name``, or of ``profile``'s own models
    (:func:`resolve`); a registered model whose loops changed since it was fitted is refused in one line."""
    profile, folder, label = resolve(paths, profile, name)
    data = load_loops(folder)
    if name is not None:
        recorded = read_registry(paths)[name].get("data_key")
        if recorded and recorded != data.data_key:
            raise UserError(f"the loops of model {name!r} ({shlex.quote(str(folder))}) changed since it was fitted: "
                            f"fit it again: {_fit_command(paths, name, profile, data)} --force")
    return profile, data, label


def load_vq(paths: Paths, profile: Profile, name: str | None = None, prior: str = "lstm") -> TrainedVQ:
    """The trained VQ-VAE and prior of ``profile`` (or of the model registered as ``name``); ``prior``: "lstm"
    (the paper's) or "masked" (notebook 09's, trained here first when missing: :func:`load_prior`).

    A missing or unfinished checkpoint raises :class:`loopgen.store.paths.MissingInputError` whose hint fits how the
    model is made (:func:`not_ready`): ``fit`` again for a registered model; for a profile's own models the
    notebook, or ``python -m loopgen train``. A checkpoint that is not the one asked for (another model's, copied
    or renamed into place) raises :class:`loopgen.train.CheckpointError` in one line, so a VQ-VAE is never paired
    with a prior trained on another VQ-VAE's codes."""
    prior_name = prior_name_of(prior)
    profile, data, label = loops_of(paths, profile, name)
    settings = profile.train
    train = data.loops[data.split == "train"]
    if len(train) == 0:
        train = data.loops
    val = data.loops[data.split == "val"]
    try:
        vq, _ = load_trained("vq_vae", settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints, seed=0)
        vq_key = checkpoint_key("vq_vae", settings, data_key=data.data_key, seed=0)
        train_codes = sample.encode_codes(vq, train)
        prior_model, prior_key = load_prior(
            prior_name, settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints, vq=vq, vq_key=vq_key,
            train_codes=train_codes, val_codes=sample.encode_codes(vq, val) if len(val) else None, train_loops=train,
        )
    except (MissingInputError, CheckpointError) as err:
        raise not_ready(err, paths, profile, name, data) from None
    first = sample.first_code_distribution(train_codes, vq.num_codes)
    return TrainedVQ(vq, prior_model, first, train, vq_key, prior_key, label, prior_name)
