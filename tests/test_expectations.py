"""loopgen.book.expectations: ranges made from reference runs by the rule, compared and reported; the shipped file."""

from __future__ import annotations

import json

import pytest

from loopgen.__main__ import main
from loopgen.book import expectations
from loopgen.store.paths import Paths


def _runs(tmp_path, values: dict[str, list[float]], notebook: str = "03"):
    for seed in range(len(next(iter(values.values())))):
        path = expectations.headline_file(Paths(tmp_path), "smoke", seed, notebook)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({k: v[seed] for k, v in values.items()}))


def test_ranges_follow_the_rule(tmp_path):
    _runs(tmp_path, {"accuracy (training codes)": [0.30, 0.32, 0.40], "codes used": [40, 50, 45]})
    runs = expectations.collect_runs([tmp_path], "smoke")
    assert len(runs) == 3 and [r["_seed"] for r in runs] == ["0", "1", "2"]
    ranges = expectations.ranges_from_runs(runs)["03"]
    acc = ranges["accuracy (training codes)"]
    assert acc["low"] == pytest.approx(0.20) and acc["high"] == pytest.approx(0.50)  # margin: the spread 0.10
    used = ranges["codes used"]  # margin: the spread 10 (0.2 x median 45 = 9 is smaller)
    assert used["low"] == pytest.approx(30) and used["high"] == pytest.approx(60)
    assert acc["reference values"] == [0.30, 0.32, 0.40]


def test_share_ranges_are_clipped_to_zero_one(tmp_path):
    _runs(tmp_path, {"lag-16 copy share": [0.9, 0.99, 0.95]})
    share = expectations.ranges_from_runs(expectations.collect_runs([tmp_path], "smoke"))["03"]["lag-16 copy share"]
    assert share["high"] == 1.0 and share["low"] == pytest.approx(0.9 - 0.19)  # margin 0.2 x median 0.95


def test_margins_scale_with_the_measure(tmp_path):
    """No absolute floor swamps a number of order 1e-3: one run's margin is a fifth of its value."""
    _runs(tmp_path, {"accuracy (training codes)": [0.0045], "codes used": [0.0]})
    ranges = expectations.ranges_from_runs(expectations.collect_runs([tmp_path], "smoke"))["03"]
    small = ranges["accuracy (training codes)"]
    assert (small["low"], small["high"]) == (pytest.approx(0.0036), pytest.approx(0.0054))
    zero = ranges["codes used"]  # no scale to take a fifth of: the zero margin
    assert (zero["low"], zero["high"]) == (0.0, expectations.ZERO_MARGIN)
    assert expectations.margin([0.0, 0.0, 0.001]) == pytest.approx(0.001)


def test_p_values_are_ranged_on_a_log_scale(tmp_path):
    _runs(tmp_path, {"Kruskal-Wallis p-value": [1e-13, 1e-12, 1e-9]}, notebook="07")
    p = expectations.ranges_from_runs(expectations.collect_runs([tmp_path], "smoke"))["07"]["Kruskal-Wallis p-value"]
    assert (p["low"], p["high"]) == (pytest.approx(1e-17), pytest.approx(1e-5))  # 4 decades either side
    _runs(tmp_path / "one", {"Kruskal-Wallis p-value": [1.75e-145]}, notebook="07")
    one = expectations.ranges_from_runs(expectations.collect_runs([tmp_path / "one"], "smoke"))["07"]
    assert 0 < one["Kruskal-Wallis p-value"]["low"] < 1.75e-145 < one["Kruskal-Wallis p-value"]["high"] < 1e-100


def test_ranges_record_the_baselines_a_model_must_beat(tmp_path):
    _runs(tmp_path, {"reconstruction error: VQ-VAE": [0.004, 0.005, 0.0045],
                     "reconstruction error: baseline: silence": [0.018, 0.018, 0.018],
                     "reconstruction error: baseline: copy bar 1": [0.0099, 0.0099, 0.0099]}, notebook="04")
    ranges = expectations.ranges_from_runs(expectations.collect_runs([tmp_path], "smoke"))["04"]
    assert ranges["reconstruction error: VQ-VAE"]["must beat"] == {
        "reconstruction error: baseline: silence": 0.018, "reconstruction error: baseline: copy bar 1": 0.0099}
    assert "must beat" not in ranges["reconstruction error: baseline: silence"]  # a baseline beats nothing


def _model_ranges(profile: str = "demo") -> dict:
    entry = {"low": 0.0, "high": 0.02, "must beat": {"reconstruction error: baseline: copy bar 1": 0.0099}}
    return {"profiles": {profile: {"source": {"runs": 3, "seeds": ["0", "1", "2"]},
                                   "ranges": {"04": {"reconstruction error: VQ-VAE": entry}}}}}


def test_a_model_that_does_not_beat_its_baseline_is_flagged_with_the_baseline_named():
    ranges = _model_ranges()
    ok = expectations.compare("04", {"reconstruction error: VQ-VAE": 0.005}, "demo", ranges)
    assert ok[0].startswith("ok") and ok[-1].startswith("As expected") and "beat their baselines" in ok[-1]
    bad = expectations.compare("04", {"reconstruction error: VQ-VAE": 0.012}, "demo", ranges)  # in the range
    assert bad[0].startswith("UNUSUAL") and "no better than baseline: copy bar 1 (0.0099)" in bad[0]
    assert "1 of 1" in bad[-1] and "not healthy" in bad[-1]
    # the run's own baseline, when recorded, is the one the model must beat
    own = {"reconstruction error: VQ-VAE": 0.012, "reconstruction error: baseline: copy bar 1": 0.015}
    assert expectations.compare("04", own, "demo", ranges)[0].startswith("ok")
    # smoke trains for seconds: not beating a baseline is reported there, not flagged
    smoke = expectations.compare("04", {"reconstruction error: VQ-VAE": 0.012}, "smoke", _model_ranges("smoke"))
    assert smoke[0].startswith("ok") and "no better than baseline: copy bar 1" in smoke[0]
    assert "not flagged" in smoke[0] and smoke[-1].startswith("As expected")


def test_a_weakness_every_reference_run_shares_is_flagged_and_said_to_be_the_recipes():
    """A model that never beat its baseline in the reference runs is still UNUSUAL, but the verdict says the
    weakness is the profile's, not this run's; a value out of range keeps the run unhealthy."""
    ranges = _model_ranges()
    entry = ranges["profiles"]["demo"]["ranges"]["04"]["reconstruction error: VQ-VAE"]
    entry["reference values"] = [0.011, 0.012, 0.0125]  # none beat copy bar 1 (0.0099)
    weak = expectations.compare("04", {"reconstruction error: VQ-VAE": 0.012}, "demo", ranges)
    assert weak[0].startswith("UNUSUAL") and weak[0].endswith("(so did every reference run's model).")
    assert "not healthy" not in weak[-1] and "a weakness of the demo recipe" in weak[-1]
    worse = expectations.compare("04", {"reconstruction error: VQ-VAE": 0.03}, "demo", ranges)  # above 0.02
    assert "so did every" not in worse[0] and "not healthy" in worse[-1]
    entry["reference values"] = [0.005, 0.012, 0.0125]  # one reference run beat it: this run's own weakness
    assert "not healthy" in expectations.compare("04", {"reconstruction error: VQ-VAE": 0.012}, "demo", ranges)[-1]


def test_notebook_04_flags_a_silent_decoder_and_a_one_epoch_model(tmp_path, capsys):
    """The shipped demo ranges: a decoder that outputs silence, and a VQ-VAE after one epoch, are both unusual."""
    demo = expectations.read_ranges()["profiles"]["demo"]["ranges"]["04"]
    trivial = {name: entry["reference values"][0] for name, entry in demo.items() if "baseline:" in name}
    silence = trivial["reconstruction error: baseline: silence"]  # what an all-zero reconstruction scores
    models = [name for name in demo if "baseline:" not in name]
    assert len(models) == 10 and set(trivial) == {"reconstruction error: baseline: silence",
                                                  "reconstruction error: baseline: copy bar 1"}
    silent = expectations.what_you_should_see("04", {name: silence for name in models} | trivial, profile="demo",
                                              seed=0, paths=Paths(tmp_path))
    assert sum(line.startswith("UNUSUAL") for line in silent) == len(models)
    assert all("no better than baseline: silence" in line for line in silent if line.startswith("UNUSUAL"))
    one_epoch = {"reconstruction error: VQ-VAE": 0.0116} | trivial  # a demo VQ-VAE after one epoch
    lines = expectations.compare("04", one_epoch, "demo")
    assert lines[0].startswith("UNUSUAL reconstruction error: VQ-VAE") and "baseline: copy bar 1" in lines[0]
    healthy = {"reconstruction error: VQ-VAE": demo["reconstruction error: VQ-VAE"]["reference values"][0]} | trivial
    assert expectations.compare("04", healthy, "demo")[0].startswith("ok")
    capsys.readouterr()


def test_the_paper_claims_are_a_verdict_apart_from_the_runs_health(tmp_path, capsys):
    from loopgen.book import tables

    claims = [tables.claim("VQ-VAE keeps FNB near 1", True), tables.claim("Argmax mostly repeats itself", False)]
    lines = expectations.what_you_should_see("01", {"loops": 7}, profile="smoke", seed=0, paths=Paths(tmp_path),
                                             claims=claims)
    out = capsys.readouterr().out
    assert out.index(expectations.HEALTH_TITLE) < out.index(expectations.SCIENCE_TITLE)
    assert lines[-1].startswith("1 of 2 of the paper's claims hold here; 1 does not")
    assert any(line.startswith("does not hold  Argmax") for line in lines)
    assert expectations.claims_verdict([]) == []


def test_compare_names_the_unusual_number_and_its_cause():
    ranges = {"profiles": {"smoke": {"source": {"runs": 3, "seeds": ["0", "1", "2"]},
                                     "ranges": {"02-vq_vae": {"validation reconstruction error": {"low": 0.01,
                                                                                                   "high": 0.02}}}}}}
    ok = expectations.compare("02-vq_vae", {"validation reconstruction error": 0.015}, "smoke", ranges)
    assert ok[-1].startswith("As expected") and "3 reference run(s)" in ok[-1]
    bad = expectations.compare("02-vq_vae", {"validation reconstruction error": 0.2}, "smoke", ranges)
    assert bad[0].startswith("UNUSUAL") and "above" in bad[0] and "learned less" in bad[0]
    assert "1 of 1" in bad[-1]
    nan = expectations.compare("02-vq_vae", {"validation reconstruction error": float("nan")}, "smoke", ranges)
    assert nan[0].startswith("UNUSUAL")
    assert "No expected ranges for the demo profile" in expectations.compare("01", {"loops": 1}, "demo", ranges)[0]


def test_what_you_should_see_records_the_headlines(tmp_path, capsys):
    lines = expectations.what_you_should_see("01", {"loops": 7}, profile="smoke", seed=3, paths=Paths(tmp_path))
    assert json.loads(expectations.headline_file(Paths(tmp_path), "smoke", 3, "01").read_text()) == {"loops": 7.0}
    assert lines and capsys.readouterr().out.strip()


def test_command_writes_a_profile_and_the_paper_ranges(tmp_path, capsys):
    _runs(tmp_path / "run", {"accuracy (training codes)": [0.3, 0.4, 0.5]})
    out = tmp_path / "ranges.json"
    assert main(["expected-ranges", "--profile", "smoke", "--runs", str(tmp_path / "run"), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["profiles"]["smoke"]["source"]["runs"] == 3
    paper = data["profiles"]["paper"]["ranges"]
    assert paper["03"]["accuracy (training codes)"]["paper"] == pytest.approx(0.8291)
    assert paper["03"]["accuracy (training codes)"]["low"] == pytest.approx(0.8291 * 0.75, abs=1e-6)
    assert main(["expected-ranges", "--profile", "demo", "--runs", str(tmp_path / "nothing"), "--out", str(out)]) == 1
    assert main(["expected-ranges", "--profile", "demo", "--out", str(out)]) == 2
    capsys.readouterr()


def test_shipped_file_is_made_by_the_rule():
    """expected_ranges.json: every profile's range is the rule applied to its stored reference values, and every
    profile says how many reference runs made it (fewer than wanted: a later `--run-seeds 0 1 2` completes it)."""
    data = expectations.read_ranges()
    assert data["rule"] == expectations.RULE
    smoke = data["profiles"]["smoke"]
    assert smoke["source"]["runs"] >= 3 and len(smoke["source"]["seeds"]) == smoke["source"]["runs"]
    for profile, entry in data["profiles"].items():
        if profile == "paper":
            assert entry["ranges"] == json.loads(json.dumps(expectations.paper_ranges()))
            continue
        assert entry["source"]["runs wanted"] == expectations.REFERENCE_RUNS_WANTED
        assert len(entry["source"]["seeds"]) == entry["source"]["runs"] >= 1
        assert "claims holding" not in entry["ranges"].get("08", {})  # the science is not a health check
        for notebook, measures in entry["ranges"].items():
            runs = [{"_seed": str(i), notebook: {m: r["reference values"][i] for m, r in measures.items()
                                                  if i < len(r["reference values"])}}
                    for i in range(entry["source"]["runs"])]
            remade = expectations.ranges_from_runs(runs)[notebook]
            for measure, stored in measures.items():
                assert (stored["low"], stored["high"]) == (remade[measure]["low"], remade[measure]["high"]), measure
                assert stored.get("must beat") == remade[measure].get("must beat"), measure
        bounded = [m for m in entry["ranges"].get("04", {}) if "baseline:" not in m]
        assert bounded and all("must beat" in entry["ranges"]["04"][m] for m in bounded), profile


def test_a_range_that_spans_every_possible_share_is_said_not_to_check_anything():
    """Smoke's prior accuracy spread 0.39-0.93 over its seeds: a range of 0 to 1 would pass anything, so the
    verdict says the number is not checked instead of calling it expected."""
    entry = {"low": 0.0, "high": 1.0, "reference values": [0.39, 0.93, 0.42]}
    ranges = {"profiles": {"smoke": {"source": {"runs": 3, "seeds": ["0", "1", "2"]},
                                     "ranges": {"03": {"accuracy (validation codes)": entry,
                                                       "lag-16 copy share": {"low": 0.5, "high": 1.0}}}}}}
    lines = expectations.compare("03", {"accuracy (validation codes)": 0.01, "lag-16 copy share": 0.7}, "smoke",
                                 ranges)
    assert lines[0].startswith("-       accuracy (validation codes) = 0.01 (not checked")
    assert "0.39 to 0.93" in lines[0] and lines[1].startswith("ok")
    assert "all 1 headline numbers" in lines[-1] and "1 not checked" in lines[-1]


def test_a_run_on_another_folder_is_held_to_its_own_baselines_not_to_the_demo_corpus_ranges(tmp_path, capsys):
    """The demo ranges describe the demo corpus: real songs giving fewer loops and higher errors are not
    'unusual' for that; a model that does not beat the run's own baselines still is."""
    paths = Paths(tmp_path).for_corpus("mysongs-1a2b3c4d")
    values = {"reconstruction error: VQ-VAE": 0.0116, "reconstruction error: CNN-VAE": 0.009,
              "reconstruction error: baseline: silence": 0.0173, "reconstruction error: baseline: copy bar 1": 0.0097,
              "loops": 1948}
    lines = expectations.what_you_should_see("04", values, profile="demo", seed=0, paths=paths)
    assert lines[0].startswith("UNUSUAL reconstruction error: VQ-VAE = 0.0116, no better than baseline: copy bar 1")
    assert lines[1].startswith("ok      reconstruction error: CNN-VAE = 0.009 (beats baseline: silence 0.0173")
    assert not any("expected 0" in line for line in lines) and "1 of 2 numbers do not beat them" in lines[-1]
    assert "'mysongs-1a2b3c4d'" in lines[-1]
    smoke = expectations.compare_with_baselines("04", values, "smoke", "mysongs-1a2b3c4d")
    assert smoke[0].startswith("ok") and "not flagged" in smoke[0] and "1 of 2 numbers do not beat" in smoke[-1]
