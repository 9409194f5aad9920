"""Issue 27: ``vary``'s copy-through (a regenerated bar whose codes equal a kept bar's gets that bar's own notes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from loopgen import sample
from loopgen import sample_masked as masked
from loopgen.models import build
from loopgen.musician import variation
from loopgen.musician.trained import TrainedVQ

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model() -> TrainedVQ:
    """An untrained VQ-VAE (t = 32) and masked prior: copy-through is about which notes a bar gets, not about
    how good the codes are."""
    torch.manual_seed(0)
    vq, prior = build("vq_vae").eval(), build("masked_prior", num_codes=512, seq_len=32).eval()
    return TrainedVQ(vq, prior, np.full(512, 1 / 512), np.zeros((1, 128, 93), np.uint8), "vq", "prior", "test",
                     "masked_prior")


@pytest.fixture(scope="module")
def loop() -> np.ndarray:
    rng = np.random.default_rng(3)
    x = (rng.random((128, 93)) < 0.04).astype(np.uint8)
    x[::4, 0] = 1
    return x


def _bar(x: np.ndarray, k: int) -> np.ndarray:
    """Bar k (1-based) of loops (..., 128, 93)."""
    return x[..., (k - 1) * 16 : k * 16, :]


@pytest.fixture
def copying_prior(monkeypatch, model, loop):
    """The masked prior's infill replaced by one that writes, in the first variation, bar 1's codes into bar 5 and
    bar 2's into bar 7 (a kept bar that is not bar 7's partner), in the second bar 4's last code into bar 8's last
    place and bar 1's first into bar 6's first (bar 2 is bar 6's partner: no copy), and everywhere else codes no
    kept bar has."""
    original = sample.encode_codes(model.vq, loop[None])[0]

    def infill(prior, codes, regenerate, **kwargs):
        out = codes.copy()
        unused = np.setdiff1d(np.arange(512), original)[:16]
        out[:, regenerate] = unused
        out[0, 16:20] = original[0:4]
        out[0, 24:28] = original[4:8]
        out[1, 31] = original[15]
        out[1, 20] = original[0]
        return out

    monkeypatch.setattr(masked, "infill", infill)
    return original


def test_copy_sources_prefers_the_bar_four_bars_away_then_single_codes():
    original = np.arange(32)
    original[4:8] = original[16:20] = original[0:4]  # bars 1, 2 and 5 share their codes
    codes = np.tile(original, (3, 1))
    codes[:, 16:] = 999
    codes[0, 16:20] = original[0:4]  # bar 5 = bar 1 (and bar 2)
    codes[1, 28:32] = original[8:12]  # bar 8 = bar 3 (its partner is bar 4)
    codes[2, 29] = original[13]  # one code of bar 8 = the code 4 bars before it
    codes[2, 22] = original[9]  # one code of bar 6 = a code of bar 3, not its partner's: no copy
    for mode in ("bar", "code"):
        out = variation.copy_sources(codes, original, (5, 8), mode)
        assert (out[:, :16] == -1).all()  # kept positions are never marked
        np.testing.assert_array_equal(out[0, 16:20], [0, 1, 2, 3])  # bar 1: bar 5's partner (bar 2 has them too)
        np.testing.assert_array_equal(out[1, 28:32], [8, 9, 10, 11])
        assert (out[0, 20:] == -1).all() and (out[1, 16:28] == -1).all()
        assert out[2, 22] == -1
        assert out[2, 29] == (13 if mode == "code" else -1)
    assert (variation.copy_sources(codes, original, (5, 8), "off") == -1).all()
    middle = variation.copy_sources(codes, original, (3, 6), "code")  # bars 3-6: bar 5's partner is bar 1, kept
    assert middle[2, 29] == -1 and (middle[:, 28:] == -1).all()  # bar 8 is kept: never a target


def test_a_bar_with_a_kept_bars_codes_gets_exactly_that_bars_notes(model, loop, copying_prior):
    v = variation.vary(loop, model, 3, bars=(5, 8), seed=0, copy_through="bar")
    np.testing.assert_array_equal(v.copied[0, 16:20], [0, 1, 2, 3])
    np.testing.assert_array_equal(v.copied[0, 24:28], [4, 5, 6, 7])
    np.testing.assert_array_equal(_bar(v.loops[0], 5), _bar(loop, 1))
    np.testing.assert_array_equal(_bar(v.loops[0], 7), _bar(loop, 2))
    np.testing.assert_array_equal(v.loops[:, :64], np.broadcast_to(loop[:64], (3, 64, 93)))  # kept bit for bit
    decoded = sample.decode_codes(model.vq, v.codes)
    np.testing.assert_array_equal(v.loops[1:, 64:], decoded[1:, 64:])  # whole bars only: no copy
    np.testing.assert_array_equal(_bar(v.loops[0], 6), _bar(decoded[0], 6))


def test_a_code_equal_to_the_one_four_bars_away_gets_that_codes_steps(model, loop, copying_prior):
    v = variation.vary(loop, model, 3, bars=(5, 8), seed=0)  # the masked prior's default: "code"
    np.testing.assert_array_equal(_bar(v.loops[0], 5), _bar(loop, 1))
    np.testing.assert_array_equal(_bar(v.loops[0], 7), _bar(loop, 2))
    np.testing.assert_array_equal(v.loops[1, 124:128], loop[60:64])  # bar 8's last code: bar 4's last 4 steps
    assert v.copied[1, 31] == 15 and v.copied[1, 20] == -1
    decoded = sample.decode_codes(model.vq, v.codes)
    np.testing.assert_array_equal(v.loops[1, 64:124], decoded[1, 64:124])
    np.testing.assert_array_equal(v.loops[2, 64:], decoded[2, 64:])
    np.testing.assert_array_equal(v.loops[:, :64], np.broadcast_to(loop[:64], (3, 64, 93)))


def test_copy_through_off_gives_the_decoders_bars(model, loop, copying_prior):
    for off in ("off", False):
        v = variation.vary(loop, model, 3, bars=(5, 8), seed=0, copy_through=off)
        assert v.copied is None
        decoded = sample.decode_codes(model.vq, v.codes)
        np.testing.assert_array_equal(v.loops[:, 64:], decoded[:, 64:])
        np.testing.assert_array_equal(v.loops[:, :64], np.broadcast_to(loop[:64], (3, 64, 93)))
    with pytest.raises(ValueError, match="copy_through"):
        variation.vary(loop, model, 1, copy_through="notes")


def test_copy_through_is_code_for_the_masked_prior_and_off_for_the_lstm_prior(model):
    assert variation.copy_through_default(model.prior) == "code"
    assert variation.copy_through_default(build("prior", num_codes=512)) == "off"
    assert variation.copy_mode(True, model.prior) == "code" and variation.copy_mode("bar", model.prior) == "bar"


def test_with_the_real_infill_kept_bars_stay_exact_and_copies_are_the_kept_steps(model, loop):
    v = variation.vary(loop, model, 4, bars=(3, 6), seed=1, steps=4, temperature=None)
    keep = variation.kept_steps((3, 6))
    np.testing.assert_array_equal(v.loops[:, keep], np.broadcast_to(loop[keep], (4, int(keep.sum()), 93)))
    for i, p in zip(*np.nonzero(v.copied >= 0), strict=True):
        q = v.copied[i, p]
        np.testing.assert_array_equal(v.loops[i, 4 * p : 4 * p + 4], loop[4 * q : 4 * q + 4])
