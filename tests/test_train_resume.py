"""Checkpoints inside an epoch (``TrainSettings.checkpoint_minutes``): a run killed mid-epoch resumes there."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from loopgen import train
from loopgen.run import profiles
from loopgen.train import loop


class Killed(Exception):
    pass


def _codes(n: int = 48) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 16, size=(n, 8))


def _settings(**kw) -> train.TrainSettings:
    base = profiles.get("smoke").train
    return dataclasses.replace(base, prior_epochs=2, batch_size=8, max_train_loops=None, **kw)


def _prior(settings, tmp_path, **kw):
    return train.train_prior(
        _codes(), settings, data_key="d", vq_key="v", checkpoint_dir=tmp_path, num_codes=16,
        model_kwargs={"embed_dim": 8, "hidden": 16}, device="cpu", progress=False, **kw,
    )


def test_a_run_killed_inside_an_epoch_resumes_there_and_ends_as_the_uninterrupted_run(tmp_path, monkeypatch):
    settings = _settings(checkpoint_minutes=1e-9)  # a checkpoint after every step
    reference = _prior(settings, tmp_path / "ref")

    real_save = loop.save_checkpoint
    saves = []

    def save_then_kill(obj, path):
        real_save(obj, path)
        saves.append(obj.get("partial"))
        if len(saves) == 4:  # killed after the 4th step of the first epoch (6 steps per epoch)
            raise Killed

    monkeypatch.setattr(loop, "save_checkpoint", save_then_kill)
    with pytest.raises(Killed):
        _prior(settings, tmp_path / "run")
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    ckpt = train.read_checkpoint(next((tmp_path / "run").glob("*.pt")))
    assert ckpt["epoch"] == 0 and ckpt["partial"]["step_in_epoch"] == 4

    resumed = _prior(settings, tmp_path / "run")
    assert resumed.finished and not resumed.reused
    for name, value in reference.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=0, atol=0)
    assert resumed.history["loss"].tolist() == pytest.approx(reference.history["loss"].tolist())


def test_checkpoint_minutes_default_keeps_the_checkpoint_key():
    a = train.checkpoint_key("prior", _settings(), data_key="d", vq_key="v")
    b = train.checkpoint_key("prior", _settings(checkpoint_minutes=5.0), data_key="d", vq_key="v")
    assert a == b, "how often a run is saved does not change its weights"
