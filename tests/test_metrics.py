"""Metrics of docs/rules.md §6 on small hand-built loops; every expected value is worked out in a comment."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from loopgen import CRASH, KICK, N_DRUM
from loopgen import metrics as m

SNARE = 1


def blank(n: int = 1) -> np.ndarray:
    return np.zeros((n, 128, 93), dtype=np.uint8)


def style_batch() -> np.ndarray:
    """Loop 0: kick at steps 0, 16, 32; snare at 4; bass column 30 at steps 0-3, column 31 at 100. Loop 1 empty."""
    x = blank(2)
    x[0, [0, 16, 32], KICK] = 1
    x[0, 4, SNARE] = 1
    x[0, 0:4, 30] = 1
    x[0, 100, 31] = 1
    return x


# ------------------------------------------------------------------ HD
def test_ham_dist_counts_bar1_against_bar5_only():
    x = blank(2)
    x[0, 0, KICK] = x[0, 64, KICK] = 1  # same cell in bar 1 and bar 5: no difference
    x[0, 4, SNARE] = 1  # bar 1 only: 1 difference
    x[0, 70, 20] = 1  # bar 5 only (step 64 + 6): 2nd difference
    x[0, 20, 40] = 1  # bar 2: not compared
    # loop 0: 2 / 1488; loop 1 (empty): 0; mean = 1 / 1488
    assert m.ham_dist(x) == pytest.approx(1 / 1488)


def test_ham_dist_of_identical_bars_is_zero_and_of_opposite_bars_is_one():
    x = blank(2)
    x[0, 0:16] = 1
    x[0, 64:80] = 1  # identical bars: 0
    x[1, 0:16] = 1  # bar 5 all off: all 1488 cells differ -> 1
    assert m.ham_dist(x[:1]) == 0.0
    assert m.ham_dist(x[1:]) == pytest.approx(1.0)
    assert m.ham_dist(x) == pytest.approx(0.5)


# ------------------------------------------------------------------ FND / FNB
def test_first_note_drum_needs_kick_and_crash_at_step_zero():
    x = blank(4)
    x[0, 0, [KICK, CRASH]] = 1  # yes
    x[1, 0, KICK] = 1  # kick only: no
    x[2, 0, CRASH] = 1
    x[2, 1, KICK] = 1  # kick one step late: no
    x[3, 0, [KICK, CRASH, SNARE, 40]] = 1  # yes, other notes do not matter
    assert m.first_note_drum(x) == pytest.approx(2 / 4)


def test_first_note_bass_needs_a_bass_column_at_step_zero():
    x = blank(4)
    x[0, 0, N_DRUM] = 1  # lowest bass pitch (24) at step 0: yes
    x[1, 1, 50] = 1  # bass at step 1 only: no
    x[2, 0, 8] = 1  # ride (column 8) is a drum: no
    x[3, 0, 92] = 1  # highest bass pitch: yes
    assert m.first_note_bass(x) == pytest.approx(2 / 4)


# ------------------------------------------------------------------ DB
def test_dup_bass_counts_steps_with_two_or_more_bass_pitches():
    x = blank(2)
    x[0, 0, [10, 20]] = 1  # 2 pitches: duplicate
    x[0, 5, [10, 11, 12]] = 1  # 3 pitches: duplicate
    x[0, 6, [KICK, 10]] = 1  # drum + 1 pitch: not a duplicate
    x[1, 127, [40, 41]] = 1  # duplicate
    # 3 duplicate steps out of 2 x 128 = 256
    assert m.dup_bass(x) == pytest.approx(3 / 256)


# ------------------------------------------------------------------ UP / UP per bar / ND
def test_unique_pitch_counts_distinct_columns_per_loop():
    # loop 0: kick, snare, column 30, column 31 = 4 distinct columns; loop 1: 0 -> mean 2
    assert m.unique_pitch(style_batch()) == pytest.approx(2.0)


def test_unique_pitch_per_bar_averages_over_bars_and_loops():
    # loop 0: bar 1 {kick, snare, 30} = 3, bar 2 {kick} = 1, bar 3 {kick} = 1, bar 7 {31} = 1 -> 6 / 8 = 0.75
    # loop 1: 0 -> mean 0.375
    assert m.unique_pitch_per_bar(style_batch()) == pytest.approx(0.375)


def test_note_density_is_fraction_of_active_steps_per_bar():
    # loop 0 active steps: 0, 1, 2, 3, 4, 16, 32, 100 = 8 of 128; loop 1: 0 -> 8 / 256
    # (per bar: 5/16 + 1/16 + 1/16 + 1/16 = 8/16 over 8 bars = 1/16; mean with 0 -> 1/32)
    assert m.note_density(style_batch()) == pytest.approx(8 / 256)


def test_note_density_of_a_full_loop_is_one():
    x = blank(1)
    x[0, :, KICK] = 1
    assert m.note_density(x) == 1.0


# ------------------------------------------------------------------ OS / US
def test_overlap_sample_is_fraction_of_generated_sequences_seen_in_training():
    train = np.array([[1, 2, 3], [4, 5, 6]])
    gen = np.array([[1, 2, 3], [1, 2, 4], [4, 5, 6], [0, 0, 0]])  # rows 0 and 2 are training rows
    assert m.overlap_sample(gen, train) == pytest.approx(2 / 4)


def test_overlap_sample_ignores_integer_dtype_differences():
    train = np.array([[1, 2]], dtype=np.int64)
    gen = np.array([[1, 2]], dtype=np.int16)
    assert m.overlap_sample(gen, train) == 1.0


def test_overlap_sample_rejects_different_latent_lengths():
    with pytest.raises(ValueError, match="latent steps"):
        m.overlap_sample(np.zeros((2, 32), int), np.zeros((2, 64), int))


def test_unique_sample_is_distinct_over_total():
    assert m.unique_sample(np.array([[1, 1], [1, 1], [2, 2]])) == pytest.approx(2 / 3)
    assert m.unique_sample(np.array([[1, 2], [2, 1]])) == 1.0  # order within a sequence matters


def test_unique_loops_on_decoded_arrays():
    x = blank(3)
    x[2, 0, KICK] = 1  # loops 0 and 1 equal, loop 2 differs: 2 distinct of 3
    assert m.unique_loops(x) == pytest.approx(2 / 3)


# ------------------------------------------------------------------ reconstruction error
def test_reconstruction_error_is_mean_hamming_over_all_cells():
    x = blank(2)
    x_hat = blank(2)
    x_hat[0, 0, 0] = x_hat[0, 5, 50] = x_hat[1, 127, 92] = 1
    # 3 differing cells / (2 loops x 128 x 93 = 23808)
    assert m.reconstruction_error(x, x_hat) == pytest.approx(3 / 23808)


def test_reconstruction_error_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        m.reconstruction_error(blank(2), blank(3))


# ------------------------------------------------------------------ extras
def test_empty_bar_rate():
    # loop 0 uses bars 1, 2, 3, 7 -> 4 empty; loop 1: 8 empty -> 12 / 16
    assert m.empty_bar_rate(style_batch()) == pytest.approx(0.75)


def test_drum_pattern_consistency_identical_bars_is_one():
    x = blank(1)
    x[0, ::16, KICK] = 1  # kick on beat 1 of every bar
    x[0, 4::16, SNARE] = 1
    assert m.drum_pattern_consistency(x) == pytest.approx(1.0)


def test_drum_pattern_consistency_one_extra_hit():
    x = blank(1)
    x[0, 0, KICK] = 1  # on in 1 of 8 bars: differs in 1 x 7 = 7 of the 28 bar pairs
    # mean similarity = 1 - 7 / (28 pairs x 144 drum cells)
    assert m.drum_pattern_consistency(x) == pytest.approx(1 - 7 / (28 * 144))


def test_drum_pattern_consistency_matches_pairwise_definition():
    rng = np.random.default_rng(3)
    x = (rng.random((5, 128, 93)) < 0.1).astype(np.uint8)
    expected = []
    for loop in x:
        bars = loop[:, :N_DRUM].reshape(8, 16 * N_DRUM)
        sims = [
            1 - np.count_nonzero(bars[i] != bars[j]) / 144 for i, j in itertools.combinations(range(8), 2)
        ]
        expected.append(np.mean(sims))
    assert m.drum_pattern_consistency(x) == pytest.approx(np.mean(expected))


# ------------------------------------------------------------------ the whole row
def _reference_row(x: np.ndarray) -> dict[str, float]:
    """Loop-by-loop, bar-by-bar restatement of docs/rules.md §6 (slow, obvious)."""
    hd, fnd, fnb, dup, up, upb, nd = [], [], [], 0, [], [], []
    for loop in x:
        hd.append(np.sum(loop[0:16] != loop[64:80]) / 1488)
        fnd.append(loop[0, KICK] == 1 and loop[0, CRASH] == 1)
        fnb.append(loop[0, N_DRUM:].sum() > 0)
        dup += sum(int(loop[t, N_DRUM:].sum() > 1) for t in range(128))
        up.append(len({c for t in range(128) for c in np.flatnonzero(loop[t])}))
        for b in range(8):
            bar = loop[16 * b : 16 * b + 16]
            upb.append(len(set(np.flatnonzero(bar.any(axis=0)))))
            nd.append(sum(bar[t].any() for t in range(16)) / 16)
    return {
        "HD": np.mean(hd),
        "FND": np.mean(fnd),
        "FNB": np.mean(fnb),
        "DB": dup / (len(x) * 128),
        "UP": np.mean(up),
        "UP/bar": np.mean(upb),
        "ND": np.mean(nd),
    }


def test_metric_row_matches_slow_reference_and_chunks_do_not_matter():
    rng = np.random.default_rng(0)
    x = (rng.random((7, 128, 93)) < 0.03).astype(np.uint8)
    x[:3, 0, [KICK, CRASH, 20]] = 1
    expected = _reference_row(x)
    for chunk in (2, 3, 1000):
        row = m.metric_row(x, chunk=chunk)
        for key, value in expected.items():
            assert row[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_metric_row_keys_and_nan_without_codes():
    row = m.metric_row(style_batch())
    assert tuple(row) == ("HD", "FND", "FNB", "DB", "OS", "US", "UP", "UP/bar", "ND")
    assert math.isnan(row["OS"]) and math.isnan(row["US"])
    assert row["UP"] == pytest.approx(2.0)


def test_metric_row_with_codes():
    x = style_batch()
    gen = np.array([[1, 2], [3, 4]])
    row = m.metric_row(x, gen_codes=gen, train_codes=np.array([[1, 2]]))
    assert row["OS"] == pytest.approx(0.5)  # 1 of 2 generated sequences is a training one
    assert row["US"] == pytest.approx(1.0)  # 2 distinct of 2
    only_us = m.metric_row(x, gen_codes=gen)
    assert math.isnan(only_us["OS"]) and only_us["US"] == 1.0


def test_metric_table_orders_columns_like_the_paper():
    table = m.metric_table({"a": m.metric_row(style_batch()) | m.extras_row(style_batch())})
    assert list(table.columns)[:9] == list(m.METRIC_KEYS)
    assert table.loc["a", "empty_bar_rate"] == pytest.approx(0.75)


# ------------------------------------------------------------------ input checks
ALL_LOOP_METRICS = [
    m.ham_dist,
    m.first_note_drum,
    m.first_note_bass,
    m.dup_bass,
    m.unique_pitch,
    m.unique_pitch_per_bar,
    m.note_density,
    m.empty_bar_rate,
    m.drum_pattern_consistency,
    m.unique_loops,
    m.metric_row,
]


@pytest.mark.parametrize("metric", ALL_LOOP_METRICS, ids=lambda f: f.__name__)
def test_empty_batch_is_a_clear_error(metric):
    with pytest.raises(ValueError, match="empty batch"):
        metric(np.zeros((0, 128, 93), dtype=np.uint8))


@pytest.mark.parametrize("metric", ALL_LOOP_METRICS, ids=lambda f: f.__name__)
def test_non_binary_input_is_an_error(metric):
    x = blank(1)
    x[0, 3, 3] = 2
    with pytest.raises(ValueError, match="binary"):
        metric(x)
    with pytest.raises(ValueError, match="binary"):
        metric(np.full((1, 128, 93), 0.7))


def test_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match=r"\(N, 128, 93\)"):
        m.note_density(np.zeros((2, 128, 92), dtype=np.uint8))


def test_bool_float_and_single_loop_inputs_are_accepted():
    x = style_batch()
    assert m.unique_pitch(x.astype(bool)) == pytest.approx(2.0)
    assert m.unique_pitch(x.astype(np.float32)) == pytest.approx(2.0)
    assert m.unique_pitch(x[0]) == pytest.approx(4.0)  # one (128, 93) loop is a batch of one


def test_empty_codes_are_an_error():
    with pytest.raises(ValueError, match="empty"):
        m.unique_sample(np.zeros((0, 32), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        m.unique_sample(np.zeros((2, 32), dtype=float))


def test_binarize_keeps_sigmoid_at_least_one_half():
    probs = np.array([0.49, 0.5, 0.51, 0.0])
    assert m.binarize(probs).tolist() == [0, 1, 1, 0]


# ------------------------------------------------------------------ Figure 5 code ranks
def test_frequent_code_sequences_ranks_used_codes_per_step():
    counts = np.array(
        [
            [
                5,
                0,
                3,
                1,
                3,
            ],  # most 0 (5); 2nd most 2 (3, tie with 4 -> lower index); least 3 (1); 2nd least 2
            [0, 0, 7, 0, 0],  # only code 2 used: every rank is 2
        ]
    )
    seq = m.frequent_code_sequences(counts)
    assert seq["most frequent"].tolist() == [0, 2]
    assert seq["2nd most frequent"].tolist() == [2, 2]
    assert seq["least frequent"].tolist() == [3, 2]
    assert seq["2nd least frequent"].tolist() == [2, 2]


def test_frequent_code_sequences_rejects_empty_steps():
    with pytest.raises(ValueError, match="no codes"):
        m.frequent_code_sequences(np.array([[1, 0], [0, 0]]))
