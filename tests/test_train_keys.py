"""Checkpoint keys never drift: shipped weights and every finished checkpoint are found by them."""

from __future__ import annotations

import pytest

from loopgen.run import profiles
from loopgen.train import checkpoint_key, shipped

# checkpoint_key(name, profile.train, data_key="d", vq_key="v"), as computed before train became a package
# (demo-long ar_lstm_vae: its recipe changed on purpose, 48 epochs on a 200-epoch scheduled-sampling axis)
KEYS = {
    "smoke": {"ar_lstm_vae": "b1a731d4c7ee", "nonar_lstm_vae": "5b510d0776e2", "cnn_vae": "827558b3ccf6", "vq_vae": "0eba89fa466f", "prior": "5b05bda66a03"},
    "demo": {"ar_lstm_vae": "ec97efe8425f", "nonar_lstm_vae": "983309135998", "cnn_vae": "b57f5ed600ad", "vq_vae": "216d52c1774c", "prior": "da9a53d999dd"},
    "demo-long": {"ar_lstm_vae": "140a46bde9ec", "nonar_lstm_vae": "871b48660591", "cnn_vae": "b57f5ed600ad", "vq_vae": "216d52c1774c", "prior": "da9a53d999dd"},
    "paper": {"ar_lstm_vae": "d39e1d0ed0bc", "nonar_lstm_vae": "60c9c8c6b47e", "cnn_vae": "cb07e105a2a9", "vq_vae": "31548bb6008f", "prior": "515bae02be70"},
}


@pytest.fixture
def float32_machine(monkeypatch):
    """A machine where precision "auto" is float32 (no bf16 units, no GPU): the keys every earlier checkpoint,
    trained in float32, was saved under. Where "auto" gives bf16 the demo's keys say so (test_train_gpu_path)."""
    from loopgen.runtime import device

    monkeypatch.setattr(device, "cpu_supports_bf16", lambda: False)
    monkeypatch.setattr(device.torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("profile", sorted(KEYS))
def test_checkpoint_keys_are_the_ones_every_earlier_checkpoint_was_saved_under(profile, float32_machine):
    settings = profiles.get(profile).train
    keys = {name: checkpoint_key(name, settings, data_key="d", vq_key="v") for name in KEYS[profile]}
    assert keys == KEYS[profile]


def test_the_shipped_weights_match_the_keys_of_their_profile():
    index = shipped.read_index()
    assert index, "the package ships weights"
    for entry in index.values():
        settings = profiles.get(entry["profile"]).train
        assert checkpoint_key(entry["name"], settings, data_key=entry["data_key"]) == entry["key"]
