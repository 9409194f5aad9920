"""The sensitivity checks of notebook 08 on tiny data: tables, computed verdicts, reuse of checkpoints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from loopgen.book import sensitivity
from loopgen.run import profiles

SETTINGS = dataclasses.replace(
    profiles.get("smoke").train, epochs=1, prior_epochs=1, batch_size=8, max_train_loops=None, max_val_loops=None
)


def _loops(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 128, 93)) < 0.04).astype(np.uint8)


@pytest.fixture(scope="module")
def data():
    return _loops(16, 0), _loops(4, 1)


def _runs(data, checkpoint_dir) -> sensitivity.Runs:
    return sensitivity.Runs(*data, SETTINGS, data_key="k", checkpoint_dir=checkpoint_dir, device="cpu")


def _check(finding: sensitivity.Finding, rows: int) -> None:
    assert len(finding.table) == rows and isinstance(finding.holds, bool)
    assert finding.verdict.startswith("Holds" if finding.holds else "Does not hold")


def test_kl_weight(data, tmp_path):
    f = sensitivity.kl_weight(_runs(data, tmp_path), n_samples=8)
    _check(f, 3)
    assert list(f.table.index) == ["beta = 0.001", "beta = 1", "training set"]


def test_commitment_weight_reuses_checkpoints(data, tmp_path):
    f = sensitivity.commitment_weight(_runs(data, tmp_path))
    _check(f, 3)
    assert len(list(tmp_path.glob("vq_vae*.pt"))) == 3
    again = sensitivity.commitment_weight(_runs(data, tmp_path))
    assert again.table.equals(f.table)


def test_prior_compression_and_seed_spread(data, tmp_path):
    f = sensitivity.prior_compression(_runs(data, tmp_path))
    _check(f, 2)
    s = sensitivity.seed_spread(_runs(data, tmp_path), seeds=(0, 1), n_samples=8)
    _check(s, 3)  # two seeds and the spread row


def test_prior_compression_after_seed_spread_of_the_previous_seed(data, tmp_path):
    """Notebook 08 run with seed 0 and then seed 1 in one root: seed 0's seed_spread trained seed 1's prior without
    validation codes; seed 1's prior_compression reuses that checkpoint and must still report validation numbers."""
    sensitivity.seed_spread(_runs(data, tmp_path), seeds=(0, 1), n_samples=8)
    f = sensitivity.prior_compression(_runs(data, tmp_path), seed=1)
    _check(f, 2)
    assert f.table["prior val accuracy"].notna().all() and f.table["prior val cross-entropy"].notna().all()


def test_verdicts_follow_the_numbers():
    ref = {"HD": 1e-3, "DB": 0.0, "UP": 10.0, "ND": 1.0}
    assert sensitivity.distance_to_data(ref, ref) == 0
    assert sensitivity.distance_to_data({**ref, "UP": 20.0}, ref) == pytest.approx(0.25)
