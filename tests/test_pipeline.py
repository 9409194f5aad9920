"""Notebook 01's data steps: where the MIDI comes from, the accounting table, dataset summaries."""

from __future__ import annotations

import numpy as np
import pytest

from loopgen.book import extraction
from loopgen.data.dataset import LoopSet
from loopgen.run import profiles
from loopgen.store.paths import MissingInputError, Paths


def _report(by_reason: dict[str, int], with_loops: int, loops: int) -> dict:
    rejected = sum(by_reason.values())
    return {
        "totals": {
            "files_scanned": rejected + with_loops,
            "files_with_loops": with_loops,
            "files_rejected": rejected,
            "loops": loops,
            "by_reason": by_reason,
        }
    }


def test_accounting_table_counts_every_file_beside_the_paper():
    report = _report({"no_loop": 5, "time_signature": 3, "no_bass": 0}, with_loops=2, loops=7)
    table = extraction.accounting_table(report, {"counts": {"train": 5, "val": 1, "test": 1}})
    assert table.loc["files scanned", "ours"] == 10
    assert table.loc["files scanned", "paper"] == 176_581
    assert "rejected: no_bass" not in table.index, "reasons that never occurred are left out"
    assert table.loc["rejected: no_loop", "ours"] == 5
    assert table.loc["loops per file with loops", "ours"] == pytest.approx(3.5)
    assert np.isnan(table.loc["loops per file with loops", "paper"]), "the paper gives no loops per file"
    assert table.loc["files in 4/4 (read, 4/4 signature)", "paper"] == 114_444, "114,444 = the 4/4 files"
    assert table.loc["files in 4/4 (read, 4/4 signature)", "ours"] == 7, "10 scanned - 3 time_signature"
    assert table.loc["files with loops", "ours"] == 2 and np.isnan(table.loc["files with loops", "paper"])
    for derived in ("files rejected", "share of files with loops"):
        assert np.isnan(table.loc[derived, "paper"]), f"{derived}: the paper never gives it"
    assert isinstance(table.loc["loops", "ours"], int), "counts stay integers"


def test_accounting_table_refuses_a_broken_report():
    report = _report({"no_loop": 5}, with_loops=2, loops=7)
    report["totals"]["files_scanned"] = 11  # one file unaccounted for
    with pytest.raises(AssertionError, match="accounting broken"):
        extraction.accounting_table(report, {"counts": {}})


def _loopset(n: int) -> LoopSet:
    loops = np.zeros((n, 128, 93), dtype=np.uint8)
    loops[:, ::16, 0] = 1  # kick on every downbeat
    loops[:, 0, 6] = 1  # crash on the first step
    loops[:, :, 9 + 20] = 1  # one bass pitch held throughout
    report = _report({"no_loop": 1}, with_loops=2, loops=n)
    split = np.array(["train"] * (n - 1) + ["val"])
    return LoopSet(loops, np.array(["a.mid"] * n), np.arange(n), split, {}, report, "k")


def test_dataset_summary_and_summary_table():
    row = extraction.dataset_summary(_loopset(4))
    assert row["train loops"] == 3 and row["loops per file with loops"] == 2.0
    assert row["FND"] == 1.0 and row["FNB"] == 1.0
    assert row["HD"] == pytest.approx(1 / 1488)  # the crash on step 0 of bar 1 is not in bar 5
    assert row["UP"] == 3.0  # kick, crash, one bass pitch
    assert row["ND"] == 1.0  # the held bass sounds on every step
    assert row["unique loops"] == pytest.approx(1 / 3)
    table = extraction.summary_table({"ours": row})
    assert list(table.columns) == ["ours", "paper (LMD-full)"]
    assert list(table.index[:3]) == ["files scanned", "files in 4/4", "files with loops"], "rows keep our order"
    assert table.loc["files in 4/4", "paper (LMD-full)"] == 114_444
    assert np.isnan(table.loc["files with loops", "paper (LMD-full)"]), "not a number the paper gives"
    assert np.isnan(table.loc["loops per file with loops", "paper (LMD-full)"])
    assert "OS" not in table.index and "US" not in table.index
    assert table.loc["UP", "paper (LMD-full)"] == 10.5


def test_midi_source_writes_the_demo_corpus_once(tmp_path):
    paths = Paths(tmp_path)
    profile = profiles.get("smoke")
    source = extraction.midi_source(profile, paths, progress=False)
    assert source.corpus_name == profile.corpus.name and source.midi_dir == paths.corpus_dir(profile.corpus.name)
    assert len(list(source.midi_dir.glob("*.mid"))) == profile.corpus.n_songs
    assert source.dataset_dir(paths).parent == paths.data / "loops"


def test_midi_source_for_a_folder_and_for_missing_lmd(tmp_path):
    paths = Paths(tmp_path)
    mine = tmp_path / "my_midi"
    mine.mkdir()
    own = extraction.midi_source(profiles.get("demo"), paths, mine)
    assert own.corpus_name.startswith("my_midi-") and own.midi_dir == mine
    assert extraction.midi_source(profiles.get("paper"), paths, mine).corpus_name == "lmd_full"
    with pytest.raises(FileNotFoundError):
        extraction.midi_source(profiles.get("demo"), paths, tmp_path / "nope")
    with pytest.raises(MissingInputError, match="download-lmd"):
        extraction.midi_source(profiles.get("paper"), paths)
