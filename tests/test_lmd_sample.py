"""The lmd-sample profile: a seeded sample of LMD-full's files, extracted, trained and projected on a laptop.

The download itself cannot be tested offline (tests/test_corpus_download.py serves a small archive locally); every
step after it is tested here on a stand-in folder laid out like LMD-full (``lmd_full/<hex>/<md5>.mid``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from pathlib import Path

import pytest

from loopgen.book import extraction
from loopgen.data.dataset import dataset_dir, load_loops
from loopgen.data.extract import (
    SAMPLE_RULE,
    DatasetMismatchError,
    extract,
    list_midi_files,
    sample_files,
    scan_midi_dir,
)
from loopgen.errors import UserError
from loopgen.loops import LoopParams
from loopgen.run import profiles, rehearse, runner
from loopgen.store.paths import MissingInputError, Paths
from midi_build import write_song

REPO = Path(__file__).resolve().parents[1]
TPQ = 96
STEP = TPQ // 4


def _groove(n_bars: int, bass_pitch: int):
    bass, drums = [], []
    for bar in range(n_bars):
        o = 16 * bar * STEP
        bass += [(o, o + 6 * STEP, bass_pitch), (o + 8 * STEP, o + 14 * STEP, bass_pitch + 7)]
        drums += [(o, 36), (o + 4 * STEP, 38), (o + 8 * STEP, 36), (o + 12 * STEP, 38), (o, 49)]
        drums += [(o + s * STEP, 42) for s in range(0, 16, 2)]
    return bass, drums


def make_lmd_standin(root: Path, n_songs: int = 36) -> Path:
    """A folder laid out like LMD-full: ``<first hex digit>/<md5>.mid``; most songs loop (8-12 bars of one groove),
    every fifth is in 3/4 (rejected), so that a sample's loops depend on which files it drew."""
    folder = root / "lmd_full"
    for i in range(n_songs):
        md5 = hashlib.md5(f"song {i}".encode()).hexdigest()
        bass, drums = _groove(8 + i % 5, 30 + i % 12)
        signature = ((0, 3, 4),) if i % 5 == 4 else ((0, 4, 4),)
        write_song(folder / md5[0] / f"{md5}.mid", ticks_per_quarter=TPQ, bass=bass, drums=drums,
                   time_signatures=signature)
    return folder


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return make_lmd_standin(tmp_path_factory.mktemp("lmd"))


# ------------------------------------------------------------------------------------------- the sample itself
def test_the_sample_is_reproducible_seeded_and_independent_of_listing_order():
    names = [f"{i % 16:x}/{hashlib.md5(str(i).encode()).hexdigest()}.mid" for i in range(500)]
    chosen = sample_files(names, 40, seed=0)
    assert len(chosen) == 40 and chosen == sorted(chosen) and set(chosen) <= set(names)
    assert sample_files(names, 40, seed=0) == chosen, "the same seed: the same files"
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    assert sample_files(shuffled, 40, seed=0) == chosen, "whatever order the folder lists them in"
    assert sample_files(names, 40, seed=1) != chosen, "another seed: another sample"
    assert set(sample_files(names, 10, seed=0)) <= set(chosen), "a smaller sample of the same seed is inside it"
    grown = sample_files(names + ["new/extra.mid"], 40, seed=0)
    assert len(set(grown) - set(chosen)) <= 1, "a file more in the folder changes the sample by at most that file"
    assert sample_files(names, None) == sample_files(names, 500) == sample_files(names, 10_000) == sorted(names)
    with pytest.raises(ValueError, match="at least 1"):
        sample_files(names, 0)


def test_the_sample_is_the_same_on_every_machine():
    """The rule is SHA-256 ranking of "<seed>\\n<name>" (no RNG whose stream could change with a library version):
    these names were drawn once and are pinned."""
    names = [f"{c}/{c * 8}.mid" for c in "0123456789abcdef"]
    assert sample_files(names, 4, seed=0) == sorted(
        sorted(names, key=lambda n: hashlib.sha256(f"0\n{n}".encode()).digest())[:4])
    assert sample_files(names, 4, seed=0) == PINNED_SAMPLE
    assert SAMPLE_RULE == "sha256-rank"


PINNED_SAMPLE = ["0/00000000.mid", "1/11111111.mid", "7/77777777.mid", "a/aaaaaaaa.mid"]


def test_a_sample_is_not_a_limit(standin):
    every = list_midi_files(standin)
    assert list_midi_files(standin, limit=10) == every[:10], "limit: the first N sorted"
    sampled = list_midi_files(standin, sample=10, sample_seed=0)
    assert len(sampled) == 10 and sampled != every[:10], "sample: a seeded choice across the folder"
    assert list_midi_files(standin, 3, sample=10, sample_seed=0) == sampled[:3], "limit applies after the sample"
    listing = scan_midi_dir(standin, sample=10, sample_seed=0)
    assert listing.found == len(every) and listing.n_entries == 10


# --------------------------------------------------------------------------------- the dataset made of a sample
def test_the_manifest_records_the_sample_and_the_same_sample_is_reused(standin, tmp_path):
    out = tmp_path / "sample-a"
    report = extract(standin, out, workers=1, sample=12, sample_seed=0, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["sample"] == {"files": 12, "seed": 0, "rule": SAMPLE_RULE}
    assert manifest["inputs"]["n_files"] == 12 and manifest["sample_of_files"] == 36
    assert report["totals"]["files_scanned"] == 12 and report["sample"]["of_files"] == 36
    assert sorted(report["files"]) == list_midi_files(standin, sample=12, sample_seed=0)
    data = load_loops(out)
    assert set(data.source) <= set(report["files"]) and len(data) == report["totals"]["loops"] > 0

    stamp = (out / "manifest.json").stat().st_mtime_ns
    assert extract(standin, out, workers=1, sample=12, sample_seed=0, progress=False) == report
    assert (out / "manifest.json").stat().st_mtime_ns == stamp, "the same sample: the same dataset, reused"

    with pytest.raises(DatasetMismatchError):  # another sample of the same folder is another dataset
        extract(standin, out, workers=1, sample=12, sample_seed=1, progress=False)
    with pytest.raises(DatasetMismatchError):
        extract(standin, out, workers=1, progress=False)  # the whole folder is not the sample either

    other = extract(standin, tmp_path / "sample-b", workers=1, sample=12, sample_seed=1, progress=False)
    assert sorted(other["files"]) != sorted(report["files"])
    other_manifest = json.loads((tmp_path / "sample-b" / "manifest.json").read_text())
    assert other_manifest["content_hash"] != manifest["content_hash"], "another sample: other loops, another key"


def test_a_dataset_without_a_sample_keeps_its_identity(standin, tmp_path):
    extract(standin, tmp_path / "all", workers=1, limit=5, progress=False)
    inputs = json.loads((tmp_path / "all" / "manifest.json").read_text())["inputs"]
    assert "sample" not in inputs, "datasets extracted before samples existed are still reused"


def test_the_command_line_takes_a_sample(standin, tmp_path, capsys):
    from loopgen.__main__ import main

    out = tmp_path / "cli"
    assert main(["extract", str(standin), str(out), "--workers", "1", "--quiet", "--sample", "7",
                 "--sample-seed", "3"]) == 0
    assert "7 files scanned" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["inputs"]["sample"]["seed"] == 3


# ----------------------------------------------------------------------------------------------- the profile
def test_the_profile_is_what_the_readme_says():
    p = profiles.get("lmd-sample")
    assert p.corpus.source == "lmd" and (p.corpus.sample_files, p.corpus.sample_seed) == (16_000, 0)
    assert p.corpus.name == "lmd_full-sample16000-s0" != profiles.get("paper").corpus.name
    assert p.extract.min_train_loops == 8000
    # our estimate: the paper's yield (120,600 training loops from 176,581 files)
    assert profiles.TRAIN_LOOPS_ESTIMATE["lmd-sample"] == round(16_000 * 120_600 / 176_581) == 10_928
    demo = profiles.get("demo")
    for name in ("vq_vae", "cnn_vae", "prior", "masked_prior", "ar_lstm_vae", "nonar_lstm_vae"):
        ours, theirs = p.train.recipe(name), demo.train.recipe(name)
        if "lstm" in name:  # the demo's short recipe as it is, trained here
            assert ours.epochs == theirs.epochs == 2 and theirs.shipped_from == "demo-long"
        else:
            assert ours.epochs == max(1, round(theirs.epochs * 5997 / 10_928)), "the demo's optimiser steps"
        assert ours.batch_size == theirs.batch_size and ours.lr_max == theirs.lr_max
        assert ours.shipped_from is None, "the shipped LSTM-VAE weights are the demo dataset's"
        assert p.train.model_kwargs(name) == demo.train.model_kwargs(name)
    assert (p.train.recipe("vq_vae").epochs, p.train.recipe("cnn_vae").epochs, p.train.recipe("prior").epochs) == (16, 9, 9)
    assert p.table2_vq_epochs == 2 and p.sample.n_samples is None

    readme = (REPO / "README.md").read_text()
    assert "./run_all.sh --profile lmd-sample" in readme
    assert "python -m loopgen corpus download-lmd data/lmd --md5" in readme
    assert "16,000" in readme and "10,928" in readme and "8,000" in readme
    assert re.search(r"rehearse --profile lmd-sample", readme)


def test_a_sample_needs_an_lmd_folder():
    with pytest.raises(ValueError, match="sample_files"):
        profiles.CorpusSettings(source="demo", sample_files=10)
    with pytest.raises(ValueError, match="sample_files"):
        profiles.CorpusSettings(source="lmd", sample_files=0)


def test_run_all_and_the_runner_take_the_profile():
    assert "lmd-sample" in next(line for line in (REPO / "run_all.sh").read_text().splitlines()
                                if line.startswith("PROFILES="))
    plan = runner.plan("lmd-sample")
    assert [r.output_name for r in plan] == [r.output_name for r in runner.plan("demo")], "the demo's notebooks"
    assert runner.default_workers("lmd-sample") == min(2, runner.default_workers("demo"))


# ------------------------------------------------------------------ what notebook 01 does, on a stand-in LMD folder
def _small(sample_files: int, min_train_loops: int = 1) -> profiles.Profile:
    """The lmd-sample profile with a sample that fits the stand-in folder."""
    p = profiles.get("lmd-sample")
    return dataclasses.replace(p, corpus=dataclasses.replace(p.corpus, sample_files=sample_files),
                               extract=dataclasses.replace(p.extract, min_train_loops=min_train_loops))


def test_notebook_01s_steps_on_a_standin_lmd_folder(standin, tmp_path):
    paths = Paths(tmp_path / "root")
    p = profiles.get("lmd-sample")
    with pytest.raises(MissingInputError, match="download-lmd"):  # no data/lmd/lmd_full yet: how to get it
        extraction.midi_source(p, paths)

    # data/lmd/lmd_full, where the downloader unpacks it (a link to the stand-in)
    paths.lmd_dir.mkdir(parents=True)
    paths.lmd_full.symlink_to(standin, target_is_directory=True)
    small = _small(20)
    source = extraction.midi_source(small, paths)
    assert source.midi_dir == paths.lmd_full and source.corpus_name == "lmd_full-sample20-s0"
    assert extraction.run_paths(small, paths, "") == (None, paths), "the profile's own outputs: figures/, build/"
    with_folder, own = extraction.run_paths(small, paths, standin)
    assert with_folder.corpus_name == source.corpus_name and own == paths

    # notebook 01's extraction call (cell "dataset_dir = ..."), then its refusal of too few loops
    params = LoopParams()
    folder = source.dataset_dir(paths, params)
    assert folder == dataset_dir(paths, small.corpus.name, params)
    report = extract(source.midi_dir, folder, params, workers=1, backend=small.extract.backend,
                     limit=small.extract.limit, sample=small.corpus.sample_files,
                     sample_seed=small.corpus.sample_seed, progress=False)
    assert report["totals"]["files_scanned"] == 20
    n_train = int((load_loops(folder).split == "train").sum())
    assert n_train > 0
    extraction.require_enough_loops(n_train, small, source.corpus_name)
    with pytest.raises(UserError, match=rf"gave {n_train} training loops; the lmd-sample profile needs at least 8000"):
        extraction.require_enough_loops(n_train, p, source.corpus_name)
    # another sample is another dataset folder (never a mismatch with this one)
    assert _small(21).corpus.name != small.corpus.name


def test_notebook_01_extracts_the_profiles_sample_and_refuses_too_few_loops():
    cells = json.loads((REPO / "notebooks" / "01_extract_loops.ipynb").read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert code.count("sample=P.corpus.sample_files, sample_seed=P.corpus.sample_seed") == 2, "stride 1 and 8"
    assert 'if MIDI_DIR or P.corpus.source == "lmd":' in code


# ---------------------------------------------------------------------------------------- the projected run
def _rows(rate: float = 1000.0) -> list[dict]:
    return [{"training": r.label, "samples/s": rate, "validation (s)": 0.5, "checkpoint (s)": 0.1}
            for r in rehearse.trainings(masked_prior=True)]


def test_the_projection_counts_every_notebook_and_schedules_them_as_the_runner_does():
    projection = rehearse.project_run("lmd-sample", _rows(), extraction=(100.0, "stand-in"))
    plan = runner.plan("lmd-sample")
    assert set(projection.seconds) == {r.output_name for r in plan}
    assert projection.train_loops == 10_928 and projection.extraction_seconds == 100.0
    first = projection.seconds["01_extract_loops.ipynb"]
    assert first == pytest.approx(100.0 + rehearse.OTHER_SECONDS["01"][0])
    p = profiles.get("lmd-sample")
    vq = p.train.recipe("vq_vae")
    epoch = 10_928 / 1000.0 + 0.5 * 500 / 500 + 0.1
    assert projection.seconds["02_train_autoencoders-vq_vae.ipynb"] == pytest.approx(
        vq.epochs * epoch + rehearse.OTHER_SECONDS["02"][0] + rehearse.OTHER_SECONDS["02"][1] * 10_928 / 5997)
    assert first < projection.wall_seconds < projection.serial_seconds, "two side by side after 01"
    assert projection.training_seconds > 0
    assert rehearse.project_run("lmd-sample", _rows(), extraction=(100.0, ""), workers=1).wall_seconds == \
        pytest.approx(projection.serial_seconds)
    lines = "\n".join(projection.lines())
    assert "total:" in lines and "extraction (notebook 01)" in lines
    # the demo installs its shipped LSTM-VAE weights: no training projected for them
    demo = rehearse.project_run("demo", _rows(), extraction=(0.0, ""))
    assert demo.seconds["02_train_autoencoders-ar_lstm_vae.ipynb"] == pytest.approx(
        rehearse.OTHER_SECONDS["02"][0] + rehearse.OTHER_SECONDS["02"][1])


def test_the_schedule_waits_for_what_a_notebook_reads():
    plan = runner.plan("smoke")
    seconds = {r.output_name: 10.0 for r in plan}
    assert rehearse.scheduled_seconds(plan, seconds, 1) == pytest.approx(10.0 * len(plan))
    two = rehearse.scheduled_seconds(plan, seconds, 2)
    assert 10.0 * len(plan) / 2 <= two < 10.0 * len(plan)


def test_the_extraction_projection_times_the_folder_when_it_is_there(standin, tmp_path):
    seconds, note = rehearse.extraction_projection("lmd-sample", standin, probe_files=8)
    assert "a sample of 36 of 36 files" in note and "timed here" in note and seconds > 0
    absent, note = rehearse.extraction_projection("lmd-sample", tmp_path / "not-here")
    files, found = 16_000, profiles.LMD_FULL_FILES
    expected = 3 * found * rehearse.LIST_SECONDS_PER_ENTRY + 2 * (
        rehearse.EXTRACT_START_SECONDS + files / rehearse.EXTRACT_FILES_PER_SECOND)
    assert absent == pytest.approx(expected) and "16,000 of 176,581" in note


def test_a_prior_after_another_is_timed_over_every_code_it_trains_on(tmp_path):
    """The priors share the first prior's codes: the masked prior (batch 64) after the LSTM prior (batch 128) trains
    on twice its batch x steps, and its speed counts all of them."""
    rows = rehearse.rehearsal_rows("lmd-sample", steps=2, device="cpu", only=["prior"], masked_prior=True,
                                   n_samples=4, checkpoint_dir=tmp_path, threads=1, log=lambda *_: None)
    by = {row["training"]: row for row in rows}
    assert list(by) == ["vq_vae", "prior", "masked_prior"]
    assert by["prior"]["steps"] == 3 and by["masked_prior"]["steps"] == 6, "128 codes: 1 batch of 128, 2 of 64"
    for row in rows:
        assert row[rehearse.QUIET_RATE] >= row["samples/s"] > 0


@pytest.mark.slow
def test_the_rehearsal_command_projects_a_cpu_profiles_whole_run(capsys):
    from loopgen.__main__ import main

    assert main(["rehearse", "--profile", "smoke", "--steps", "2", "--samples", "4"]) == 0  # one thread each
    out = capsys.readouterr().out
    assert "| masked_prior" in out, "notebook 09's masked prior is part of the run"
    assert "Projected run of the smoke profile" in out and "extraction (notebook 01)" in out
    assert re.search(r"total: \d+\.\d min with \d notebook", out)
