"""The notebooks' library calls: open a run, load its models, tables, and generated groups cached by provenance.

One module-scoped root holds a tiny demo corpus with smoke-profile models (CNN-VAE, VQ-VAE and its prior); the
continuous groups are narrowed to the CNN-VAE so nothing slow is trained.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from loopgen import metrics, registry, sample, train
from loopgen.book import baselines, evaluation
from loopgen.data.corpus import write_demo_corpus
from loopgen.data.dataset import dataset_dir, load_loops
from loopgen.data.extract import extract
from loopgen.run import profiles
from loopgen.store import sample_groups
from loopgen.store.paths import MissingInputError, Paths
from loopgen.train import train_model, train_prior

PROFILE = dataclasses.replace(profiles.get("smoke"), sample=profiles.SampleSettings(n_samples=6, temperatures=(1.0,)))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("evaluation_root")
    paths = Paths(root)
    corpus = write_demo_corpus(paths.corpus_dir(PROFILE.corpus.name), n_songs=24, seed=0, progress=False)
    folder = dataset_dir(paths, PROFILE.corpus.name)
    extract(corpus, folder, workers=1, progress=False)
    data = load_loops(folder)
    train, val = data.loops[data.split == "train"], data.loops[data.split == "val"]
    common = dict(data_key=data.data_key, checkpoint_dir=paths.checkpoints, progress=False)
    train_model("cnn_vae", train, val, PROFILE.train, **common)
    vq = train_model("vq_vae", train, val, PROFILE.train, **common)
    train_prior(sample.encode_codes(vq.model, train), PROFILE.train, vq_key=vq.key, num_codes=vq.model.num_codes,
                **common)
    torch.set_num_threads(threads)
    return root


@pytest.fixture
def ev(root, monkeypatch) -> evaluation.Evaluation:
    monkeypatch.setattr(registry, "continuous", lambda: ("cnn_vae",))
    monkeypatch.setattr(registry, "autoencoders", lambda: ("cnn_vae", "vq_vae"))
    return evaluation.Evaluation(PROFILE, seed=0, paths=Paths(root))


def test_opening_a_run_without_its_dataset_names_notebook_01(tmp_path):
    with pytest.raises(MissingInputError, match="01_extract_loops.ipynb"):
        evaluation.Evaluation("smoke", paths=Paths(tmp_path))


def test_the_run_reads_its_splits_and_models_once(ev):
    assert [len(ev.split(name)) for name in ("train", "val")] == [ev.manifest["counts"][n] for n in ("train", "val")]
    assert ev.train is ev.split("train") and ev.model("vq_vae") is ev.model("vq_vae")
    assert ev.train_codes.shape == (len(ev.train), ev.model("vq_vae").latent_steps)
    assert ev.n_samples == 6
    assert list(ev.group_plan()) == ["cnn_vae", "vq_vae_argmax", "vq_vae_temp1", "vq_vae_temp1.2"]
    digest = train.weights_digest(ev.model("vq_vae"))
    assert ev.weights("vq_vae").startswith(f"vq_vae {ev.checkpoint_key('vq_vae')} weights {digest}, prior ")
    with pytest.raises(MissingInputError, match="02_train_autoencoders.ipynb"):
        ev.load("nonar_lstm_vae")


def test_groups_are_sampled_once_then_reused_by_provenance(ev):
    for name in ("training_set", *ev.group_plan()):
        ev.paths.sample_group(ev.profile.name, name).unlink(missing_ok=True)
    first = evaluation.generate_groups(ev)
    assert list(first) == ["training_set", "cnn_vae", "vq_vae_argmax", "vq_vae_temp1", "vq_vae_temp1.2"]
    assert not any(g.reused for g in first.values())
    assert len(first["training_set"].loops) == len(ev.train) and len(first["vq_vae_temp1"].loops) == 6
    assert first["training_set"].provenance.n == len(ev.train)
    assert first["vq_vae_temp1"].provenance.sampling == "temperature 1"
    again = evaluation.generate_groups(evaluation.Evaluation(PROFILE, seed=0, paths=ev.paths))
    assert all(g.reused for g in again.values())
    for name, group in first.items():
        np.testing.assert_array_equal(group.loops, again[name].loops)
    # samples of another model are made anew, never returned
    stale = dataclasses.replace(first["vq_vae_argmax"].provenance, checkpoint="vq_vae 000000000000")
    sample_groups.save_generated(ev.paths, ev.profile.name, "vq_vae_argmax", first["cnn_vae"].loops, provenance=stale)
    with pytest.raises(MissingInputError, match="05_musical_metrics.ipynb"):
        ev.stored_group("vq_vae_argmax")
    third = evaluation.generate_groups(ev)
    assert [n for n, g in third.items() if not g.reused] == ["vq_vae_argmax"]
    np.testing.assert_array_equal(third["vq_vae_argmax"].loops, first["vq_vae_argmax"].loops)


def test_a_reader_of_another_seed_gets_an_error_not_old_samples(ev):
    evaluation.generate_groups(ev)
    other = evaluation.Evaluation(PROFILE, seed=5, paths=ev.paths)
    with pytest.raises(MissingInputError, match="-p SEED 5"):  # its models are not trained: the first thing missing
        other.stored_group("vq_vae_temp1")


def test_tables_are_written_beside_the_paper(ev):
    groups = evaluation.generate_groups(ev)
    table3 = evaluation.musical_metrics_table(ev, groups)
    written = pd.read_csv(ev.paths.figure("table3_musical_metrics.csv"), index_col=0)
    assert "VQ-VAE (temp 1)" in written.index and "HD (paper)" in written.columns
    assert table3.ours.loc["CNN-VAE", "Loopability"] >= 0 and "Table 3" in repr(table3)
    assert "| " in table3._repr_markdown_() and "Loopability" in table3._repr_markdown_()
    table4, before = evaluation.latent_copy_table(ev)
    assert list(table4.ours.index) == list(before.index) == ["VQ-VAE (argmax)", "VQ-VAE (temp 1)"]
    edited = table4.examples["vq_vae_temp1"]
    assert edited.shape == (6, 128, 93) and ev.paths.figure("table4_latent_manipulation.md").exists()
    table1 = evaluation.reconstruction_table(ev)
    assert list(table1.ours.index) == ["CNN-VAE", "VQ-VAE"] and set(table1.examples) == {"CNN-VAE", "VQ-VAE"}
    assert ((table1.ours["reconstruction_error"] >= 0) & (table1.ours["reconstruction_error"] < 1)).all()
    assert ev.paths.figure("table1_reconstruction.csv").exists()
    # the baselines, computed from the same validation loops, close Tables 1 and 3 without a paper value
    silence = metrics.reconstruction_error(ev.val.loops, np.zeros_like(ev.val.loops))
    assert table1.baselines.loc[baselines.SILENCE, "reconstruction_error"] == pytest.approx(silence)
    written1 = pd.read_csv(ev.paths.figure("table1_reconstruction.csv"), index_col=0)
    assert list(written1.index[-2:]) == [baselines.SILENCE, baselines.COPY_BAR_1]
    assert written1.loc[baselines.COPY_BAR_1, "reconstruction_error (paper)"] != written1.loc[
        baselines.COPY_BAR_1, "reconstruction_error (paper)"]  # NaN: the paper has no baseline
    assert table3.table.index[-1] == baselines.SHUFFLED_BARS and written.index[-1] == baselines.SHUFFLED_BARS
    assert table3.baselines.loc[baselines.SHUFFLED_BARS, "UP"] == pytest.approx(table3.ours.loc["Training set", "UP"])
    assert baselines.NOTES[baselines.SHUFFLED_BARS] in table3.notes
    assert evaluation.extras_table(groups).shape[0] == len(groups)


def test_a_model_retrained_under_the_same_key_makes_its_groups_stale(ev, tmp_path):
    evaluation.generate_groups(ev)
    path = train.checkpoint_path("cnn_vae", ev.profile.train, data_key=ev.data_key,
                                 checkpoint_dir=ev.paths.checkpoints, seed=ev.seed)
    saved = path.read_bytes()
    ckpt = train.read_checkpoint(path)
    first = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][first] = ckpt["model"][first] + 1.0  # "retrained": same key, other weights
    train.checkpoint.save_checkpoint(ckpt, path)
    try:
        fresh = evaluation.Evaluation(PROFILE, seed=0, paths=ev.paths)
        with pytest.raises(MissingInputError, match="checkpoint: "):
            fresh.stored_group("cnn_vae")
        fresh.stored_group("vq_vae_temp1")  # the other models' groups stay valid
    finally:
        path.write_bytes(saved)
