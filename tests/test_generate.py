"""The musicians' command: generated loops -> .mid/.wav files and a contact sheet."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from loopgen.book.audio import fluidsynth_available
from loopgen.commands import generate as generate_command
from loopgen.data.corpus import write_demo_corpus
from loopgen.data.dataset import dataset_dir, load_loops
from loopgen.data.extract import extract
from loopgen.musician import generate
from loopgen.run import profiles
from loopgen.store.paths import MissingInputError, Paths
from loopgen.train import train_model


def _loops(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    loops = (rng.random((n, 128, 93)) < 0.02).astype(np.uint8)
    loops[:, 0, [0, 6]] = 1  # kick + crash on the first step
    loops[:, 0, 9 + 20] = 1  # a bass note on the first step
    return loops


def test_export_writes_midi_png_and_wav_when_possible(tmp_path):
    loops = _loops(3)
    written = generate.export_loops(loops, tmp_path / "out", prefix="demo", repeats=1)
    assert [p.name for p in written["mid"]] == ["demo_000.mid", "demo_001.mid", "demo_002.mid"]
    pm = pretty_midi.PrettyMIDI(str(written["mid"][0]))
    assert {inst.is_drum for inst in pm.instruments} == {True, False}
    assert written["png"][0].stat().st_size > 1000
    assert len(written["wav"]) == (3 if fluidsynth_available() else 0)


def test_cli_says_which_notebook_to_run_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOOPGEN_ROOT", str(tmp_path))
    assert generate_command.main(["--model", "cnn_vae", "--n", "2", "--out", str(tmp_path / "o"), "--profile", "smoke"]) == 1
    assert "01_extract_loops.ipynb" in capsys.readouterr().err


def test_generate_from_a_trained_model_end_to_end(tmp_path):
    paths = Paths(tmp_path)
    profile = profiles.get("smoke")
    corpus = write_demo_corpus(paths.corpus_dir(profile.corpus.name), n_songs=24, seed=0, progress=False)
    extract(corpus, dataset_dir(paths, profile.corpus.name), workers=1, progress=False)
    data = load_loops(dataset_dir(paths, profile.corpus.name))
    with pytest.raises(MissingInputError, match="02_train_autoencoders.ipynb"):
        generate.generate_loops("cnn_vae", 2, profile=profile, paths=paths)
    train_model("cnn_vae", data.loops[data.split == "train"], data.loops[data.split == "val"], profile.train,
                data_key=data.data_key, checkpoint_dir=paths.checkpoints, progress=False)
    loops = generate.generate_loops("cnn_vae", 5, profile=profile, paths=paths, seed=3)
    assert loops.shape == (5, 128, 93) and loops.dtype == np.uint8 and set(np.unique(loops)) <= {0, 1}
    again = generate.generate_loops("cnn_vae", 5, profile=profile, paths=paths, seed=3)
    np.testing.assert_array_equal(loops, again)
