"""What a reader should see: each notebook's headline numbers against the expected ranges of its profile.

Every notebook ends with :func:`what_you_should_see`: it writes the run's headline numbers to
``build/headlines/<profile>/seed<S>/<notebook>.json`` and compares them with the ranges in
``expected_ranges.json`` (beside this module), printing "as expected" or naming each unusual number and its
likely cause. Two verdicts are printed apart: whether the run is healthy ("as expected for this profile": its
numbers lie in the ranges and every model beats its trivial baselines, :data:`BASELINE_BOUNDS`), and, where a
notebook checks the paper's claims, whether they hold here (the science: a healthy run may disagree with the
paper).

The ranges are never typed by hand. ``python -m loopgen expected-ranges --profile smoke --runs ROOT ...`` reads
the headline files of finished runs (every ``seed*`` folder under each ``ROOT/build/headlines/<profile>/``; one
folder is one reference run) and writes that profile's ranges; ``--run-seeds 0 1 2`` first runs the notebooks
with those seeds into a scratch root. The ``paper`` profile's ranges are the paper's values (:mod:`loopgen.paper`)
with a stated tolerance, rewritten by every call. How a range is made from the reference values is :data:`RULE`.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from loopgen.book import baselines
from loopgen.store import atomic
from loopgen.store.paths import Paths

RANGES_FILE = Path(__file__).with_name("expected_ranges.json")
RELATIVE_MARGIN = 0.2  # of the reference runs' median
ZERO_MARGIN = 0.01  # only where every reference value is 0: there is no scale to take a share of
SMALLEST_P = 1e-300  # a p-value of 0 (underflow) counts as this on the log scale
REFERENCE_RUNS_WANTED = 3  # a profile's ranges come from at least this many seeded runs
PAPER_TOLERANCE = 0.25  # the paper profile: the paper's value +-25 % (relative)
RULE = (
    f"low = min - m, high = max + m over the reference runs, m = max(max - min, {RELATIVE_MARGIN:g} x |median|), "
    f"or {ZERO_MARGIN:g} where every reference value is 0; p-values the same on log10 p (they span decades); "
    "clipped to the measure's possible values (shares in [0, 1], counts >= 0); 6 significant digits. A model's number that has a trivial baseline must also beat it ('must beat': the "
    "baseline's median reference value; a run that records its own baseline is held to that)."
)
PAPER_RULE = f"the paper's value +-{PAPER_TOLERANCE:.0%} (relative): a faithful paper-profile run should land within it."

# Why a notebook's number may be unusual: (too low, too high), per notebook; a measure may override it.
CAUSES: dict[str, tuple[str, str]] = {
    "01": ("the corpus or the extraction rules changed (another MIDI_DIR, a changed LoopParams), or files were "
           "rejected that should not be: read the rejections in Table 0",
           "the corpus or the extraction rules changed (a looser threshold, a changed drum map)"),
    "02": ("the model learned more than the reference runs (more epochs, shipped demo-long weights)",
           "the model learned less: fewer epochs than the profile's recipe, a training cut short, or a checkpoint "
           "trained on other data; look at the training curves above"),
    "03": ("the prior learned less (a cut-short training) or the VQ-VAE's codes changed (notebook 02 retrained)",
           "the prior memorised its training codes (more epochs, less dropout) or the codes are few and repetitive "
           "(a VQ-VAE using few codes)"),
    "04": ("the models learned more than the reference runs (longer training, shipped weights)",
           "a model learned less than in the reference runs (a cut-short training, a checkpoint from other data)"),
    "05": ("the generator differs from the reference runs: another temperature, a retrained prior or VQ-VAE, or "
           "samples from older models (notebook 05 resamples only when the provenance changes)",
           "the generator differs from the reference runs: another temperature, a retrained prior or VQ-VAE"),
    "06": ("the stored samples or the VQ-VAE changed (run notebook 05 again after retraining)",
           "the stored samples or the VQ-VAE changed (run notebook 05 again after retraining)"),
    "07": ("the groups differ more or less than in the reference runs: other samples (notebook 05), or real "
           "listeners' ratings in place of the proxy listener",
           "the groups differ more or less than in the reference runs: other samples, or real ratings"),
    "08": ("fewer claims hold than in the reference runs: the short trainings learned less (check the recipe)",
           "the short trainings differ from the reference runs (another recipe or seed)"),
}
# Measures whose unusual values mean something else than their notebook's (by the end of the measure's name).
MEASURE_CAUSES: dict[str, tuple[str, str]] = {
    "perplexity": ("few codes are in use: the codebook collapsed onto some codes (see the dead-codes curve) or the "
                   "training was cut short", "more codes are in use than in the reference runs: a longer training"),
    "codes used": ("the VQ-VAE uses few codes (a collapsed codebook or a cut-short training in notebook 02)",
                   "the VQ-VAE uses more codes than in the reference runs (a longer training)"),
    "p-value": ("the groups differ more clearly than in the reference runs", "the groups are harder to tell apart "
                "than in the reference runs: with the proxy listener, the generated loops look more like real ones"),
}


@dataclass(frozen=True)
class BaselineBound:
    """Headline numbers of a notebook that must beat a trivial baseline recorded beside them.

    ``measures`` matches the bounded numbers' names in notebooks whose name matches ``notebooks``; ``baseline``
    is the headline name of the baseline's number; ``better`` is "below" (an error) or "above" (an accuracy);
    ``meaning`` says what a number that does not beat it means."""

    notebooks: str
    measures: str
    baseline: str
    better: str
    meaning: str

    def bounds(self, notebook: str, measure: str) -> bool:
        return bool(re.fullmatch(self.notebooks, notebook) and re.fullmatch(self.measures, measure))

    def beaten(self, value: float, baseline: float) -> bool:
        return value < baseline if self.better == "below" else value > baseline

    @property
    def name(self) -> str:
        """The baseline's own name (``baseline: silence``), without the measure it is a number of."""
        return self.baseline[self.baseline.index(baselines.PREFIX):]


_MODEL_ERRORS = r"reconstruction error: (?!baseline:).*|Table 2 .*: reconstruction error"
BASELINE_BOUNDS: tuple[BaselineBound, ...] = (
    BaselineBound("04", _MODEL_ERRORS, "reconstruction error: baseline: silence", "below",
                  "an all-zero reconstruction does as well: the model has not learned where the notes are"),
    BaselineBound("04", _MODEL_ERRORS, "reconstruction error: baseline: copy bar 1", "below",
                  "playing the loop's bar 1 eight times does as well: the model has learned less than the loop's "
                  "repetition"),
    BaselineBound("02-.*", "validation reconstruction error", "validation reconstruction error: baseline: silence",
                  "below", "an all-zero reconstruction does as well: the model has not learned where the notes are"),
    BaselineBound("02-.*", "validation reconstruction error",
                  "validation reconstruction error: baseline: copy bar 1", "below",
                  "playing the loop's bar 1 eight times does as well: the model has learned less than the loop's "
                  "repetition"),
    *(BaselineBound("03", re.escape(f"accuracy ({codes} codes)"), f"accuracy ({codes} codes): {baselines.copy_back_name(16)}",
                    "above", "copying the code 16 steps back (4 in the first half) predicts as well: the prior has "
                    "not learned the loop's repetition")
      for codes in ("training", "validation")),
)
# Profiles whose models are not expected to beat the baselines: a number that does not is reported, not flagged.
BASELINES_NOT_EXPECTED = {"smoke": "the smoke profile trains for seconds to test the plumbing, not to learn"}


def _bounds_of(notebook: str, measure: str) -> list[BaselineBound]:
    return [bound for bound in BASELINE_BOUNDS if bound.bounds(notebook, measure)]


def _causes(notebook: str, measure: str) -> tuple[str, str]:
    for suffix, causes in MEASURE_CAUSES.items():
        if measure.endswith(suffix):
            return causes
    return CAUSES.get(notebook.split("-")[0], ("", ""))


# measures that are shares (0 to 1), by a word of their name; a spread (max - min) / mean can exceed 1
SHARE_WORDS = re.compile(r"\b(HD|FND|FNB|OS|US|share|accuracy|error|p-value)\b")


def _bounds(measure: str, values: list[float]) -> tuple[float, float]:
    """The possible values of a measure: shares in [0, 1]; >= 0 when every reference value is."""
    low = 0.0 if min(values) >= 0 else -math.inf
    share = bool(SHARE_WORDS.search(measure)) and "spread" not in measure
    return low, (1.0 if share else math.inf)


def headline_file(paths: Paths, profile: str, seed: int, notebook: str) -> Path:
    """``build/headlines/<profile>/seed<S>/<notebook>.json``: one notebook run's headline numbers."""
    return paths.build / "headlines" / profile / f"seed{int(seed)}" / f"{notebook}.json"


def read_ranges(path: Path | None = None) -> dict:
    """The expected-ranges file (``{"profiles": {}}`` when it does not exist yet)."""
    path = path or RANGES_FILE
    if not path.exists():
        return {"profiles": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def _clean(values: Mapping[str, object]) -> dict[str, float]:
    """Every headline as a float (NaN for what is not a number: the comparison then calls it unusual)."""
    out = {}
    for name, value in values.items():
        try:
            out[str(name)] = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            out[str(name)] = math.nan
    return out


def _where(profile: str, source: Mapping) -> str:
    """Where a profile's ranges come from, and how to complete them when fewer runs than wanted made them."""
    if profile == "paper":
        return PAPER_RULE
    runs = source.get("runs", "?")
    where = f"{runs} reference run(s), seeds {source.get('seeds', '?')}"
    if isinstance(runs, int) and runs < REFERENCE_RUNS_WANTED:
        where += (f"; {REFERENCE_RUNS_WANTED} wanted: `python -m loopgen expected-ranges --profile {profile} "
                  f"--run-seeds {' '.join(map(str, range(REFERENCE_RUNS_WANTED)))}` completes them")
    return where


def _baselines_of(notebook: str, name: str, values: Mapping[str, float],
                  must_beat: Mapping) -> list[tuple[BaselineBound, float]]:
    """The baselines a headline number must beat, each with its number: the run's own when recorded, else the
    reference runs' ('must beat' in the ranges file)."""
    out = []
    for bound in _bounds_of(notebook, name):
        baseline = values.get(bound.baseline, must_beat.get(bound.baseline))
        if baseline is not None and not math.isnan(baseline):
            out.append((bound, float(baseline)))
    return out


def _whole_span(measure: str, low: float, high: float) -> bool:
    """Whether a range is every value the measure can take (a share's 0 to 1): a range that cannot fail."""
    return _bounds(measure, [0.0])[1] == 1.0 and low <= 0.0 and high >= 1.0


def _reference_runs_share(bounds: Mapping, unbeaten: list[BaselineBound]) -> bool:
    """Whether every reference run's value of this measure also failed to beat each of ``unbeaten`` (against the
    baselines' median reference values): a weakness of the profile's recipe rather than of one run."""
    references, must_beat = bounds.get("reference values") or [], bounds.get("must beat", {})
    return bool(references) and all(
        bound.baseline in must_beat and not any(bound.beaten(v, must_beat[bound.baseline]) for v in references)
        for bound in unbeaten
    )


def compare(notebook: str, values: Mapping[str, float], profile: str, ranges: dict | None = None) -> list[str]:
    """Lines saying how ``values`` compare with the expected ranges of ``profile`` and with their trivial
    baselines (:data:`BASELINE_BOUNDS`); the last line sums up: "As expected ..." or "... unusual ..."."""
    ranges = read_ranges() if ranges is None else ranges
    entry = ranges.get("profiles", {}).get(profile)
    if not entry:
        return [f"No expected ranges for the {profile} profile yet: after a finished {profile} run, "
                f"`python -m loopgen expected-ranges --profile {profile} --runs .` adds them."]
    expected = entry.get("ranges", {}).get(notebook, {})
    where = _where(profile, entry.get("source", {}))
    waived = BASELINES_NOT_EXPECTED.get(profile)
    lines, unusual, checked, waived_here, shared, unchecked = [], 0, 0, 0, 0, 0
    for name, value in values.items():
        bounds = expected.get(name)
        if bounds is None:
            continue
        low, high = bounds["low"], bounds["high"]
        refs = bounds.get("reference values") or []
        vacuous = _whole_span(name, low, high) and len(refs) > 1
        span = (f"no range: its reference runs spread {min(refs):.3g} to {max(refs):.3g}, so any value would pass"
                if vacuous else f"expected {low:.4g} to {high:.4g}")
        trivial = _baselines_of(notebook, name, values, bounds.get("must beat", {}))
        if vacuous and (waived or not trivial):
            lines.append(f"-       {name} = {value:.4g} (not checked: {span})")
            unchecked += 1
            continue
        checked += 1
        if math.isnan(value):
            unusual += 1
            lines.append(f"UNUSUAL {name} is NaN ({span}): a step produced no number")
            continue
        beaten = [f"{bound.name} {baseline:.4g}" for bound, baseline in trivial if bound.beaten(value, baseline)]
        unbeaten = [(bound, baseline) for bound, baseline in trivial if not bound.beaten(value, baseline)]
        problems = []
        out_of_range = not vacuous and (value < low or value > high)
        if out_of_range:
            low_cause, high_cause = _causes(notebook, name)
            side, cause = ("below", low_cause) if value < low else ("above", high_cause)
            problems.append(f"{side} the {span}; likely cause: {cause}")
        if unbeaten and not waived:
            problems += [f"no better than {bound.name} ({baseline:.4g}): {bound.meaning}" for bound, baseline in unbeaten]
        if problems:
            unusual += 1
            known = not out_of_range and not waived and _reference_runs_share(bounds, [b for b, _ in unbeaten])
            shared += known
            lines.append(f"UNUSUAL {name} = {value:.4g}, " + "; ".join(problems)
                         + (" (so did every reference run's model)" if known else "") + ".")
        else:
            note = f"; beats {', '.join(beaten)}" if beaten else ""
            if unbeaten:
                waived_here += 1
                note += "; no better than " + ", ".join(f"{b.name} {v:.4g}" for b, v in unbeaten) + ", not flagged"
            lines.append(f"ok      {name} = {value:.4g} ({span}{note})")
    if waived_here:
        lines.append(f"Baselines not flagged for {waived_here} number(s): {waived}; at every other profile a "
                     "model that does not beat its baselines is unusual.")
    if not checked:
        lines.append(f"No expected range for notebook {notebook} in the {profile} profile ({where}).")
    elif unusual and shared == unusual:
        lines.append(f"{unusual} of {checked} headline numbers are unusual for the {profile} profile ({where}), "
                     f"{'each ' if unusual > 1 else ''}only because a model does not beat a trivial baseline, as the "
                     "reference runs' models did not "
                     f"either: a weakness of the {profile} recipe at this scale, not a fault of this run.")
    elif unusual:
        also = f" ({shared} of them a weakness the reference runs share)" if shared else ""
        lines.append(f"{unusual} of {checked} headline numbers are unusual for the {profile} profile ({where}){also}: "
                     "this run is not healthy, read the causes above.")
    else:
        lines.append(f"As expected for the {profile} profile: all {checked} headline numbers lie in its ranges"
                     f"{'' if waived else ' and beat their baselines'} ({where})"
                     + (f"; {unchecked} not checked, their reference runs spread too widely." if unchecked else "."))
    return lines


def compare_with_baselines(notebook: str, values: Mapping[str, float], profile: str, corpus: str) -> list[str]:
    """The health verdict of a run on another MIDI folder (``corpus``): a profile's ranges describe its own
    corpus, so only the run's own trivial baselines (:data:`BASELINE_BOUNDS`, recorded beside the numbers) are
    checked; the last line says so."""
    waived = BASELINES_NOT_EXPECTED.get(profile)
    lines, unusual, checked, not_flagged = [], 0, 0, 0
    for name, value in values.items():
        trivial = _baselines_of(notebook, name, values, {})
        if not trivial:
            continue
        checked += 1
        unbeaten = [(b, v) for b, v in trivial if math.isnan(value) or not b.beaten(value, v)]
        if unbeaten and not waived:
            unusual += 1
            lines.append(f"UNUSUAL {name} = {value:.4g}, " + "; ".join(
                f"no better than {b.name} ({v:.4g}): {b.meaning}" for b, v in unbeaten) + ".")
        else:
            not_flagged += bool(unbeaten)
            beaten = ", ".join(f"{b.name} {v:.4g}" for b, v in trivial if (b, v) not in unbeaten)
            lines.append(f"ok      {name} = {value:.4g} ("
                         + (f"beats {beaten}" if beaten else "") + ("; " if beaten and unbeaten else "")
                         + (f"no better than {', '.join(b.name for b, _ in unbeaten)}, not flagged: {waived}"
                            if unbeaten else "") + ")")
    about = (f"A run on the corpus {corpus!r}: the {profile} profile's expected ranges describe its own corpus, so "
             "only this run's own baselines are checked")
    if not checked:
        lines.append(f"{about}; notebook {notebook} has none.")
    elif unusual:
        lines.append(f"{about}: {unusual} of {checked} numbers do not beat them; read the causes above.")
    elif not_flagged:
        lines.append(f"{about}: {not_flagged} of {checked} numbers do not beat them, not flagged ({waived}).")
    else:
        lines.append(f"{about}: all {checked} numbers beat them.")
    return lines


def claims_verdict(claims: Iterable) -> list[str]:
    """The paper's claims as this run found them: one line each, then how many hold.

    A claim is anything with ``holds`` (True or False) that prints as its sentence (:class:`loopgen.book.tables.
    Claim`), or has a ``verdict`` sentence (:class:`loopgen.book.sensitivity.Finding`)."""
    claims = list(claims)
    if not claims:
        return []
    lines = [f"{'holds        ' if c.holds else 'does not hold'}  {getattr(c, 'verdict', None) or c}"
             for c in claims]
    holding = sum(bool(c.holds) for c in claims)
    failing = len(claims) - holding
    lines.append(f"{holding} of {len(claims)} of the paper's claims hold here; {failing} {'does' if failing == 1 else 'do'} not. "
                 "This is the science, not the run's health: a healthy run may disagree with the paper.")
    return lines


PAPER_SAYS = "claimed"  # the paper's column of a claims file: the paper states every claim as holding


def claims_file(paths: Paths, notebook: str) -> Path:
    """``figures/claims_<notebook>.csv``: the paper's claims a notebook checked, and whether each holds."""
    return paths.figure(f"claims_{notebook}.csv")


def write_claims(paths: Paths, notebook: str, claims: Iterable) -> Path:
    """Write ``claims`` (:func:`claims_verdict`'s input) to :func:`claims_file`, one row each: the sentence as
    printed and ``holds``, so that runs on two corpora can be set side by side (:mod:`loopgen.book.corpora`)."""
    rows = [{"claim": _claim_name(c), "paper": PAPER_SAYS, "verdict": str(getattr(c, "verdict", None) or c),
             "holds": bool(c.holds)} for c in claims]
    path = claims_file(paths, notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else ["claim", "paper", "verdict", "holds"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(path, text.getvalue())
    table = "\n".join(["| claim | paper | this run |", "|---|---|---|"]
                      + [f"| {r['claim']} | {r['paper']} | {r['verdict']} |".replace("\n", " ") for r in rows])
    atomic.write_text(path.with_suffix(".md"), f"The paper's claims checked by notebook {notebook}\n\n{table}\n")
    return path


def _claim_name(claim) -> str:
    """The claim without this run's numbers: a Finding's ``claim``; a Claim's sentence up to its first number
    in parentheses or after a colon."""
    name = getattr(claim, "claim", None)
    if isinstance(name, str):
        return name
    return re.split(r"[(:]", str(claim), maxsplit=1)[0].strip()


HEALTH_TITLE = "Is this run healthy? (as expected for this profile)"
SCIENCE_TITLE = "Do the paper's claims hold here? (the science)"


def what_you_should_see(
    notebook: str, values: Mapping[str, object], *, profile: str, seed: int, paths: Paths | None = None,
    claims: Iterable = (),
) -> list[str]:
    """Record this run's headline numbers and print how they compare with the profile's expected ranges and
    baselines; then, apart, whether the paper's ``claims`` (:func:`claims_verdict`) hold here."""
    paths = paths or Paths()
    numbers = _clean(values)
    path = headline_file(paths, profile, seed, notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(numbers, indent=1, sort_keys=True))
    health = (compare_with_baselines(notebook, numbers, profile, paths.corpus) if paths.corpus
              else compare(notebook, numbers, profile))
    claims = list(claims)
    science = claims_verdict(claims)
    if claims:
        write_claims(paths, notebook, claims)
    print("\n".join([HEALTH_TITLE, *health] + (["", SCIENCE_TITLE, *science] if science else [])))
    return health + science


# --------------------------------------------------------------------------------- making the ranges
def collect_runs(roots: list[Path], profile: str) -> list[dict[str, dict[str, float]]]:
    """One dict per reference run (a ``seed*`` folder of headline files): notebook -> measure -> value."""
    runs = []
    for root in roots:
        base = Path(root) / "build" / "headlines" / profile
        if not base.is_dir():
            raise FileNotFoundError(f"{base} does not exist: run the notebooks with --profile {profile} under {root}")
        for folder in sorted(base.glob("seed*")):
            run = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}
            if run:
                runs.append({"_seed": folder.name.removeprefix("seed"), **run})
    return runs


def margin(values: list[float]) -> float:
    """The rule's margin m for a measure's reference values (:data:`RULE`): the spread or a share of the median,
    whichever is larger; :data:`ZERO_MARGIN` only when every value is 0."""
    spread = max(values) - min(values)
    m = max(spread, RELATIVE_MARGIN * abs(statistics.median(values)))
    return m if m > 0 or any(values) else ZERO_MARGIN


def ranges_from_runs(runs: list[dict]) -> dict[str, dict[str, dict]]:
    """Per notebook and measure: low and high (:data:`RULE`), the reference values they came from and, for a
    model's number that has trivial baselines (:data:`BASELINE_BOUNDS`), the baselines' median reference values
    it must beat."""
    out: dict[str, dict[str, dict]] = {}
    notebooks = sorted({k for run in runs for k in run if not k.startswith("_")})
    for notebook in notebooks:
        measures = sorted({m for run in runs for m in run.get(notebook, {})})
        for measure in measures:
            values = _reference_values(runs, notebook, measure)
            if not values:
                continue
            low, high = _widened(measure, values)
            entry = {"low": _digits(low), "high": _digits(high), "reference values": values}
            must_beat = {bound.baseline: _digits(statistics.median(found)) for bound in _bounds_of(notebook, measure)
                         if (found := _reference_values(runs, notebook, bound.baseline))}
            if must_beat:
                entry["must beat"] = must_beat
            out.setdefault(notebook, {})[measure] = entry
    return out


def _widened(measure: str, values: list[float]) -> tuple[float, float]:
    """The rule's low and high for a measure's reference values, clipped to its possible values."""
    lo_bound, hi_bound = _bounds(measure, values)
    if measure.endswith("p-value"):  # decades apart from run to run: the margin on log10 p
        logs = [math.log10(max(v, SMALLEST_P)) for v in values]
        m = margin(logs)
        return max(10 ** (min(logs) - m), lo_bound), min(10 ** (max(logs) + m), hi_bound)
    m = margin(values)
    return max(min(values) - m, lo_bound), min(max(values) + m, hi_bound)


def _digits(value: float) -> float:
    return float(f"{value:.6g}")


def _reference_values(runs: list[dict], notebook: str, measure: str) -> list[float]:
    values = [float(run[notebook][measure]) for run in runs if measure in run.get(notebook, {})]
    return [v for v in values if not math.isnan(v)]


def paper_ranges() -> dict[str, dict[str, dict]]:
    """The paper profile's ranges: every headline with a published value, +-:data:`PAPER_TOLERANCE`."""
    from loopgen import paper, registry

    def around(value: float) -> dict:
        lo_bound, hi_bound = 0.0, math.inf
        return {"low": round(max(value * (1 - PAPER_TOLERANCE), lo_bound), 6),
                "high": round(min(value * (1 + PAPER_TOLERANCE), hi_bound), 6), "paper": value}

    t3 = paper.TABLE3
    out: dict[str, dict[str, dict]] = {
        "01": {"loops": around(paper.DATASET.loops),
               **{f"training set {c}": around(float(t3.loc["Training set", c])) for c in ("HD", "FND", "FNB")}},
        "03": {"accuracy (training codes)": around(paper.PRIOR_TEACHER_FORCING_ACCURACY)},
        "04": {f"reconstruction error: {label}": around(float(paper.TABLE1.loc[label, "reconstruction_error"]))
               for label in paper.TABLE1.index},
    }
    for name in registry.autoencoders():
        label = paper.MODEL_LABELS[name]
        out[f"02-{name}"] = {"validation reconstruction error": around(float(paper.TABLE1.loc[label,
                                                                                               "reconstruction_error"]))}
    out["05"] = {f"{row}: {c}": around(float(t3.loc[row, c])) for row in t3.index for c in ("HD", "FND", "FNB", "US")
                 if row in t3.index and not math.isnan(float(t3.loc[row, c])) and float(t3.loc[row, c]) > 0}
    t4 = paper.TABLE4
    out["06"] = {f"after the copy, {row}: {c}": around(float(t4.loc[row, c])) for row in t4.index
                 for c in ("HD", "OS", "US") if c in t4.columns and float(t4.loc[row, c]) > 0}
    out["07"] = {"Kruskal-Wallis statistic": around(paper.LISTENING.kruskal_h),
                 **{f"mean rating: {label}": around(mean) for label, mean in
                    ((paper.GROUP_LABELS.get(g, g), m) for g, m in paper.LISTENING_MEANS.items())}}
    return out


def write_ranges(profile: str, runs: list[dict], roots: list[Path], path: Path | None = None, *,
                 note: str | None = None) -> Path:
    """Write (or replace) ``profile``'s ranges from ``runs`` and refresh the paper profile's; return the file.
    ``note`` is kept in the profile's source (how the reference values were gathered, when not all at once)."""
    path = path or RANGES_FILE
    profiles = read_ranges(path).get("profiles", {})
    data = {"made by": "python -m loopgen expected-ranges (loopgen.book.expectations); never edit by hand", "rule": RULE}
    if runs:
        profiles[profile] = {
            "source": {
                "runs": len(runs),
                "runs wanted": REFERENCE_RUNS_WANTED,
                "seeds": [run["_seed"] for run in runs],
                "how": f"one `run-notebooks --profile {profile} --seed S` per seed; its build/headlines/{profile}/"
                       f"seed<S>/*.json read from {len(roots)} root(s)",
                "made": _dt.date.today().isoformat(),
                **({"note": note} if note else {}),
            },
            "ranges": ranges_from_runs(runs),
        }
    profiles["paper"] = {"source": {"runs": 0, "from": "loopgen.paper", "rule": PAPER_RULE}, "ranges": paper_ranges()}
    data["profiles"] = dict(sorted(profiles.items()))
    atomic.write_text(path, json.dumps(data, indent=1, sort_keys=False) + "\n")
    return path
