"""Every folder and file the project reads or writes, in one place.

Notebooks talk to each other through files only, and only through these paths.
The project root is ``$LOOPGEN_ROOT`` when set, else the checkout this package lives in
(``lib/loopgen`` -> two levels up), else the current directory.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path


def _default_root() -> Path:
    env = os.environ.get("LOOPGEN_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[3]
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd().resolve()


# The checkout this package lives in: its notebooks are the sources papermill runs, whatever the root.
SOURCE_ROOT = Path(__file__).resolve().parents[3]
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


class MissingInputError(FileNotFoundError):
    """An input another notebook should have written is missing."""


def below(parent: str, *parts: str, doc: str = "") -> property:
    """A read-only property: the folder (or file) ``parts`` below the path property ``parent``."""
    return property(lambda self: getattr(self, parent).joinpath(*parts), doc=doc)


def plain_name(name: str, what: str) -> str:
    """``name`` when it is a plain file name (letters, digits, ``_.+-``), else a ValueError."""
    if not _PLAIN_NAME.match(name):
        raise ValueError(f"{what} must be a plain file name (letters, digits, _ . + -); got {name!r}")
    return name


@dataclass(frozen=True)
class Paths:
    """All project folders below one root. Build with ``Paths()`` or ``Paths(root)``."""

    root: Path = None  # type: ignore[assignment]
    corpus: str = ""  # a run on another MIDI folder (``--midi-dir``): its outputs go to figures/<corpus>/, build/<corpus>/

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve() if self.root else _default_root())

    # --- generated data (ignored by git) ---
    data = below("root", "data")
    checkpoints = below("data", "checkpoints", doc="Every trained model, keyed by what made it (loopgen.train).")
    model_registry = below("data", "models.json", doc="``fit``'s registry of user-trained models (NAME -> dataset).")
    lmd_dir = below("data", "lmd", doc="Where ``corpus download-lmd`` puts the Lakh MIDI Dataset.")
    lmd_full = below("data", "lmd", "lmd_full", doc="LMD-full, the paper's corpus (profile ``paper``).")

    def corpus_dir(self, name: str) -> Path:
        """Folder of a generated demo corpus (MIDI files), e.g. ``corpus_dir('demo-300-s0')``."""
        return self.data / "corpus" / name

    def loops_dir(self, name: str) -> Path:
        """Folder of one extracted loop dataset (shards, manifest, report)."""
        return self.data / "loops" / name

    def user_loops_dir(self, name: str) -> Path:
        """The loop dataset ``fit --name NAME`` extracts from a user's MIDI folder."""
        return self.loops_dir(f"user-{name}")

    scores = below("data", "scores", doc="The loops ``score`` extracts from a MIDI folder, keyed by its content.")

    def user_model_dir(self, name: str) -> Path:
        """What ``fit --name NAME`` keeps of the model it trains (beside ``models.json``)."""
        return self.data / "models" / plain_name(name, "model name")

    @property
    def shared_dev_midi(self) -> Path:
        """Real-world MIDI for tests and comparisons (never copied into the repository): ``$LOOPGEN_SHARED_MIDI``,
        else ``shared/midi/dev`` beside the root."""
        return Path(os.environ.get("LOOPGEN_SHARED_MIDI") or self.root.parent / "shared" / "midi" / "dev")

    # --- outputs ---
    @property
    def figures(self) -> Path:
        """Every table and figure the notebooks write (loopgen.store.outputs); ``figures/<corpus>/`` for a run on
        another MIDI folder, so the default ``figures/`` is untouched."""
        return self.root / "figures" / plain_name(self.corpus, "corpus name") if self.corpus else self.root / "figures"

    @property
    def build(self) -> Path:
        """Executed notebooks, samples, audio, studies: ``build/``, or ``build/<corpus>/`` for another MIDI folder."""
        return self.root / "build" / plain_name(self.corpus, "corpus name") if self.corpus else self.root / "build"

    def for_corpus(self, corpus: str) -> Paths:
        """The same root for a run on the corpus ``corpus`` ("" for the profile's own corpus)."""
        return Paths(self.root, corpus)
    executed = below("build", "executed", doc="Executed copies of the notebooks (never over the source).")
    samples = below("build", "samples", doc="Generated loops of each model (arrays, MIDI files).")
    audio = below("build", "audio")
    study = below("build", "study", doc="The listening-test study folders.")
    answers = below("build", "answers", doc="A student's answers to the open exercises (loopgen.book.exercises).")

    def figure(self, filename: str) -> Path:
        """Path of one output in ``figures/`` (PNG figure or CSV/Markdown table)."""
        return self.figures / filename

    def audio_file(self, filename: str) -> Path:
        """Path of one rendered example in ``build/audio/`` (MIDI or WAV)."""
        return self.audio / filename

    def executed_dir(self, profile_name: str) -> Path:
        """``build/executed/<profile>``: the executed notebooks of one profile's run."""
        return self.executed / plain_name(profile_name, "profile name")

    def sample_groups(self, profile_name: str) -> Path:
        """``build/samples/<profile>``: every group of generated loops of one profile."""
        return self.samples / plain_name(profile_name, "profile name")

    def sample_group(self, profile_name: str, group: str) -> Path:
        """``build/samples/<profile>/<group>.npz``: one group of generated loops (loopgen.store.sample_groups)."""
        return self.sample_groups(profile_name) / f"{plain_name(group, 'group name')}.npz"

    def sample_midi(self, profile_name: str, group: str) -> Path:
        """``build/samples/<profile>/midi/<group>/``: a handful of MIDI files of one group."""
        return self.sample_groups(profile_name) / "midi" / plain_name(group, "group name")

    def answers_dir(self, profile_name: str, seed: int) -> Path:
        """``build/answers/<profile>/seed<S>``: the open answers recorded on one run."""
        return self.answers / plain_name(profile_name, "profile name") / f"seed{int(seed)}"

    def study_dir(self, profile_name: str) -> Path:
        """``build/study/<profile>``: the default listening-test study folder of a profile."""
        return self.study / plain_name(profile_name, "profile name")

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


# The shared real-world MIDI folder of the root in force at import (``Paths().shared_dev_midi``), for tests and
# benchmarks that read the shared songs in place.
SHARED_DEV_MIDI = Paths().shared_dev_midi


def root_outside_checkout(paths: Paths | None = None) -> Path:
    """The project root of ``paths`` (default: ``LOOPGEN_ROOT`` or this checkout), refused when it is this checkout
    or inside it: for runs on songs of unknown licence, whose loops and models must stay out of the repository."""
    root = (paths or Paths()).root.resolve()
    if root == SOURCE_ROOT or SOURCE_ROOT in root.parents:
        raise SystemExit(f"set LOOPGEN_ROOT to a folder outside {SOURCE_ROOT}: the models and loops made from these "
                         "songs stay out of the checkout")
    return root


def require(path: Path | str, made_by: str) -> Path:
    """Return ``path`` if it exists, else raise naming the notebook that writes it."""
    p = Path(path)
    if not p.exists():
        raise MissingInputError(f"{shlex.quote(str(p))} is missing: run notebook {made_by} first (same PROFILE).")
    return p
