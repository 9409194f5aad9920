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
    """expected_ranges.json: every profile's range is the rule applied to its stored reference values."""
    data = expectations.read_ranges()
    assert data["rule"] == expectations.RULE
    smoke = data["profiles"]["smoke"]
    assert smoke["source"]["runs"] >= 3 and len(smoke["source"]["seeds"]) == smoke["source"]["runs"]
    for profile, entry in data["profiles"].items():
        if profile == "paper":
            assert entry["ranges"] == json.loads(json.dumps(expectations.paper_ranges()))
            continue
        for notebook, measures in entry["ranges"].items():
            runs = [{"_seed": str(i), notebook: {m: r["reference values"][i] for m, r in measures.items()
                                                  if i < len(r["reference values"])}}
                    for i in range(entry["source"]["runs"])]
            remade = expectations.ranges_from_runs(runs)[notebook]
            for measure, stored in measures.items():
                assert (stored["low"], stored["high"]) == (remade[measure]["low"], remade[measure]["high"]), measure
