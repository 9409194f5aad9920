"""Every folder the project reads or writes, in one place.

Notebooks talk to each other through files only, and only through these paths.
The project root is ``$LOOPGEN_ROOT`` when set, else the checkout this package lives in
(``lib/loopgen`` -> two levels up), else the current directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _default_root() -> Path:
    env = os.environ.get("LOOPGEN_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd().resolve()


# The checkout this package lives in: its notebooks are the sources papermill runs, whatever the root.
SOURCE_ROOT = Path(__file__).resolve().parents[2]

# Real-world MIDI for tests and comparisons; never copied into the repository. ``$LOOPGEN_SHARED_MIDI`` points
# elsewhere (the default is ../shared/midi/dev beside the checkout, whatever ``$LOOPGEN_ROOT`` says: tests run
# in an isolated root and still read the shared songs in place).
SHARED_DEV_MIDI = Path(
    os.environ.get("LOOPGEN_SHARED_MIDI") or Path(__file__).resolve().parents[3] / "shared" / "midi" / "dev"
)


class MissingInputError(FileNotFoundError):
    """An input another notebook should have written is missing."""


@dataclass(frozen=True)
class Paths:
    """All project folders below one root. Build with ``Paths()`` or ``Paths(root)``."""

    root: Path = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve() if self.root else _default_root())

    # --- generated data (ignored by git) ---
    @property
    def data(self) -> Path:
        return self.root / "data"

    def corpus_dir(self, name: str) -> Path:
        """Folder of a generated demo corpus (MIDI files), e.g. ``corpus_dir('demo-300-s0')``."""
        return self.data / "corpus" / name

    def loops_dir(self, name: str) -> Path:
        """Folder of one extracted loop dataset (shards, manifest, report)."""
        return self.data / "loops" / name

    @property
    def checkpoints(self) -> Path:
        return self.data / "checkpoints"

    @property
    def model_registry(self) -> Path:
        """``fit``'s registry of models trained on a user's MIDI folder (NAME -> dataset, profile)."""
        return self.data / "models.json"

    def user_loops_dir(self, name: str) -> Path:
        """The loop dataset ``fit --name NAME`` extracts from a user's MIDI folder."""
        return self.data / "loops" / f"user-{name}"

    @property
    def lmd_dir(self) -> Path:
        return self.data / "lmd"

    # --- outputs ---
    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def figure(self, filename: str) -> Path:
        """Path of one output in ``figures/`` (PNG figure or CSV/Markdown table)."""
        return self.figures / filename

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def executed(self) -> Path:
        """Executed copies of the notebooks (never over the source)."""
        return self.build / "executed"

    @property
    def samples(self) -> Path:
        """Generated loops of each model (arrays, MIDI files)."""
        return self.build / "samples"

    @property
    def audio(self) -> Path:
        return self.build / "audio"

    @property
    def study(self) -> Path:
        """The listening-test study folder."""
        return self.build / "study"

    @property
    def notebooks(self) -> Path:
        """The source notebooks: the root's own ``notebooks/`` when it has one, else the checkout's (so a
        run with ``LOOPGEN_ROOT`` pointing at an empty folder, as the tests do, still finds them)."""
        own = self.root / "notebooks"
        return own if own.is_dir() else SOURCE_ROOT / "notebooks"

    def ensure(self) -> Paths:
        """Create the output folders."""
        for p in (self.data, self.checkpoints, self.figures, self.executed, self.samples, self.audio):
            p.mkdir(parents=True, exist_ok=True)
        return self


def require(path: Path | str, made_by: str) -> Path:
    """Return ``path`` if it exists, else raise naming the notebook that writes it."""
    p = Path(path)
    if not p.exists():
        raise MissingInputError(f"{p} is missing: run notebook {made_by} first (same PROFILE).")
    return p
