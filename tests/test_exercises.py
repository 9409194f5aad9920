"""loopgen.book.exercises: right answers accepted, wrong ones rejected with a hint; every exercise placed in its notebook
and answered in its worked solution."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopgen.book import exercises, teaching
from loopgen.loops import LoopParams, find_loops
from loopgen.store.paths import SOURCE_ROOT

NOTEBOOKS = SOURCE_ROOT / "notebooks"


def _roll(seed: int = 0, bars: int = 20) -> np.ndarray:
    """A song roll whose bars repeat every 4 bars, with kick + crash + bass on every bar's first step."""
    rng = np.random.default_rng(seed)
    pattern = (rng.random((4 * 16, 93)) < 0.05).astype(np.uint8)
    roll = np.tile(pattern, (bars // 4 + 1, 1))[: bars * 16]
    roll[::16, 0] = roll[::16, 6] = roll[::16, 30] = 1
    roll[5 * 16 + 3, 40] ^= 1  # bar 6 differs from bar 2 in one cell, from bar 10 too
    roll[9 * 16 + 3 : 9 * 16 + 8, 50] ^= 1  # bar 10 differs from bar 6 in five cells: windows 5 and 9 fail rule 1
    return roll


CHAPTERS = ("01", "02", "03", "04", "05", "06", "07", "08", "09")
# Notebooks whose exercises check their contexts against the run's own (exercises.for_run and exercises.record)
RECORDING = CHAPTERS


def test_every_notebook_has_three_to_five_graded_exercises():
    for nb in CHAPTERS:
        levels = [e.level for e in exercises.of_notebook(nb)]
        assert 3 <= len(levels) <= 5, (nb, levels)
        assert levels == sorted(levels, key=exercises.LEVELS.index), f"{nb}: warm-up, core, open in that order"
        assert {"warm-up", "core", "open"} <= set(levels), nb


def test_right_answer_accepted_wrong_rejected_with_hint(capsys):
    assert exercises.check("01.1", 14) is True
    assert "01.1: right" in capsys.readouterr().out
    assert exercises.check("01.1", 15) is False
    out = capsys.readouterr().out
    assert "not yet" in out and "Hint:" in out and "fewer than" in out
    assert exercises.check("01.1", None) is False
    assert "not answered yet" in capsys.readouterr().out


def test_expected_value_comes_from_the_run_data(capsys):
    roll = _roll()
    threshold = dataclass_params = LoopParams(hamming_threshold=0.01)
    expected = len(find_loops(roll, dataclass_params))
    assert threshold.hamming_threshold == 0.01 and expected > len(find_loops(roll))
    assert exercises.check("01.2", expected, roll=roll)
    assert not exercises.check("01.2", expected + 1, roll=roll)
    codes = np.tile(np.arange(16), (10, 2))
    codes[:3, 16] = 99  # 7 of 10 loops repeat step 0 at step 16
    assert exercises._expected_answer("06.1", codes=codes) == pytest.approx(0.7)
    assert exercises.check("06.1", 0.7, codes=codes) and not exercises.check("06.1", 0.3, codes=codes)
    first_probs = np.array([0.5, 0.0, 0.25, 0.25, 0.0])  # three first codes can be drawn
    assert exercises.check("03.1", 3, first_probs=first_probs) and not exercises.check("03.1", 5, first_probs=first_probs)


def test_missing_context_and_unknown_id_are_clear_errors():
    with pytest.raises(TypeError, match="roll="):
        exercises.check("01.2", 3)
    with pytest.raises(KeyError, match="no exercise"):
        exercises.check("99.9", 1)
    with pytest.raises(ValueError, match="unknown context"):
        exercises.record(lops_cnn_vae=np.zeros(3))


def test_answers_are_not_one_call_away():
    assert not hasattr(exercises, "expected_answer")


@pytest.fixture
def fresh_run():
    """The checker's run state, reset around a test (as a new notebook kernel starts it)."""
    saved = exercises._RUN
    yield
    exercises._RUN = saved


def _loops_with_a_bass_pitch(n_on: int, n: int = 8) -> np.ndarray:
    loops = np.zeros((n, 128, 93), np.uint8)
    loops[:, 0, 0] = loops[:, 0, 6] = 1  # kick and crash on step 0 in every loop
    loops[:n_on, ::16, 9 + 24] = 1  # one bass pitch in the first n_on loops
    return loops


def test_the_context_is_matched_against_the_runs_own(capsys, fresh_run):
    cnn_vae, train = _loops_with_a_bass_pitch(2), _loops_with_a_bass_pitch(6)
    exercises.for_run("smoke", 0)
    assert not exercises.check("05.2", 0.25, loops=cnn_vae)  # strict: nothing recorded yet
    assert "has not recorded the run's CNN-VAE samples" in capsys.readouterr().out
    exercises.record(loops_cnn_vae=cnn_vae)
    assert not exercises.check("05.2", 0.75, loops=train)  # the training loops' answer, with the training loops
    out = capsys.readouterr().out
    assert "not checked: loops= is not this run's CNN-VAE samples" in out and "right" not in out
    assert exercises.check("05.2", 0.25, loops=cnn_vae.copy())  # the same contents, another array: right
    assert not exercises.check("05.2", 0.75, loops=cnn_vae)
    exercises.for_run("smoke", 0)  # a new run forgets what was recorded
    assert not exercises.check("05.2", 0.25, loops=cnn_vae)


def test_models_and_tables_are_matched_by_their_contents(capsys, fresh_run):
    import torch

    exercises.for_run("smoke", 0)
    torch.manual_seed(0)
    model, other = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    assert exercises.digest(model) != exercises.digest(other)
    assert exercises.digest(model) == exercises.digest(model.eval())
    table = pd.DataFrame({"reconstruction error": [0.1, 0.2, 0.3]}, index=["seed 0", "seed 1", "seed 2"])
    exercises.record(seed_table=table)
    assert exercises.check("08.1", 0.5, table=table.copy())
    assert not exercises.check("08.1", 0.5, table=table * 2)  # the same coefficient of variation, another table
    assert "not this run's seed table" in capsys.readouterr().out


def test_wrong_types_rejected_not_crashing(capsys):
    assert not exercises.check("01.4", "half", loops=np.zeros((2, 128, 93), np.uint8))
    assert "expected a number" in capsys.readouterr().out
    assert not exercises.check("03.4", [1, 2], prior=None, first_probs=None, seed=0)
    assert "expected a dict" in capsys.readouterr().out


def test_open_answers_are_recorded_never_right(capsys, fresh_run, tmp_path):
    from loopgen.store.paths import Paths

    exercises.for_run("smoke", 3, Paths(tmp_path))
    assert not exercises.check("01.5", "short")
    assert "not recorded" in capsys.readouterr().out
    for answer in ("Windows overlap: a loop at bar k is often a loop at k + 1 as well, so it counts.",
                   "I do not know the answer to this question at all."):
        assert exercises.check("01.5", answer)
        out = capsys.readouterr().out
        assert "recorded" in out and "right" not in out and "solutions/01_extract_loops_solutions.ipynb" in out
    recorded = json.loads((tmp_path / "build" / "answers" / "smoke" / "seed3" / "01.5.json").read_text())
    assert [entry["answer"] for entry in recorded][-1] == "I do not know the answer to this question at all."
    assert len(recorded) == 2 and all(entry["time"] for entry in recorded)
    with pytest.raises(ValueError, match="open exercise"):
        exercises._expected_answer("01.5")


def _song_set(pairs: list[tuple[str, int]]):
    from loopgen.data.dataset import LoopSet

    n = len(pairs)
    loops = np.zeros((n, 128, 93), np.uint8)
    return LoopSet(loops, np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]), np.array(["train"] * n),
                   {}, {})


def test_the_answers_of_notebook_01():
    assert exercises._expected_answer("01.1") == 14  # 0.01 x 1,488 = 14.9 cells, strictly fewer
    songs = _song_set([("a.mid", 0), ("a.mid", 4), ("a.mid", 12), ("a.mid", 20), ("b.mid", 1)])
    assert exercises._expected_answer("01.3", loops=songs) == pytest.approx(2 / 5)  # bars 0 and 4 overlap
    songs.loops[0, 16 + 3, 5] = 1  # bar 2 of loop 0 differs from its bar 6 in 1 cell: passes
    songs.loops[1, 16:19, 5] = 1  # 3 cells: fails
    assert exercises._expected_answer("01.4", loops=songs) == pytest.approx(4 / 5)


def _tiny_prior(seed: int = 0):
    import torch

    from loopgen.models import CodePrior

    torch.manual_seed(seed)
    return CodePrior(num_codes=8, seq_len=16, embed_dim=4, hidden=8, layers=1).eval()


def test_the_answers_of_notebook_03():
    from loopgen import sample

    prior = _tiny_prior()
    codes = np.random.default_rng(0).integers(0, 8, size=(12, 16))
    # 03.2: at the temperature found, the top code after bar 1 (2 codes at t = 16) gets one half
    temperature = exercises._expected_answer("03.2", prior=prior, codes=codes)
    scores = teaching.next_code_logits(prior, codes[0, :2])
    probs = np.exp((scores - scores.max()) / temperature)
    assert (probs / probs.sum()).max() == pytest.approx(0.5, abs=1e-9)
    assert exercises.check("03.2", temperature * 1.0005, prior=prior, codes=codes)
    assert not exercises.check("03.2", temperature * 1.1, prior=prior, codes=codes)
    # 03.3: the whole accuracy is the first half's and the second half's, weighted by their predicted codes
    second = exercises._expected_answer("03.3", prior=prior, codes=codes)
    first = prior.accuracy(codes[:, :8])  # the LSTM reads left to right: codes 1-7 are predicted alike
    assert prior.accuracy(codes) * 15 == pytest.approx(first * 7 + second * 8)
    # 03.4: the lag-16 share of the samples, as the lag plot measures it
    shares = exercises._expected_answer("03.4", prior=prior, first_probs=np.full(8, 1 / 8), seed=3)
    assert set(shares) == {0.5, 1.0, 2.0}
    again = sample.sample_codes(prior, 256, np.full(8, 1 / 8), temperature=2.0, seed=3)
    assert shares[2.0] == pytest.approx(teaching.lag_match(again)[8])
    assert exercises.check("03.4", {0.5: shares[0.5], 1: shares[1.0], 2: shares[2.0]}, prior=prior,
                           first_probs=np.full(8, 1 / 8), seed=3)


class _FixedOutput:
    """A stand-in model whose reconstruction of loop i is ``out[i]``, whatever it is given."""

    def __new__(cls, out: np.ndarray):
        import torch

        class Fixed(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.weight = torch.nn.Parameter(torch.zeros(1))

            def reconstruct_logits(self, x):
                return torch.as_tensor(out[: len(x)], dtype=torch.float32) * 2 - 1  # on -> +1, off -> -1

        return Fixed()


def test_the_answers_of_notebook_04():
    loops = np.zeros((4, 128, 93), np.uint8)
    loops[:, ::16, 0] = 1  # a kick on every bar's first step: 8 cells on, bar 1 played 8 times is exact
    loops[:2, 70, 20] = 1  # loops 0 and 1 have one more note, in bar 5: copy bar 1 gets 1 cell wrong there
    assert exercises._expected_answer("04.1", loops=loops) == pytest.approx((4 * 8 + 2) / 4)
    out = loops.copy()
    out[0, 70, 20] = 0  # loop 0: the bar-5 note left out (1 wrong, as many as copy bar 1)
    out[1, 3, 40] = 1  # loop 1: a note added (1 wrong, as many as copy bar 1)
    out[2, 3, 40] = out[2, 5, 40] = 1  # loop 2: two added (copy bar 1 is exact)
    model = _FixedOutput(out)
    assert exercises._expected_answer("04.2", model=model, loops=loops) == pytest.approx(1 / 4)
    assert exercises._expected_answer("04.3", model=model, loops=loops) == 0.0  # ties and losses only
    out[1, 3, 40] = 0
    out[1, 70, 20] = 1  # loop 1 now exact: fewer wrong cells than copy bar 1's one
    assert exercises._expected_answer("04.3", model=_FixedOutput(out), loops=loops) == pytest.approx(1 / 4)


def test_the_answers_of_notebook_05():
    loops = np.zeros((4, 128, 93), np.uint8)
    loops[:, 0, 9 + 30] = 1
    loops[:2, 64 + 5, 0] = 1  # loops 0, 1: bar 5 differs from bar 1 in one cell (passes rule 1)
    loops[2, 64:67, 1] = 1  # loop 2: three cells (fails)
    loops[3, 20, 9 + 31] = loops[3, 40, 9 + 33] = loops[3, 50, 0] = 1  # loop 3: bars 2-4 only, passes
    assert exercises._expected_answer("05.1", loops=loops) == pytest.approx(3 / 4)
    assert exercises._expected_answer("05.2", loops=loops) == pytest.approx((1 + 1 + 1 + 3) / 4)  # drums left out
    train = np.tile(np.arange(32), (3, 1))
    codes = np.tile(np.arange(32), (4, 1)).astype(np.int32)  # another integer type, the same codes
    codes[1, 2] = 99  # bar 1 (codes 0-3) differs
    codes[2, 10] = 99  # a later bar differs: its bar 1 is a training loop's
    assert exercises._expected_answer("05.3", codes=codes, train_codes=train) == pytest.approx(3 / 4)


def test_the_answers_of_notebook_07():
    from scipy import stats

    listener = pd.DataFrame({"listener_id": ["a"] * 4 + ["b"] * 4, "stimulus_id": list("wxyz") * 2,
                             "rating": [5, 4, 2, 1, 4, 4, 3, 1]})
    key = pd.DataFrame({"stimulus_id": list("wxyz"), "group": ["training_set", "vq_vae_temp1.2", "g2", "g3"]})
    assert exercises._expected_answer("07.1", ratings=listener, key=key) == pytest.approx(stats.chi2.isf(0.001, 3))
    two = exercises._expected_answer("07.2", ratings=listener, key=key)
    assert two == pytest.approx(stats.kruskal([5, 4], [4, 4]).statistic)
    centred = exercises._expected_answer("07.3", ratings=listener, key=key)  # a: mean 3, b: mean 3
    assert centred == pytest.approx(stats.kruskal([2, 1], [1, 1], [-1, 0], [-2, -2]).statistic)


def test_the_answers_of_notebook_08():
    seeds = pd.DataFrame({"reconstruction error": [0.10, 0.12, 0.14, 0.33]},
                         index=["seed 0", "seed 1", "seed 2", "spread (max - min) / mean"])
    assert exercises._expected_answer("08.1", table=seeds) == pytest.approx(0.02 / 0.12)
    commitment = pd.DataFrame({"reconstruction error": [0.11, 0.15, 0.12]}, index=["beta = 0.1", "beta = 0.25", "beta = 1"])
    assert exercises._expected_answer("08.2", commitment=commitment, seeds=seeds) == pytest.approx(0.04 / 0.02)
    compression = pd.DataFrame({"prior val cross-entropy": [2.0, 1.5]}, index=["t=32, L=16, K=512", "t=64, L=16, K=512"])
    assert exercises._expected_answer("08.3", table=compression) == pytest.approx(1.5 * 63 / (2.0 * 31))


def test_the_answers_of_notebook_09():
    import types

    import torch

    from loopgen import sample_masked

    prior = types.SimpleNamespace(seq_len=32, relative_bias=torch.zeros(2, 32))
    # 12 rounds: after round 11 floor(32 cos(pi/2 11/12)) = 4 codes are still masked, so the last round fixes 4
    assert exercises._expected_answer("09.1", prior=prior, steps=12) == 4
    assert exercises._expected_answer("09.1", prior=prior, steps=1) == 32
    prior.relative_bias[0, 16] = prior.relative_bias[1, 16] = 1.0
    prior.relative_bias[:, 0] = 5.0  # offset 0 does not count
    assert exercises.check("09.3", 16, prior=prior) and exercises.check("09.3", 16.0, prior=prior)
    assert not exercises.check("09.3", 0, prior=prior)
    codes = np.arange(64).reshape(2, 32) % 7
    repaired = codes.copy()
    seams = np.flatnonzero(sample_masked.seam_positions(32))
    repaired[0, seams[0]] += 1  # one of the 8 seam codes changed
    repaired[1, 5] += 1  # not a seam position: the repair never writes there
    assert exercises._expected_answer("09.2", codes=codes, repaired=repaired) == pytest.approx(1 / 8)


def test_hints_of_the_recording_notebooks_are_not_code():
    """A hint nudges; it does not hand over the computation."""
    for nb in RECORDING:
        for e in exercises.of_notebook(nb):
            assert not any(piece in e.hint for piece in ("()", "[:", ".mean", ".sum", "==", "`")), (e.id, e.hint)


def test_teaching_helpers_for_ratings():
    listener = pd.DataFrame({"listener_id": ["a"] * 4 + ["b"] * 4, "stimulus_id": list("wxyz") * 2,
                             "rating": [5, 4, 2, 1, 4, 4, 3, 1]})
    key = pd.DataFrame({"stimulus_id": list("wxyz"), "group": ["training_set", "training_set", "g2", "g3"]})
    assert teaching.ratings_with_groups(listener, key).groupby("group")["rating"].mean()["training_set"] == 4.25
    means = teaching.listener_group_means(listener, key)
    assert means.shape == (2, 3) and means.loc["a", "training_set"] == 4.5


def test_window_table_agrees_with_find_loops():
    for seed in range(3):
        roll = _roll(seed)
        table = teaching.window_table(roll)
        assert table.index[table["loop"]].tolist() == find_loops(roll)
        assert (table.loc[~table["loop"], "first failing rule"] != "-").all()
    assert teaching.max_differing_cells() == 2


def test_lag_match_and_temperature_table():
    codes = np.tile(np.arange(16), (4, 2))
    lags = teaching.lag_match(codes)
    assert lags[16] == 1.0 and lags[1] == 0.0
    probs = {0.5: np.array([0.8, 0.2]), 1.0: np.array([0.6, 0.4]), 2.0: np.array([0.5, 0.5])}
    table = teaching.next_code_table(probs, top=1)
    assert table.loc["entropy (bits)", "T = 2"] == pytest.approx(1.0)
    assert table.loc["all other codes", "T = 1"] == pytest.approx(0.4)


def _code_sources(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("nb", CHAPTERS)
def test_notebook_and_solution_hold_every_exercise(nb):
    chapter = next(NOTEBOOKS.glob(f"{nb}_*.ipynb"))
    solution = NOTEBOOKS / "solutions" / f"{chapter.stem}_solutions.ipynb"
    assert solution.exists(), f"{solution.name} is missing"
    chapter_code, solution_code = _code_sources(chapter), _code_sources(solution)
    for e in exercises.of_notebook(nb):
        assert f'exercises.check("{e.id}"' in chapter_code, f"{chapter.name} has no cell for {e.id}"
        if e.kind != "text":
            assert f'assert exercises.check("{e.id}"' in solution_code, f"{solution.name} does not check {e.id}"
        else:
            assert f'exercises.check("{e.id}"' in solution_code, f"{solution.name} does not answer {e.id}"


@pytest.mark.parametrize("nb", RECORDING)
def test_notebook_and_solution_record_what_their_exercises_check(nb):
    """Each context an exercise names is recorded where the notebook (and its worked solution) makes it."""
    chapter = next(NOTEBOOKS.glob(f"{nb}_*.ipynb"))
    solution = NOTEBOOKS / "solutions" / f"{chapter.stem}_solutions.ipynb"
    names = {name for e in exercises.of_notebook(nb) for name in e.given.values()}
    for path in (chapter, solution):
        code = _code_sources(path)
        assert "exercises.for_run(" in code, f"{path.name} does not start its exercises on the run"
        recorded = set(re.findall(r"\b(\w+)=", " ".join(re.findall(r"exercises\.record\(([^)]*)\)", code))))
        assert names <= recorded, f"{path.name} does not record {sorted(names - recorded)}"


def test_mechanism_cells_compute_by_hand_and_assert_the_library():
    """07 ranks with ties, H with its tie correction and p from the chi-square; 02 the VAE's loss with the
    reparameterisation; 03 the temperature softmax and a sampling loop; 04 the reconstruction error; 05 HD, FNB
    and UP from the loop array: each once, asserted equal to the library's."""
    listening = _code_sources(next(NOTEBOOKS.glob("07_*.ipynb")))
    for piece in ("(counts + 1) / 2", "tie_correction = 1 - ", "stats.chi2.sf(h", "assert np.isclose(h, kruskal.H"):
        assert listening.count(piece) == 1, piece
    autoencoders = _code_sources(next(NOTEBOOKS.glob("02_*.ipynb")))
    for piece in ("torch.randn_like(mu)", "mu + torch.exp(0.5 * logvar) * eps", "vae.training_loss(",
                  "assert torch.allclose(loss, library_loss"):
        assert autoencoders.count(piece) == 1, piece
    prior = _code_sources(next(NOTEBOOKS.glob("03_*.ipynb")))
    for piece in ("np.exp((scores - scores.max()) / T)", "assert np.allclose(by_hand[T], distributions[T]",
                  "torch.softmax(logits[:, -1].float() / T", "torch.multinomial(probs, 1, generator=draws)",
                  "assert (by_hand_codes == sample.sample_codes("):
        assert prior.count(piece) == 1, piece
    reconstruction = _code_sources(next(NOTEBOOKS.glob("04_*.ipynb")))
    for piece in ("vq.reconstruct_logits(", "x_hat = (logits >= 0)", "wrong = (x_hat != x).sum(axis=(1, 2))",
                  "assert np.isclose(error, table1.ours.loc["):
        assert reconstruction.count(piece) == 1, piece
    musical = _code_sources(next(NOTEBOOKS.glob("05_*.ipynb")))
    for piece in ("(bar_1 != bar_5).sum(axis=(1, 2)) / (16 * 93)", "loops[:, 0, 9:].any(axis=1)",
                  "loops.any(axis=1).sum(axis=1)", "np.isclose(hd, metrics.ham_dist(loops))",
                  "np.isclose(fnb, metrics.first_note_bass(loops))", "np.isclose(up, metrics.unique_pitch(loops))"):
        assert musical.count(piece) == 1, piece


@pytest.mark.parametrize("nb", CHAPTERS)
def test_notebook_shows_the_library_questions(nb):
    """The questions in a notebook's exercise section are the library's (exercises.sheet), word for word."""
    chapter = next(NOTEBOOKS.glob(f"{nb}_*.ipynb"))
    cells = json.loads(chapter.read_text(encoding="utf-8"))["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert exercises.sheet(nb) in markdown, f"{chapter.name}: regenerate its exercise section from exercises.sheet"
