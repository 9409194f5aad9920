"""docs/rules.md §5: every file accounted for; parallel, resumable, reusable, never mixed."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

import loopgen.data.extract as extract_module
from loopgen.data.extract import DatasetMismatchError, extract, extract_file, list_midi_files
from loopgen.loops import LoopParams
from midi_build import write_song

TPQ = 96
STEP = TPQ // 4


def groove(n_bars: int, crash: bool = True, bass_pitch: int = 36, offset_bars: int = 0):
    bass, drums = [], []
    for bar in range(offset_bars, offset_bars + n_bars):
        o = 16 * bar * STEP
        bass += [(o, o + 6 * STEP, bass_pitch), (o + 8 * STEP, o + 14 * STEP, bass_pitch + 7)]
        drums += [(o, 36), (o + 4 * STEP, 38), (o + 8 * STEP, 36), (o + 12 * STEP, 38)]
        drums += [(o + s * STEP, 42) for s in range(0, 16, 2)] + ([(o, 49)] if crash else [])
    return bass, drums


EXPECTED = {  # file -> loop count or rejection reason
    "a/loop8.mid": 1,
    "a/loop10.mid": 3,
    "b/loop12.mid": 5,
    "b/loop9.MIDI": 2,
    "c/loop11.mid": 4,
    "c/no_loop.mid": "no_loop",
    "c/short.mid": "too_short",
    "d/three_four.mid": "time_signature",
    "d/no_ts.mid": "no_time_signature",
    "d/no_bass.mid": "no_bass",
    "d/no_drums.mid": "no_drums",
    "e/garbage.mid": "unreadable",
    "e/smpte.mid": "bad_resolution",
    "e/huge_tick.mid": "too_large",
}


def make_corpus(root: Path) -> Path:
    def song(name, n_bars=8, **kw):
        bass, drums = groove(n_bars, crash=kw.pop("crash", True), bass_pitch=kw.pop("pitch", 36))
        song_kw = dict(bass=bass, drums=drums)
        song_kw.update(kw)
        write_song(root / name, ticks_per_quarter=TPQ, **song_kw)

    for name, n_bars, pitch in (("a/loop8.mid", 8, 36), ("a/loop10.mid", 10, 38), ("b/loop12.mid", 12, 40)):
        song(name, n_bars, pitch=pitch)
    song("b/loop9.MIDI", 9, pitch=41)
    song("c/loop11.mid", 11, pitch=43)
    song("c/no_loop.mid", 8, crash=False)
    song("c/short.mid", 7)
    song("d/three_four.mid", time_signatures=[(0, 4, 4), (96 * 8, 3, 4)])
    song("d/no_ts.mid", time_signatures=[])
    song("d/no_bass.mid", bass=[])
    song("d/no_drums.mid", drums=[])
    (root / "e").mkdir(parents=True, exist_ok=True)
    (root / "e/garbage.mid").write_bytes(b"this is not a MIDI file")
    header = b"MThd" + struct.pack(">Lhhh", 6, 1, 1, -7920)
    (root / "e/smpte.mid").write_bytes(header + b"MTrk" + struct.pack(">L", 4) + b"\x00\xff\x2f\x00")
    far = b"\x00\xff\x58\x04\x04\x02\x18\x08" + b"\x85\x98\xad\x00\xff\x2f\x00"  # EOT at tick 11,000,000
    (root / "e/huge_tick.mid").write_bytes(
        b"MThd" + struct.pack(">Lhhh", 6, 1, 1, 96) + b"MTrk" + struct.pack(">L", len(far)) + far
    )
    (root / "e/notes.txt").write_text("not a MIDI file name: ignored")
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def extracted(corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("out") / "ds"
    return out, extract(corpus, out, workers=1, progress=False)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_every_file_accounted_for(extracted):
    out, report = extracted
    files = report["files"]
    assert set(files) == set(EXPECTED)
    for name, expected in EXPECTED.items():
        assert files[name] == (
            {"loops": expected} if isinstance(expected, int) else {"rejected": expected}
        ), name
    totals = report["totals"]
    assert totals["files_scanned"] == len(EXPECTED) == totals["files_with_loops"] + totals["files_rejected"]
    assert totals["loops"] == 1 + 3 + 5 + 2 + 4
    assert sum(totals["by_reason"].values()) == totals["files_rejected"]
    assert "MThd" in report["details"]["e/garbage.mid"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["loops"] == 15 and manifest["params"] == LoopParams().as_dict()
    assert manifest["counts"]["train"] + manifest["counts"]["val"] + manifest["counts"]["test"] == 15
    assert not (out / ".partial").exists()


def test_list_midi_files_sorted_and_limited(corpus):
    names = list_midi_files(corpus)
    assert names == sorted(EXPECTED) and names[0] == "a/loop10.mid"
    assert list_midi_files(corpus, limit=3) == names[:3]


def test_reference_backend_gives_the_same_dataset(corpus, extracted, tmp_path):
    out, report = extracted
    ref_report = extract(corpus, tmp_path / "ref", backend="reference", workers=1, progress=False)
    assert ref_report["files"] == report["files"] and ref_report["totals"] == report["totals"]
    fast_manifest = json.loads((out / "manifest.json").read_text())
    ref_manifest = json.loads((tmp_path / "ref/manifest.json").read_text())
    assert ref_manifest["content_hash"] == fast_manifest["content_hash"]


def test_finished_folder_is_reused(corpus, extracted, monkeypatch):
    out, report = extracted

    def fail(*args, **kwargs):
        raise AssertionError("a finished folder must not be extracted again")

    monkeypatch.setattr(extract_module, "_process_chunk", fail)
    assert extract(corpus, out, workers=1, progress=False) == report


def test_other_params_never_mix(corpus, extracted):
    out, _ = extracted
    with pytest.raises(DatasetMismatchError, match="other parameters"):
        extract(corpus, out, LoopParams(stride_bars=2), workers=1, progress=False)
    with pytest.raises(DatasetMismatchError, match="other input files"):
        extract(corpus, out, workers=1, progress=False, limit=3)


def test_resume_after_kill_ends_identical(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(extract_module, "CHUNK_FILES", 3)
    clean = tmp_path / "clean"
    extract(corpus, clean, workers=1, progress=False)

    real = extract_module.extract_file
    calls = {"n": 0}

    def dies_on_the_eighth_file(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt  # the run is killed
        return real(*args, **kwargs)

    killed = tmp_path / "killed"
    monkeypatch.setattr(extract_module, "extract_file", dies_on_the_eighth_file)
    with pytest.raises(KeyboardInterrupt):
        extract(corpus, killed, workers=1, progress=False)
    saved = sorted((killed / ".partial").glob("chunk_*.npz"))
    assert len(saved) == 2 and not (killed / "manifest.json").exists()
    assert not list((killed / ".partial").glob("*.tmp"))

    with pytest.raises(DatasetMismatchError):  # a half-done folder refuses other params too
        extract(corpus, killed, LoopParams(min_drum_cells=1), workers=1, progress=False)

    calls["n"] = -1000
    report = extract(corpus, killed, workers=1, progress=False)
    assert calls["n"] == -1000 + len(EXPECTED) - 6  # only the files of the unsaved chunks were read
    assert report == json.loads((clean / "report.json").read_text())
    assert folder_bytes(killed) == folder_bytes(clean)


def test_parallel_run_matches_serial(corpus, extracted, tmp_path, monkeypatch):
    out, report = extracted
    monkeypatch.setattr(extract_module, "CHUNK_FILES", 4)
    parallel = extract(corpus, tmp_path / "par", workers=2, progress=False)
    assert parallel == report
    assert folder_bytes(tmp_path / "par") == folder_bytes(out)


def test_unexpected_error_is_recorded_not_raised(corpus, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(extract_module, "song_roll", broken)
    result = extract_file(corpus / "a/loop8.mid")
    assert result.reason == "error" and "boom" in result.detail and result.record == {"rejected": "error"}
    assert len(result.loops) == 0


def test_extract_file_gives_the_windows(corpus):
    result = extract_file(corpus / "a/loop10.mid")
    assert result.start_bars == [0, 1, 2] and result.loops.shape == (3, 128, 93) and result.reason is None
    assert np.array_equal(result.loops[0], result.loops[1])  # a steady groove


def test_cli(corpus, tmp_path, capsys):
    from loopgen.__main__ import main

    assert main(["extract", str(corpus), str(tmp_path / "cli"), "--workers", "1", "--quiet", "--limit", "5"]) == 0
    printed = capsys.readouterr().out
    assert "5 files scanned" in printed
    assert json.loads((tmp_path / "cli/manifest.json").read_text())["inputs"]["n_files"] == 5
    code = main(["extract", str(corpus), str(tmp_path / "cli"), "--workers", "1", "--quiet", "--stride-bars", "8"])
    err = capsys.readouterr().err
    assert code == 1 and "other parameters" in err and "--force" in err and len(err.splitlines()) == 1
    assert main(["extract", str(tmp_path / "missing"), str(tmp_path / "x"), "--quiet"]) == 2
    assert not (tmp_path / "x").exists()
