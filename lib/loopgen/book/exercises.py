"""The exercises at the end of notebooks 01-09 and their checker.

``check("03.3", answer, prior=prior, codes=val_codes)`` prints whether ``answer`` is right, with a hint when it is
not, and returns True or False. Where the right answer depends on the run (the data, the trained models, the samples), the
checker computes it from what the notebook passes as keyword arguments (the ``needs`` of the exercise), so the
same exercise is checked at every profile and seed.

The checker checks what it is given. A notebook starts its exercises with :func:`for_run` and, where it makes an
array, a table or a model that an exercise is about, records it once (``record(loops_cnn_vae=...)``). An exercise
names the recorded context each of its arguments must be (:attr:`Exercise.given`); an argument whose digest
(:class:`loopgen.store.digest.ContentDigest`, or :func:`loopgen.train.checkpoint.weights_digest` for a model)
differs from the recorded one is refused with a line that says what was expected, so ``check("05.2",
answer, loops=train)`` is not "right" when the exercise is about the CNN-VAE's samples.

Open exercises have no single answer, so no answer to them is ever "right": the checker records it under
``build/answers/<profile>/seed<S>/`` and points to the worked solution (``notebooks/solutions/``), which argues
the question from the run's own numbers.

Levels: ``warm-up`` (one idea, a line or two), ``core`` (a few lines that need the idea), ``open`` (explain,
explore).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from loopgen import BAR_CELLS, BARS_PER_LOOP, N_DRUM, STEPS_PER_BAR, paper
from loopgen.book import teaching
from loopgen.store import atomic
from loopgen.store.digest import ContentDigest
from loopgen.store.paths import Paths

LEVELS = ("warm-up", "core", "open")

# What a notebook may record (``record(name=...)``), and how a refusal names it.
CONTEXTS = {
    "song_roll": "song roll of the walked song (notebook 01's window walk)",
    "train_set": "training loops (the LoopSet of the training split)",
    "train_codes": "training loops' code sequences",
    "val_loops": "validation loops",
    "vq_vae": "VQ-VAE",
    "vae": "VAE of the loss cell",
    "vae_batch": "batch of the loss cell",
    "quantiser_loop": "loop of the quantiser cell",
    "prior": "LSTM prior",
    "first_probs": "first-code distribution",
    "loops_cnn_vae": "CNN-VAE samples",
    "loops_vq_vae_temp1": "VQ-VAE (temp 1) samples",
    "codes_vq_vae_temp1": "code sequences of the VQ-VAE (temp 1) samples",
    "ratings": "ratings of the study",
    "study_key": "study's key (stimulus id -> group)",
    "seed_table": "seed table of notebook 08",
    "commitment_table": "commitment-weight table of notebook 08",
    "compression_table": "compression table of notebook 08",
    "masked_prior": "masked code prior",
    "lstm_codes": "LSTM prior's samples (code sequences, temperature 1)",
    "repaired_codes": "LSTM prior's samples with their seams repaired (code sequences)",
    "val_codes": "validation loops' code sequences",
}


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
    given: Mapping[str, str] = field(default_factory=dict, hash=False)  # need -> the recorded context it must be

    @property
    def notebook(self) -> str:
        return self.id.split(".")[0]


EXERCISES: dict[str, Exercise] = {}


def _add(*exercises: Exercise) -> None:
    for exercise in exercises:
        if exercise.level not in LEVELS:
            raise ValueError(f"{exercise.id}: level must be one of {LEVELS}")
        unknown = set(exercise.given.values()) - set(CONTEXTS)
        if unknown or not set(exercise.given) <= set(exercise.needs):
            raise ValueError(f"{exercise.id}: given must map needs to CONTEXTS ({sorted(unknown)})")
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


# ------------------------------------------------------------------------------------ the run's own context
@dataclass
class _Run:
    """What this kernel's notebook declared: its run (for the open answers' folder) and its recorded contexts."""

    profile: str | None = None
    seed: int | None = None
    paths: Paths | None = None
    recorded: dict[str, str] = field(default_factory=dict)  # context name -> digest


_RUN = _Run()


def for_run(profile: str, seed: int, paths: Paths | None = None) -> None:
    """Start a notebook's exercises on one run: open answers go to its folder, every context an exercise names
    must be recorded (:func:`record`) before it is checked, and nothing recorded before counts."""
    global _RUN
    _RUN = _Run(str(profile), int(seed), paths)


def record(**contexts: object) -> None:
    """Record the run's own arrays, tables or models under their names (:data:`CONTEXTS`), once, where the
    notebook makes them: an exercise about them accepts exactly these."""
    unknown = sorted(set(contexts) - set(CONTEXTS))
    if unknown:
        raise ValueError(f"unknown context {unknown}; known: {', '.join(CONTEXTS)}")
    for name, value in contexts.items():
        _RUN.recorded[name] = digest(value)


def digest(value: object) -> str:
    """A content digest of a context: a model by its weights, an array by dtype, shape and bytes (text arrays by
    their text), a table by its labels and values, a dataclass field by field, anything else by its value."""
    if isinstance(value, torch.nn.Module):
        from loopgen.train.checkpoint import weights_digest

        return f"weights:{weights_digest(value)}"
    d = ContentDigest()
    if isinstance(value, (pd.DataFrame, pd.Series)):
        labels = [list(map(str, value.index))] + ([list(map(str, value.columns))] if isinstance(value, pd.DataFrame) else [])
        d.text(json.dumps(labels)).array(pd.util.hash_pandas_object(value, index=True).to_numpy())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):  # metadata dictionaries (a LoopSet's manifest and report) left out
            if not isinstance(getattr(value, f.name), dict):
                d.text(f"{f.name}={digest(getattr(value, f.name))};")
    elif isinstance(value, torch.Tensor):
        d.value(value)
    elif isinstance(value, (np.ndarray, list, tuple)):
        array = np.asarray(value)
        if array.dtype.kind in "OUS":
            d.text(f"{array.shape}:").text("\x1f".join(map(str, array.ravel())))
        else:
            d.array(array, with_layout=True)
    else:
        d.value(value)
    return d.hex(16)


def _context_problem(exercise: Exercise, context: Mapping[str, object]) -> str:
    """Why the context given to ``exercise`` is not the run's own ('' when it is, or when the notebook has not
    started its exercises with :func:`for_run`)."""
    for need, name in exercise.given.items():
        if name not in _RUN.recorded:
            if _RUN.profile is None:
                continue  # a notebook that records nothing: its contexts cannot be matched
            return (f"this notebook has not recorded the run's {CONTEXTS[name]} (`{name}`): run the cell that makes "
                    "it, then this one")
        if digest(context[need]) != _RUN.recorded[name]:
            return (f"{need}= is not this run's {CONTEXTS[name]} (recorded as `{name}` where the notebook made it): "
                    f"pass that, and compute your answer from it")
    return ""


# ------------------------------------------------------------------------------------------- judging
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
    if exercise.kind == "text":
        text = answer.strip() if isinstance(answer, str) else ""
        if len(text.split()) < 8:
            return "an open exercise wants a few sentences (a string of at least 8 words)"
    return ""


def _judge(exercise: Exercise, answer: object, expected: object) -> tuple[bool, str]:
    """(right, what is wrong) for ``answer`` against ``expected`` (a checked exercise)."""
    kind = exercise.kind
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
        options: set = set(expected)  # type: ignore[call-overload]
        value = _number(answer) if not isinstance(answer, str) else None
        if value is not None and value in {float(o) for o in options if _number(o) is not None}:
            return True, ""
        return str(answer).strip().lower() in {str(o).strip().lower() for o in options}, f"your {answer!r} is not it"
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


def _expected_answer(exercise_id: str, **context: object) -> object:
    """The right answer of a checked exercise on this run's data (``context``: the exercise's ``needs``); for the
    checker and its tests, not for a student's path."""
    exercise = _get(exercise_id)
    if exercise.expected is None:
        raise ValueError(f"{exercise_id} is an open exercise: it has no single right answer")
    _require_needs(exercise, context)
    return exercise.expected(**{name: context[name] for name in exercise.needs})


def _require_needs(exercise: Exercise, context: Mapping[str, object]) -> None:
    missing = [name for name in exercise.needs if name not in context]
    if missing:
        raise TypeError(f"check({exercise.id!r}, ...) needs {', '.join(f'{m}=...' for m in missing)} from the notebook")


def _get(exercise_id: str) -> Exercise:
    try:
        return EXERCISES[exercise_id]
    except KeyError:
        raise KeyError(f"no exercise {exercise_id!r}; known: {', '.join(EXERCISES)}") from None


def solution_notebook(notebook: str) -> str:
    """The worked solutions of notebook ``"NN"``, as a path from ``notebooks/``."""
    chapter = next(Paths().notebooks.glob(f"{notebook}_*.ipynb"), None)
    return f"solutions/{chapter.stem}_solutions.ipynb" if chapter else "solutions/"


def answers_folder() -> Path:
    """Where open answers are recorded: ``build/answers/<profile>/seed<S>/`` of the run :func:`for_run` named."""
    paths = _RUN.paths or Paths()
    if _RUN.profile is None:
        return paths.answers / "no-run-named"
    return paths.answers_dir(_RUN.profile, _RUN.seed or 0)


def _record_open_answer(exercise: Exercise, text: str) -> Path:
    path = answers_folder() / f"{exercise.id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    entries.append({"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "answer": text.strip()})
    atomic.write_text(path, json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
    return path


def check(exercise_id: str, answer: object, **context: object) -> bool:
    """Print whether ``answer`` is right (with a hint when not) and return it. ``None``: not answered yet.

    An open exercise's answer is recorded, never marked right: True says it was recorded."""
    exercise = _get(exercise_id)
    if answer is None:
        print(f"{exercise_id} ({exercise.level}): not answered yet. {exercise.question}")
        return False
    problem = _form_problem(exercise, answer)
    if exercise.kind == "text":
        if problem:
            print(f"{exercise_id}: not recorded: {problem}. Hint: {exercise.hint}")
            return False
        path = _record_open_answer(exercise, answer)  # type: ignore[arg-type]
        print(f"{exercise_id}: recorded in {path} (an open question has no automatic verdict). Compare it with the "
              f"worked solution, {solution_notebook(exercise.notebook)}, which argues it from this run's numbers.")
        return True
    _require_needs(exercise, context)
    unchecked = _context_problem(exercise, context)
    if unchecked:
        print(f"{exercise_id}: not checked: {unchecked}.")
        return False
    if problem:
        right = False
    else:
        right, problem = _judge(exercise, answer, _expected_answer(exercise_id, **context))
    if right:
        print(f"{exercise_id}: right.")
    else:
        print(f"{exercise_id}: not yet: {problem}. Hint: {exercise.hint}")
    return right


# ------------------------------------------------------------------------------------------ the answers
def _differing_cells(loops: np.ndarray, bar_a: int, bar_b: int) -> np.ndarray:
    """Per loop: how many cells of bar ``bar_a`` and bar ``bar_b`` (0-based) differ."""
    a = loops[:, bar_a * STEPS_PER_BAR : (bar_a + 1) * STEPS_PER_BAR]
    b = loops[:, bar_b * STEPS_PER_BAR : (bar_b + 1) * STEPS_PER_BAR]
    return (a != b).reshape(len(loops), -1).sum(axis=1)


def _max_cells(threshold: float) -> int:
    from loopgen.loops import LoopParams

    return teaching.max_differing_cells(LoopParams(hamming_threshold=threshold))


def _loops_at_threshold(roll: np.ndarray, threshold: float) -> int:
    from loopgen.loops import LoopParams, find_loops

    return len(find_loops(roll, dataclasses.replace(LoopParams(), hamming_threshold=threshold)))


def _share_overlapping(loops) -> float:
    """Share of a LoopSet's loops that overlap another loop of the same song (start bars 1 to 7 apart)."""
    starts: dict[str, set[int]] = {}
    for song, bar in zip(np.asarray(loops.source).tolist(), np.asarray(loops.start_bar).tolist(), strict=True):
        starts.setdefault(song, set()).add(int(bar))
    overlapping = [any(bar + d in starts[song] for d in range(-7, 8) if d)
                   for song, bar in zip(np.asarray(loops.source).tolist(), np.asarray(loops.start_bar).tolist(), strict=True)]
    return float(np.mean(overlapping)) if overlapping else 0.0


def _rule1_on_bars_2_and_6(loops) -> float:
    from loopgen.loops import LoopParams

    return float((_differing_cells(loops.loops, 1, 5) / BAR_CELLS < LoopParams().hamming_threshold).mean())


def _bits(model) -> float:
    return model.latent_steps * math.log2(model.num_codes)


def _on_model(model: torch.nn.Module, batch) -> torch.Tensor:
    return torch.as_tensor(np.asarray(batch) if not isinstance(batch, torch.Tensor) else batch).float().to(
        next(model.parameters()).device)


@torch.no_grad()
def _kl_with_unit_sigma(vae, batch) -> float:
    was_training = vae.training
    vae.eval()
    try:
        mu, _ = vae.encode(_on_model(vae, batch))
    finally:
        vae.train(was_training)
    return float(0.5 * (mu[0].double() ** 2).sum())


@torch.no_grad()
def _farthest_step(model, loop: np.ndarray) -> int:
    x = _on_model(model, np.asarray(loop)[None])
    z = model.encode_continuous(x)[0].float()
    return int(torch.cdist(z, model.quantiser.codebook.float()).min(dim=1).values.argmax())


def _step_16_repeats_step_0(codes: np.ndarray) -> float:
    return float((codes[:, codes.shape[1] // 2] == codes[:, 0]).mean())


def _bar1_onto_bar5_exact(model, codes: np.ndarray) -> float:
    from loopgen import sample
    from loopgen.loops import repetition_distance

    t = codes.shape[1]
    per_bar = t // 8
    edited = codes.copy()
    edited[:, t // 2 : t // 2 + per_bar] = codes[:, :per_bar]
    return float((repetition_distance(sample.decode_codes(model, edited)) == 0).mean())


def _copy_survives(model, codes: np.ndarray) -> float:
    from loopgen import paper, sample

    edited = sample.copy_code_span(codes, src=paper.COPY_SOURCE_STEPS, dst=paper.COPY_TARGET_STEPS)
    again = sample.encode_codes(model, sample.decode_codes(model, edited))
    a, b = paper.COPY_TARGET_STEPS
    return float((again[:, a:b] == edited[:, a:b]).mean())


def _rated(ratings: pd.DataFrame, key: pd.DataFrame) -> pd.DataFrame:
    return teaching.ratings_with_groups(ratings, key)


def _critical_h(ratings: pd.DataFrame, key: pd.DataFrame, alpha: float = 0.001) -> float:
    from scipy import stats

    return float(stats.chi2.isf(alpha, _rated(ratings, key)["group"].nunique() - 1))


def _kruskal_two_groups(ratings: pd.DataFrame, key: pd.DataFrame, a: str, b: str) -> float:
    from scipy import stats

    rated = _rated(ratings, key)
    return float(stats.kruskal(*[rated.loc[rated["group"] == g, "rating"].to_numpy(float) for g in (a, b)]).statistic)


def _kruskal_listener_centred(ratings: pd.DataFrame, key: pd.DataFrame) -> float:
    from scipy import stats

    rated = _rated(ratings, key)
    centred = rated["rating"] - rated.groupby("listener_id")["rating"].transform("mean")
    return float(stats.kruskal(*[centred[rated["group"] == g].to_numpy(float) for g in rated["group"].unique()]).statistic)


def _seed_rows(table: pd.DataFrame, column: str) -> pd.Series:
    return table.loc[[i for i in table.index if str(i).startswith("seed ")], column].astype(float)


def _seed_variation(table: pd.DataFrame) -> float:
    rows = _seed_rows(table, "reconstruction error")
    return float(rows.std(ddof=1) / rows.mean())


def _commitment_in_seed_deviations(commitment: pd.DataFrame, seeds: pd.DataFrame) -> float:
    errors = commitment["reconstruction error"].astype(float)
    return float((errors.max() - errors.min()) / _seed_rows(seeds, "reconstruction error").std(ddof=1))


def _per_loop_cross_entropy_ratio(table: pd.DataFrame) -> float:
    per_loop = {}
    for label, ce in table["prior val cross-entropy"].astype(float).items():
        t = int(re.search(r"t=(\d+)", str(label)).group(1))  # type: ignore[union-attr]
        per_loop[t] = ce * (t - 1)  # the prior predicts every code but the first
    return per_loop[max(per_loop)] / per_loop[min(per_loop)]


def _codes_fixed_in_last_round(prior, steps: int) -> int:
    """How many codes the last of ``steps`` rounds fixes when the masked prior writes a whole loop
    (the schedule of :mod:`loopgen.sample_masked`)."""
    unknown = t = int(prior.seq_len)
    fixed = 0
    for s in range(int(steps)):
        still = 0 if s == steps - 1 else max(min(math.floor(t * math.cos(math.pi / 2 * (s + 1) / steps)), unknown - 1), 0)
        fixed, unknown = unknown - still, still
    return fixed


def _seam_codes_changed(codes: np.ndarray, repaired: np.ndarray) -> float:
    from loopgen import sample_masked

    where = sample_masked.seam_positions(codes.shape[1])
    return float((codes[:, where] != repaired[:, where]).mean())


def _strongest_offsets(prior) -> set[int]:
    bias = prior.relative_bias.detach().float().cpu().mean(dim=0).numpy()[1:]  # offset 0 left out
    return {int(i) + 1 for i in np.flatnonzero(bias == bias.max())}


def _infill_copies(prior, codes: np.ndarray, steps: int, seed: int) -> float:
    from loopgen import sample_masked

    t = codes.shape[1]
    where = sample_masked.bar_positions((5, 8), t)
    filled = sample_masked.infill(prior, codes, where, steps=int(steps), temperature=None, seed=int(seed))
    return float((filled[:, t // 2 :] == filled[:, : t // 2]).mean())


def _argmax_sequences(first_probs: np.ndarray) -> int:
    """How many distinct code sequences argmax sampling can make: one per first code the histogram can draw."""
    return int(np.count_nonzero(np.asarray(first_probs) > 0))


def _temperature_for_top_share(prior, codes: np.ndarray, share: float = 0.5) -> float:
    """The temperature at which the prior's most likely code after bar 1 of the first loop of ``codes`` gets
    probability ``share`` (the top code's probability falls steadily as T grows, from 1 towards 1/K)."""
    from scipy import optimize

    scores = teaching.next_code_logits(prior, codes[0, : codes.shape[1] // BARS_PER_LOOP])

    def excess(log_t: float) -> float:
        scaled = (scores - scores.max()) / math.exp(log_t)
        return float(1.0 / np.exp(scaled).sum()) - share  # the top code's probability, less the share

    low, high = math.log(1e-3), math.log(1e3)
    while excess(low) < 0:
        low -= 2.0
    return float(math.exp(optimize.brentq(excess, low, high, xtol=1e-12, rtol=1e-12)))


@torch.no_grad()
def _second_half_accuracy(prior, codes: np.ndarray, batch: int = 1024) -> float:
    """Teacher-forcing next-code accuracy over the codes of the loop's second half (steps t/2 .. t-1) only."""
    codes = np.asarray(codes)
    half = codes.shape[1] // 2
    was_training = prior.training
    prior.eval()
    try:
        device = next(prior.parameters()).device
        right = 0
        for s in range(0, len(codes), batch):
            chunk = torch.as_tensor(codes[s : s + batch], device=device)
            logits, _ = prior(chunk[:, :-1])  # position i - 1 predicts code i
            right += int((logits[:, half - 1 :].argmax(dim=-1) == chunk[:, half:]).sum())
    finally:
        prior.train(was_training)
    return right / (len(codes) * (codes.shape[1] - half))


def _lag_half_per_temperature(prior, first_probs: np.ndarray, seed: int, n: int = 256) -> dict[float, float]:
    """Per temperature: the share of second-half codes of ``n`` sampled sequences equal to the code t/2 earlier."""
    from loopgen import sample

    shares = {}
    for t in (0.5, 1.0, 2.0):
        codes = sample.sample_codes(prior, n, first_probs, temperature=t, seed=seed)
        half = codes.shape[1] // 2
        shares[t] = float((codes[:, half:] == codes[:, :half]).mean())
    return shares


def _on_cells_per_loop(loops: np.ndarray) -> float:
    return float(np.count_nonzero(loops) / len(loops))


def _reconstructed(model, loops: np.ndarray) -> np.ndarray:
    from loopgen import sample

    return sample.reconstruct(model, loops)


def _missed_share(model, loops: np.ndarray) -> float:
    """Of the model's wrong cells on ``loops``: the share that are notes of the input it left out."""
    x_hat = _reconstructed(model, loops)
    return float(np.count_nonzero((loops != 0) & (x_hat == 0)) / max(np.count_nonzero(loops != x_hat), 1))


def _beats_copy_bar_1(model, loops: np.ndarray) -> float:
    """Share of the loops the model reconstructs with fewer wrong cells than bar 1 played 8 times."""
    from loopgen.book import baselines

    wrong = (loops != _reconstructed(model, loops)).reshape(len(loops), -1).sum(axis=1)
    copied = (loops != baselines.copy_bar_one(loops)).reshape(len(loops), -1).sum(axis=1)
    return float((wrong < copied).mean())


def _share_passing_rule_1(loops: np.ndarray) -> float:
    from loopgen.loops import LoopParams, repetition_distance

    return float((repetition_distance(loops) / BAR_CELLS < LoopParams().hamming_threshold).mean())


def _bass_pitches_per_loop(loops: np.ndarray) -> float:
    return float(np.asarray(loops)[:, :, N_DRUM:].any(axis=1).sum(axis=1).mean())


def _first_bar_overlap(codes: np.ndarray, train_codes: np.ndarray) -> float:
    """Share of sampled sequences whose first bar (t/8 codes) is the first bar of some training sequence."""
    from loopgen.data.validate import check_codes

    codes, train_codes = check_codes(codes), check_codes(train_codes)  # int64 both: bytes compare alike
    bar = codes.shape[1] // BARS_PER_LOOP
    seen = {row.tobytes() for row in np.ascontiguousarray(train_codes[:, :bar])}
    return float(np.mean([row.tobytes() in seen for row in np.ascontiguousarray(codes[:, :bar])]))


_add(
    # 01 · loops
    Exercise("01.1", "warm-up", "Rule 1 at a looser threshold: if bar 1 and bar 5 had to differ in fewer than 1 % "
             "(0.01) of their 1,488 cells, at most how many cells could differ?",
             "the same arithmetic as the notebook's 2 cells at 0.15 %; the rule says 'fewer than'.",
             lambda: _max_cells(0.01), (), "exact"),
    Exercise("01.2", "core", "Without extracting anything again: how many windows of the walked song would be loops "
             "at that threshold (0.01)? Work it out from the window table, then confirm it with `find_loops`.",
             "rules 2-4 do not depend on the threshold: which windows pass them, and how many cells differ in those?",
             lambda roll: _loops_at_threshold(roll, 0.01), ("roll",), "exact", given={"roll": "song_roll"}),
    Exercise("01.3", "core", "A 1-bar stride can find one repeated passage at several start bars. What share of the "
             "training loops overlap another training loop of the same song?",
             "two 8-bar windows of one song share bars when their start bars are fewer than 8 bars apart.",
             _share_overlapping, ("loops",), "number", 1e-6, given={"loops": "train_set"}),
    Exercise("01.4", "core", "Rule 1 compares bars 1 and 5 only. Apply the same test (fewer than 0.15 % of the "
             "1,488 cells differ) to bars 2 and 6: what share of the training loops pass it?",
             "rule 1's measure is a count of differing cells between two 16-step bars; bar 2 is the second.",
             _rule1_on_bars_2_and_6, ("loops",), "number", 1e-6, given={"loops": "train_set"}),
    Exercise("01.5", "open", "The 8-bar stride finds fewer loops than the 1-bar stride, but not 8 times fewer. "
             "Explain why with the stride table and your answer to 01.3, and say which stride a model of repetition "
             "should train on.",
             "a loop found at bar k is often found at k + 1 too; which start bars does an 8-bar stride visit?",
             kind="text"),
    # 02 · autoencoders
    Exercise("02.1", "warm-up", "How many bits can one loop's VQ-VAE code sequence carry at most (t codes, each one "
             "of K)? How many times fewer is that than the loop's 11,904 binary cells?",
             "how many yes/no questions does it take to pick one code out of K (512 by default)?",
             _bits, ("model",), "number", given={"model": "vq_vae"}),
    Exercise("02.2", "core", "In the loss cell, keep each loop's means but set every sigma to 1 (log sigma^2 = 0). "
             "What is then the KL term of the batch's first loop?",
             "write the KL per dimension with sigma = 1: which terms are left?",
             _kl_with_unit_sigma, ("vae", "batch"), "number", 1e-4, given={"vae": "vae", "batch": "vae_batch"}),
    Exercise("02.3", "core", "For the loop `x` of the quantiser cell: which latent step lies farthest from the code "
             "that replaces it (the largest ||z - e_k|| over the steps, e_k its nearest code)?",
             "a step's quantisation error is its distance to its own nearest code, not to any fixed code.",
             _farthest_step, ("model", "loop"), "exact", given={"model": "vq_vae", "loop": "quantiser_loop"}),
    Exercise("02.4", "open", "With beta = 0 the KL term of the loss cell would not count. What would the encoder then "
             "do with sigma and with the means, and what would z ~ N(0, I) decode to? Argue from the reconstruction "
             "and KL terms of this run's trained CNN-VAE.",
             "the KL is what ties q(z | x) to N(0, I); look at how large it is next to the reconstruction term.",
             kind="text"),
    # 03 · prior
    Exercise("03.1", "warm-up", "Argmax sampling draws the first code from the first-code histogram and then always "
             "takes the prior's most likely next code. At most how many different code sequences can it make on "
             "this run?",
             "what is still drawn at random once the first code is chosen? Count what can differ.",
             _argmax_sequences, ("first_probs",), "exact", given={"first_probs": "first_probs"}),
    Exercise("03.2", "core", "For the prefix of the softmax cell (bar 1 of the first training loop): at which "
             "temperature T does the most likely next code get exactly half of the probability?",
             "dividing the scores by T changes how much the top code gets: close to 1 for T near 0, close to 1/K "
             "for a large T, and it falls steadily in between. Bracket one half, then narrow the bracket.",
             _temperature_for_top_share, ("prior", "codes"), "number", 1e-3,
             given={"prior": "prior", "codes": "train_codes"}),
    Exercise("03.3", "core", "The accuracy table scores every position. What is the prior's teacher-forcing accuracy "
             "on the validation codes of the second half of the loop only (latent steps t/2 to t-1), where bar 5 "
             "could copy bar 1?",
             "the prior's output at position i - 1 is its prediction of code i; keep the predictions of the "
             "second half's codes, and compare with 'copy 16 back', which is right there whenever bar 5 repeats.",
             _second_half_accuracy, ("prior", "codes"), "number", 1e-6,
             given={"prior": "prior", "codes": "val_codes"}),
    Exercise("03.4", "core", "Sample 256 code sequences at each of T = 0.5, 1 and 2 (seed SEED, as in the sampling "
             "cell). In what share of the second half's positions does a sample repeat the code t/2 steps earlier? "
             "Give {0.5: ..., 1.0: ..., 2.0: ...}.",
             "the lag plot measured this on the training codes, at every lag; here only one lag counts, and the "
             "codes are the prior's own.",
             _lag_half_per_temperature, ("prior", "first_probs", "seed"), "mapping", 1e-6,
             given={"prior": "prior", "first_probs": "first_probs"}),
    Exercise("03.5", "open", "From 03.3 and 03.4: has the prior learned to copy bar 1 into bar 5? Compare 03.3 with "
             "'copy 16 back' and 03.4 with the training codes' lag-16 share, say why a prior scored with the true "
             "codes fed in can still fail when it reads its own, and why a higher temperature makes loops less "
             "loop-like.",
             "teacher forcing shows the prior the right bar 1 every time; a sample's bar 1 is the prior's own "
             "draw, and every draw at a high temperature can leave the copy.", kind="text"),
    # 04 · reconstruction
    Exercise("04.1", "warm-up", "A reconstruction that is all silence scores the 'baseline: silence' error. How many "
             "cells are on in an average validation loop?",
             "which cells does silence get wrong, and which does it get right?",
             _on_cells_per_loop, ("loops",), "number", 1e-6, given={"loops": "val_loops"}),
    Exercise("04.2", "core", "A wrong cell is either a note the VQ-VAE left out or one it added. Of all its wrong "
             "cells on the validation loops, what share are notes it left out?",
             "start from the cell that computes the error by hand: a left-out note is on in the input and off in "
             "the reconstruction.",
             _missed_share, ("model", "loops"), "number", 1e-6, given={"model": "vq_vae", "loops": "val_loops"}),
    Exercise("04.3", "core", "Table 1 compares means over loops. On what share of the validation loops does the "
             "VQ-VAE get fewer cells wrong than 'baseline: copy bar 1' gets wrong on the same loop?",
             "count wrong cells loop by loop for both, the baseline's from the loop's own bar 1 played 8 times; a "
             "tie is not fewer.",
             _beats_copy_bar_1, ("model", "loops"), "number", 1e-6, given={"model": "vq_vae", "loops": "val_loops"}),
    Exercise("04.4", "open", "From 04.1-04.3: which kind of mistake does the VQ-VAE make most, and does it beat "
             "'copy bar 1' on most loops or only on average? What does a mean reconstruction error hide when so few "
             "cells are on, and what would you report beside it?",
             "set the wrong cells per loop beside the on cells per loop; a model that drops notes errs towards "
             "silence.", kind="text"),
    # 05 · musical metrics
    Exercise("05.1", "warm-up", "Table 3's HD is a mean over loops. What share of the VQ-VAE (temp 1) loops would "
             "pass rule 1 of notebook 01 on their own (bar 1 and bar 5 differ in fewer than 0.15 % of their 1,488 "
             "cells)?",
             "the HD cell computes each loop's share of differing cells before it averages them.",
             _share_passing_rule_1, ("loops",), "number", 1e-6, given={"loops": "loops_vq_vae_temp1"}),
    Exercise("05.2", "core", "UP counts drums and bass pitches together. How many different bass pitches does a "
             "CNN-VAE loop use on average?",
             "UP counts a column once however often it plays; the bass pitches are the 84 columns after the 9 "
             "drums.",
             _bass_pitches_per_loop, ("loops",), "number", 1e-6, given={"loops": "loops_cnn_vae"}),
    Exercise("05.3", "core", "OS asks whether a sample's whole code sequence occurs among the training codes. What "
             "share of the VQ-VAE (temp 1) samples begin with a bar (their first t/8 codes) that some training loop "
             "also begins with?",
             "compare a bar's codes as one whole, not code by code; arrays of two integer types hold different "
             "bytes for the same numbers.",
             _first_bar_overlap, ("codes", "train_codes"), "number", 1e-6,
             given={"codes": "codes_vq_vae_temp1", "train_codes": "train_codes"}),
    Exercise("05.4", "open", "With argmax sampling only the first code is drawn, so it makes at most as many "
             "different code sequences as your answer to 03.1. How does that bound its US in Table 3, and why can "
             "its HD, FND and FNB still match the training set's? Does your 05.3 show the temperature-1 samples "
             "copying training loops in part, beyond the whole copies OS counts?",
             "US divides distinct sequences by the number of samples; HD, FND and FNB judge each loop alone.",
             kind="text"),
    # 06 · latent space
    Exercise("06.1", "warm-up", "Before any edit: what share of the stored temperature-1 samples already have the same "
             "code at latent step 16 as at step 0?",
             "the paper's edit makes steps 16-17 equal steps 0-1; how often was step 16 equal to step 0 anyway?",
             _step_16_repeats_step_0, ("codes",), "number", 1e-6, given={"codes": "codes_vq_vae_temp1"}),
    Exercise("06.2", "core", "Copy all four codes of bar 1 onto bar 5 of the stored temperature-1 samples and decode: "
             "in what share of the loops does bar 5 then repeat bar 1 exactly (no cell differs)?",
             "equal codes in two bars need not decode to equal notes: what else does the decoder see at bar 5?",
             _bar1_onto_bar5_exact, ("model", "codes"), "number", 1e-6,
             given={"model": "vq_vae", "codes": "codes_vq_vae_temp1"}),
    Exercise("06.3", "core", "After the paper's edit (steps 0-1 onto 16-17), decode and encode again: what share of "
             "the re-encoded steps 16-17 still hold the copied codes?",
             "decoding then encoding is not the identity: the encoder sees notes, not codes.",
             _copy_survives, ("model", "codes"), "number", 1e-6,
             given={"model": "vq_vae", "codes": "codes_vq_vae_temp1"}),
    Exercise("06.4", "open", "From 06.2 and 06.3: is a code a pattern of its own beat only? Argue from your two "
             "numbers what the decoder's reach across bar lines means for editing the latent, and propose an edit "
             "that would make bar 5 sound exactly like bar 1.",
             "the decoder is convolutional: a step's notes depend on the codes around it.", kind="text"),
    # 07 · listening test
    Exercise("07.1", "warm-up", "What is the smallest H that would give p < 0.001 in this test (its number of groups)? "
             f"Compare it with the paper's H = {paper.LISTENING.kruskal_h}.",
             "under the null hypothesis H follows a chi-square distribution; which degrees of freedom, which tail?",
             _critical_h, ("ratings", "key"), "number", 1e-4, given={"ratings": "ratings", "key": "study_key"}),
    Exercise("07.2", "core", "Kruskal-Wallis on two groups only: H for the training set against the VQ-VAE (temp "
             "1.2). Change the cell that computes H by hand.",
             "with two groups the ranks are not those of the five-group test: rank the two groups' ratings anew.",
             lambda ratings, key: _kruskal_two_groups(ratings, key, "training_set", "vq_vae_temp1.2"),
             ("ratings", "key"), "number", 1e-6, given={"ratings": "ratings", "key": "study_key"}),
    Exercise("07.3", "core", "A generous listener raises every group. Take out each listener's own mean rating from "
             "their ratings, then compute H over the five groups again.",
             "what is left of a rating once the listener's average is subtracted? Ties change too.",
             _kruskal_listener_centred, ("ratings", "key"), "number", 1e-6,
             given={"ratings": "ratings", "key": "study_key"}),
    Exercise("07.4", "open", "Compare your H of 07.3 with the test's H: how much of the groups' difference came from "
             "listeners using the scale differently? And what can a PROXY listener's ratings not tell you?",
             "Kruskal-Wallis treats every rating as independent; a Friedman test pairs them by listener.",
             kind="text"),
    # 08 · the other claims
    Exercise("08.1", "warm-up", "Seed noise: the coefficient of variation (sample standard deviation / mean) of the "
             "reconstruction error over the three seeds of the seed table.",
             "only the rows of the seeds count; a sample standard deviation divides by n - 1.",
             _seed_variation, ("table",), "number", 1e-6, given={"table": "seed_table"}),
    Exercise("08.2", "core", "Signal against noise: the gap between the best and the worst commitment weight's "
             "reconstruction error, in units of the seeds' standard deviation of that error.",
             "the commitment table gives the signal, the seed table the noise of the same measure.",
             _commitment_in_seed_deviations, ("commitment", "seeds"), "number", 1e-6,
             given={"commitment": "commitment_table", "seeds": "seed_table"}),
    Exercise("08.3", "core", "The compression table's cross-entropy is per code. The prior predicts every code of a "
             "loop but the first: what is the t = 64 prior's cross-entropy per loop divided by the t = 32 prior's?",
             "a loop of the t = 64 model has more codes to predict; the table's number is their average.",
             _per_loop_cross_entropy_ratio, ("table",), "number", 1e-6, given={"table": "compression_table"}),
    Exercise("08.4", "open", "Is the commitment weight's effect on reconstruction larger than seed noise on this run "
             "(08.1, 08.2)? Would you report the paper's claim as holding, and what would make you surer?",
             "three seeds give a rough standard deviation; a gap of one or two of them is not much.", kind="text"),
    # 09 · beyond the paper
    Exercise("09.1", "warm-up", "When the masked prior writes a whole loop in STEPS rounds, how many codes does the "
             "last round fix?",
             "after round s a share cos(pi/2 * s / STEPS) of the positions is still masked, rounded down.",
             _codes_fixed_in_last_round, ("prior", "steps"), "exact", given={"prior": "masked_prior"}),
    Exercise("09.2", "core", "Seam repair may rewrite only the codes at the seams. What share of those codes of the "
             "LSTM prior's samples did it actually change?",
             "the repair draws anew where it may write, and a fresh draw can be the code that was there.",
             _seam_codes_changed, ("codes", "repaired"), "number", 1e-6,
             given={"codes": "lstm_codes", "repaired": "repaired_codes"}),
    Exercise("09.3", "core", "Which circular offset (1 to t - 1) has the largest learned bias, averaged over the "
             "attention heads of the masked prior?",
             "the bias is one learned number per head and offset; offset 0 is a code looking at itself.",
             _strongest_offsets, ("prior",), "one_of", given={"prior": "masked_prior"}),
    Exercise("09.4", "core", "Regenerate bars 5-8 of every validation loop's codes from bars 1-4 with "
             "`sample_masked.infill` at argmax (temperature=None, steps=STEPS, seed=SEED): what share of the "
             "regenerated codes equal the code 16 steps earlier?",
             "bars 5-8 are the second half of the positions; compare each regenerated code with the one 16 before.",
             _infill_copies, ("prior", "codes", "steps", "seed"), "number", 1e-6,
             given={"prior": "masked_prior", "codes": "val_codes"}),
    Exercise("09.5", "open", "Does the masked prior loop better than the LSTM prior because it copies training "
             "loops? Argue from Table 7 (OS, US, lag-16 agreement, loopability, the reconstructions' row) and your "
             "answer to 09.4.",
             "a prior that copied training loops would have a high OS; compare with the argmax row.", kind="text"),
)

