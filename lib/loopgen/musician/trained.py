"""The VQ-VAE + prior pair a musician's command samples from: a profile's models, or one registered by ``fit``.

The registry is ``data/models.json`` (:attr:`loopgen.paths.Paths.model_registry`): for each NAME, the loop
dataset it was trained on and the profile whose training settings it used. The checkpoints themselves live
with every other checkpoint (``data/checkpoints``), keyed by the dataset's content hash, so a registered model
is loaded exactly like a notebook's (``train.load_trained``, ``weights_only=True``).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from loopgen import profiles, sample
from loopgen.atomic import exclusive_lock, write_text
from loopgen.cli import UserError
from loopgen.dataset import dataset_dir, load_loops
from loopgen.models import VQVAE, CodePrior
from loopgen.paths import MissingInputError, Paths, require
from loopgen.profiles import Profile
from loopgen.train import checkpoint_key, load_trained

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class TrainedVQ:
    """A trained VQ-VAE, its prior, the training set's first-code distribution and the checkpoint keys."""

    vq: VQVAE
    prior: CodePrior
    first_probs: np.ndarray
    train_loops: np.ndarray
    vq_key: str
    prior_key: str
    label: str  # "profile demo" or "fit NAME"

    @property
    def bars_per_code(self) -> float:
        return 8 / self.vq.latent_steps


def check_name(name: str) -> str:
    """A model name: letters, digits, ``_ . -``, at most 64 characters (it names a folder)."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"{name!r} is not a valid model name (letters, digits, '_', '.', '-'; up to 64)")
    return name


def registry_lock(paths: Paths, *, wait: bool = True):
    """The one lock (:func:`loopgen.atomic.exclusive_lock`) on ``data/models.json``: every writer of an entry
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


def _fit_command(paths: Paths, name: str, profile: Profile, data) -> str:
    """The command that (re)makes the model registered as ``name``."""
    midi_dir = data.manifest.get("inputs", {}).get("midi_dir") or "MIDI_DIR"
    return (f"python -m loopgen fit {shlex.quote(str(midi_dir))} --name {shlex.quote(name)} "
            f"--profile {profile.name}")


def load_vq(paths: Paths, profile: Profile, name: str | None = None) -> TrainedVQ:
    """The trained VQ-VAE and prior of ``profile`` (or of the model registered as ``name``).

    A missing or unfinished checkpoint raises :class:`loopgen.paths.MissingInputError` whose hint fits how the
    model is made: ``fit`` again for a registered model; for a profile's own models the notebook, or
    ``python -m loopgen train``."""
    profile, folder, label = resolve(paths, profile, name)
    data = load_loops(folder)
    if name is not None:
        recorded = read_registry(paths)[name].get("data_key")
        if recorded and recorded != data.data_key:
            raise UserError(f"the loops of model {name!r} ({shlex.quote(str(folder))}) changed since it was fitted: "
                            f"fit it again: {_fit_command(paths, name, profile, data)} --force")
    settings = profile.train
    try:
        vq, _ = load_trained("vq_vae", settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints, seed=0)
        vq_key = checkpoint_key("vq_vae", settings, data_key=data.data_key, seed=0)
        prior, _ = load_trained("prior", settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints,
                                seed=0, vq_key=vq_key)
    except MissingInputError as err:
        text = " ".join(str(err).split())
        if name is not None:  # a model fit made: fit finishes it (it resumes the checkpoints), not a notebook
            what = text.split(": run notebook", 1)[0]
            raise MissingInputError(f"model {name!r} is not ready ({what}): run {_fit_command(paths, name, profile, data)} "
                                    "again to finish it") from None
        model = "prior" if "prior" in text.split(":", 1)[0] else "vq_vae"
        raise MissingInputError(f"{text.rstrip('.')} (or from the command line: python -m loopgen train --model {model} "
                                f"--profile {profile.name})") from None
    prior_key = checkpoint_key("prior", settings, data_key=data.data_key, seed=0, vq_key=vq_key,
                               model_kwargs={"num_codes": vq.num_codes, "seq_len": vq.latent_steps})
    train = data.loops[data.split == "train"]
    if len(train) == 0:
        train = data.loops
    first = sample.first_code_distribution(sample.encode_codes(vq, train), vq.num_codes)
    return TrainedVQ(vq, prior, first, train, vq_key, prior_key, label)
