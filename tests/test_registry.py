"""One registry: a toy model registered in one place trains, samples, gets a metric row and a table row."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from loopgen import LOOP_STEPS, N_COLUMNS, metrics, paper, registry, sample, train
from loopgen.book import tables
from loopgen.models.base import ContinuousVAE
from loopgen.models.blocks import GaussianHead
from loopgen.run.profiles import TrainSettings
from loopgen.train.checkpoint import weight_settings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ToyVAE(ContinuousVAE):
    """A linear VAE: the smallest model that fits the loop interface."""

    name = "toy_vae"

    def __init__(self, latent: int = 8) -> None:
        super().__init__()
        self.config = {"latent": latent}
        self.latent_size = latent
        self.head = GaussianHead(LOOP_STEPS * N_COLUMNS, latent)
        self.out = nn.Linear(latent, LOOP_STEPS * N_COLUMNS)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(x.flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(z).view(-1, LOOP_STEPS, N_COLUMNS)


@pytest.fixture
def toy():
    spec = registry.register(registry.ModelSpec("toy_vae", "Toy VAE", f"{__name__}:ToyVAE", registry.CONTINUOUS))
    yield spec
    registry.unregister("toy_vae")


def test_the_paper_models_are_registered_once_with_the_papers_labels():
    assert registry.autoencoders() == ("ar_lstm_vae", "nonar_lstm_vae", "cnn_vae", "vq_vae")
    assert registry.continuous() == ("ar_lstm_vae", "nonar_lstm_vae", "cnn_vae")
    assert list(paper.TABLE1.index) == [registry.get(n).title for n in registry.autoencoders()]
    assert paper.DEFAULT_VQ_SETTING == registry.VQ_DEFAULT and paper.TABLE2_SETTINGS == registry.TABLE2_SETTINGS
    with pytest.raises(ValueError, match="unknown model"):
        registry.get("nope")


def test_a_toy_model_registered_in_one_place_goes_through_the_whole_pipeline(toy, tmp_path):
    rng = np.random.default_rng(0)
    loops = (rng.random((40, LOOP_STEPS, N_COLUMNS)) < 0.03).astype(np.uint8)
    loops[:, ::16, 0] = 1
    settings = TrainSettings(epochs=2, batch_size=8, max_val_loops=8)
    assert "toy_vae" in registry.autoencoders() and "toy_vae" in registry.continuous()

    result = train.train_model("toy_vae", loops[:32], loops[32:], settings, data_key="toy", checkpoint_dir=tmp_path, progress=False)
    assert result.finished and result.checkpoint.name.startswith("toy_vae-")
    assert "kl_anneal_fraction" in weight_settings("toy_vae", settings)  # a Gaussian latent: KL keyed
    model, history = train.load_trained("toy_vae", settings, data_key="toy", checkpoint_dir=tmp_path)
    assert len(history) == 2

    generated = sample.sample_vae(model, 16, seed=0)
    row = metrics.metric_row(generated)
    ours = metrics.metric_table({registry.get("toy_vae").title: row, "Training set": metrics.metric_row(loops)})
    table = tables.side_by_side(ours, paper.TABLE3)
    assert "Toy VAE" in table.index and np.isfinite(table.loc["Toy VAE"].to_numpy(dtype=float, na_value=np.nan)).any()
    note = train.training_notes(["toy_vae"], settings, data_key="toy", checkpoint_dir=tmp_path)[0]
    assert "Toy VAE: trained here (2 epochs, batch 8)" in note


def test_sample_groups_are_the_papers_rows_and_listening_group():
    from loopgen import paper

    labels = [paper.GROUP_LABELS[g] for g in registry.sample_groups()]
    assert set(paper.TABLE3.index) <= set(labels)
    assert registry.LISTENING_TEMPERATURE == paper.LISTENING.vq_vae_temperature
    assert paper.GROUP_LABELS[registry.LISTENING_TEMPERATURE_GROUP] in paper.LISTENING.groups
    assert [paper.GROUP_LABELS[g] for g in registry.listening_groups()] == list(paper.LISTENING.groups)
