"""The three run profiles: ``smoke`` (CI, seconds), ``demo`` (a laptop, minutes; default) and
``paper`` (for a GPU and LMD-full: the paper's settings where the paper states them, and a listed choice
where it does not; see :mod:`loopgen.run.choices`).

Notebooks take ``PROFILE`` as a papermill parameter and call :func:`get`. One frozen dataclass per
concern; every notebook reads the section it needs. This module holds the profiles and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace

from loopgen import paper, registry


@dataclass(frozen=True)
class CorpusSettings:
    """Where the MIDI comes from: the built-in demo songwriter, or an LMD-full folder (all of it, or a seeded
    sample of its files)."""

    source: str = "demo"  # "demo" (procedural corpus) or "lmd" (a LMD-full folder)
    n_songs: int = 300  # demo corpus only
    seed: int = 0  # demo corpus only
    # lmd only: extraction reads a seeded random sample of this many of the folder's MIDI files (None: all of them);
    # the same files on every machine (loopgen.data.extract.sample_files: the N smallest SHA-256 of "<seed>\n<path>")
    sample_files: int | None = None
    sample_seed: int = 0

    def __post_init__(self) -> None:
        if self.sample_files is not None and (self.source != "lmd" or self.sample_files < 1):
            raise ValueError(f"sample_files is a positive number of files of an LMD folder (got {self.sample_files} "
                             f"with source {self.source!r})")

    @property
    def name(self) -> str:
        """Folder name of the corpus; a demo corpus names the songwriter's version, so a new songwriter
        never meets loops extracted from an older corpus; a sample of LMD-full names its size and seed, so that
        its dataset (and every checkpoint and output keyed by it) is never the whole folder's or another sample's."""
        if self.source != "demo":
            return "lmd_full" if self.sample_files is None else f"lmd_full-sample{self.sample_files}-s{self.sample_seed}"
        from loopgen.data.corpus import GENERATOR_VERSION

        return f"demo-{self.n_songs}-s{self.seed}-g{GENERATOR_VERSION}"


@dataclass(frozen=True)
class ExtractSettings:
    workers: int = 2
    backend: str = "fast"  # "fast" or "reference"
    limit: int | None = None  # only the first N files (sorted), for quick looks
    dev_compare_limit: int | None = None  # files of ../shared/midi/dev for notebook 01's realism check
    min_train_loops: int = 1  # a user's MIDI folder (MIDI_DIR) giving fewer training loops is refused at once


def _family(name: str) -> str:
    return registry.MODELS[name].family if name in registry.MODELS else "conv"


def epochs_for(name: str, settings: TrainSettings) -> int:
    """Epochs of ``name`` under ``settings``: ``lstm_epochs`` for the LSTM-VAEs, ``prior_epochs`` for the prior."""
    if _family(name) == "lstm":
        return settings.lstm_epochs
    if _family(name) == "prior":  # the LSTM prior and the masked prior
        return settings.prior_epochs
    return settings.epochs


def batch_size_for(name: str, settings: TrainSettings) -> int:
    """Batch size of ``name``: ``conv_batch_size`` (when set) for the CNN-VAE and VQ-VAE, else ``batch_size``."""
    if _family(name) == "conv" and settings.conv_batch_size is not None:
        return settings.conv_batch_size
    return settings.batch_size


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
    # --- later settings; their defaults reproduce the earlier behaviour (and checkpoint keys) ---
    precision: str = "auto"  # "auto": bf16 autocast where the hardware has bf16 units (a CUDA GPU of compute
    #   capability >= 8.0, a CPU whose oneDNN reports bf16), fp16 autocast with a gradient scaler on a CUDA GPU of
    #   compute capability 7.x (T4, V100), float32 elsewhere (loopgen.runtime.device.resolve_precision); "bf16": bf16
    #   autocast on any device; "fp16": fp16 autocast and loss scaling, CUDA only; "tf32": float32 with TF32
    #   matmuls on CUDA; "fp32": float32 everywhere
    ar_output_bias: str = "data_rate"  # AR LSTM-VAE output bias at start: "data_rate" (log-odds) or "zero" (He)
    vq_dead_code_restart: float = 1.0  # restart codes whose EMA count falls below this; 0 = never
    vq_loss_reduction: str = "sum"  # VQ-VAE: "sum" over cells and latent values per loop, or "mean" (Oord)
    lstm_encoder_hidden: int = 256  # Bi-LSTM encoder units per direction (the concatenated state is twice that)
    checkpoint_minutes: float | None = None  # also checkpoint inside an epoch every so many minutes
    sync_batchnorm: bool = True  # under DDP on CUDA: SyncBatchNorm (global-batch statistics)
    kl_beta_max: float = 1.0  # continuous VAEs: the KL weight the annealing ends at (the paper's beta = 1)
    # --- the cadence of validation and checkpoints (1: after every epoch, as before) ---
    validate_every: int = 1  # validate every N epochs and after the last (keyed when not 1 and keep_best)
    checkpoint_every: int = 1  # checkpoint every N epochs, after the last, and when checkpoint_minutes passed
    # --- data augmentation; both keep a loop a loop (loopgen.train.data.augment); 0: none, as before (keyed only
    #     when used). The loop models draw it anew for each loop and epoch; a prior (given them in its per-model
    #     recipe) trains on the codes of every augmented copy of the training loops (loopgen.musician.trained) ---
    augment_rotate_bars: int = 0  # start each loop at a random multiple of this many bars (4: bar 1 or bar 5)
    augment_transpose: int = 0  # shift the bass by a random number of semitones in -N..N, within the 84 pitches

    def model_options(self, name: str) -> dict:
        """Model constructor arguments these settings choose for ``name`` (explicit kwargs override them)."""
        if name == "ar_lstm_vae":
            return {"encoder_hidden": self.lstm_encoder_hidden, "output_bias_init": self.ar_output_bias}
        if name == "nonar_lstm_vae":
            return {"encoder_hidden": self.lstm_encoder_hidden}
        if name == "vq_vae":
            return {"restart_threshold": self.vq_dead_code_restart, "loss_reduction": self.vq_loss_reduction}
        return {}

    def recipe(self, name: str) -> TrainSettings:
        """The settings model ``name`` trains with: ``epochs`` and ``batch_size`` resolved for its family
        (``lstm_epochs``, ``prior_epochs``, ``conv_batch_size``), then its ``per_model`` overrides applied.
        Idempotent: the recipe of a recipe is itself."""
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
        """Constructor arguments the settings choose for model ``name``: :meth:`model_options`, then the
        profile's ``per_model[name]["model"]`` (explicit arguments of a call override both)."""
        return {**self.model_options(name), **self.per_model.get(name, {}).get("model", {})}


@dataclass(frozen=True)
class SampleSettings:
    n_samples: int | None = None  # None: as many as the training set (the paper's protocol)
    temperatures: tuple[float, ...] = registry.VQ_TEMPERATURES  # plus argmax, always
    listening_temperature: float = registry.LISTENING_TEMPERATURE


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
    # Epochs of the six VQ-VAEs of Table 2 when shorter than the main VQ-VAE's (None: the main recipe, and the
    # default setting t=32, L=16, K=512 is the main model itself). When set, all six, the default included,
    # are trained with it, so that Table 2 compares like with like.
    table2_vq_epochs: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def table2_retrains_default(self) -> bool:
        """Whether Table 2's default setting is a run of its own (a shorter recipe than the main model's)."""
        return self.table2_vq_epochs is not None

    @property
    def table2_train(self) -> TrainSettings:
        """The training settings of the Table 2 VQ-VAEs (see ``table2_vq_epochs``)."""
        if self.table2_vq_epochs is None:
            return self.train
        recipe = {**self.train.per_model.get("vq_vae", {}), "epochs": self.table2_vq_epochs}
        return replace(self.train, per_model={**self.train.per_model, "vq_vae": recipe})


DEMO_CORPUS = CorpusSettings(n_songs=3000)
# A user's MIDI folder (MIDI_DIR) must give the demo recipes enough to learn from: the demo corpus gives ~6,000.
DEMO_EXTRACT = ExtractSettings(min_train_loops=1000)
# Per-model recipes of the demo profile, found by trial on 2 CPU cores (see
# benchmarks/convergence.py): small batches for the convolutional models (many cheap steps), a prior with
# dropout chosen by validation loss, the paper's 128-per-direction reading of the Bi-LSTM encoder.
DEMO_RECIPES: dict[str, dict] = {
    "vq_vae": {"epochs": 30, "batch_size": 16},
    "cnn_vae": {"epochs": 16, "batch_size": 16},
    "ar_lstm_vae": {"epochs": 2, "lr_max": 2e-3, "shipped_from": "demo-long"},
    "nonar_lstm_vae": {"epochs": 2, "lr_max": 2e-3, "shipped_from": "demo-long"},
    "prior": {"epochs": 16, "batch_size": 128, "lr_max": 2e-3, "model": {"dropout": 0.4}},
    # not in the paper (notebook 09): the masked code prior, at about the LSTM prior's training time
    "masked_prior": {"epochs": 8, "batch_size": 64, "lr_max": 1e-3, "model": {"dropout": 0.1}},
}
DEMO_TRAIN = TrainSettings(
    max_val_loops=500,
    warmup_steps=100,
    grad_clip=1.0,
    keep_best=True,
    kl_anneal_fraction=0.3,
    lstm_encoder_hidden=128,  # the paper's "h shape: (1, 256)" read as the concatenated state, as in the paper profile
    per_model=DEMO_RECIPES,
)
DEMO_TABLE2_VQ_EPOCHS = 3  # Table 2's six VQ-VAEs: the budget goes to the models every later notebook uses
DEMO_LONG_EPOCHS = {"ar_lstm_vae": 48, "nonar_lstm_vae": 40}
DEMO_LONG_TRAIN = replace(
    DEMO_TRAIN,
    per_model={
        # the LSTM-VAEs' shipped weights were trained in float32 (float32 is not keyed: their keys stay)
        name: {**recipe, **({"epochs": DEMO_LONG_EPOCHS[name], "shipped_from": None, "precision": "fp32"}
                            if name in DEMO_LONG_EPOCHS else {})}
        for name, recipe in DEMO_RECIPES.items()
    },
)
# The AR model's scheduled sampling (paper: rate 20 over 2,000 epochs, teacher forcing gone after ~200) is
# read on a 200-epoch axis in demo-long: p = 0.5 at 30 % of the run and below 0.05 from 62 % on, so the
# decoder learns from the data first and then for 18 of its 48 epochs from its own predictions.
DEMO_LONG_TRAIN.per_model["ar_lstm_vae"]["model"] = {"ss_paper_epochs": 200}

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        corpus=CorpusSettings(n_songs=40),
        extract=ExtractSettings(dev_compare_limit=120, min_train_loops=16),
        # float32 pinned: CI's numbers are the same on every machine, with or without bf16 units
        train=TrainSettings(
            epochs=2, lstm_epochs=1, prior_epochs=2, batch_size=64, max_train_loops=256, precision="fp32"
        ),
        table2_vq_epochs=1,
        sample=SampleSettings(n_samples=128),
        listening=ListeningSettings(per_group=4, familiarisation=2, simulated_listeners=6),
    ),
    # demo: 3,000 songs -> ~7,500 loops, ~6,000 of them for training. Each model gets its own recipe (see
    # DEMO_RECIPES): optimiser steps matter more than epochs on a CPU. The two LSTM-VAEs cannot reach music-
    # shaped samples in a few CPU minutes; the demo uses their "demo-long" weights shipped with the package
    # (loopgen.train.shipped) when they match this dataset, and trains with the short recipe otherwise.
    "demo": Profile(name="demo", corpus=DEMO_CORPUS, train=DEMO_TRAIN, table2_vq_epochs=DEMO_TABLE2_VQ_EPOCHS,
                    extract=DEMO_EXTRACT),
    # demo-long: the same data and code, the LSTM-VAEs trained long enough to be worth shipping.
    "demo-long": Profile(
        name="demo-long", corpus=DEMO_CORPUS, train=DEMO_LONG_TRAIN, table2_vq_epochs=DEMO_TABLE2_VQ_EPOCHS,
        extract=DEMO_EXTRACT,
    ),
    "paper": Profile(
        name="paper",
        corpus=CorpusSettings(source="lmd"),
        train=TrainSettings(
            epochs=2000,
            lstm_epochs=2000,
            prior_epochs=2000,
            batch_size=2048,
            max_val_loops=2048,
            precision="tf32",
            ar_output_bias="zero",
            vq_dead_code_restart=0.0,
            vq_loss_reduction="mean",
            lstm_encoder_hidden=128,
            checkpoint_minutes=10.0,
            validate_every=10,  # 200 validations of 2,048 loops instead of 2,000 (keep_best is off: unkeyed)
            checkpoint_every=10,  # and every 10 minutes inside an epoch, and after the last epoch
        ),
        sample=SampleSettings(n_samples=None),
        extract=ExtractSettings(min_train_loops=10_000),
    ),
}


# colab: for a reader with a borrowed notebook GPU (Colab or Kaggle: T4-class, ~15 GB, no native bf16, a few hours
# a session). The paper's model sizes, batch (2,048) and training choices, on the demo corpus (~6,000 training
# loops, ~3 optimiser steps an epoch). Our estimate of the epochs: the paper trains each model in under 8 h on an
# RTX 3090 (2,000 epochs x 120,600 loops, so at least ~8,400 loops/s); a T4 has about a quarter of its float32
# throughput, so ~2,100 loops/s or more, and 1,000 epochs x ~6,000 loops take under an hour per training. Precision
# "auto": fp16 autocast with a gradient scaler on a T4 (float16 tensor cores, no native bf16), bf16 on an A100 or
# L4. ``rehearse --profile colab`` on the GPU at hand projects the real time of every training
# (TRAIN_LOOPS_ESTIMATE below) before a session is spent on it.
COLAB_EPOCHS = 1000
COLAB_TABLE2_VQ_EPOCHS = 250  # each of Table 2's six VQ-VAEs: about a quarter of an hour
PROFILES["colab"] = Profile(
    name="colab",
    corpus=DEMO_CORPUS,
    train=replace(
        PROFILES["paper"].train,
        epochs=COLAB_EPOCHS,
        lstm_epochs=COLAB_EPOCHS,
        prior_epochs=COLAB_EPOCHS,
        precision="auto",
        max_val_loops=500,
    ),
    table2_vq_epochs=COLAB_TABLE2_VQ_EPOCHS,
    extract=DEMO_EXTRACT,
)

# lmd-sample: real music on a laptop. LMD-full (the paper's corpus; `corpus download-lmd`, then data/lmd/lmd_full),
# a seeded random sample of LMD_SAMPLE_FILES of its files, the demo's recipes. Our estimate of its yield is the
# paper's: 150,750 loops from 176,581 files (0.85 a file), 120,600 of them for training (80 %), so 16,000 files
# give ~13,660 loops and ~10,930 training loops (LMD_SAMPLE_TRAIN_LOOPS); fewer than 8,000 are refused at once
# (notebook 01). Each model keeps the demo recipe's optimiser steps: its epochs scaled by 5,997 / 10,928 (at least
# 1), so the whole run (extraction, every training, sampling and evaluation of notebooks 01-09) stays within half
# an hour on two CPU cores (`python -m loopgen rehearse --profile lmd-sample` projects it: README). The LSTM-VAEs'
# shipped weights belong to the demo dataset: here they train the demo's short recipe as it is (2 epochs, about a
# minute each; the same steps, 1 epoch, would save little of a budget the run does not need).
LMD_FULL_FILES, LMD_FULL_TRAIN_LOOPS = paper.DATASET.lmd_full_files, paper.DATASET.train  # the paper's LMD-full
LMD_SAMPLE_FILES = 16_000
LMD_SAMPLE_SEED = 0
LMD_SAMPLE_TRAIN_LOOPS = round(LMD_SAMPLE_FILES * LMD_FULL_TRAIN_LOOPS / LMD_FULL_FILES)  # 10,928
DEMO_TRAIN_LOOPS = 5997  # what the demo corpus gave (README, fresh clone)


def _same_steps(epochs: int, loops: int = LMD_SAMPLE_TRAIN_LOOPS) -> int:
    """Epochs over ``loops`` training loops that take about the optimiser steps of ``epochs`` over the demo's."""
    return max(1, round(epochs * DEMO_TRAIN_LOOPS / loops))


LMD_SAMPLE_RECIPES: dict[str, dict] = {
    name: {**recipe, "shipped_from": None} if "shipped_from" in recipe else {**recipe, "epochs": _same_steps(recipe["epochs"])}
    for name, recipe in DEMO_RECIPES.items()
}
PROFILES["lmd-sample"] = Profile(
    name="lmd-sample",
    corpus=CorpusSettings(source="lmd", sample_files=LMD_SAMPLE_FILES, sample_seed=LMD_SAMPLE_SEED),
    train=replace(DEMO_TRAIN, per_model=LMD_SAMPLE_RECIPES),
    table2_vq_epochs=_same_steps(DEMO_TABLE2_VQ_EPOCHS),
    extract=ExtractSettings(min_train_loops=8000),
)

# Training loops a profile's dataset is expected to hold (for the rehearsal's projection before the data exist):
# the demo corpus gave 5,997 (README, fresh clone); smoke caps its set at 256; the paper profile: the paper's split;
# lmd-sample: the paper's yield on its sample (above).
TRAIN_LOOPS_ESTIMATE = {"smoke": 256, "demo": DEMO_TRAIN_LOOPS, "demo-long": DEMO_TRAIN_LOOPS, "colab": DEMO_TRAIN_LOOPS,
                        "lmd-sample": LMD_SAMPLE_TRAIN_LOOPS}


# songs: the demo's models, tuned for a folder of real songs (`fit MIDI_DIR --profile songs`, the default of `fit`).
# Found on 1,000 real songs (1,265 training loops) and scored on 200 other pop songs (docs/commands.md):
# the VQ-VAE with t = 64 codes (Table 2's longer code, 8 a bar), 100 epochs, each loop's bass transposed by a random
# -5..+5 semitones each epoch (the songs come in every key; a 4-bar rotation did not help); the masked prior of
# `vary --prior masked` smaller (dim 128, 3 layers) and trained on the codes of the loops in all 11 transpositions.
# Each change is keyed, so the demo's checkpoints stay where they are. The other models keep the demo's recipes.
SONGS_RECIPES: dict[str, dict] = {
    **DEMO_RECIPES,
    "vq_vae": {"epochs": 100, "batch_size": 16, "augment_transpose": 5, "model": {"latent_steps": 64}},
    "masked_prior": {"epochs": 6, "batch_size": 64, "lr_max": 1e-3, "augment_transpose": 5,
                     "model": {"dropout": 0.1, "dim": 128, "layers": 3, "heads": 4}},
}
PROFILES["songs"] = Profile(name="songs", corpus=DEMO_CORPUS, train=replace(DEMO_TRAIN, per_model=SONGS_RECIPES),
                            table2_vq_epochs=DEMO_TABLE2_VQ_EPOCHS, extract=DEMO_EXTRACT)
TRAIN_LOOPS_ESTIMATE["songs"] = DEMO_TRAIN_LOOPS  # its own corpus is the demo's (fit trains on a user's folder)


def get(name: str) -> Profile:
    """The profile called ``name`` (``smoke``, ``demo`` or ``paper``)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None
