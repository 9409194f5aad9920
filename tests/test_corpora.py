"""Runs side by side (loopgen.book.corpora) and the claims files the notebooks write (expectations.write_claims)."""

from __future__ import annotations

import pandas as pd
import pytest

from loopgen.book import corpora, expectations
from loopgen.book.sensitivity import Finding
from loopgen.book.tables import claim
from loopgen.commands import compare_corpora
from loopgen.store.paths import Paths


def _fake_run(folder, error_vq: float, holds: bool, *, with_claims: bool = True) -> None:
    folder.mkdir(parents=True)
    pd.DataFrame({"ours": [100, 40, 90, 70], "paper": [176581, None, 150750, 120600]},
                 index=pd.Index(corpora.DATASET_ROWS, name="quantity")).to_csv(folder / "table0_dataset.csv")
    pd.DataFrame({"reconstruction_error (ours)": [0.009, error_vq, 0.018],
                  "reconstruction_error (paper)": [0.00368, 0.00511, None]},
                 index=pd.Index(["AR LSTM-VAE", "VQ-VAE", "baseline: silence"], name="model")
                 ).to_csv(folder / "table1_reconstruction.csv")
    pd.DataFrame({"HD (ours)": [0.0004, 0.009], "HD (paper)": [0.000443, 0.00144], "Loopability (ours)": [0.9, 0.7]},
                 index=pd.Index(["Training set", "VQ-VAE (argmax)"], name="model")
                 ).to_csv(folder / "table3_musical_metrics.csv")
    if with_claims:
        paths = Paths(folder.parent / "root")
        path = expectations.write_claims(paths, "05", [claim(f"VQ-VAE keeps FNB near 1 ({error_vq:.3g})", holds)])
        path.replace(folder / path.name)


def test_write_claims_keeps_the_sentence_and_the_verdict(tmp_path):
    paths = Paths(tmp_path)
    found = [claim('Doubling K lowers the error (t=32: 0.1 -> 0.09, "quoted")', True),
             Finding("results do not depend much on the seed", pd.DataFrame(), False, "Does not hold: spread 40%")]
    path = expectations.write_claims(paths, "08", found)
    assert path == paths.figures / "claims_08.csv"
    table = pd.read_csv(path)
    assert list(table["claim"]) == ["Doubling K lowers the error", "results do not depend much on the seed"]
    assert list(table["holds"]) == [True, False]
    assert table["verdict"][0].startswith('Doubling K lowers the error (t=32: 0.1 -> 0.09, "quoted")')
    assert table["verdict"][1] == "Does not hold: spread 40%"
    assert list(table["paper"]) == ["claimed", "claimed"]  # every table has the paper's column beside ours
    assert "| results do not depend much on the seed | claimed | Does not hold" in path.with_suffix(".md").read_text()


def test_what_you_should_see_writes_claims_only_where_there_are_claims(tmp_path, capsys):
    paths = Paths(tmp_path)
    expectations.what_you_should_see("01", {"loops": 5}, profile="smoke", seed=0, paths=paths)
    assert not expectations.claims_file(paths, "01").exists()
    expectations.what_you_should_see("05", {"loops": 5}, profile="smoke", seed=0, paths=paths,
                                      claims=[claim("A claim (1.0)", False)])
    assert pd.read_csv(expectations.claims_file(paths, "05"))["holds"].tolist() == [False]


def test_report_sets_two_runs_beside_the_paper(tmp_path):
    _fake_run(tmp_path / "demo", 0.0045, True)
    _fake_run(tmp_path / "real", 0.0101, False)
    runs = {"demo corpus": tmp_path / "demo", "real songs": tmp_path / "real"}
    table1 = corpora.table_side_by_side("table1_reconstruction.csv", ("reconstruction_error",), runs)
    assert list(table1.columns) == ["reconstruction_error (paper)", "reconstruction_error (demo corpus)",
                                    "reconstruction_error (real songs)"]
    assert table1.loc["VQ-VAE", "reconstruction_error (real songs)"] == pytest.approx(0.0101)
    assert pd.isna(table1.loc["baseline: silence", "reconstruction_error (paper)"])
    claims = corpora.claims_side_by_side(runs)
    assert len(claims) == 1  # the same claim, numbers aside, is one row
    assert claims.iloc[0]["demo corpus"] == "holds" and claims.iloc[0]["real songs"] == "does not hold"
    text = corpora.report(runs)
    assert "1.01e-2" in text and "5.11e-3" in text
    assert "demo corpus: 1 of 1 hold; real songs: 0 of 1 hold." in text
    assert "Table 7" in text  # a table a run lacks is shown, empty, not a crash


def test_report_refuses_a_folder_without_a_finished_run(tmp_path):
    _fake_run(tmp_path / "demo", 0.0045, True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="run notebooks 01-09 there first"):
        corpora.report({"demo": tmp_path / "demo", "empty": tmp_path / "empty"})


def test_command_labels_and_output(tmp_path, capsys):
    _fake_run(tmp_path / "a", 0.0045, True, with_claims=False)
    _fake_run(tmp_path / "b", 0.0101, False, with_claims=False)
    out = tmp_path / "report.md"
    assert compare_corpora.main([str(tmp_path / "a"), str(tmp_path / "b"), "--label", "demo", "real",
                                 "--out", str(out)]) == 0
    assert "reconstruction_error (real)" in out.read_text() == capsys.readouterr().out
    with pytest.raises(ValueError, match="2 folders"):
        compare_corpora.main([str(tmp_path / "a"), str(tmp_path / "b"), "--label", "one"])
