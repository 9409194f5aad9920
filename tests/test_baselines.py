"""loopgen.book.baselines: the trivial baselines beside every model, on loops and codes whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from loopgen import BARS_PER_LOOP, LOOP_CELLS, LOOP_STEPS, N_COLUMNS, STEPS_PER_BAR, metrics
from loopgen.book import baselines


def _loop_of_bars(bars: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(bars)[None].astype(np.uint8)


def _bar(cells: list[tuple[int, int]]) -> np.ndarray:
    bar = np.zeros((STEPS_PER_BAR, N_COLUMNS), dtype=np.uint8)
    for step, column in cells:
        bar[step, column] = 1
    return bar


def test_reconstruction_baselines_count_the_cells_they_get_wrong():
    first, other = _bar([(0, 0), (0, 6), (4, 20)]), _bar([(8, 30)])
    loop = _loop_of_bars([first, other, other, other, first, other, other, other])  # 3 x 2 + 6 x 1 = 12 cells on
    frame = baselines.reconstruction_baselines(loop)
    assert list(frame.index) == [baselines.SILENCE, baselines.COPY_BAR_1]
    assert frame.loc[baselines.SILENCE, "reconstruction_error"] == pytest.approx(12 / LOOP_CELLS)
    # copying bar 1 gets the 6 bars that are not bar 1 wrong: 3 cells it adds and 1 it misses, each
    assert frame.loc[baselines.COPY_BAR_1, "reconstruction_error"] == pytest.approx(6 * 4 / LOOP_CELLS)
    assert baselines.copy_bar_one(loop).shape == (1, LOOP_STEPS, N_COLUMNS)
    assert not baselines.silence(loop).any()


def test_copy_back_predicts_from_half_a_loop_back_then_one_bar_back():
    t = 32
    codes = np.arange(t)[None] + 100  # every code distinct: a prediction is right only when it copies itself
    predictions = baselines.copy_back_predictions(codes, (16, 4, 1))
    expected_source = [s - 16 if s >= 16 else s - 4 if s >= 4 else s - 1 for s in range(1, t)]
    np.testing.assert_array_equal(predictions[0], codes[0, expected_source])
    assert baselines.copy_back_lags(t) == {"baseline: copy 16 back": (16, 4, 1), "baseline: copy 4 back": (4, 1)}
    repeating = np.tile(np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]), 2)[None]  # bar 5 = bar 1
    assert baselines.copy_back_accuracy(repeating, (16, 4, 1)) == pytest.approx(16 / 31)
    assert baselines.copy_back_accuracy(repeating, (4, 1)) == 0.0


def test_most_frequent_code_uses_no_context():
    train = np.array([[1, 5, 7], [1, 5, 8], [2, 6, 8]])
    np.testing.assert_array_equal(baselines.most_frequent_codes(train), [1, 5, 8])
    assert baselines.most_frequent_code_accuracy(np.array([[9, 5, 7], [9, 5, 8]]), train) == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="latent steps"):
        baselines.most_frequent_code_accuracy(np.array([[1, 5]]), train)


def test_prior_accuracy_table_sets_the_prior_beside_every_baseline():
    rng = np.random.default_rng(0)
    train, val = rng.integers(0, 8, (20, 32)), rng.integers(0, 8, (5, 32))
    table = baselines.prior_accuracy_table({"training codes": 0.5, "validation codes": 0.25},
                                           {"training codes": train, "validation codes": val}, train, paper_value=0.83)
    assert list(table.index) == [baselines.PRIOR, "baseline: copy 16 back", "baseline: copy 4 back",
                                 baselines.MOST_FREQUENT_CODE]
    assert list(table.columns) == ["training codes", "validation codes", "paper"]
    assert table.loc["baseline: copy 16 back", "validation codes"] == pytest.approx(
        baselines.copy_back_accuracy(val, (16, 4, 1)))
    assert table.loc[baselines.PRIOR, "paper"] == 0.83 and table["paper"].isna().sum() == 3
    assert all(baselines.is_baseline(name) for name in table.index[1:])
    missing = baselines.prior_accuracy_table({"training codes": 0.5, "validation codes": float("nan")},
                                             {"training codes": train, "validation codes": None}, train)
    assert missing["validation codes"].isna().all()


def test_shuffled_bars_keep_every_bar_and_lose_the_loop():
    rng = np.random.default_rng(1)
    bars = [(rng.random((STEPS_PER_BAR, N_COLUMNS)) < 0.1).astype(np.uint8) for _ in range(4)]
    loops = np.concatenate([_loop_of_bars(bars + bars) for _ in range(50)])  # HD 0: bar 5 repeats bar 1
    shuffled = baselines.shuffle_bars(loops, seed=0)
    np.testing.assert_array_equal(baselines.shuffle_bars(loops, seed=0), shuffled)  # seeded
    as_bars = shuffled.reshape(len(loops), BARS_PER_LOOP, -1)
    original = loops.reshape(len(loops), BARS_PER_LOOP, -1)
    for mine, theirs in zip(as_bars, original, strict=True):  # the same bars in another order
        assert sorted(map(bytes, mine)) == sorted(map(bytes, theirs))
    row = baselines.shuffled_bars_row(loops, seed=0)
    assert row["UP"] == pytest.approx(metrics.unique_pitch(loops)) and row["ND"] == pytest.approx(metrics.note_density(loops))
    assert row["HD"] > metrics.ham_dist(loops) == 0.0 and np.isnan(row["OS"]) and 0 <= row["Loopability"] <= 1
