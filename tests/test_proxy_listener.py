"""The PROXY listener: cross-validated real-vs-generated scores that depend on the loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopgen import LOOP_STEPS, N_COLUMNS
from loopgen.book.listening import proxy


def _real_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """Loops with a kick+crash and a bass note on beat one, a steady hi-hat and a repeating bass line."""
    x = np.zeros((n, LOOP_STEPS, N_COLUMNS), dtype=np.uint8)
    for i in range(n):
        bass = 9 + rng.integers(10, 30)
        for bar in range(8):
            s = bar * 16
            x[i, s, 0] = 1
            x[i, s + 8, 1] = 1
            x[i, s : s + 16 : 2, 2] = 1
            x[i, s : s + 16 : 4, bass + (bar % 2) * 5] = 1
        x[i, 0, 6] = 1
    return x


@pytest.fixture(scope="module")
def groups() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    real = _real_like(rng, 300)
    near = _real_like(rng, 200)
    near[:, :, 2] = 0  # no hi-hat: close, but tellable
    noise = (rng.random((200, LOOP_STEPS, N_COLUMNS)) < 0.05).astype(np.uint8)
    return {
        "training_set": real,
        "good_model": _real_like(rng, 200),
        "near_model": near,
        "silent_model": np.zeros((200, LOOP_STEPS, N_COLUMNS), np.uint8),
        "noise_model": noise,
    }


def test_features_are_finite_for_every_kind_of_loop(groups) -> None:
    for loops in groups.values():
        f = proxy.loop_features(loops[:5])
        assert f.shape[0] == 5 and np.isfinite(f).all()


def test_scores_rank_the_groups_by_their_loops(groups) -> None:
    scores = proxy.score_loops(groups, seed=0)
    means = scores.group_means()
    # a model that writes loops like the real ones fools the classifier; silence and noise never do
    assert means["good_model"] > 0.3
    assert means["silent_model"] < 0.2 and means["noise_model"] < 0.2
    assert means["good_model"] > means["near_model"] > means["noise_model"]
    assert 0.5 < scores.cv_accuracy <= 1.0


def test_scores_are_out_of_fold_and_seeded(groups) -> None:
    a = proxy.score_loops(groups, seed=1, folds=3)
    b = proxy.score_loops(groups, seed=1, folds=3)
    for g in groups:
        np.testing.assert_array_equal(a.p_real[g], b.p_real[g])
    # a loop duplicated in both classes cannot be scored ~1 by a classifier that saw it labelled real
    tiny = {"training_set": groups["training_set"][:40], "copy": groups["training_set"][:40]}
    s = proxy.score_loops(tiny, seed=0, folds=4)
    assert abs(s.p_real["training_set"].mean() - s.p_real["copy"].mean()) < 0.2


def test_pool_keeps_the_stimuli_and_ratings_follow_the_scores(groups) -> None:
    must = {g: np.array([0, 7]) for g in groups}
    scores = proxy.score_loops(groups, must_include=must, max_per_group=50, seed=0)
    for g in groups:
        assert len(scores.pool_index[g]) == 50 and {0, 7} <= set(scores.pool_index[g])
    key = pd.DataFrame(
        [{"stimulus_id": f"s{i}{g}", "role": "stimulus", "group": g, "source_index": i} for g in groups for i in (0, 7)]
    )
    ratings = proxy.proxy_ratings(key, scores, n_listeners=30, seed=0)
    assert ratings["rating"].between(1, 5).all() and ratings["simulated"].all()
    assert (ratings["source"] == "proxy").all() and ratings["listener_id"].str.startswith("PROXY").all()
    by_group = ratings.merge(key, on="stimulus_id").groupby("group")["rating"].mean()
    assert by_group["training_set"] > by_group["noise_model"] + 1.5
    with pytest.raises(KeyError):
        scores.quality("training_set", 10_000)


def test_bad_inputs_are_refused(groups) -> None:
    with pytest.raises(ValueError, match="training_set"):
        proxy.score_loops({"a": groups["good_model"], "b": groups["noise_model"]})
    with pytest.raises(ValueError, match="at least one"):
        proxy.score_loops({"training_set": groups["training_set"]})
    with pytest.raises(ValueError, match="no loops"):
        proxy.score_loops({"training_set": groups["training_set"], "x": groups["noise_model"][:0]})
