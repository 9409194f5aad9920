"""The VQ-VAE + prior pair a musician's command samples from: a profile's models, or one registered by ``fit``.

The prior is the paper's LSTM (``--prior lstm``, the default) or the masked code prior of notebook 09
(``--prior masked``, not in the paper): when its checkpoint is missing, :func:`load_prior` trains it on the
VQ-VAE's codes first (keyed and resumable like every training; a few minutes at the demo profile).

The registry is ``data/models.json`` (:attr:`loopgen.paths.Paths.model_registry`): for each NAME, the loop
dataset it was trained on and the profile whose training settings it used. The checkpoints themselves live
with every other checkpoint (``data/checkpoints``), keyed by the dataset's content hash, so a registered model
is loaded exactly like a notebook's (``train.load_trained``, ``weights_only=True``).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from loopgen import profiles, sample
from loopgen.atomic import write_text
from loopgen.cli import UserError
from loopgen.dataset import dataset_dir, load_loops
from loopgen.models import VQVAE, CodePrior
from loopgen.paths import MissingInputError, Paths, require
from loopgen.profiles import Profile, TrainSettings
from loopgen.train import checkpoint_key, checkpoint_path, load_trained, train_prior, training_lock

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


def read_registry(paths: Paths) -> dict:
    """NAME -> entry of every model registered by ``fit`` (empty when none)."""
    path = paths.model_registry
    return json.loads(path.read_text()) if path.exists() else {}


def register(paths: Paths, name: str, *, dataset: Path, profile: str, report_totals: dict, out_dir: Path) -> dict:
    """Record NAME -> (dataset folder, profile) in the registry (replacing an older entry of that name)."""
    registry = read_registry(paths)
    registry[check_name(name)] = {
        "dataset": str(Path(dataset).resolve()),
        "profile": profile,
        "out_dir": str(Path(out_dir).resolve()),
        "extraction": report_totals,
        "registered": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_text(paths.model_registry, json.dumps(registry, indent=2, sort_keys=True) + "\n")
    return registry[name]


def resolve(paths: Paths, profile: Profile, name: str | None) -> tuple[Profile, Path, str]:
    """(profile, dataset folder, label) for ``--from NAME`` or, without a name, the profile's own dataset."""
    if name is None:
        folder = require(dataset_dir(paths, profile.corpus.name), made_by="01_extract_loops.ipynb")
        return profile, folder, f"profile {profile.name}"
    registry = read_registry(paths)
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none yet"
        raise UserError(f"no model called {name!r} (registered: {known}); make one with python -m loopgen fit MIDI_DIR --name {name}")
    entry = registry[name]
    return profiles.get(entry["profile"]), Path(entry["dataset"]), f"fit {name}"


def prior_name_of(choice: str) -> str:
    """The registered prior behind a ``--prior`` choice ("lstm" -> "prior", "masked" -> "masked_prior")."""
    try:
        return PRIORS[choice]
    except KeyError:
        raise ValueError(f"unknown prior {choice!r}; choose one of {sorted(PRIORS)}") from None


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
) -> tuple[object, str]:
    """The trained prior ``prior_name`` over ``vq``'s codes and its checkpoint key. A missing LSTM prior is an
    error naming notebook 03; a missing masked prior is trained here first on ``train_codes`` (validated on
    ``val_codes``), under the checkpoint's lock, and said so on stderr."""
    kwargs = {"num_codes": vq.num_codes, "seq_len": vq.latent_steps}
    key = checkpoint_key(prior_name, settings, data_key=data_key, seed=0, vq_key=vq_key, model_kwargs=kwargs)
    try:
        prior, _ = load_trained(prior_name, settings, data_key=data_key, checkpoint_dir=checkpoint_dir, seed=0,
                                vq_key=vq_key, model_kwargs=kwargs)
        return prior, key
    except MissingInputError:
        if prior_name == "prior":
            raise
    print(f"{prior_name}: no finished checkpoint for this VQ-VAE yet; training it first "
          f"({settings.recipe(prior_name).epochs} epochs)", file=sys.stderr)
    target = checkpoint_path(prior_name, settings, data_key=data_key, checkpoint_dir=checkpoint_dir, seed=0,
                             vq_key=vq_key, model_kwargs=kwargs)
    with training_lock(target, wait=True):
        result = train_prior(train_codes, settings, data_key=data_key, vq_key=vq_key, checkpoint_dir=checkpoint_dir,
                             num_codes=vq.num_codes, val_codes=val_codes, seed=0, progress=False, name=prior_name)
    return result.model, key


def load_vq(paths: Paths, profile: Profile, name: str | None = None, prior: str = "lstm") -> TrainedVQ:
    """The trained VQ-VAE and prior of ``profile`` (or of the model registered as ``name``); ``prior``: "lstm"
    (the paper's) or "masked" (notebook 09's, trained here first when missing: :func:`load_prior`)."""
    prior_name = prior_name_of(prior)
    profile, folder, label = resolve(paths, profile, name)
    data = load_loops(folder)
    settings = profile.train
    vq, _ = load_trained("vq_vae", settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints, seed=0)
    vq_key = checkpoint_key("vq_vae", settings, data_key=data.data_key, seed=0)
    train = data.loops[data.split == "train"]
    if len(train) == 0:
        train = data.loops
    train_codes = sample.encode_codes(vq, train)
    val = data.loops[data.split == "val"]
    prior_model, prior_key = load_prior(
        prior_name, settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints, vq=vq, vq_key=vq_key,
        train_codes=train_codes, val_codes=sample.encode_codes(vq, val) if len(val) else None,
    )
    first = sample.first_code_distribution(train_codes, vq.num_codes)
    return TrainedVQ(vq, prior_model, first, train, vq_key, prior_key, label, prior_name)
