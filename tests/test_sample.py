"""Sampling and code edits: shapes, determinism, argmax, first codes, decoding, hand-checked code statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from loopgen import sample
from loopgen.models import build

# one torch thread per test: small batches are overhead-bound, and it is fair to other jobs
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def loops() -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.random((20, 128, 93)) < 0.03).astype(np.uint8)


@pytest.fixture(scope="module")
def vq():
    torch.manual_seed(0)
    return build("vq_vae", num_codes=64)


@pytest.fixture(scope="module")
def prior():
    torch.manual_seed(0)
    return build("prior", num_codes=64, seq_len=32, embed_dim=16, hidden=32)


def test_reconstruct_gives_binary_loops_and_keeps_the_model_mode(loops):
    torch.manual_seed(0)
    model = build("cnn_vae").train()
    out = sample.reconstruct(model, loops, batch_size=7)
    assert out.shape == loops.shape and out.dtype == np.uint8
    assert set(np.unique(out)) <= {0, 1}
    assert model.training  # restored
    again = sample.reconstruct(model, loops, batch_size=20)
    np.testing.assert_array_equal(out, again)  # eval mode: batch size does not matter


def test_reconstruct_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="shape"):
        sample.reconstruct(build("cnn_vae"), np.zeros((2, 64, 93), np.uint8))


def test_sample_vae_is_seeded_and_batched():
    torch.manual_seed(0)
    model = build("nonar_lstm_vae")
    a = sample.sample_vae(model, 5, seed=3, batch_size=2)
    b = sample.sample_vae(model, 5, seed=3, batch_size=5)
    c = sample.sample_vae(model, 5, seed=4)
    assert a.shape == (5, 128, 93) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sample_vae_needs_a_continuous_vae(vq):
    with pytest.raises(TypeError):
        sample.sample_vae(vq, 2)


def test_codes_round_trip_equals_vq_reconstruction(vq, loops):
    codes = sample.encode_codes(vq, loops, batch_size=6)
    assert codes.shape == (20, 32) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() < 64
    decoded = sample.decode_codes(vq, codes)
    np.testing.assert_array_equal(decoded, sample.reconstruct(vq, loops))
    with pytest.raises(ValueError, match="latent steps"):
        sample.decode_codes(vq, codes[:, :16])
    with pytest.raises(ValueError, match="codes outside 0..63"):
        sample.decode_codes(vq, codes + 64)


def test_first_code_distribution_counts_first_codes():
    codes = np.array([[2, 0, 0], [2, 1, 1], [0, 5, 5], [3, 3, 3]])
    probs = sample.first_code_distribution(codes, num_codes=6)
    np.testing.assert_allclose(probs, [0.25, 0, 0.5, 0.25, 0, 0])
    assert sample.first_code_distribution(codes).shape == (6,)  # K inferred as max code + 1


def test_sample_codes_are_deterministic_per_seed(prior):
    first = np.full(64, 1 / 64)
    a = sample.sample_codes(prior, 9, first, temperature=1.0, seed=5, batch_size=4)
    b = sample.sample_codes(prior, 9, first, temperature=1.0, seed=5, batch_size=4)
    c = sample.sample_codes(prior, 9, first, temperature=1.0, seed=6, batch_size=4)
    assert a.shape == (9, 32) and a.dtype == np.int64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_first_code_comes_from_the_given_distribution(prior):
    first = np.zeros(64)
    first[7] = 1.0
    codes = sample.sample_codes(prior, 6, first, temperature=1.5, seed=0)
    assert (codes[:, 0] == 7).all()


def test_argmax_sampling_follows_the_prior_greedily(prior):
    first = np.full(64, 1 / 64)
    codes = sample.sample_codes(prior, 4, first, temperature=None, seed=0)
    with torch.no_grad():
        logits, _ = prior.eval()(torch.from_numpy(codes[:, :-1]))
    np.testing.assert_array_equal(codes[:, 1:], logits.argmax(-1).numpy())
    # a very low temperature is argmax too
    cold = sample.sample_codes(prior, 4, first, temperature=1e-6, seed=0)
    np.testing.assert_array_equal(cold, codes)


def test_sample_codes_rejects_bad_arguments(prior):
    with pytest.raises(ValueError, match="temperature"):
        sample.sample_codes(prior, 2, np.ones(64), temperature=0.0)
    with pytest.raises(ValueError, match="first_probs"):
        sample.sample_codes(prior, 2, np.ones(65))


def test_copy_code_span_copies_steps_0_1_onto_16_17_by_default():
    codes = np.arange(2 * 32).reshape(2, 32)
    out = sample.copy_code_span(codes)
    assert out[0, 16] == 0 and out[0, 17] == 1 and out[1, 16] == 32 and out[1, 17] == 33
    changed = np.argwhere(out != codes)[:, 1]
    assert set(changed) == {16, 17}
    assert codes[0, 16] == 16  # the input is not modified
    general = sample.copy_code_span(codes, src=(4, 8), dst=(20, 24))
    np.testing.assert_array_equal(general[:, 20:24], codes[:, 4:8])
    with pytest.raises(ValueError, match="equal length"):
        sample.copy_code_span(codes, src=(0, 2), dst=(16, 19))


def test_code_frequencies_count_codes_per_latent_step():
    codes = np.array([[0, 2], [0, 1], [3, 2]])
    freq = sample.code_frequencies(codes, num_codes=4)
    # step 0: code 0 twice, code 3 once; step 1: code 2 twice, code 1 once
    np.testing.assert_array_equal(freq, [[2, 0, 0, 1], [0, 1, 2, 0]])
    assert freq.sum() == codes.size


def test_continue_codes_checks_its_prefix(prior):
    with pytest.raises(ValueError, match=r"prefix holds codes outside 0\.\.63: found 3\.\.64"):
        sample.continue_codes(prior, [3, 64], 2)
    with pytest.raises(ValueError, match="at most 32 codes; got 33"):
        sample.continue_codes(prior, [0] * 33, 2)
    with pytest.raises(ValueError, match="prefix must hold integer code indices"):
        sample.continue_codes(prior, [1.7], 2)  # never quietly cut to 1
    assert sample.continue_codes(prior, [5, 6], 3, seed=1)[:, :2].tolist() == [[5, 6]] * 3
