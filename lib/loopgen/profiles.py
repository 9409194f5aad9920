"""The three run profiles: ``smoke`` (CI, seconds), ``demo`` (a laptop, minutes; default) and
``paper`` (the paper's exact settings, for a GPU and LMD-full).

Notebooks take ``PROFILE`` as a papermill parameter and call :func:`get`. One frozen dataclass per
concern; every notebook reads the section it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace


@dataclass(frozen=True)
class CorpusSettings:
    """Where the MIDI comes from: the built-in demo songwriter, or an LMD-full folder."""

    source: str = "demo"  # "demo" (procedural corpus) or "lmd" (a LMD-full folder)
    n_songs: int = 300  # demo corpus only
    seed: int = 0  # demo corpus only

    @property
    def name(self) -> str:
        """Folder name of the corpus; a demo corpus names the songwriter's version, so a new songwriter
        never meets loops extracted from an older corpus."""
        if self.source != "demo":
            return "lmd_full"
        from loopgen.corpus import GENERATOR_VERSION

        return f"demo-{self.n_songs}-s{self.seed}-g{GENERATOR_VERSION}"


@dataclass(frozen=True)
class ExtractSettings:
    workers: int = 2
    backend: str = "fast"  # "fast" or "reference"
    limit: int | None = None  # only the first N files (sorted), for quick looks
    dev_compare_limit: int | None = None  # files of ../shared/midi/dev for notebook 01's realism check


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation schedule shared by every model (paper: AdamW, cosine 1e-3 -> 5e-6)."""

    epochs: int = 100  # CNN-VAE and VQ-VAE
    lstm_epochs: int = 40  # AR and NonAR LSTM-VAE (a 128-step LSTM is ~15x slower than the CNNs on a CPU)
    prior_epochs: int = 30
    batch_size: int = 64  # LSTM-VAEs and prior; also the CNN-VAE and VQ-VAE unless conv_batch_size is set
    conv_batch_size: int | None = None  # CNN-VAE and VQ-VAE (None: batch_size); small batches = more steps
    max_train_loops: int | None = None  # seeded random subset of the training split (None: all of it)
    max_val_loops: int | None = None  # seeded random subset of the validation split for per-epoch checks
    # --- a careful practitioner's recipe for short runs (the paper profile leaves them at their defaults) ---
    warmup_steps: int = 0  # linear learning-rate warm-up before the cosine (0: none, as in the paper)
    grad_clip: float | None = None  # clip the gradient norm (None: no clipping, as in the paper)
    keep_best: bool = False  # end with the weights of the epoch with the lowest validation loss
    shipped_from: str | None = None  # use the weights this profile trained, when shipped and matching
    # Per-model overrides: {model name: {field: value, ..., "model": {constructor kwargs}}}. A field set here
    # replaces the one above for that model only; "model" adds constructor arguments (e.g. prior dropout).
    per_model: Mapping[str, Mapping] = field(default_factory=dict)
    lr_max: float = 1e-3
    lr_min: float = 5e-6
    weight_decay: float = 0.01  # AdamW (PyTorch's default; the paper gives none)
    kl_anneal_fraction: float = 0.5  # continuous VAEs: KL weight 0 -> 1 linearly over this share of the steps

    def recipe(self, name: str) -> TrainSettings:
        """The settings model ``name`` trains with: ``epochs`` and ``batch_size`` resolved for its family
        (``lstm_epochs``, ``prior_epochs``, ``conv_batch_size``), then its ``per_model`` overrides applied.
        Idempotent: the recipe of a recipe is itself."""
        from loopgen.train import batch_size_for, epochs_for

        epochs, batch = epochs_for(name, self), batch_size_for(name, self)
        resolved = replace(
            self, epochs=epochs, lstm_epochs=epochs, prior_epochs=epochs, batch_size=batch, conv_batch_size=None
        )
        overrides = {k: v for k, v in self.per_model.get(name, {}).items() if k != "model"}
        unknown = set(overrides) - {f.name for f in fields(self)} - {"per_model"}
        if unknown:
            raise ValueError(f"per_model[{name!r}] sets unknown training settings {sorted(unknown)}")
        if "epochs" in overrides:
            overrides.update(lstm_epochs=overrides["epochs"], prior_epochs=overrides["epochs"])
        return replace(resolved, **overrides)

    def model_kwargs(self, name: str) -> dict:
        """Constructor arguments the profile sets for model ``name`` (``per_model[name]["model"]``)."""
        return dict(self.per_model.get(name, {}).get("model", {}))


@dataclass(frozen=True)
class SampleSettings:
    n_samples: int | None = None  # None: as many as the training set (the paper's protocol)
    temperatures: tuple[float, ...] = (1.0, 1.5, 2.0)  # plus argmax, always
    listening_temperature: float = 1.2


@dataclass(frozen=True)
class ListeningSettings:
    per_group: int = 10
    familiarisation: int = 3
    simulated_listeners: int = 20


@dataclass(frozen=True)
class Profile:
    name: str
    corpus: CorpusSettings = field(default_factory=CorpusSettings)
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    sample: SampleSettings = field(default_factory=SampleSettings)
    listening: ListeningSettings = field(default_factory=ListeningSettings)
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


DEMO_CORPUS = CorpusSettings(n_songs=3000)
# Per-model recipes of the demo profile, found by trial on 2 CPU cores (see the closing notes of issue 9 and
# benchmarks/convergence.py): small batches for the convolutional models (many cheap steps), a prior with
# dropout chosen by validation loss, the paper's 128-per-direction reading of the Bi-LSTM encoder.
DEMO_RECIPES: dict[str, dict] = {
    "vq_vae": {"epochs": 16, "batch_size": 16},
    "cnn_vae": {"epochs": 16, "batch_size": 16},
    "ar_lstm_vae": {"epochs": 2, "lr_max": 2e-3, "shipped_from": "demo-long", "model": {"encoder_hidden": 128}},
    "nonar_lstm_vae": {"epochs": 2, "lr_max": 2e-3, "shipped_from": "demo-long", "model": {"encoder_hidden": 128}},
    "prior": {"epochs": 40, "batch_size": 64, "model": {"dropout": 0.3}},
}
DEMO_TRAIN = TrainSettings(
    max_val_loops=500,
    warmup_steps=100,
    grad_clip=1.0,
    keep_best=True,
    kl_anneal_fraction=0.3,
    per_model=DEMO_RECIPES,
)
DEMO_LONG_EPOCHS = {"ar_lstm_vae": 30, "nonar_lstm_vae": 40}
DEMO_LONG_TRAIN = replace(
    DEMO_TRAIN,
    per_model={
        name: {**recipe, **({"epochs": DEMO_LONG_EPOCHS[name], "shipped_from": None} if name in DEMO_LONG_EPOCHS else {})}
        for name, recipe in DEMO_RECIPES.items()
    },
)
# The AR model's scheduled sampling (paper: rate 20 over 2,000 epochs, teacher forcing gone after ~200) is
# read on a 150-epoch axis in demo-long: p = 0.5 at 40 % of the run, ~0 at its end, so the decoder learns
# from the data first and from its own predictions later.
DEMO_LONG_TRAIN.per_model["ar_lstm_vae"]["model"] = {"encoder_hidden": 128, "ss_paper_epochs": 150}

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        corpus=CorpusSettings(n_songs=40),
        extract=ExtractSettings(dev_compare_limit=120),
        train=TrainSettings(epochs=2, lstm_epochs=1, prior_epochs=2, batch_size=64, max_train_loops=256),
        sample=SampleSettings(n_samples=128),
        listening=ListeningSettings(per_group=4, familiarisation=2, simulated_listeners=6),
    ),
    # demo: 3,000 songs -> ~7,500 loops, ~6,000 of them for training. Each model gets its own recipe (see
    # DEMO_RECIPES): optimiser steps matter more than epochs on a CPU. The two LSTM-VAEs cannot reach music-
    # shaped samples in a few CPU minutes; the demo uses their "demo-long" weights shipped with the package
    # (loopgen.shipped) when they match this dataset, and trains with the short recipe otherwise.
    "demo": Profile(name="demo", corpus=DEMO_CORPUS, train=DEMO_TRAIN),
    # demo-long: the same data and code, the LSTM-VAEs trained long enough to be worth shipping.
    "demo-long": Profile(name="demo-long", corpus=DEMO_CORPUS, train=DEMO_LONG_TRAIN),
    "paper": Profile(
        name="paper",
        corpus=CorpusSettings(source="lmd"),
        train=TrainSettings(epochs=2000, lstm_epochs=2000, prior_epochs=2000, batch_size=2048, max_val_loops=2048),
        sample=SampleSettings(n_samples=None),
    ),
}


def get(name: str) -> Profile:
    """The profile called ``name`` (``smoke``, ``demo`` or ``paper``)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None
