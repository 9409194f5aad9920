"""The profiles: the paper profile follows the paper where it is explicit; every open choice is listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopgen import paper, train
from loopgen.book import tables
from loopgen.models.lstm_vae import SCHEDULED_SAMPLING_RATE
from loopgen.run import choices, profiles
from loopgen.store.paths import Paths

CHOICES_PAGE = Path(__file__).resolve().parents[1] / "docs" / "choices.md"


def test_choices_page_is_the_generated_table():
    text = CHOICES_PAGE.read_text()
    assert choices.readme_with_open_choices(text) == text, (
        "docs/choices.md is stale: run "
        "python -c \"from loopgen.run import choices; choices.write_readme_open_choices('docs/choices.md')\""
    )


def test_paper_profile_uses_the_papers_explicit_settings():
    t = profiles.get("paper").train
    assert t.epochs == t.lstm_epochs == t.prior_epochs == paper.TRAINING["epochs"]
    assert t.batch_size == paper.TRAINING["batch_size"] and t.conv_batch_size is None
    assert (t.lr_max, t.lr_min) == (1e-3, 5e-6) and t.max_train_loops is None
    assert t.ar_output_bias == "zero", "He initialisation: zero biases"
    assert t.vq_dead_code_restart == 0, "no trick the paper does not mention"
    assert t.vq_loss_reduction == "mean" and t.lstm_encoder_hidden == 128
    assert t.precision == "tf32"
    ar = train.model_config("ar_lstm_vae", train.with_settings("ar_lstm_vae", t))
    assert ar["latent"] == paper.TRAINING["lstm_latent"] and ar["ss_rate"] == SCHEDULED_SAMPLING_RATE
    assert ar["encoder_hidden"] == 128 and ar["output_bias_init"] == "zero"
    vq = train.model_config("vq_vae", train.with_settings("vq_vae", t))
    assert vq["beta"] == paper.TRAINING["vq_beta"] and vq["restart_threshold"] == 0
    assert train.model_config("cnn_vae")["latent"] == paper.TRAINING["cnn_latent"]


def test_demo_keeps_its_short_run_tricks():
    t = profiles.get("demo").train
    assert (t.ar_output_bias, t.vq_dead_code_restart, t.vq_loss_reduction) == ("data_rate", 1.0, "sum")
    assert t.precision == "auto" and t.lstm_encoder_hidden == 128  # the paper profile's reading, on a CPU budget


def test_open_choices_cover_the_settings_the_issue_names_and_read_the_profiles():
    names = {c.setting for c in choices.OPEN_CHOICES}
    for needed in ("Bi-LSTM encoder width", "numeric precision", "VQ dead-code restart", "VQ-VAE loss reduction",
                   "AdamW weight decay and betas", "KL weight beta schedule", "AR LSTM-VAE output bias at start"):
        assert needed in names
    table = choices.open_choices_markdown()
    assert "128 per direction (concatenated h: 256)" in table and "256 per direction (concatenated h: 512)" in table
    assert table.count("\n") == len(choices.OPEN_CHOICES) + 2


def test_paper_tables_end_with_the_open_choices(tmp_path):
    import pandas as pd

    paths = Paths(tmp_path)
    df = pd.DataFrame({"x": [1.0]}, index=["a"])
    _, md = tables.write_table(df, "t", paths=paths, notes=["n"], profile="paper")
    assert "Choices the paper leaves open" in md.read_text()
    _, md = tables.write_table(df, "u", paths=paths, notes=["n"], profile="demo")
    assert "Choices the paper leaves open" not in md.read_text()
    assert choices.open_choices_note("demo") is None


@pytest.mark.parametrize("bad", ["nope"])
def test_vq_loss_reduction_is_checked(bad):
    from loopgen.models import VQVAE

    with pytest.raises(ValueError, match="loss_reduction"):
        VQVAE(loss_reduction=bad)


def test_a_paper_settings_model_trains_and_loads_back(tmp_path):
    import dataclasses

    import numpy as np

    settings = dataclasses.replace(profiles.get("paper").train, lstm_epochs=1, batch_size=4, max_val_loops=None)
    loops = (np.random.default_rng(0).random((8, 128, 93)) < 0.05).astype(np.uint8)
    result = train.train_model(
        "nonar_lstm_vae", loops, None, settings, data_key="k", checkpoint_dir=tmp_path, device="cpu", progress=False
    )
    assert result.model.encoder.lstm.hidden_size == 128
    model, _ = train.load_trained("nonar_lstm_vae", settings, data_key="k", checkpoint_dir=tmp_path)
    assert model.config["encoder_hidden"] == 128
    ckpt = train.read_checkpoint(result.checkpoint)
    assert ckpt["settings"]["precision"] == "tf32"


def test_precision_modes(monkeypatch):
    import torch

    from loopgen.runtime import device

    a = torch.ones(4, 4)
    with device.autocast(torch.device("cpu"), "bf16"):
        assert (a @ a).dtype == torch.bfloat16, "bf16 autocast runs on CPU too (the rehearsal test uses it)"
    for mode in ("fp32", "tf32"):
        with device.autocast(torch.device("cpu"), mode):
            assert (a @ a).dtype == torch.float32
    for has_bf16, dtype in ((False, torch.float32), (True, torch.bfloat16)):  # auto: what the CPU has
        monkeypatch.setattr(device, "cpu_supports_bf16", lambda has=has_bf16: has)
        with device.autocast(torch.device("cpu"), "auto"):
            assert (a @ a).dtype == dtype
    with pytest.raises(ValueError, match="precision"):
        device.autocast(torch.device("cpu"), "fp8")
    assert "float32" in device.describe_device(torch.device("cpu"), "tf32")


@pytest.mark.slow
def test_profiles_are_data_that_import_nothing_from_train():
    """profiles -> train -> profiles was a circle; the settings now stand alone (issue 19)."""
    import subprocess
    import sys

    code = (
        "import sys, loopgen.run.profiles as p; p.get('paper').train.recipe('vq_vae'); import loopgen.run.choices as c; c.open_choices_markdown(); "
        "print(sorted(m for m in sys.modules if m.startswith(('loopgen.train', 'loopgen.train.shipped'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]"


def test_the_colab_profile_is_the_papers_models_and_batch_on_the_demo_corpus():
    colab, paper_p, demo = profiles.get("colab"), profiles.get("paper"), profiles.get("demo")
    assert colab.corpus == demo.corpus
    for name in ("ar_lstm_vae", "nonar_lstm_vae", "cnn_vae", "vq_vae", "prior"):
        c, p = colab.train.recipe(name), paper_p.train.recipe(name)
        assert c.batch_size == p.batch_size == 2048
        assert c.model_kwargs(name) == p.model_kwargs(name), "the paper's model sizes and choices"
        assert demo.train.recipe(name).epochs < c.epochs < p.epochs
    assert colab.train.precision == "auto", "fp16 with loss scaling on a T4 (no native bf16), bf16 where the GPU has it"
