"""The three run profiles: ``smoke`` (CI, seconds), ``demo`` (a laptop, minutes; default) and
``paper`` (the paper's exact settings, for a GPU and LMD-full).

Notebooks take ``PROFILE`` as a papermill parameter and call :func:`get`. One frozen dataclass per
concern; every notebook reads the section it needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
    lr_max: float = 1e-3
    lr_min: float = 5e-6
    weight_decay: float = 0.01  # AdamW (PyTorch's default; the paper gives none)
    kl_anneal_fraction: float = 0.5  # continuous VAEs: KL weight 0 -> 1 linearly over this share of the steps


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


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        corpus=CorpusSettings(n_songs=40),
        extract=ExtractSettings(dev_compare_limit=120),
        train=TrainSettings(epochs=2, lstm_epochs=1, prior_epochs=2, batch_size=64, max_train_loops=256),
        sample=SampleSettings(n_samples=128),
        listening=ListeningSettings(per_group=4, familiarisation=2, simulated_listeners=6),
    ),
    # demo: 600 songs -> ~1,075 training loops. The convolutional models need optimiser STEPS, not epochs:
    # 100 epochs x batch 64 on ~530 loops (900 steps) left the VQ-VAE at FNB 0.2; batch 16 x 70 epochs
    # (~4,800 steps, ~1 min each on 2 cores) reconstructs the training set (FNB ~0.9, error ~5e-3).
    "demo": Profile(
        name="demo",
        corpus=CorpusSettings(n_songs=600),
        train=TrainSettings(
            epochs=70, lstm_epochs=20, conv_batch_size=16, max_train_loops=1500, max_val_loops=500
        ),
    ),
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
