"""loopgen.book.exercises: right answers accepted, wrong ones rejected with a hint; every exercise placed in its notebook
and answered in its worked solution."""

from __future__ import annotations

import json
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


def test_every_notebook_has_three_to_five_graded_exercises():
    for nb in ("01", "02", "03", "04", "05", "06", "07", "08"):
        levels = [e.level for e in exercises.of_notebook(nb)]
        assert 3 <= len(levels) <= 5, (nb, levels)
        assert levels == sorted(levels, key=exercises.LEVELS.index), f"{nb}: warm-up, core, open in that order"
        assert {"warm-up", "core", "open"} <= set(levels), nb


def test_right_answer_accepted_wrong_rejected_with_hint(capsys):
    assert exercises.check("01.1", 2) is True
    assert "01.1: right" in capsys.readouterr().out
    assert exercises.check("01.1", 3) is False
    out = capsys.readouterr().out
    assert "not yet" in out and "Hint:" in out and "strict" in out
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
    assert exercises.expected_answer("03.2", codes=codes) == pytest.approx(0.7)
    assert exercises.check("03.2", 0.7, codes=codes) and not exercises.check("03.2", 0.5, codes=codes)
    assert exercises.check("03.1", 16, codes=codes)
    assert exercises.check("06.1", [16, 17, 18, 19], codes=codes) and not exercises.check("06.1", [16, 17], codes=codes)


def test_missing_context_and_unknown_id_are_clear_errors():
    with pytest.raises(TypeError, match="roll="):
        exercises.check("01.2", 3)
    with pytest.raises(KeyError, match="no exercise"):
        exercises.check("99.9", 1)


def test_wrong_types_rejected_not_crashing(capsys):
    assert not exercises.check("01.4", "half", loops=np.zeros((2, 128, 93), np.uint8))
    assert "expected a number" in capsys.readouterr().out
    assert not exercises.check("03.4", [1, 2], prior=None, first_probs=None, seed=0)
    assert "expected a dict" in capsys.readouterr().out


def test_open_exercises_check_only_the_form(capsys):
    assert not exercises.check("01.5", "short")
    assert exercises.check("01.5", "Windows overlap: a loop at bar k is often a loop at k + 1 as well, so it counts.")
    assert "open exercise" in capsys.readouterr().out
    with pytest.raises(ValueError, match="open exercise"):
        exercises.expected_answer("01.5")


def test_one_of_and_mapping_kinds(capsys):
    table = pd.DataFrame({"reconstruction_error": [0.02, 0.01, 0.03]}, index=["A", "VQ-VAE", "C"])
    assert exercises.check("04.2", "vq-vae", table=table) and not exercises.check("04.2", "A", table=table)
    listener = pd.DataFrame({"listener_id": ["a"] * 4 + ["b"] * 4, "stimulus_id": list("wxyz") * 2,
                             "rating": [5, 4, 2, 1, 4, 4, 3, 1]})
    key = pd.DataFrame({"stimulus_id": list("wxyz"), "group": ["training_set", "training_set", "g2", "g3"]})
    assert exercises.check("07.3", 4.25, ratings=listener, key=key)
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


@pytest.mark.parametrize("nb", ["01", "02", "03", "04", "05", "06", "07", "08"])
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


@pytest.mark.parametrize("nb", ["01", "02", "03", "04", "05", "06", "07", "08"])
def test_notebook_shows_the_library_questions(nb):
    """The questions in a notebook's exercise section are the library's (exercises.sheet), word for word."""
    chapter = next(NOTEBOOKS.glob(f"{nb}_*.ipynb"))
    cells = json.loads(chapter.read_text(encoding="utf-8"))["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert exercises.sheet(nb) in markdown, f"{chapter.name}: regenerate its exercise section from exercises.sheet"
