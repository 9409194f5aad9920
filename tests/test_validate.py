"""The one loop check and the one code check: what each accepts, converts and refuses."""

from __future__ import annotations

import numpy as np
import pytest

from loopgen.data.validate import check_codes, check_loops


def test_binary_batches_come_back_as_uint8_views_when_possible():
    loops = np.zeros((2, 128, 93), dtype=np.uint8)
    assert check_loops(loops) is loops
    as_bool = check_loops(loops.astype(bool))
    assert as_bool.dtype == np.uint8 and np.shares_memory(as_bool, as_bool.base)
    floats = check_loops(np.ones((1, 128, 93), dtype=np.float32))
    assert floats.dtype == np.uint8 and floats.sum() == 128 * 93


def test_shapes_single_loops_and_empty_batches():
    with pytest.raises(ValueError, match=r"^x must have shape \(N, 128, 93\); got \(2, 128, 92\)$"):
        check_loops(np.zeros((2, 128, 92)), name="x")
    with pytest.raises(ValueError, match=r"must have shape \(N, 128, 93\); got \(128, 93\)"):
        check_loops(np.zeros((128, 93)))
    assert check_loops(np.zeros((128, 93)), single_as_batch=True).shape == (1, 128, 93)
    assert check_loops(np.zeros((128, 93)), one=True).shape == (128, 93)
    with pytest.raises(ValueError, match=r"must have shape \(128, 93\); got \(1, 128, 93\)"):
        check_loops(np.zeros((1, 128, 93)), one=True)
    with pytest.raises(ValueError, match="empty batch"):
        check_loops(np.zeros((0, 128, 93)))
    assert check_loops(np.zeros((0, 128, 93)), allow_empty=True).shape == (0, 128, 93)


def test_values_must_be_binary_unless_binarised():
    probs = np.full((1, 128, 93), 0.2)
    probs[0, 5, 7] = 0.5
    with pytest.raises(ValueError, match=r"must be binary \(0/1\); found 0\.2"):
        check_loops(probs)
    with pytest.raises(ValueError, match="found the value 3"):
        check_loops(np.full((1, 128, 93), 3, dtype=np.uint8))
    on = check_loops(probs, binarize_at=0.5)
    assert on.dtype == np.bool_ and np.argwhere(on).tolist() == [[0, 5, 7]]
    with pytest.raises(ValueError, match="NaN"):
        check_loops(np.full((128, 93), np.nan), one=True, binarize_at=0.5)
    with pytest.raises(ValueError, match="dtype <U1"):
        check_loops(np.full((1, 128, 93), "a"))


def test_codes():
    codes = np.array([[1, 2, 3], [0, 0, 7]], dtype=np.int32)
    out = check_codes(codes, num_codes=8, rows=2, min_steps=2)
    assert out.dtype == np.int64 and out.flags.c_contiguous and out.tolist() == codes.tolist()
    with pytest.raises(ValueError, match=r"^codes holds codes outside 0\.\.6: found 0\.\.7$"):
        check_codes(codes, num_codes=7)
    with pytest.raises(ValueError, match=r"outside 0\.\.K-1: found -1\.\.6"):
        check_codes(codes - 1)
    with pytest.raises(ValueError, match=r"gen_codes must have shape \(N, latent_steps\); got \(3,\)"):
        check_codes(codes[0], name="gen_codes")
    with pytest.raises(ValueError, match="must hold 3 sequences"):
        check_codes(codes, rows=3)
    with pytest.raises(ValueError, match="at least 4 latent steps"):
        check_codes(codes, min_steps=4)
    with pytest.raises(ValueError, match="integer code indices; got dtype float64"):
        check_codes(codes.astype(float))
    with pytest.raises(ValueError, match="empty"):
        check_codes(codes[:0])
    assert check_codes(codes[:0], allow_empty=True).shape == (0, 3)
