"""Per-family batch size: ``TrainSettings.conv_batch_size`` for the CNN-VAE and VQ-VAE."""

from dataclasses import replace

from loopgen.run import profiles
from loopgen.train import batch_size_for, checkpoint_key

BASE = profiles.TrainSettings(epochs=3, batch_size=64)


def test_conv_batch_size_applies_to_convolutional_models_only() -> None:
    s = replace(BASE, conv_batch_size=16)
    assert batch_size_for("vq_vae", s) == 16
    assert batch_size_for("cnn_vae", s) == 16
    assert batch_size_for("ar_lstm_vae", s) == 64
    assert batch_size_for("prior", s) == 64
    assert batch_size_for("vq_vae", BASE) == 64


def test_conv_batch_size_changes_only_the_convolutional_checkpoint_keys() -> None:
    s = replace(BASE, conv_batch_size=16)
    same = replace(BASE, conv_batch_size=64)
    for name in ("vq_vae", "cnn_vae"):
        assert checkpoint_key(name, s, data_key="d") != checkpoint_key(name, BASE, data_key="d")
        assert checkpoint_key(name, same, data_key="d") == checkpoint_key(name, BASE, data_key="d")
    for name in ("ar_lstm_vae", "nonar_lstm_vae"):
        assert checkpoint_key(name, s, data_key="d") == checkpoint_key(name, BASE, data_key="d")


def test_profiles_keep_smoke_and_paper_batches() -> None:
    assert profiles.get("smoke").train.conv_batch_size is None
    assert profiles.get("paper").train.conv_batch_size is None
    assert batch_size_for("vq_vae", profiles.get("paper").train) == 2048
