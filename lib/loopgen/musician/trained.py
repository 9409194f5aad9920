"""The VQ-VAE + prior pair a musician's command samples from: a profile's models, or one registered by ``fit``.

The registry is ``data/models.json`` (:attr:`loopgen.paths.Paths.model_registry`): for each NAME, the loop
dataset it was trained on and the profile whose training settings it used. The checkpoints themselves live
with every other checkpoint (``data/checkpoints``), keyed by the dataset's content hash, so a registered model
is loaded exactly like a notebook's (``train.load_trained``, ``weights_only=True``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from loopgen import profiles, sample
from loopgen.atomic import write_text
from loopgen.cli import UserError
from loopgen.dataset import dataset_dir, load_loops
from loopgen.models import VQVAE, CodePrior
from loopgen.paths import Paths, require
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


def load_vq(paths: Paths, profile: Profile, name: str | None = None) -> TrainedVQ:
    """The trained VQ-VAE and prior of ``profile`` (or of the model registered as ``name``)."""
    profile, folder, label = resolve(paths, profile, name)
    data = load_loops(folder)
    settings = profile.train
    vq, _ = load_trained("vq_vae", settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints, seed=0)
    vq_key = checkpoint_key("vq_vae", settings, data_key=data.data_key, seed=0)
    prior, _ = load_trained("prior", settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints,
                            seed=0, vq_key=vq_key)
    prior_key = checkpoint_key("prior", settings, data_key=data.data_key, seed=0, vq_key=vq_key,
                               model_kwargs={"num_codes": vq.num_codes, "seq_len": vq.latent_steps})
    train = data.loops[data.split == "train"]
    if len(train) == 0:
        train = data.loops
    first = sample.first_code_distribution(sample.encode_codes(vq, train), vq.num_codes)
    return TrainedVQ(vq, prior, first, train, vq_key, prior_key, label)
