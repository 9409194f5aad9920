"""loopgen.book.listening: the study builder, simulated ratings, rating validation and the analysis."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from loopgen.book import audio, listening
from loopgen.book.listening import analysis, study
from loopgen.commands import study as study_command

GROUPS = listening.GROUPS


def synthetic_groups(n: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """Distinct random sparse loops per group (no real MIDI involved)."""
    rng = np.random.default_rng(seed)
    return {g: rng.random((n, 128, 93)) < 0.02 for g in GROUPS}


@pytest.fixture
def built(tmp_path):
    out = listening.build_study(
        synthetic_groups(), tmp_path / "study", per_group=3, familiarisation=2, seed=7, render_audio=False
    )
    return out


def test_build_study_layout_and_counts(built) -> None:
    layout = listening.StudyLayout(built)
    for path in (
        layout.key,
        layout.stimuli_json,
        layout.index_html,
        layout.site / "study.js",
        layout.site / "stimuli.js",
    ):
        assert path.is_file(), path
    assert (built / "README.md").read_text().count("http.server") == 1
    assert layout.ratings.is_dir()
    data = json.loads(layout.stimuli_json.read_text())
    assert len(data["stimuli"]) == 3 * len(GROUPS) and len(data["familiarisation"]) == 2
    assert data["audio_available"] is False and all(s["audio"] is None for s in data["stimuli"])
    for item in data["stimuli"] + data["familiarisation"]:
        assert (layout.site / item["midi"]).is_file()
    key = listening.read_key(built)
    assert list(key.columns) == ["stimulus_id", "role", "group", "source_index"]
    assert key["stimulus_id"].is_unique
    assert set(key.loc[key["role"] == "stimulus", "stimulus_id"]) == {s["id"] for s in data["stimuli"]}
    assert key.loc[key["role"] == "stimulus"].groupby("group").size().to_dict() == dict.fromkeys(GROUPS, 3)
    familiar = key[key["role"] == "familiarisation"]
    assert set(familiar["group"]) == {"training_set"}
    rated_training = key[(key["role"] == "stimulus") & (key["group"] == "training_set")]
    assert not set(familiar["source_index"]) & set(rated_training["source_index"])


def test_the_page_is_blind(built) -> None:
    site = listening.StudyLayout(built).site
    assert not (site / "key.csv").exists()
    names = " ".join(p.name for p in site.rglob("*"))
    text = " ".join(p.read_text() for p in site.glob("*") if p.suffix in {".html", ".js", ".json", ".css"})
    for group in GROUPS:
        assert group not in names and group not in text
    assert "key.csv" not in text


def test_build_study_is_seeded(tmp_path) -> None:
    groups = synthetic_groups()
    keys = [
        listening.read_key(
            listening.build_study(groups, tmp_path / f"s{i}", per_group=2, seed=s, render_audio=False)
        )
        for i, s in enumerate((1, 1, 2))
    ]
    pd.testing.assert_frame_equal(keys[0], keys[1])
    assert not keys[0].equals(keys[2])


def test_written_midi_matches_the_chosen_loop(built) -> None:
    import pretty_midi

    groups = synthetic_groups()
    key = listening.read_key(built)
    row = key[key["role"] == "stimulus"].iloc[0]
    loop = groups[row["group"]][row["source_index"]]
    pm = pretty_midi.PrettyMIDI(str(listening.StudyLayout(built).site / "midi" / f"{row['stimulus_id']}.mid"))
    expected = audio.loop_to_midi(loop, repeats=2)
    assert [len(i.notes) for i in pm.instruments] == [len(i.notes) for i in expected.instruments]


def test_build_study_rejects_bad_input(tmp_path) -> None:
    groups = synthetic_groups(n=4)
    with pytest.raises(ValueError, match="needs"):
        listening.build_study(groups, tmp_path / "a", per_group=5, render_audio=False)
    with pytest.raises(ValueError, match="needs"):  # 3 rated + 2 familiarisation > 4 training loops
        listening.build_study(groups, tmp_path / "b", per_group=3, familiarisation=2, render_audio=False)
    with pytest.raises(ValueError, match="shape"):
        listening.build_study(
            {"training_set": np.zeros((5, 128, 92))}, tmp_path / "c", per_group=1, render_audio=False
        )
    with pytest.raises(ValueError, match="familiarisation source"):
        listening.build_study({"x": np.zeros((5, 128, 93))}, tmp_path / "d", per_group=1, render_audio=False)


def test_duplicates_are_avoided_then_warned(tmp_path) -> None:
    loops = np.zeros((6, 128, 93), dtype=bool)
    loops[:3, 0, 0] = True  # three copies of one loop, three of the empty loop: 2 distinct
    with pytest.warns(RuntimeWarning, match="distinct"):
        out = listening.build_study(
            {"training_set": loops}, tmp_path / "s", per_group=3, familiarisation=0, render_audio=False
        )
    assert len(listening.read_key(out)) == 3
    key = listening.read_key(
        listening.build_study(
            {"training_set": loops}, tmp_path / "t", per_group=2, familiarisation=0, render_audio=False
        )
    )
    first, second = (loops[i] for i in key["source_index"])
    assert not np.array_equal(first, second)


@pytest.mark.skipif(not audio.fluidsynth_available(), reason="FluidSynth (libfluidsynth) is not installed")
def test_build_study_renders_audio(tmp_path) -> None:
    groups = {g: v[:3] for g, v in synthetic_groups().items()}
    out = listening.build_study(groups, tmp_path / "s", per_group=1, familiarisation=1, repeats=1, fs=8000)
    data = json.loads(listening.StudyLayout(out).stimuli_json.read_text())
    assert data["audio_available"] is True
    for item in data["stimuli"] + data["familiarisation"]:
        assert (listening.StudyLayout(out).site / item["audio"]).stat().st_size > 16 * 8000 * 2


def test_listener_order_is_a_seeded_permutation() -> None:
    ids = [f"s{i:02d}" for i in range(1, 51)]
    a = listening.listener_order(ids, "alice", 0)
    assert sorted(a) == ids and a != ids
    assert a == listening.listener_order(ids, "alice", 0)
    assert a == listening.listener_order(ids, "  alice ", 0)  # the page trims the id
    assert a != listening.listener_order(ids, "bob", 0)
    assert a != listening.listener_order(ids, "alice", 1)
    # every position is reached: over many listeners, s01 lands in many places
    positions = {listening.listener_order(ids, f"L{n}", 0).index("s01") for n in range(300)}
    assert len(positions) > 40
    assert study.sanitise_listener_id(" a b/c ") == "a_b_c"


def test_simulated_ratings_are_seeded_flagged_and_in_range(built) -> None:
    key = listening.read_key(built)
    sim = listening.simulate_ratings(key, n_listeners=4, seed=3)
    rated = key[key["role"] == "stimulus"]
    assert len(sim) == 4 * len(rated) and sim["simulated"].all()
    assert sim["rating"].between(1, 5).all() and sim["rating"].dtype.kind == "i"
    assert (
        sim.groupby("listener_id")["stimulus_id"]
        .apply(set)
        .map(lambda s: s == set(rated["stimulus_id"]))
        .all()
    )
    pd.testing.assert_frame_equal(sim, listening.simulate_ratings(key, n_listeners=4, seed=3))
    assert not sim.equals(listening.simulate_ratings(key, n_listeners=4, seed=4))
    # the documented model: with many listeners the group means approach the chosen latent means
    big = listening.simulate_ratings(
        key,
        n_listeners=2000,
        seed=0,
        group_means=dict.fromkeys(GROUPS, 3.0) | {"training_set": 4.0},
        stimulus_sd=0.0,
    )
    means = big.merge(key, on="stimulus_id").groupby("group")["rating"].mean()
    assert means["training_set"] == pytest.approx(4.0 - 0.05, abs=0.35)
    assert means["cnn_vae"] == pytest.approx(3.0, abs=0.35)
    with pytest.raises(ValueError):
        listening.simulate_ratings(key, n_listeners=0)


def test_write_simulated_names_the_file_and_refuses_real_rows(built) -> None:
    key = listening.read_key(built)
    sim = listening.simulate_ratings(key, 2, 0)
    path = listening.write_simulated(sim, built)
    assert path.name == "ratings_SIMULATED.csv" and path.parent.name == "ratings"
    ratings = listening.load_ratings(built)
    assert ratings["simulated"].all() and len(ratings) == len(sim)
    with pytest.raises(ValueError, match="simulated"):
        listening.write_simulated(sim.assign(simulated=False), built)


def _write(path, text: str) -> None:
    path.write_text(text)


def test_load_ratings_reports_every_bad_row(built) -> None:
    key = listening.read_key(built)
    rated = key.loc[key["role"] == "stimulus", "stimulus_id"].tolist()
    ratings_dir = listening.StudyLayout(built).ratings
    good = "\n".join(f"ann,{sid},{1 + i % 5}" for i, sid in enumerate(rated))
    _write(ratings_dir / "ratings_ann.csv", "listener_id,stimulus_id,rating\n" + good + "\n")
    bad_rows = [
        f"bob,{rated[0]},6",  # out of range
        f"bob,{rated[1]},0",
        f"bob,{rated[2]},x",
        f"bob,{rated[3]},2.5",
        "bob,s999,3",  # unknown
        "bob,f1,3",  # familiarisation
        f",{rated[4]},3",  # no listener
        f"bob,{rated[5]},4",  # fine
        f"bob,{rated[5]},2",  # duplicate
    ]
    _write(built / "ratings_bob.csv", "listener_id,stimulus_id,rating\n" + "\n".join(bad_rows) + "\n")
    _write(
        ratings_dir / "ratings_ann (1).csv", "listener_id,stimulus_id,rating\n" + good + "\n"
    )  # downloaded twice
    _write(ratings_dir / "ratings_broken.csv", "who,what\n1,2\n")
    with pytest.warns(RuntimeWarning, match="rejected"):
        ratings = listening.load_ratings(built)
    assert len(ratings) == len(rated) + 1
    assert ratings.loc[ratings["listener_id"] == "bob", "rating"].tolist() == [4]
    assert not ratings["simulated"].any()
    rejected = ratings.attrs["rejected"]
    reasons = rejected.groupby("source_file")["reason"].apply(list).to_dict()
    assert len(reasons["ratings_bob.csv"]) == 8
    assert sum("integer" in r for r in reasons["ratings_bob.csv"]) == 4
    assert any("unknown" in r for r in reasons["ratings_bob.csv"])
    assert any("familiarisation" in r for r in reasons["ratings_bob.csv"])
    assert any("duplicate" in r for r in reasons["ratings_bob.csv"])
    # the same file downloaded twice: one copy's rows are all duplicates (the other copy counts)
    assert sorted(len(reasons.get(f, [])) for f in ("ratings_ann.csv", "ratings_ann (1).csv")) == [
        0,
        len(rated),
    ]
    assert reasons["ratings_broken.csv"] == ["file lacks columns ['listener_id', 'stimulus_id', 'rating']"]
    assert len(ratings) + (rejected["line"] > 0).sum() == len(rated) * 2 + len(bad_rows)  # nothing lost


def test_load_ratings_without_files_is_empty(built) -> None:
    ratings = listening.load_ratings(built)
    assert ratings.empty and list(ratings.columns)[:3] == ["listener_id", "stimulus_id", "rating"]


def _toy_key_and_ratings() -> tuple[pd.DataFrame, pd.DataFrame]:
    key = pd.DataFrame(
        {
            "stimulus_id": ["a1", "a2", "b1", "b2", "c1", "c2"],
            "role": "stimulus",
            "group": ["A", "A", "B", "B", "C", "C"],
            "source_index": range(6),
        }
    )
    values = {
        "a1": [5, 4, 5],
        "a2": [4, 5, 4],
        "b1": [3, 2, 3],
        "b2": [2, 3, 3],
        "c1": [1, 2, 1],
        "c2": [2, 1, 3],
    }
    rows = [(f"L{i}", sid, r) for sid, rs in values.items() for i, r in enumerate(rs)]
    return key, pd.DataFrame(rows, columns=["listener_id", "stimulus_id", "rating"])


def test_analyse_matches_scipy_and_holm() -> None:
    key, ratings = _toy_key_and_ratings()
    table, kruskal, posthoc = listening.analyse(ratings, key)
    assert list(table.index) == ["A", "B", "C"]
    assert table.loc["A", "mean"] == pytest.approx(27 / 6)
    assert table.loc["C", "median"] == pytest.approx(1.5)
    assert table["count"].tolist() == [6, 6, 6] and table["listeners"].tolist() == [3, 3, 3]
    assert table.loc["B", "std"] == pytest.approx(np.std([3, 2, 3, 2, 3, 3], ddof=1))
    a, b, c = ([5, 4, 5, 4, 5, 4], [3, 2, 3, 2, 3, 3], [1, 2, 1, 2, 1, 3])
    expected = stats.kruskal(a, b, c)
    assert kruskal.H == pytest.approx(expected.statistic) and kruskal.p == pytest.approx(expected.pvalue)
    assert (kruskal.dof, kruskal.n) == (2, 18)
    raw = [stats.mannwhitneyu(x, y, alternative="two-sided").pvalue for x, y in ((a, b), (a, c), (b, c))]
    np.testing.assert_allclose(posthoc["p"], raw)
    np.testing.assert_allclose(posthoc["p_holm"], listening.holm(np.array(raw)))
    assert posthoc.loc[0, "rank_biserial"] == pytest.approx(1.0)  # every A rating beats every B rating


def test_holm_by_hand() -> None:
    adjusted = listening.holm(np.array([0.01, 0.04, 0.03, 0.005]))
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(listening.holm(np.array([0.5, 0.9])), [1.0, 1.0])


def test_analyse_degenerate_inputs() -> None:
    key, ratings = _toy_key_and_ratings()
    same = ratings.assign(rating=3)
    _, kruskal, posthoc = listening.analyse(same, key)
    assert np.isnan(kruskal.H) and (posthoc["p"] == 1.0).all()
    with pytest.raises(ValueError, match="missing from the key"):
        listening.analyse(pd.concat([ratings, pd.DataFrame([["L0", "zz", 3]], columns=ratings.columns)]), key)


def test_listening_table_carries_paper_values_and_the_simulated_flag() -> None:
    key = pd.DataFrame(
        {
            "stimulus_id": ["t", "v"],
            "role": "stimulus",
            "group": ["training_set", "vq_vae_temp1.2"],
            "source_index": [0, 1],
        }
    )
    ratings = pd.DataFrame(
        {"listener_id": ["a", "b", "a", "b"], "stimulus_id": ["t", "t", "v", "v"], "rating": [5, 4, 3, 2]}
    )
    table, kruskal, _ = listening.analyse(ratings, key)
    out = listening.listening_table(table, kruskal, simulated=True)
    assert out.loc["Training set", "paper"] == pytest.approx(3.83)
    assert out.loc["VQ-VAE (temp 1.2)", "ours"] == pytest.approx(2.5)
    assert out.loc["Kruskal-Wallis H (1 df)", "paper"] == pytest.approx(75.19)
    assert out.loc["Kruskal-Wallis p", "paper"] == "< 0.001"
    assert (out["data"] == "SIMULATED").all()
    assert (listening.listening_table(table, kruskal, simulated=False)["data"] == "listeners").all()


def test_plot_ratings_title_says_simulated() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, ratings = _toy_key_and_ratings()
    fig = listening.plot_ratings(ratings, key, simulated=True)
    ax = fig.axes[0]
    assert analysis.SIMULATED_TITLE in ax.get_title()
    assert sorted(t.get_text() for t in ax.texts) == ["1.67", "2.67", "4.50"]
    plt.close(fig)
    fig = listening.plot_ratings(ratings, key, simulated=False)
    assert "SIMULATED" not in fig.axes[0].get_title()
    plt.close(fig)


def test_cli_builds_a_study_from_saved_groups(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(listening, "load_groups", lambda profile_name, seed, paths: synthetic_groups(n=6))
    code = study_command.main(
        ["--profile", "smoke", "--out", str(tmp_path / "st"), "--per-group", "2", "--no-audio"]
    )
    assert code == 0
    key = listening.read_key(tmp_path / "st")
    assert (key["role"] == "stimulus").sum() == 2 * len(GROUPS)
    assert (key["role"] == "familiarisation").sum() == 2  # the smoke profile's familiarisation count
    assert "http.server" in capsys.readouterr().out


def test_ratings_for_analysis_simulates_only_without_real_ratings(built) -> None:
    key = listening.read_key(built)
    ratings, simulated = listening.ratings_for_analysis(built, n_simulated=3, seed=1)
    assert simulated and ratings["simulated"].all()
    assert (listening.StudyLayout(built).ratings / listening.SIMULATED_FILE).is_file()
    assert not listening.has_real_ratings(built)
    rated = key.loc[key["role"] == "stimulus", "stimulus_id"]
    real = "listener_id,stimulus_id,rating\n" + "".join(f"ann,{sid},4\n" for sid in rated)
    (listening.StudyLayout(built).ratings / "ratings_ann.csv").write_text(real)
    assert listening.has_real_ratings(built)
    ratings, simulated = listening.ratings_for_analysis(built, n_simulated=3, seed=1)
    assert not simulated and len(ratings) == len(rated) and (ratings["listener_id"] == "ann").all()


def test_ensure_study_never_rebuilds_a_rated_study(built) -> None:
    before = listening.read_key(built)
    groups = synthetic_groups(seed=99)  # different loops: a rebuild would change the key
    options = dict(per_group=3, familiarisation=2, seed=8, render_audio=False)
    _, rebuilt = listening.ensure_study(groups, built, **options)
    assert rebuilt and not listening.read_key(built).equals(before)
    after = listening.read_key(built)
    (listening.StudyLayout(built).ratings / "ratings_ann.csv").write_text("listener_id,stimulus_id,rating\n")
    _, rebuilt = listening.ensure_study(synthetic_groups(seed=5), built, **options)
    assert not rebuilt
    pd.testing.assert_frame_equal(listening.read_key(built), after)


def test_stimulus_loops_and_discussion(built) -> None:
    groups = synthetic_groups()
    key = listening.read_key(built)
    examples = listening.stimulus_loops(groups, key, per_group=1)
    assert [g for g, _, _ in examples] == list(GROUPS)
    for group, sid, loop in examples:
        row = key.set_index("stimulus_id").loc[sid]
        assert row["group"] == group and np.array_equal(loop, groups[group][row["source_index"]])
    table = pd.DataFrame({"mean": [3.9, 2.0, 2.5, 3.0, 3.5]}, index=list(GROUPS))
    lines = listening.discussion(table, listening.KruskalResult(80.0, 1e-9, 4, 1000), simulated=False)
    assert len(lines) == 3 and all(line.endswith("holds on this run.") for line in lines)
    lines = listening.discussion(
        table.assign(mean=[1, 5, 3, 4, 2]), listening.KruskalResult(1.0, 0.5, 4, 10), simulated=True
    )
    assert all("does not hold" in line for line in lines[:2]) and "does not hold" in lines[2]
    assert all(line.startswith("SIMULATED") for line in lines[:3]) and "not that the models" in lines[3]


def test_cli_reports_missing_samples_without_a_traceback(tmp_path, monkeypatch, capsys) -> None:
    from loopgen.store.paths import MissingInputError

    def missing(profile_name, seed, paths):
        raise MissingInputError("training_set.npz is missing: run notebook 05_musical_metrics.ipynb first")

    monkeypatch.setattr(listening, "load_groups", missing)
    assert study_command.main(["--profile", "smoke", "--out", str(tmp_path / "st")]) == 1
    assert "05_musical_metrics" in capsys.readouterr().err
    assert not (tmp_path / "st").exists()


def test_cli_without_a_dataset_names_notebook_01(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LOOPGEN_ROOT", str(tmp_path / "empty_root"))
    assert study_command.main(["--profile", "smoke", "--out", str(tmp_path / "st")]) == 1
    assert "01_extract_loops" in capsys.readouterr().err
