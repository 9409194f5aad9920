"""The one table of what the companion trains, samples and tabulates: models, sample groups, Table 2 settings.

Adding a model is one :func:`register` call (or one entry in :data:`MODELS` below): training
(:mod:`loopgen.train`), sampling (:mod:`loopgen.sample`), the metric tables, the generated groups, the
listening test and the command line all read this table. ``tests/test_registry.py`` registers a toy model and
runs it through training, sampling, metrics and a table row without touching any other module.

A model is built from ``builder``, an import path ``"module:Class"`` resolved on first use, so this module
imports nothing heavy.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

CONTINUOUS, DISCRETE, PRIOR = "continuous", "discrete", "prior"


@dataclass(frozen=True)
class ModelSpec:
    """One model: its name in files and commands, the paper's label, how to build it and what kind it is."""

    name: str  # in checkpoint and figure names, commands and notebook parameters
    title: str  # the paper's label, in tables and figures
    builder: str  # "module:Class" of an ``nn.Module`` taking the model's keyword arguments
    kind: str  # CONTINUOUS (Gaussian latent, sampled from N(0, I)), DISCRETE (VQ codes + a prior) or PRIOR
    family: str = "conv"  # "lstm" (a 128-step LSTM: slow on a CPU), "conv" or "prior": picks the epoch/batch fields
    listening: bool = False  # one of the listening test's groups

    @property
    def cls(self) -> type:
        module, _, attr = self.builder.partition(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def autoencoder(self) -> bool:
        return self.kind in (CONTINUOUS, DISCRETE)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("ar_lstm_vae", "AR LSTM-VAE", "loopgen.models.lstm_vae:ARLSTMVAE", CONTINUOUS, "lstm", True),
        ModelSpec("nonar_lstm_vae", "NonAR LSTM-VAE", "loopgen.models.lstm_vae:NonARLSTMVAE", CONTINUOUS, "lstm", True),
        ModelSpec("cnn_vae", "CNN-VAE", "loopgen.models.cnn_vae:CNNVAE", CONTINUOUS, "conv", True),
        ModelSpec("vq_vae", "VQ-VAE", "loopgen.models.vq_vae:VQVAE", DISCRETE, "conv"),
        ModelSpec("prior", "LSTM prior", "loopgen.models.prior:CodePrior", PRIOR, "prior"),
        # not in the paper (notebook 09): a bidirectional transformer over the codes, trained MaskGIT-style
        ModelSpec("masked_prior", "Masked prior", "loopgen.models.masked_prior:MaskedCodePrior", PRIOR, "prior"),
    )
}

# Table 2's (t, L, K) settings, in the paper's order, and the one the paper fixes for every later experiment
# ("We have fixed t = 32, L = 16, K = 512"); loopgen.paper builds its Table 2 on these.
VQ_DEFAULT = (32, 16, 512)
TABLE2_SETTINGS = ((32, 16, 256), (32, 16, 512), (32, 32, 512), (64, 16, 256), (64, 16, 512), (64, 32, 512))
TRAINING_SET = "training_set"
# The notebooks, in the order the runner executes them (02 once per model and per Table 2 setting).
NOTEBOOKS = (
    "01_extract_loops.ipynb",
    "02_train_autoencoders.ipynb",
    "03_train_prior.ipynb",
    "04_reconstruction.ipynb",
    "05_musical_metrics.ipynb",
    "06_latent_space.ipynb",
    "07_listening_test.ipynb",
    "08_sensitivity.ipynb",
    "09_beyond_the_paper.ipynb",  # not in the paper: the masked code prior
)
# The VQ-VAE's sample groups: argmax and the prior temperatures of Table 3's rows, and the listening test's
# temperature (the paper's settings, restated here so that this module imports nothing; tests/test_registry.py
# keeps them equal to loopgen.paper's TABLE3 rows and LISTENING.vq_vae_temperature).
VQ_TEMPERATURES: tuple[float, ...] = (1.0, 1.5, 2.0)
LISTENING_TEMPERATURE = 1.2


def temperature_group(temperature: float | None) -> str:
    """Group name of VQ-VAE samples at a prior temperature (None = argmax): 1.0 -> 'vq_vae_temp1'."""
    if temperature is None:
        return "vq_vae_argmax"
    return f"vq_vae_temp{float(temperature):g}"


LISTENING_TEMPERATURE_GROUP = temperature_group(LISTENING_TEMPERATURE)


def get(name: str) -> ModelSpec:
    """The spec of model ``name``; a clear error naming the registered ones otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None


def register(spec: ModelSpec) -> ModelSpec:
    """Add (or replace) a model; returns it. Everything that reads the registry sees it from then on."""
    MODELS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a model added by :func:`register` (tests)."""
    MODELS.pop(name, None)


def names(*, kind: str | None = None, family: str | None = None, autoencoder: bool | None = None) -> tuple[str, ...]:
    """Registered model names, in registration order, filtered by kind, family or being an autoencoder."""
    return tuple(
        s.name
        for s in MODELS.values()
        if (kind is None or s.kind == kind)
        and (family is None or s.family == family)
        and (autoencoder is None or s.autoencoder == autoencoder)
    )


def autoencoders() -> tuple[str, ...]:
    """The autoencoders (Table 1's rows), in the paper's order."""
    return names(autoencoder=True)


def continuous() -> tuple[str, ...]:
    """The VAEs with a Gaussian latent, sampled from N(0, I) (Table 3's continuous rows)."""
    return names(kind=CONTINUOUS)


def titles() -> dict[str, str]:
    """Model name -> the paper's label."""
    return {s.name: s.title for s in MODELS.values()}


def sample_groups() -> tuple[str, ...]:
    """Every group of loops notebook 05 stores, in Table 3's order: the training set, each continuous VAE,
    the VQ-VAE at argmax and at each temperature, then the listening-test group."""
    vq = (temperature_group(t) for t in (None, *VQ_TEMPERATURES))
    return (TRAINING_SET, *continuous(), *vq, LISTENING_TEMPERATURE_GROUP)


def listening_groups() -> tuple[str, ...]:
    """The listening test's five groups: the training set, the continuous VAEs, the VQ-VAE at temperature 1.2."""
    return (TRAINING_SET, *(s.name for s in MODELS.values() if s.listening), LISTENING_TEMPERATURE_GROUP)

