"""The rehearsal: every training of the paper profile, a few steps on random loops, through the real code path."""

from __future__ import annotations

import math

import pytest

from loopgen import paper
from loopgen.run import profiles, rehearse


def test_rehearsal_of_the_paper_profile_runs_every_training_and_resumes(tmp_path):
    # a small batch keeps it quick; bf16 autocast on CPU goes through the same autocast path as CUDA
    table = rehearse.rehearse(
        "paper", steps=2, device="cpu", batch_size=4, precision="bf16", n_samples=4,
        checkpoint_dir=tmp_path, log=lambda *_: None,
    )
    assert list(table.index) == [r.label for r in rehearse.trainings()]
    assert len(table) == 10 and table["resumed"].all()
    assert (table["batch"] == 4).all() and (table["steps"] == 3).all(), "an epoch, then a warm-up and a timed one"
    assert (table["device"] == "cpu").all()
    for _, row in table.iterrows():
        assert row["samples/s"] > 0 and row["peak memory (MB)"] > 0 and math.isfinite(row["loss"])
        expected = paper.TRAINING["epochs"] * paper.DATASET.train / row["samples/s"] / 3600
        assert row["projected full run (h)"] == pytest.approx(expected)
        assert row["validation (s)"] > 0 and row["checkpoint (s)"] > 0
        overhead = rehearse.overhead_hours(profiles.get("paper").train, row["validation (s)"], row["checkpoint (s)"])
        assert row["projected with validation and checkpoints (h)"] == pytest.approx(expected + overhead)
        assert 0 <= row["FNB"] <= 1
    assert len(list(tmp_path.glob("*.pt"))) == 10, "one checkpoint per training"


def test_rehearsal_command_line(capsys):
    from loopgen.__main__ import main

    code = main(["rehearse", "--steps", "2", "--batch-size", "4", "--device", "cpu", "--only", "prior",
                 "--samples", "4"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| prior" in out and "| vq_vae " in out, "the prior brings its VQ-VAE"
    assert f"{paper.TRAINING_HOURS_BELOW} h" in out


def test_rehearsal_refuses_a_single_step():
    with pytest.raises(ValueError, match="at least 2"):
        rehearse.rehearse("smoke", steps=1)


def test_the_projection_counts_the_profiles_validations_and_checkpoints():
    paper_settings = profiles.get("paper").train
    assert paper_settings.validate_every == 10 and paper_settings.checkpoint_every == 10
    hours = rehearse.overhead_hours(paper_settings, validation_seconds=1.0, checkpoint_seconds=0.5)
    assert hours == pytest.approx((200 * 1.0 + 200 * 0.5) / 3600), "2,000 epochs: 200 of each"
    every_epoch = rehearse.overhead_hours(profiles.get("demo").train, 1.0, 0.5)
    assert every_epoch == pytest.approx(2000 * 1.5 / 3600)


def test_the_rehearsal_projects_a_profiles_own_run():
    rate = 2000.0
    colab = profiles.get("colab")
    hours = rehearse.profile_hours("colab", "cnn_vae", "cnn_vae", rate)
    assert hours == pytest.approx(colab.train.recipe("cnn_vae").epochs * profiles.TRAIN_LOOPS_ESTIMATE["colab"] / rate / 3600)
    table2 = rehearse.profile_hours("colab", "vq_vae", "vq_vae_t64_L32_K512", rate)
    assert table2 == pytest.approx(colab.table2_vq_epochs * profiles.TRAIN_LOOPS_ESTIMATE["colab"] / rate / 3600)
    assert rehearse.profile_hours("paper", "prior", "prior", rate) == pytest.approx(rehearse.projected_hours(rate))
