"""The data steps of notebook 01 as functions: where the MIDI comes from, the dataset's accounting
table beside the paper's, and one summary row per dataset (yield + training-set metric row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from loopgen import metrics
from loopgen.data.dataset import LoopSet, dataset_dir
from loopgen.data.extract import folder_content_key, list_midi_files
from loopgen.errors import UserError, quoted
from loopgen.loops import LoopParams
from loopgen.paper import DATASET, TABLE3
from loopgen.run.profiles import Profile
from loopgen.store.paths import MissingInputError, Paths


@dataclass(frozen=True)
class MidiSource:
    """A folder of MIDI files and the name its loop datasets are filed under."""

    midi_dir: Path
    corpus_name: str

    def dataset_dir(self, paths: Paths, params: LoopParams = LoopParams()) -> Path:
        """The folder of the loop dataset extracted from this source with ``params``."""
        return dataset_dir(paths, self.corpus_name, params)

    def midi_files(self) -> list[str]:
        """The MIDI files extraction reads, relative to :attr:`midi_dir` (:func:`loopgen.data.extract.list_midi_files`)."""
        return list_midi_files(self.midi_dir)


def midi_source(profile: Profile, paths: Paths, midi_dir: str | Path = "", *, progress: bool = True) -> MidiSource:
    """Resolve (and for the demo profiles, write) the profile's MIDI corpus.

    - ``midi_dir`` given, profile ``paper``: that folder is LMD-full (name ``lmd_full``, as later notebooks expect).
    - ``midi_dir`` given, other profiles: your own folder, filed under its name and a digest of its files'
      contents (``<folder>-<8 hex>``): the dataset, the checkpoints and the outputs of every notebook
      (``figures/<corpus>/``, ``build/<corpus>/``) are its own.
    - demo source: the procedural corpus of ``profile.corpus`` is written once into ``data/corpus/``.
    - LMD source without ``midi_dir``: ``data/lmd/lmd_full``, which ``python -m loopgen corpus download-lmd
      data/lmd`` fills; a clear error says so when it is missing.
    """
    corpus = profile.corpus
    if midi_dir:
        folder = Path(midi_dir).expanduser().resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"MIDI_DIR {quoted(folder)} is not a folder")
        if corpus.source == "lmd":
            return MidiSource(folder, corpus.name)
        return MidiSource(folder, corpus_name_of(folder))
    if corpus.source == "demo":
        from loopgen.data.corpus import write_demo_corpus

        folder = paths.corpus_dir(corpus.name)
        write_demo_corpus(
            folder, n_songs=corpus.n_songs, seed=corpus.seed, progress=progress, workers=profile.extract.workers
        )
        return MidiSource(folder, corpus.name)
    folder = paths.lmd_full
    if not folder.is_dir():
        raise MissingInputError(
            f"{quoted(folder)} is missing: download LMD-full with `python -m loopgen corpus download-lmd "
            f"{quoted(paths.lmd_dir)}` "
            "(about 1.7 GB) or pass MIDI_DIR=/path/to/lmd_full to notebook 01."
        )
    return MidiSource(folder, corpus.name)


def corpus_name_of(folder: Path) -> str:
    """The name a user's MIDI folder is filed under: its own name (made plain) and 8 hex digits of its contents, so
    that the same songs give the same datasets and checkpoints, and other songs never mix with them."""
    plain = re.sub(r"[^A-Za-z0-9_.+-]+", "_", folder.name).strip("._") or "midi"
    return f"{plain[:40]}-{folder_content_key(folder, 8)}"


def run_paths(profile: Profile, paths: Paths, midi_dir: str | Path = "") -> tuple[MidiSource | None, Paths]:
    """The MIDI source of a run on ``midi_dir`` (None without one) and the paths its outputs go to: the profile's
    own corpus writes to ``figures/`` and ``build/``, another folder to ``figures/<corpus>/`` and ``build/<corpus>/``."""
    if not midi_dir:
        return None, paths
    folder = Path(midi_dir).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"MIDI_DIR {quoted(folder)} is not a folder")
    source = MidiSource(folder, profile.corpus.name) if profile.corpus.source == "lmd" else \
        MidiSource(folder, corpus_name_of(folder))
    own = source.corpus_name == profile.corpus.name
    return source, paths if own else paths.for_corpus(source.corpus_name)


def require_enough_loops(n_train: int, profile: Profile, corpus_name: str) -> None:
    """Refuse a dataset with too few training loops for ``profile`` (:attr:`ExtractSettings.min_train_loops`),
    saying how many it gave and how many are needed."""
    needed = profile.extract.min_train_loops
    if n_train < needed:
        raise UserError(
            f"the MIDI folder of corpus {corpus_name!r} gave {n_train} training loops; the {profile.name} profile needs "
            f"at least {needed}: add songs (4/4, with bass and drums) or choose a smaller profile (--profile smoke)"
        )


def shared_dev_source(profile: Profile, paths: Paths) -> MidiSource | None:
    """The shared real-world songs (:attr:`Paths.shared_dev_midi`), read up to the profile's
    ``dev_compare_limit`` files, or None when the folder is not here."""
    folder = paths.shared_dev_midi
    if not folder.is_dir():
        return None
    return MidiSource(folder, f"shared-dev-{profile.extract.dev_compare_limit or 'all'}")


# Rejection reasons checked before (or at) the time signature: a file that got past them is a 4/4 file.
FOUR_FOUR_GATE = ("too_large", "unreadable", "bad_resolution", "no_tracks", "time_signature", "no_time_signature")


def four_four_files(totals: dict) -> int:
    """Files that passed the read and time-signature checks (our counterpart of the paper's 114,444)."""
    return int(totals["files_scanned"]) - sum(int(totals["by_reason"].get(r, 0)) for r in FOUR_FOUR_GATE)


def accounting_table(report: dict, manifest: dict) -> pd.DataFrame:
    """Every input file accounted for (docs/rules.md §5), beside the paper's LMD-full numbers.

    Columns ``ours`` and ``paper``. The paper gives only files scanned (176,581), files left after removing
    the non-4/4 ones (114,444), loops (150,750) and the split sizes; every other paper cell is '-'.
    """
    totals = report["totals"]
    counts = manifest["counts"]
    rows: list[tuple[str, float, float]] = [("files scanned", totals["files_scanned"], DATASET.lmd_full_files)]
    for reason, n in sorted(totals["by_reason"].items(), key=lambda kv: -kv[1]):
        if n:
            rows.append((f"rejected: {reason}", n, np.nan))
    rows += [
        ("files in 4/4 (read, 4/4 signature)", four_four_files(totals), DATASET.four_four_files),
        ("files rejected", totals["files_rejected"], np.nan),
        ("files with loops", totals["files_with_loops"], np.nan),
        ("share of files with loops", _ratio(totals["files_with_loops"], totals["files_scanned"]), np.nan),
        ("loops", totals["loops"], DATASET.loops),
        ("loops per file with loops", _ratio(totals["loops"], totals["files_with_loops"]), np.nan),
        ("loops: train", counts.get("train", 0), DATASET.train),
        ("loops: val", counts.get("val", 0), DATASET.validation),
        ("loops: test", counts.get("test", 0), DATASET.test),
    ]
    # object columns keep counts as integers beside ratios (so tables print 93, not 93.00)
    table = pd.DataFrame(rows, columns=["quantity", "ours", "paper"], dtype=object).set_index("quantity")
    checked = table.loc["files with loops", "ours"] + table.loc["files rejected", "ours"]
    if checked != table.loc["files scanned", "ours"]:
        raise AssertionError(f"accounting broken: {checked} != files scanned {table.loc['files scanned', 'ours']}")
    return table


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def dataset_summary(loops: LoopSet) -> dict[str, float]:
    """Yield of a dataset and the metric row of its training split (docs/rules.md §8 compares these)."""
    totals = loops.report["totals"]
    train = loops.loops[loops.split == "train"] if len(loops) else loops.loops
    row: dict[str, float] = {
        "files scanned": totals["files_scanned"],
        "files in 4/4": four_four_files(totals),
        "files with loops": totals["files_with_loops"],
        "share of files with loops": _ratio(totals["files_with_loops"], totals["files_scanned"]),
        "loops": totals["loops"],
        "loops per file with loops": _ratio(totals["loops"], totals["files_with_loops"]),
        "train loops": len(train),
    }
    if len(train):
        row.update(metrics.metric_row(train))
        row["unique loops"] = metrics.unique_loops(train)
    return row


def summary_table(rows: dict[str, dict[str, float]], paper_label: str = "paper (LMD-full)") -> pd.DataFrame:
    """Several dataset summaries side by side (one column each), with the paper's training-set row.

    The paper column holds only numbers the paper prints ('-' elsewhere)."""
    paper = {
        "files scanned": DATASET.lmd_full_files,
        "files in 4/4": DATASET.four_four_files,
        "loops": DATASET.loops,
        "train loops": DATASET.train,
        **{k: float(TABLE3.loc["Training set", k]) for k in ("HD", "FND", "FNB", "DB", "UP", "ND")},
        "unique loops": float(TABLE3.loc["Training set", "US"]),
    }
    order = list(dict.fromkeys(k for row in rows.values() for k in row))
    order += [k for k in paper if k not in order]
    frame = pd.DataFrame({**rows, paper_label: pd.Series(paper)}).reindex(order)
    return frame.drop(index=[i for i in ("OS", "US") if i in frame.index])
