"""Training loop: schedules, checkpoints keyed by run, reuse, safe loading, clear errors (resuming: test_train_resume.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from loopgen.run.profiles import TrainSettings, get
from loopgen.store.paths import MissingInputError
from loopgen.train import (
    checkpoint_key,
    checkpoint_path,
    cosine_lr,
    epochs_for,
    kl_beta_at,
    load_trained,
    train_model,
    train_prior,
)

SETTINGS = TrainSettings(
    epochs=2, lstm_epochs=1, prior_epochs=2, batch_size=16, max_train_loops=48, max_val_loops=16
)


# one torch thread per test: small batches are overhead-bound, and it is fair to other jobs
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def loops() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = (rng.random((80, 128, 93)) < 0.02).astype(np.uint8)
    x[:, ::16, 0] = 1  # a kick on every bar: something learnable
    return x


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], atol=1e-6, rtol=1e-6, msg=k)


# ------------------------------------------------------------------------------------ schedules
def test_kl_weight_rises_linearly_then_stays_at_one():
    assert kl_beta_at(0, 100, 0.5) == 0.0
    assert kl_beta_at(25, 100, 0.5) == pytest.approx(0.5)
    assert kl_beta_at(50, 100, 0.5) == 1.0
    assert kl_beta_at(99, 100, 0.5) == 1.0
    assert kl_beta_at(3, 100, 0.0) == 1.0


def test_cosine_learning_rate_runs_from_max_to_min():
    assert cosine_lr(0, 10, 1e-3, 5e-6) == pytest.approx(1e-3)
    assert cosine_lr(5, 10, 1e-3, 5e-6) == pytest.approx((1e-3 + 5e-6) / 2)
    assert cosine_lr(10, 10, 1e-3, 5e-6) == pytest.approx(5e-6)


def test_lstm_models_and_prior_use_their_own_epoch_counts():
    s = TrainSettings(epochs=30, lstm_epochs=8, prior_epochs=20)
    assert [epochs_for(n, s) for n in ("cnn_vae", "vq_vae", "ar_lstm_vae", "nonar_lstm_vae", "prior")] == [
        30,
        30,
        8,
        8,
        20,
    ]


# ------------------------------------------------------------------------------------ checkpoint keys
def test_checkpoint_key_depends_on_what_changes_the_weights_only():
    base = checkpoint_key("vq_vae", SETTINGS, data_key="d1")
    assert base == checkpoint_key(
        "vq_vae", SETTINGS, data_key="d1", model_kwargs={"latent_steps": 32, "num_codes": 512}
    )
    assert base != checkpoint_key("vq_vae", SETTINGS, data_key="d2")
    assert base != checkpoint_key("vq_vae", SETTINGS, data_key="d1", seed=1)
    assert base != checkpoint_key("vq_vae", SETTINGS, data_key="d1", model_kwargs={"num_codes": 256})
    assert base != checkpoint_key(
        "vq_vae", TrainSettings(**{**SETTINGS.__dict__, "epochs": 3}), data_key="d1"
    )
    # other models' epochs and the validation cap do not retrain the VQ-VAE
    other = TrainSettings(**{**SETTINGS.__dict__, "lstm_epochs": 9, "prior_epochs": 9, "max_val_loops": 5})
    assert base == checkpoint_key("vq_vae", other, data_key="d1")
    # the AR LSTM-VAE's schedule axis and bias initialisation are part of its key
    ar = checkpoint_key("ar_lstm_vae", SETTINGS, data_key="d1")
    assert ar != checkpoint_key("ar_lstm_vae", SETTINGS, data_key="d1", model_kwargs={"ss_paper_epochs": 40})
    assert ar != checkpoint_key("ar_lstm_vae", SETTINGS, data_key="d1", model_kwargs={"output_bias_init": "zero"})
    path = checkpoint_path(
        "vq_vae", SETTINGS, data_key="d1", checkpoint_dir="/x", model_kwargs={"latent_steps": 64}
    )
    assert path.name.startswith("vq_vae-t64-L16-K512-") and path.suffix == ".pt"


# ------------------------------------------------------------------------------------ training
def test_training_writes_a_finished_checkpoint_and_a_history(tmp_path, loops):
    result = train_model(
        "vq_vae", loops[:64], loops[64:], SETTINGS, data_key="d", checkpoint_dir=tmp_path, progress=False
    )
    assert result.finished and not result.reused and result.epochs_this_call == 2
    h = result.history
    assert list(h["epoch"]) == [1.0, 2.0]
    for column in (
        "loss",
        "recon",
        "commitment",
        "perplexity",
        "dead_codes",
        "val_recon_error",
        "lr",
        "seconds",
    ):
        assert column in h and h[column].notna().all(), column
    assert 1.0 <= h["perplexity"].iloc[-1] <= 512
    assert 0.0 <= h["val_recon_error"].iloc[-1] <= 1.0
    assert h["lr"].iloc[-1] == pytest.approx(SETTINGS.lr_min)  # cosine ends at lr_min
    assert not result.model.training


def test_vae_history_has_kl_terms_and_ar_its_teacher_probability(tmp_path, loops):
    result = train_model(
        "ar_lstm_vae",
        loops[:32],
        loops[64:72],
        SETTINGS,
        data_key="d",
        checkpoint_dir=tmp_path,
        progress=False,
    )
    h = result.history
    assert {"recon", "kl", "kl_beta", "teacher_prob", "val_recon_error"} <= set(h.columns)
    assert h["teacher_prob"].iloc[0] == pytest.approx(20 / 21)


def test_a_finished_checkpoint_is_reused_unless_forced(tmp_path, loops):
    args = dict(data_key="d", checkpoint_dir=tmp_path, progress=False)
    first = train_model("cnn_vae", loops[:64], None, SETTINGS, **args)
    again = train_model("cnn_vae", loops[:64], None, SETTINGS, **args)
    assert again.reused and again.epochs_this_call == 0
    _same_weights(first.model, again.model)
    assert again.history.equals(first.history)
    forced = train_model("cnn_vae", loops[:64], None, SETTINGS, force=True, **args)
    assert not forced.reused and forced.epochs_this_call == 2


def test_checkpoints_load_with_weights_only(tmp_path, loops):
    result = train_model(
        "vq_vae", loops[:32], None, SETTINGS, data_key="d", checkpoint_dir=tmp_path, progress=False
    )
    ckpt = torch.load(result.checkpoint, weights_only=True)
    assert {"model", "optimizer", "scheduler", "rng", "history", "finished", "key"} <= set(ckpt)
    assert ckpt["key"] == result.key and ckpt["finished"]
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files
    model, history = load_trained("vq_vae", SETTINGS, data_key="d", checkpoint_dir=tmp_path)
    _same_weights(model, result.model)
    assert not model.training and len(history) == 2


def test_load_trained_names_the_notebook_to_run(tmp_path):
    demo = get("demo").train
    with pytest.raises(
        MissingInputError, match="02_train_autoencoders.ipynb.*-p PROFILE demo -p MODEL cnn_vae"
    ):
        load_trained("cnn_vae", demo, data_key="d", checkpoint_dir=tmp_path)
    with pytest.raises(MissingInputError, match="-p VQ_T 64 -p VQ_L 16 -p VQ_K 256"):
        load_trained(
            "vq_vae",
            demo,
            data_key="d",
            model_kwargs={"latent_steps": 64, "num_codes": 256},
            checkpoint_dir=tmp_path,
        )
    with pytest.raises(MissingInputError, match="03_train_prior.ipynb"):
        load_trained("prior", demo, data_key="d", checkpoint_dir=tmp_path)


def test_an_unfinished_checkpoint_is_not_served_as_trained(tmp_path, loops):
    train_model(
        "vq_vae",
        loops[:32],
        None,
        SETTINGS,
        data_key="d",
        checkpoint_dir=tmp_path,
        progress=False,
        max_epochs_this_call=1,
    )
    with pytest.raises(MissingInputError, match="unfinished"):
        load_trained("vq_vae", SETTINGS, data_key="d", checkpoint_dir=tmp_path)


def test_bad_training_input_is_a_clear_error(tmp_path, loops):
    with pytest.raises(ValueError, match="shape"):
        train_model(
            "cnn_vae", loops[:, :64], None, SETTINGS, data_key="d", checkpoint_dir=tmp_path, progress=False
        )
    with pytest.raises(ValueError, match="empty"):
        train_model(
            "cnn_vae", loops[:0], None, SETTINGS, data_key="d", checkpoint_dir=tmp_path, progress=False
        )
    with pytest.raises(ValueError, match="train_prior"):
        train_model("prior", loops, None, SETTINGS, data_key="d", checkpoint_dir=tmp_path, progress=False)


# ------------------------------------------------------------------------------------ the prior
def test_prior_learns_a_deterministic_code_sequence_and_loads_by_its_vq(tmp_path):
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 8, size=200)
    codes = (starts[:, None] + np.arange(32)[None, :]) % 16  # next code = previous + 1 (mod 16)
    s = TrainSettings(prior_epochs=12, batch_size=32)
    vq_key = checkpoint_key("vq_vae", s, data_key="d", model_kwargs={"num_codes": 16})
    small = {"embed_dim": 32, "hidden": 64}
    result = train_prior(
        codes,
        s,
        data_key="d",
        vq_key=vq_key,
        checkpoint_dir=tmp_path,
        num_codes=16,
        val_codes=codes[:50],
        model_kwargs=small,
        progress=False,
    )
    assert result.finished
    assert result.history["val_accuracy"].iloc[-1] > 0.9
    assert math.isfinite(result.history["val_loss"].iloc[-1])
    prior, history = load_trained(
        "prior", s, data_key="d", checkpoint_dir=tmp_path, model_kwargs=small, vq_kwargs={"num_codes": 16}
    )
    _same_weights(prior, result.model)
    assert prior.num_codes == 16 and prior.seq_len == 32 and len(history) == 12
    with pytest.raises(ValueError, match="outside"):
        train_prior(
            codes + 16, s, data_key="d", vq_key=vq_key, checkpoint_dir=tmp_path, num_codes=16, progress=False
        )


def test_cli_without_a_dataset_names_notebook_01(tmp_path, monkeypatch, capsys):
    from loopgen.commands.train import main

    monkeypatch.setenv("LOOPGEN_ROOT", str(tmp_path))
    assert main(["--model", "cnn_vae", "--profile", "smoke"]) == 1
    assert "01_extract_loops.ipynb" in capsys.readouterr().err
