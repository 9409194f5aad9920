"""The exercises at the end of notebooks 01-08 and their checker.

``check("03.2", answer, codes=train_codes)`` prints whether ``answer`` is right, with a hint when it is not, and
returns True or False. Where the right answer depends on the run (the data, the trained models, the samples), the
checker computes it from what the notebook passes as keyword arguments (the ``needs`` of the exercise), so the
same exercise is checked at every profile and seed. Open exercises have no single answer: their checker only says
whether the answer has the asked-for form; the worked solutions (``notebooks/solutions/``) discuss them.

Levels: ``warm-up`` (read it off the notebook), ``core`` (a few lines with the library), ``open`` (explain,
explore).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from loopgen import LOOP_CELLS, STEPS_PER_BAR, metrics
from loopgen.book import teaching

LEVELS = ("warm-up", "core", "open")


@dataclass(frozen=True)
class Exercise:
    """One exercise: what it asks, how it is checked, and the hint a wrong answer gets."""

    id: str  # "NN.k": notebook NN, exercise k
    level: str
    question: str
    hint: str
    expected: Callable[..., object] | None = None  # the right answer from the run's data (keyword ``needs``)
    needs: tuple[str, ...] = ()
    kind: str = "number"  # "number" (within ``tolerance``), "exact", "one_of", "mapping" (numbers), "text" (open)
    tolerance: float = 1e-6  # absolute, and relative to the expected value (the larger applies)

    @property
    def notebook(self) -> str:
        return self.id.split(".")[0]


EXERCISES: dict[str, Exercise] = {}


def _add(*exercises: Exercise) -> None:
    for exercise in exercises:
        if exercise.level not in LEVELS:
            raise ValueError(f"{exercise.id}: level must be one of {LEVELS}")
        EXERCISES[exercise.id] = exercise


def of_notebook(notebook: str) -> list[Exercise]:
    """The exercises of notebook ``"NN"``, in order."""
    return [e for e in EXERCISES.values() if e.notebook == notebook]


def sheet(notebook: str) -> str:
    """The exercises of notebook ``"NN"`` as Markdown (what the notebook's exercise section shows)."""
    lines = []
    for e in of_notebook(notebook):
        lines.append(f"**{e.id}** *({e.level})* {e.question}")
    return "\n\n".join(lines)


def _close(answer: float, expected: float, tolerance: float) -> bool:
    return math.isclose(float(answer), float(expected), rel_tol=tolerance, abs_tol=tolerance)


def _number(answer: object) -> float | None:
    try:
        value = float(answer)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _form_problem(exercise: Exercise, answer: object) -> str:
    """What is wrong with the answer's form before it is compared ('' when nothing)."""
    if exercise.kind == "number" and _number(answer) is None:
        return f"expected a number, got {type(answer).__name__}"
    if exercise.kind == "mapping" and not isinstance(answer, Mapping):
        return f"expected a dict like {{key: number}}, got {type(answer).__name__}"
    return ""


def _judge(exercise: Exercise, answer: object, expected: object) -> tuple[bool, str]:
    """(right, what is wrong) for ``answer`` against ``expected``."""
    kind = exercise.kind
    if kind == "text":
        text = str(answer).strip() if isinstance(answer, str) else ""
        if len(text.split()) < 8:
            return False, "an open exercise wants a few sentences (a string of at least 8 words)"
        return True, ""
    if kind == "number":
        value = _number(answer)
        if value is None:
            return False, f"expected a number, got {type(answer).__name__}"
        return _close(value, float(expected), exercise.tolerance), f"your {value:.6g} is off"  # type: ignore[arg-type]
    if kind == "exact":
        if isinstance(expected, (set, frozenset)):
            try:
                given = {int(a) for a in answer}  # type: ignore[union-attr]
            except (TypeError, ValueError):
                return False, "expected a collection of integers"
            return given == set(expected), f"your {sorted(given)} is not it"
        if isinstance(expected, str):
            return str(answer).strip().lower() == expected.lower(), f"your {answer!r} is not it"
        value = _number(answer)
        return value is not None and value == float(expected), f"your {answer!r} is not it"  # type: ignore[arg-type]
    if kind == "one_of":
        options = {str(o).strip().lower() for o in expected}  # type: ignore[union-attr]
        return str(answer).strip().lower() in options, f"your {answer!r} is not it"
    if kind == "mapping":
        if not isinstance(answer, Mapping):
            return False, f"expected a dict like {{key: number}}, got {type(answer).__name__}"
        wanted: Mapping = expected  # type: ignore[assignment]
        given = {float(k) if _number(k) is not None else k: v for k, v in answer.items()}
        missing = [k for k in wanted if k not in given]
        if missing:
            return False, f"keys missing: {missing}"
        wrong = [k for k in wanted if _number(given[k]) is None or not _close(given[k], wanted[k], exercise.tolerance)]
        return not wrong, f"the values for {wrong} are off"
    raise ValueError(f"{exercise.id}: unknown kind {kind!r}")


def expected_answer(exercise_id: str, **context: object) -> object:
    """The right answer of a checked exercise on this run's data (``context``: the exercise's ``needs``)."""
    exercise = _get(exercise_id)
    if exercise.expected is None:
        raise ValueError(f"{exercise_id} is an open exercise: it has no single right answer")
    missing = [name for name in exercise.needs if name not in context]
    if missing:
        raise TypeError(f"check({exercise_id!r}, ...) needs {', '.join(f'{m}=...' for m in missing)} from the notebook")
    return exercise.expected(**{name: context[name] for name in exercise.needs})


def _get(exercise_id: str) -> Exercise:
    try:
        return EXERCISES[exercise_id]
    except KeyError:
        raise KeyError(f"no exercise {exercise_id!r}; known: {', '.join(EXERCISES)}") from None


def check(exercise_id: str, answer: object, **context: object) -> bool:
    """Print whether ``answer`` is right (with a hint when not) and return it. ``None``: not answered yet."""
    exercise = _get(exercise_id)
    if answer is None:
        print(f"{exercise_id} ({exercise.level}): not answered yet. {exercise.question}")
        return False
    problem = _form_problem(exercise, answer)
    if problem:
        right = False
    else:
        expected = None if exercise.kind == "text" else expected_answer(exercise_id, **context)
        right, problem = _judge(exercise, answer, expected)
    if right:
        extra = " (open exercise: the form is right; compare with the worked solution)" if exercise.kind == "text" else ""
        print(f"{exercise_id}: right{extra}.")
    else:
        print(f"{exercise_id}: not yet: {problem}. Hint: {exercise.hint}")
    return right


# ------------------------------------------------------------------------------------------ the answers
def _ratio_bar_repeat(loops: np.ndarray, a: int, b: int) -> float:
    first = loops[:, a * STEPS_PER_BAR : (a + 1) * STEPS_PER_BAR]
    second = loops[:, b * STEPS_PER_BAR : (b + 1) * STEPS_PER_BAR]
    return float((first == second).reshape(len(loops), -1).all(axis=1).mean())


def _loops_at_threshold(roll: np.ndarray, threshold: float) -> int:
    from loopgen.loops import LoopParams, find_loops

    return len(find_loops(roll, dataclasses.replace(LoopParams(), hamming_threshold=threshold)))


def _most_rejecting_rules(roll: np.ndarray) -> set[str]:
    table = teaching.window_table(roll)
    failing = table.loc[~table["loop"], "first failing rule"]
    if failing.empty:
        return {"none"}
    counts = failing.value_counts()
    return {rule.split()[0] for rule in counts[counts == counts.max()].index}


def _bits(model) -> float:
    return model.latent_steps * math.log2(model.num_codes)


def _code_of_step0(model, loop: np.ndarray) -> int:
    from loopgen import sample

    return int(sample.encode_codes(model, np.asarray(loop)[None])[0, 0])


def _codes_used(model, loops: np.ndarray) -> int:
    from loopgen import sample

    return int(np.unique(sample.encode_codes(model, loops)).size)


def _us_per_temperature(prior, first_probs: np.ndarray, seed: int) -> dict[float, float]:
    from loopgen import sample

    return {
        t: metrics.unique_sample(sample.sample_codes(prior, 64, first_probs, temperature=t, seed=seed))
        for t in (0.5, 1.0, 2.0)
    }


def _wrong_cells_first(model, loops: np.ndarray) -> int:
    from loopgen import sample

    return int((sample.reconstruct(model, loops[:1])[0] != loops[0]).sum())


def _copied_bar_hd(model, codes: np.ndarray) -> float:
    from loopgen import sample

    t = codes.shape[1]
    per_bar = t // 8
    edited = codes.copy()
    edited[:, t // 2 : t // 2 + per_bar] = codes[:, 0:per_bar]
    return metrics.ham_dist(sample.decode_codes(model, edited))


def _copy_survives(model, codes: np.ndarray) -> float:
    from loopgen import paper, sample

    edited = sample.copy_code_span(codes, src=paper.COPY_SOURCE_STEPS, dst=paper.COPY_TARGET_STEPS)
    again = sample.encode_codes(model, sample.decode_codes(model, edited))
    a, b = paper.COPY_TARGET_STEPS
    return float((again[:, a:b] == edited[:, a:b]).mean())


def _friedman(ratings: pd.DataFrame, key: pd.DataFrame) -> float:
    from scipy import stats

    means = teaching.listener_group_means(ratings, key)
    return float(stats.friedmanchisquare(*[means[c].to_numpy() for c in means.columns]).statistic)


def _group_mean(ratings: pd.DataFrame, key: pd.DataFrame, group: str) -> float:
    means = teaching.ratings_with_groups(ratings, key)
    return float(means.loc[means["group"] == group, "rating"].mean())


def _seed_spread(table: pd.DataFrame, column: str) -> float:
    rows = table.loc[[i for i in table.index if str(i).startswith("seed ")], column].astype(float)
    return float((rows.max() - rows.min()) / max(abs(rows.mean()), 1e-3))


_add(
    # 01 · loops
    Exercise("01.1", "warm-up", "Rule 1 lets bar 1 and bar 5 differ in fewer than 0.15 % of their 1,488 cells. "
             "At most how many cells may differ?", "0.0015 x 1,488 = 2.23, and the rule is strict (<).",
             lambda: teaching.max_differing_cells(), (), "exact"),
    Exercise("01.2", "core", "Predict, then count: how many windows of the walked song are loops when the Hamming "
             "threshold is 0.01 instead of 0.0015? (`dataclasses.replace(params, hamming_threshold=0.01)`, "
             "`find_loops`)", "run find_loops(roll, ...) with the new parameters; only rule 1 changes.",
             lambda roll: _loops_at_threshold(roll, 0.01), ("roll",), "exact"),
    Exercise("01.3", "core", "Which rule rejects most windows of the walked song, counting each rejected window "
             "under the first rule it fails? Answer '1', '2', '3' or '4' ('none' if no window is rejected).",
             "value_counts() of the window table's 'first failing rule' column, rows where 'loop' is False.",
             lambda roll: _most_rejecting_rules(roll), ("roll",), "one_of"),
    Exercise("01.4", "core", "What share of the training loops repeat bar 2 exactly in bar 6 (every cell equal)?",
             "compare train.loops[:, 16:32] with train.loops[:, 80:96] loop by loop; .all over cells, .mean over loops.",
             lambda loops: _ratio_bar_repeat(loops, 1, 5), ("loops",), "number", 1e-4),
    Exercise("01.5", "open", "The 8-bar stride gives fewer loops than the 1-bar stride, but not exactly 8 times "
             "fewer. Explain with the rules why, and say which stride a model of repetition should train on.",
             "a loop found at bar k is often found at k + 1 too; think about which start bars an 8-bar stride visits.",
             kind="text"),
    # 02 · autoencoders
    Exercise("02.1", "warm-up", "How many bits does one loop's VQ-VAE code sequence carry (t codes, each one of K)? "
             "Compare with the 11,904 cells of the loop.", "t x log2(K); for the paper's setting 32 x 9.",
             _bits, ("model",), "number"),
    Exercise("02.2", "core", "By hand: the code of latent step 0 of the loop `x`, i.e. the k that minimises "
             "||z_0 - e_k||^2 (`model.encode_continuous`, `model.quantiser.codebook`, `torch.cdist`).",
             "z = model.encode_continuous(x)[0, 0]; argmin over the codebook's rows of the squared distance.",
             _code_of_step0, ("model", "loop"), "exact"),
    Exercise("02.3", "core", "How many distinct codes of the K does the VQ-VAE use on the validation loops?",
             "np.unique(sample.encode_codes(model, val_loops)).size", _codes_used, ("model", "loops"), "exact"),
    Exercise("02.4", "open", "The argmin of the quantiser has no gradient. What does the straight-through estimator "
             "pass to the encoder instead, what does it assume, and which loss term keeps that assumption true?",
             "look at the two gradients the teaching cell compares, and at the commitment term.", kind="text"),
    # 03 · prior
    Exercise("03.1", "warm-up", "With t latent steps for 8 bars, at which latent step does bar 5 start?",
             "bar 5 starts halfway through the loop.", lambda codes: codes.shape[1] // 2, ("codes",), "exact"),
    Exercise("03.2", "core", "What share of the training loops have the same code at the first step of bar 5 as at "
             "step 0?", "(codes[:, t // 2] == codes[:, 0]).mean()",
             lambda codes: float((codes[:, codes.shape[1] // 2] == codes[:, 0]).mean()), ("codes",), "number", 1e-4),
    Exercise("03.3", "core", "For the prefix of the teaching cell, what probability does the most likely next code "
             "get at T = 0.5?", "teaching.next_code_distributions(prior, prefix, [0.5])[0.5].max()",
             lambda prior, prefix: float(teaching.next_code_distributions(prior, prefix, [0.5])[0.5].max()),
             ("prior", "prefix"), "number", 1e-4),
    Exercise("03.4", "core", "Sample 64 code sequences at T = 0.5, 1 and 2 with `sample.sample_codes(prior, 64, "
             "first_probs, temperature=T, seed=SEED)` and give US for each as {0.5: ..., 1.0: ..., 2.0: ...}.",
             "metrics.unique_sample(codes) for each temperature, same seed each time.",
             _us_per_temperature, ("prior", "first_probs", "seed"), "mapping", 1e-6),
    Exercise("03.5", "open", "Explain the US values of 03.4 and predict HD at each temperature: why does a higher "
             "temperature make loops more distinct and less loop-like?",
             "a flatter next-code distribution (entropy in the table) breaks the lag-16 copy.", kind="text"),
    # 04 · reconstruction
    Exercise("04.1", "warm-up", "The reconstruction error divides the number of wrong cells by how many cells?",
             "128 steps x 93 columns.", lambda: LOOP_CELLS, (), "exact"),
    Exercise("04.2", "core", "Which model has the lowest reconstruction error in this run's Table 1? "
             "(its label, e.g. 'VQ-VAE')", "table1.ours['reconstruction_error'].idxmin()",
             lambda table: {str(table["reconstruction_error"].astype(float).idxmin())}, ("table",), "one_of"),
    Exercise("04.3", "core", "How many cells of the first validation loop does the VQ-VAE get wrong?",
             "(sample.reconstruct(vq, val.loops[:1])[0] != val.loops[0]).sum()",
             _wrong_cells_first, ("model", "loops"), "exact"),
    Exercise("04.4", "open", "Table 2: does t = 64 beat t = 32 on this run as in the paper? Give a reason that does "
             "not depend on training time, and one that does.",
             "count the bits each latent carries; then look at the epochs in the notes.", kind="text"),
    # 05 · musical metrics
    Exercise("05.1", "warm-up", "What US has a group in which no two code sequences are equal?",
             "US = distinct sequences / sequences.", lambda: 1.0, (), "number"),
    Exercise("05.2", "core", "By hand: FND of the CNN-VAE group, the share of its loops with kick and crash both "
             "on at step 0.", "loops[:, 0, KICK] and loops[:, 0, CRASH] (columns 0 and 6), both non-zero, mean.",
             lambda loops: metrics.first_note_drum(loops), ("loops",), "number", 1e-6),
    Exercise("05.3", "core", "By hand: OS of the VQ-VAE (temp 1) group, the share of its code sequences that also "
             "occur among the training codes.", "a set of the training rows as bytes (row.tobytes()), then a mean.",
             lambda codes, train_codes: metrics.overlap_sample(codes, train_codes), ("codes", "train_codes"),
             "number", 1e-6),
    Exercise("05.4", "open", "Argmax sampling has a high OS and a low US. Why does that make it a poor generator even "
             "when its HD, FND and FNB match the training set?",
             "what does the argmax sequence depend on once the first code is drawn?", kind="text"),
    # 06 · latent space
    Exercise("06.1", "warm-up", "Which latent steps hold bar 5 when t = 32? (a list of step indices)",
             "4 latent steps per bar; bar 5 is the fifth group of four.",
             lambda codes: set(range(codes.shape[1] // 2, codes.shape[1] // 2 + codes.shape[1] // 8)), ("codes",),
             "exact"),
    Exercise("06.2", "core", "Copy all four codes of bar 1 onto bar 5 (`codes[:, 16:20] = codes[:, 0:4]`) of the "
             "stored temperature-1 samples, decode, and give HD of the result.",
             "copy, sample.decode_codes(vq, edited), metrics.ham_dist(...).",
             _copied_bar_hd, ("model", "codes"), "number", 1e-6),
    Exercise("06.3", "core", "After the paper's edit (steps 0-1 onto 16-17), decode and encode again: what share of "
             "the re-encoded steps 16-17 still hold the copied codes?",
             "sample.encode_codes(vq, sample.decode_codes(vq, edited))[:, 16:18] == edited[:, 16:18]",
             _copy_survives, ("model", "codes"), "number", 1e-6),
    Exercise("06.4", "open", "Copy bar 1's codes onto bar 3 instead of bar 5. Predict what happens to HD (which "
             "compares bars 1 and 5) and to how the loop sounds, then try it.",
             "HD only looks at bars 1 and 5.", kind="text"),
    # 07 · listening test
    Exercise("07.1", "warm-up", "How many degrees of freedom has the Kruskal-Wallis H of this test?",
             "groups - 1.", lambda kruskal: int(kruskal.dof), ("kruskal",), "exact"),
    Exercise("07.2", "core", "A Friedman test on per-listener means: average each listener's ratings per group "
             "(`teaching.listener_group_means`), then `scipy.stats.friedmanchisquare` over the groups. Its statistic?",
             "one column per group, one row per listener; pass the columns as separate samples.",
             _friedman, ("ratings", "key"), "number", 1e-6),
    Exercise("07.3", "core", "The mean rating of the training set's loops (group 'training_set')?",
             "join the ratings with the key on the stimulus id (teaching.ratings_with_groups).",
             lambda ratings, key: _group_mean(ratings, key, "training_set"), ("ratings", "key"), "number", 1e-6),
    Exercise("07.4", "open", "The Friedman test pairs the groups within each listener; Kruskal-Wallis does not. "
             "When does that matter, and what can a PROXY listener's ratings not tell you?",
             "think of a listener who rates everything low.", kind="text"),
    # 08 · the other claims
    Exercise("08.1", "warm-up", "How many of the four claims hold on this run?", "sum(f.holds for f in findings)",
             lambda findings: sum(bool(f.holds) for f in findings), ("findings",), "exact"),
    Exercise("08.2", "core", "From the seed table's three seed rows: the spread (max - min) / |mean| of the "
             "reconstruction error.", "rows 'seed ...' only; mean magnitude at least 1e-3.",
             lambda table: _seed_spread(table, "reconstruction error"), ("table",), "number", 1e-6),
    Exercise("08.3", "core", "Same for US: its spread over the three seeds.", "as in 08.2, column 'US'.",
             lambda table: _seed_spread(table, "US"), ("table",), "number", 1e-6),
    Exercise("08.4", "open", "Design a fifth check: a claim of the paper without a number, the short experiment that "
             "tests it, and the threshold at which you would say it holds.",
             "notebook 02's notes and the paper's 'Experiments' section list more settings.", kind="text"),
)
