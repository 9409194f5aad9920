"""Loops for musicians: ``python -m loopgen generate --model vq_vae --n 16 --temperature 1.2 --out DIR``.

Samples any trained model of a profile (or, with ``--from NAME``, a model made by ``fit``); the VQ-VAE's codes come
from the paper's LSTM prior or, with ``--prior masked``, from notebook 09's masked code prior (``--steps`` rounds
of parallel decoding; not in the paper). Each loop is added to
the output folder as DAW-ready ``.mid``, ``.wav`` (when FluidSynth is installed) and a pianoroll ``.png``, with
``loops.json`` (what remakes each loop: model, checkpoint keys, temperature, seed) and ``index.html``. A run
without ``--seed`` draws a fresh seed and prints it; files are numbered on, never overwritten.
:func:`export_loops` writes plain files plus one PNG contact sheet (for notebooks). Models are trained by notebooks 02-03 (or
``python -m loopgen train``); when one is missing, the message names the notebook to run first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from loopgen import registry, sample
from loopgen import sample_masked as masked
from loopgen.book import audio, plots
from loopgen.data.dataset import dataset_dir, load_loops
from loopgen.data.midi.write import write_loop_midi
from loopgen.models.masked_prior import MaskedCodePrior
from loopgen.musician.trained import load_prior, not_ready, prior_name_of, registered_name_of
from loopgen.run.profiles import Profile, TrainSettings
from loopgen.store.paths import MissingInputError, Paths, require
from loopgen.train import CheckpointError, checkpoint_key, load_trained, model_config, resolved_kwargs

MODELS = registry.autoencoders()


@dataclass(frozen=True)
class Sampler:
    """A trained model ready to generate: a continuous VAE (decodes z ~ N(0, I)), or a VQ-VAE with its LSTM prior
    and the training set's first-code distribution (``prior`` and ``first_codes`` set), or with the masked code
    prior (decoded in ``steps`` rounds, :func:`loopgen.sample_masked.sample_masked`; ``first_codes`` unused)."""

    model: nn.Module
    prior: nn.Module | None = None
    first_codes: np.ndarray | None = None
    steps: int = masked.DEFAULT_STEPS

    @classmethod
    def for_vq(cls, vq: nn.Module, prior: nn.Module, train_codes: np.ndarray) -> Sampler:
        """The VQ-VAE's sampler; its first code is drawn as often as it starts the training loops (``train_codes``)."""
        return cls(vq, prior, sample.first_code_distribution(train_codes, vq.num_codes))

    def draw(self, n: int, *, seed: int, temperature: float | None = 1.0) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` loops (uint8, (n, 128, 93)) and, for the VQ-VAE, their code sequences (else None).

        The prior samples each next code at ``temperature`` (None: argmax); continuous VAEs ignore it."""
        if self.prior is None:
            return sample.sample_vae(self.model, n, seed=seed), None
        if isinstance(self.prior, MaskedCodePrior):
            codes = masked.sample_masked(self.prior, n, steps=self.steps, temperature=temperature, seed=seed)
            return sample.decode_codes(self.model, codes), codes
        codes = sample.sample_codes(self.prior, n, self.first_codes, temperature=temperature, seed=seed)
        return sample.decode_codes(self.model, codes), codes


def checkpoint_keys(
    model_name: str, settings: TrainSettings, *, data_key: str, seed: int = 0, prior_name: str = "prior"
) -> dict[str, str]:
    """The keys of the checkpoints that sampling ``model_name`` loads: ``checkpoint_key``, and for the VQ-VAE
    its prior's ``prior_key`` (``prior_name``: "prior", the LSTM, or "masked_prior")."""
    keys = {"checkpoint_key": checkpoint_key(model_name, settings, data_key=data_key, seed=seed)}
    if model_name == "vq_vae":
        vq = model_config("vq_vae", resolved_kwargs("vq_vae", settings))
        keys["prior_key"] = checkpoint_key(
            prior_name, settings, data_key=data_key, seed=seed, vq_key=keys["checkpoint_key"],
            model_kwargs={"num_codes": vq["num_codes"], "seq_len": vq["latent_steps"]},
        )
    return keys


def make_sampler(
    model_name: str,
    *,
    profile: Profile,
    paths: Paths,
    temperature: float | None = 1.0,
    dataset: Path | None = None,
    prior: str = "lstm",
    steps: int = masked.DEFAULT_STEPS,
) -> tuple[Callable[[int, int], np.ndarray], dict]:
    """``(draw, keys)``: ``draw(seed, n)`` gives ``n`` loops of a trained model (what :func:`generate_loops`
    returns for that seed and n); ``keys`` names the checkpoints (:func:`checkpoint_keys`).

    ``dataset`` is the loop dataset the models were trained on (default: the profile's corpus). ``prior``: the
    VQ-VAE's "lstm" prior (the paper's) or the "masked" one (``steps`` decoding rounds; trained first when
    missing, :func:`loopgen.musician.trained.load_prior`).
    """
    prior_name = prior_name_of(prior)
    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; choose one of {MODELS}")
    folder = dataset if dataset is not None else dataset_dir(paths, profile.corpus.name)
    data = load_loops(require(folder, made_by="01_extract_loops.ipynb"))
    try:
        return _sampler(model_name, profile=profile, paths=paths, data=data, temperature=temperature,
                        prior_name=prior_name, steps=steps)
    except (MissingInputError, CheckpointError) as err:
        fitted = registered_name_of(paths, folder) if dataset is not None else None  # --from NAME: made by `fit`
        if fitted is None:
            raise
        raise not_ready(err, paths, profile, fitted, data) from None


def _sampler(model_name: str, *, profile: Profile, paths: Paths, data, temperature: float | None, prior_name: str,
             steps: int) -> tuple[Callable[[int, int], np.ndarray], dict]:
    """:func:`make_sampler` for the loop dataset ``data``."""
    settings = profile.train
    model, _ = load_trained(model_name, settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints, seed=0)
    keys = checkpoint_keys(model_name, settings, data_key=data.data_key, prior_name=prior_name)
    if model_name != "vq_vae":
        sampler = Sampler(model)
    else:
        train = data.loops[data.split == "train"]
        val = data.loops[data.split == "val"]
        train_codes = sample.encode_codes(model, train if len(train) else data.loops)
        prior_model, _ = load_prior(
            prior_name, settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints, vq=model,
            vq_key=keys["checkpoint_key"], train_codes=train_codes,
            val_codes=sample.encode_codes(model, val) if len(val) else None, train_loops=train if len(train) else data.loops,
        )
        first = sample.first_code_distribution(train_codes, model.num_codes)
        sampler = Sampler(model, prior_model, first, steps)
    return (lambda seed, n: sampler.draw(n, seed=seed, temperature=temperature)[0]), keys


def generate_loops(
    model_name: str,
    n: int,
    *,
    profile: Profile,
    paths: Paths,
    temperature: float | None = 1.0,
    seed: int = 0,
    dataset: Path | None = None,
) -> np.ndarray:
    """``n`` loops (uint8, (n, 128, 93)) from a trained model of ``profile``.

    Continuous VAEs decode z ~ N(0, I); the VQ-VAE decodes code sequences from its LSTM prior, the first
    code drawn from the training set's first codes, then argmax (``temperature=None``) or softmax sampling.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    draw, _ = make_sampler(model_name, profile=profile, paths=paths, temperature=temperature, dataset=dataset)
    return draw(seed, n)


def export_loops(
    loops: np.ndarray,
    out_dir: Path | str,
    *,
    prefix: str = "loop",
    tempo: float = 120.0,
    repeats: int = 2,
    wav: bool = True,
) -> dict[str, list[Path]]:
    """Write each loop as ``<prefix>_NNN.mid`` (and ``.wav``) plus ``<prefix>_contact_sheet.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {"mid": [], "wav": [], "png": []}
    for i, loop in enumerate(loops):
        written["mid"].append(write_loop_midi(loop, out / f"{prefix}_{i:03d}.mid", bpm=tempo, repeats=repeats))
        if wav:
            path = audio.write_wav(loop, out / f"{prefix}_{i:03d}.wav", tempo=tempo, repeats=repeats)
            if path is not None:
                written["wav"].append(path)
    sheet = plots.contact_sheet(loops, titles=[f"{prefix}_{i:03d}" for i in range(len(loops))])
    written["png"].append(plots.save_fig(sheet, f"{prefix}_contact_sheet.png", folder=out))
    return written
