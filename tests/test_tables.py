"""Paper numbers, paper-style formatting and the side-by-side table files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loopgen import paper
from loopgen.book import tables
from loopgen.store.paths import Paths


# ------------------------------------------------------------------ loopgen.paper
def test_paper_tables_have_the_published_shapes_and_values():
    assert paper.TABLE1.shape == (4, 1)
    assert paper.TABLE1.loc["VQ-VAE", "reconstruction_error"] == pytest.approx(5.11e-3)
    assert len(paper.TABLE2) == 6
    assert paper.TABLE2.loc["t=64, L=32, K=512", "reconstruction_error"] == pytest.approx(3.02e-3)
    assert paper.TABLE3.shape == (8, 8) and paper.TABLE4.shape == (4, 8)
    assert list(paper.TABLE3.columns) == ["HD", "FND", "FNB", "DB", "OS", "US", "UP", "ND"]
    assert paper.TABLE3.loc["Training set", "UP"] == pytest.approx(10.50)
    assert paper.TABLE3.loc["VQ-VAE (argmax)", "US"] == pytest.approx(4.08e-3)
    assert paper.TABLE4.loc["VQ-VAE (temp 2)", "HD"] == pytest.approx(9.99e-3)
    # the continuous VAEs have no OS/US ("-" in the paper)
    assert paper.TABLE3.loc[["AR LSTM-VAE", "NonAR LSTM-VAE", "CNN-VAE"], ["OS", "US"]].isna().all().all()


def test_paper_default_setting_is_the_second_sweep_row_and_equals_table1():
    t, L, K = paper.DEFAULT_VQ_SETTING
    row = paper.TABLE2[(paper.TABLE2.t == t) & (paper.TABLE2.L == L) & (paper.TABLE2.K == K)]
    assert row.reconstruction_error.item() == paper.TABLE1.loc["VQ-VAE", "reconstruction_error"]


def test_paper_dataset_and_listening_numbers():
    d = paper.DATASET
    assert d.train + d.validation + d.test == d.loops == 150_750
    assert d.train / d.loops == pytest.approx(0.8)
    assert d.four_four_files == 114_444 and not hasattr(d, "loops_per_file"), "no derived figures"
    assert paper.LISTENING.kruskal_h == pytest.approx(75.19)
    assert paper.LISTENING.training_set_mean > paper.LISTENING.vq_vae_mean
    assert paper.PRIOR_TEACHER_FORCING_ACCURACY == pytest.approx(0.8291)


def test_group_labels_cover_every_table3_row():
    assert set(paper.TABLE3.index) <= set(paper.GROUP_LABELS.values())


# ------------------------------------------------------------------ formatting
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (4.43e-4, "4.43e-4"),
        (0.0797, "7.97e-2"),
        (0.28, "0.28"),
        (10.5, "10.50"),
        (1.0, "1.00"),
        (0.0, "0.00"),
        (0.00999999, "1.00e-2"),
        (-3.1e-3, "-3.10e-3"),
        (np.nan, "-"),
        (None, "-"),
        (512, "512"),
        (np.int64(120600), "120600"),
        (120600.0, "120600"),
        ("not trained", "not trained"),
    ],
)
def test_format_number_like_the_paper(value, text):
    assert tables.format_number(value) == text


# ------------------------------------------------------------------ side by side
def _ours() -> pd.DataFrame:
    return pd.DataFrame(
        {"HD": [5e-4, 2e-3], "UP": [10.8, 9.1], "UP/bar": [6.2, 5.0], "ND": [0.88, 0.9]},
        index=pd.Index(["Training set", "VQ-VAE (temp 1)"], name="model"),
    )


def test_side_by_side_pairs_columns_and_keeps_paper_only_rows():
    table = tables.side_by_side(_ours(), paper.TABLE3)
    assert isinstance(table.columns, pd.MultiIndex)
    metrics_in_order = list(dict.fromkeys(table.columns.get_level_values(0)))
    # paper order, with our extra UP/bar right after UP
    assert metrics_in_order == ["HD", "FND", "FNB", "DB", "OS", "US", "UP", "UP/bar", "ND"]
    assert table.loc["Training set", ("HD", "ours")] == pytest.approx(5e-4)
    assert table.loc["Training set", ("HD", "paper")] == pytest.approx(4.43e-4)
    assert math.isnan(table.loc["Training set", ("UP/bar", "paper")])
    assert math.isnan(table.loc["Training set", ("FND", "ours")])
    # rows: ours first, then the 6 rows only the paper has
    assert list(table.index[:2]) == ["Training set", "VQ-VAE (temp 1)"]
    assert len(table) == 8
    assert math.isnan(table.loc["CNN-VAE", ("UP", "ours")])


def test_write_table_writes_csv_and_markdown_with_notes(tmp_path):
    paths = Paths(tmp_path)
    table = tables.side_by_side(_ours(), paper.TABLE3)
    notes = tables.standard_notes("smoke", 128)
    csv_path, md_path = tables.write_table(table, "table3_musical_metrics", paths=paths, notes=notes)
    assert csv_path == tmp_path / "figures" / "table3_musical_metrics.csv"
    back = pd.read_csv(csv_path, index_col=0)
    assert back.loc["Training set", "HD (ours)"] == pytest.approx(5e-4)
    assert back.loc["Training set", "HD (paper)"] == pytest.approx(4.43e-4)
    md = md_path.read_text()
    assert "HD (ours)" in md and "4.43e-4" in md and "5.00e-4" in md
    assert "Profile: smoke. Loops per row: 128." in md
    assert "UP/bar" in md and "ND = fraction" in md
    assert not list((tmp_path / "figures").glob("*.tmp"))  # atomic: no leftovers


def test_write_table_rejects_a_stem_with_extension(tmp_path):
    with pytest.raises(ValueError, match="stem"):
        tables.write_table(_ours(), "table.csv", paths=Paths(tmp_path), notes=[])


def test_baseline_rows_follow_the_models_without_a_paper_value(tmp_path):
    ours = paper.TABLE1[["reconstruction_error"]].iloc[:2] * 2
    trivial = pd.DataFrame({"reconstruction_error": {"baseline: silence": 0.018, "baseline: copy bar 1": 0.0099}})
    table = tables.with_baselines(tables.side_by_side(ours, paper.TABLE1), trivial)
    assert list(table.index[-2:]) == ["baseline: silence", "baseline: copy bar 1"]
    assert table.loc["baseline: silence", ("reconstruction_error", "ours")] == pytest.approx(0.018)
    assert math.isnan(table.loc["baseline: silence", ("reconstruction_error", "paper")])
    assert table.loc[ours.index[0], ("reconstruction_error", "paper")] == paper.TABLE1.iloc[0, 0]  # kept
    last = tables.to_markdown(table).strip().splitlines()[-1].split("|")
    assert [cell.strip() for cell in last[1:-1]] == ["baseline: copy bar 1", "9.90e-3", "-"]
    with pytest.raises(ValueError, match="baseline:"):
        tables.with_baselines(table, pd.DataFrame({"reconstruction_error": {"silence": 0.018}}))
    assert tables.with_baselines(table, pd.DataFrame()) is table


def test_claim_sentence():
    assert tables.claim("VQ-VAE keeps FNB near 1", True) == "VQ-VAE keeps FNB near 1: holds on this run."
    assert tables.claim("x", False).endswith("does not hold on this run.")
    assert tables.claim("x", True).holds is True and tables.claim("x", False).holds is False


# ------------------------------------------------------------------ computed discussions
def test_discussion_table3_on_the_papers_own_numbers_all_hold():
    sentences = tables.discussion_table3(paper.TABLE3)
    assert len(sentences) == 9
    assert all(s.endswith("holds on this run.") for s in sentences), sentences
    assert "0.97-0.98" in sentences[0] and "0.41-0.71" in sentences[0]


def test_discussion_table3_reports_a_failed_claim_and_skips_missing_rows():
    ours = paper.TABLE3.copy()
    ours.loc["CNN-VAE", "FNB"] = 0.99  # a continuous VAE now beats VQ-VAE on FNB
    assert tables.discussion_table3(ours)[0].endswith("does not hold on this run.")
    only_training = paper.TABLE3.loc[["Training set"]]
    assert tables.discussion_table3(only_training) == []


def test_discussion_table4_on_the_papers_numbers():
    sentences = tables.discussion_table4(paper.TABLE3, paper.TABLE4)
    assert len(sentences) == 3
    assert all(s.endswith("holds on this run.") for s in sentences), sentences


def test_discussion_tables_1_and_2_on_the_papers_numbers():
    s1 = tables.discussion_table1(paper.TABLE1)
    assert len(s1) == 1 and s1[0].endswith("holds on this run.")
    s2 = tables.discussion_table2(paper.TABLE2)
    assert len(s2) == 3 and all(s.endswith("holds on this run.") for s in s2), s2
    worse = paper.TABLE2.copy()
    worse.loc["t=64, L=16, K=512", "reconstruction_error"] = 9e-3
    assert tables.discussion_table2(worse)[0].endswith("does not hold on this run.")
    assert tables.discussion_table2(paper.TABLE2.iloc[:1]) == []
