"""Per-model recipes, the short-run tricks (warm-up, clipping, best epoch) and shipped weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from loopgen import train
from loopgen.run import profiles
from loopgen.run.profiles import TrainSettings
from loopgen.train import shipped
from loopgen.train.checkpoint import weight_settings
from loopgen.train.export import export

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = TrainSettings(
    epochs=2, lstm_epochs=1, prior_epochs=2, batch_size=16, max_train_loops=48, max_val_loops=16, precision="fp32"
)


@pytest.fixture(scope="module")
def loops() -> np.ndarray:
    rng = np.random.default_rng(1)
    x = (rng.random((70, 128, 93)) < 0.02).astype(np.uint8)
    x[:, ::16, 0] = 1
    return x


def test_recipe_resolves_family_fields_then_per_model_overrides_and_is_idempotent():
    s = dataclasses.replace(
        BASE,
        conv_batch_size=8,
        per_model={"vq_vae": {"epochs": 5, "lr_max": 2e-3}, "prior": {"model": {"dropout": 0.5}}},
    )
    vq = s.recipe("vq_vae")
    assert (vq.epochs, vq.batch_size, vq.lr_max) == (5, 8, 2e-3)
    assert s.recipe("ar_lstm_vae").epochs == 1 and s.recipe("prior").epochs == 2
    assert vq.recipe("vq_vae") == vq
    assert s.model_kwargs("prior")["dropout"] == 0.5
    assert train.resolved_kwargs("prior", s, {"dropout": 0.1})["dropout"] == 0.1  # a call's own wins
    with pytest.raises(ValueError, match="unknown training settings"):
        dataclasses.replace(BASE, per_model={"vq_vae": {"epoch": 3}}).recipe("vq_vae")


def test_recipe_changes_the_key_of_its_model_only():
    s = dataclasses.replace(BASE, per_model={"cnn_vae": {"epochs": 7}})
    assert train.checkpoint_key("cnn_vae", s, data_key="d") != train.checkpoint_key("cnn_vae", BASE, data_key="d")
    assert train.checkpoint_key("vq_vae", s, data_key="d") == train.checkpoint_key("vq_vae", BASE, data_key="d")
    # the plain settings (smoke, paper) keep the keys they had before recipes existed
    plain = weight_settings("vq_vae", BASE)
    assert not {"warmup_steps", "grad_clip", "keep_best"} & set(plain)


def test_warmup_then_cosine():
    lrs = [train.warmup_cosine_lr(step, 100, 10, 1e-3, 5e-6) for step in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] < 2e-5


def test_keep_best_ends_with_the_best_validation_epoch(loops, tmp_path):
    s = dataclasses.replace(BASE, epochs=4, keep_best=True, grad_clip=1.0, warmup_steps=2, max_val_loops=None)
    result = train.train_model("cnn_vae", loops[:48], loops[48:], s, data_key="k", checkpoint_dir=tmp_path, progress=False)
    h = result.history
    best_epoch = int(h.loc[h["val_recon"].idxmin(), "epoch"])
    ckpt = train.read_checkpoint(result.checkpoint)
    assert ckpt["finished"] and ckpt["best_epoch"] == best_epoch and ckpt["best"] is None
    model, _ = train.load_trained("cnn_vae", s, data_key="k", checkpoint_dir=tmp_path)
    x = torch.from_numpy(loops[48:]).float()
    with torch.no_grad():
        logits = model.reconstruct_logits(x)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    assert float(bce) == pytest.approx(float(h["val_recon"].min()), rel=1e-4)


def test_demo_recipes_are_the_profile_and_demo_long_only_lengthens_the_lstms():
    demo, long = profiles.get("demo").train, profiles.get("demo-long").train
    for name in ("vq_vae", "cnn_vae"):  # the same weights: demo-long reuses the demo's checkpoints
        assert train.checkpoint_key(name, demo, data_key="d") == train.checkpoint_key(name, long, data_key="d")
    for name in ("ar_lstm_vae", "nonar_lstm_vae"):
        assert demo.recipe(name).shipped_from == "demo-long" and long.recipe(name).shipped_from is None
        assert long.recipe(name).epochs > 5 * demo.recipe(name).epochs
    assert profiles.get("paper").train.recipe("vq_vae").epochs == 2000


def _ship_a_long_run(loops, tmp_path, monkeypatch):
    """A "long-test" profile trained for 2 epochs and shipped into a private folder, and a short recipe that
    names it: (the long run's result, the short settings, the shipped folder, the shipped file)."""
    long = dataclasses.replace(BASE, epochs=2, lstm_epochs=2)
    short = dataclasses.replace(BASE, epochs=1, lstm_epochs=1, per_model={"nonar_lstm_vae": {"shipped_from": "long-test"}})
    monkeypatch.setitem(profiles.PROFILES, "long-test", profiles.Profile(name="long-test", train=long))
    folder = tmp_path / "shipped"
    monkeypatch.setattr(shipped, "SHIPPED_DIR", folder)
    trained_long = train.train_model(
        "nonar_lstm_vae", loops[:48], loops[48:], long, data_key="k", checkpoint_dir=tmp_path / "a", progress=False
    )
    return trained_long, short, folder, export(trained_long.checkpoint, "long-test", folder)


def test_shipped_weights_install_when_they_match_and_are_refused_when_damaged(loops, tmp_path, monkeypatch):
    """A demo recipe that names shipped weights uses them (and says so) only when key and SHA-256 match."""
    trained_long, short, folder, out = _ship_a_long_run(loops, tmp_path, monkeypatch)
    assert out.stat().st_size < 3e6 and shipped.read_index(folder)[out.name]["key"] == trained_long.key

    # a fresh machine: the demo installs the shipped weights instead of training
    result = train.train_model(
        "nonar_lstm_vae", loops[:48], loops[48:], short, data_key="k", checkpoint_dir=tmp_path / "b", progress=False
    )
    assert result.weights == "shipped (long-test)" and result.reused
    model, _ = train.load_trained("nonar_lstm_vae", short, data_key="k", checkpoint_dir=tmp_path / "b")
    for k, v in trained_long.model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v.half().float(), msg=k)
    note = train.training_notes(["nonar_lstm_vae"], short, data_key="k", checkpoint_dir=tmp_path / "b")[0]
    assert "SHIPPED long-test weights" in note

    # another dataset: no match, the short recipe trains here and the note says so
    other = train.train_model(
        "nonar_lstm_vae", loops[:48], loops[48:], short, data_key="other", checkpoint_dir=tmp_path / "c", progress=False
    )
    assert other.weights == "trained here" and not other.reused
    assert "trained here" in train.training_notes(["nonar_lstm_vae"], short, data_key="other", checkpoint_dir=tmp_path / "c")[0]

    # a damaged file is refused, never loaded
    out.write_bytes(out.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ValueError, match="do not match"):
        shipped.load("nonar_lstm_vae", trained_long.key, folder)


def test_force_trains_the_own_recipe_instead_of_the_shipped_weights_and_it_stays_in_use(loops, tmp_path, monkeypatch, capsys):
    """``train --force`` of a model with shipped weights (the demo's LSTM-VAEs) trains the profile's own recipe
    here, says so in one line, and that model is the one loaded and reused afterwards; deleting it brings the
    shipped weights back. Before, force installed the shipped weights again (then retrained their long recipe)."""
    _, short, _, _ = _ship_a_long_run(loops, tmp_path, monkeypatch)
    here = tmp_path / "b"
    call = dict(data_key="k", checkpoint_dir=here, progress=False)
    assert train.train_model("nonar_lstm_vae", loops[:48], loops[48:], short, **call).weights == "shipped (long-test)"
    capsys.readouterr()

    forced = train.train_model("nonar_lstm_vae", loops[:48], loops[48:], short, force=True, **call)
    said = capsys.readouterr().err
    assert forced.weights == "trained here" and not forced.reused and forced.epochs_this_call == 1
    assert len(forced.history) == short.recipe("nonar_lstm_vae").epochs
    assert "instead of installing the shipped long-test weights" in said and len(said.strip().splitlines()) == 1
    model, _ = train.load_trained("nonar_lstm_vae", short, **{k: v for k, v in call.items() if k != "progress"})
    assert train.weights_digest(model) == train.weights_digest(forced.model), "the forced model is the one loaded"
    assert "trained here" in train.training_notes(["nonar_lstm_vae"], short, data_key="k", checkpoint_dir=here)[0]
    again = train.train_model("nonar_lstm_vae", loops[:48], loops[48:], short, **call)
    assert again.reused and again.weights == "trained here", "a later call reuses it, no reinstall"

    forced.checkpoint.unlink()  # deleting it brings the shipped weights back
    assert train.train_model("nonar_lstm_vae", loops[:48], loops[48:], short, **call).weights == "shipped (long-test)"


def test_train_help_says_what_force_does(capsys):
    from loopgen.commands import train as train_command

    with pytest.raises(SystemExit):
        train_command._parse(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "retrain from scratch even if a finished checkpoint exists" in text
    assert "instead of installing them" in text and "fp16" in text


def test_recipe_table_names_every_setting():
    table = train.recipe_table("prior", profiles.get("demo").train, 6000, 700)
    assert isinstance(table, pd.Series)
    assert {"epochs", "batch size", "optimiser steps", "weights kept", "paper"} <= set(table.index)
    assert "dropout" in str(table["model arguments set by the profile"])


def test_the_corpus_is_the_same_whatever_the_number_of_writers(tmp_path):
    from loopgen.data.corpus import write_demo_corpus

    one = write_demo_corpus(tmp_path / "one", 6, seed=3, progress=False, workers=1)
    two = write_demo_corpus(tmp_path / "two", 6, seed=3, progress=False, workers=2)
    names = sorted(p.name for p in one.glob("*.mid"))
    assert names == sorted(p.name for p in two.glob("*.mid")) and len(names) == 6
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes()
