"""What a reader should see: each notebook's headline numbers against the expected ranges of its profile.

Every notebook ends with :func:`what_you_should_see`: it writes the run's headline numbers to
``build/headlines/<profile>/seed<S>/<notebook>.json`` and compares them with the ranges in
``expected_ranges.json`` (beside this module), printing "as expected" or naming each unusual number and its
likely cause.

The ranges are never typed by hand. ``python -m loopgen expected-ranges --profile smoke --runs ROOT ...`` reads
the headline files of finished runs (every ``seed*`` folder under each ``ROOT/build/headlines/<profile>/``; one
folder is one reference run) and writes that profile's ranges; ``--run-seeds 0 1 2`` first runs the notebooks
with those seeds into a scratch root. The ``paper`` profile's ranges are the paper's values (:mod:`loopgen.paper`)
with a stated tolerance, rewritten by every call. How a range is made from the reference values is :data:`RULE`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

from loopgen import errors
from loopgen.store import atomic
from loopgen.store.paths import Paths

RANGES_FILE = Path(__file__).with_name("expected_ranges.json")
RELATIVE_MARGIN = 0.2  # of the reference runs' median
ABSOLUTE_MARGIN = 0.01  # at least this much either side (numbers near 0)
PAPER_TOLERANCE = 0.25  # the paper profile: the paper's value +-25 % (relative)
RULE = (
    f"low = min - m, high = max + m over the reference runs, m = max(max - min, {RELATIVE_MARGIN:g} x |median|, "
    f"{ABSOLUTE_MARGIN:g}); clipped to the measure's possible values (shares in [0, 1], counts >= 0)."
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


def compare(notebook: str, values: Mapping[str, float], profile: str, ranges: dict | None = None) -> list[str]:
    """Lines saying how ``values`` compare with the expected ranges of ``profile`` (the last line sums up)."""
    ranges = read_ranges() if ranges is None else ranges
    entry = ranges.get("profiles", {}).get(profile)
    if not entry:
        return [f"No expected ranges for the {profile} profile yet: after a finished {profile} run, "
                f"`python -m loopgen expected-ranges --profile {profile} --runs .` adds them."]
    expected = entry.get("ranges", {}).get(notebook, {})
    source = entry.get("source", {})
    where = (f"{source.get('runs', '?')} reference run(s), seeds {source.get('seeds', '?')}"
             if profile != "paper" else PAPER_RULE)
    lines, unusual, checked = [], 0, 0
    for name, value in values.items():
        bounds = expected.get(name)
        if bounds is None:
            continue
        checked += 1
        low, high = bounds["low"], bounds["high"]
        if math.isnan(value):
            unusual += 1
            lines.append(f"UNUSUAL {name} is NaN (expected {low:.4g} to {high:.4g}): a step produced no number")
        elif value < low or value > high:
            unusual += 1
            low_cause, high_cause = _causes(notebook, name)
            side, cause = ("below", low_cause) if value < low else ("above", high_cause)
            lines.append(f"UNUSUAL {name} = {value:.4g}, {side} the expected {low:.4g} to {high:.4g}; likely cause: "
                         f"{cause}.")
        else:
            lines.append(f"ok      {name} = {value:.4g} (expected {low:.4g} to {high:.4g})")
    if not checked:
        lines.append(f"No expected range for notebook {notebook} in the {profile} profile ({where}).")
    elif unusual:
        lines.append(f"{unusual} of {checked} headline numbers are unusual for the {profile} profile ({where}).")
    else:
        lines.append(f"As expected: all {checked} headline numbers lie in the {profile} profile's ranges ({where}).")
    return lines


def what_you_should_see(
    notebook: str, values: Mapping[str, object], *, profile: str, seed: int, paths: Paths | None = None
) -> list[str]:
    """Record this run's headline numbers and print how they compare with the profile's expected ranges."""
    paths = paths or Paths()
    numbers = _clean(values)
    path = headline_file(paths, profile, seed, notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(numbers, indent=1, sort_keys=True))
    lines = compare(notebook, numbers, profile)
    print("\n".join(lines))
    return lines


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


def ranges_from_runs(runs: list[dict]) -> dict[str, dict[str, dict]]:
    """Per notebook and measure: low and high (:data:`RULE`) and the reference values they came from."""
    out: dict[str, dict[str, dict]] = {}
    notebooks = sorted({k for run in runs for k in run if not k.startswith("_")})
    for notebook in notebooks:
        measures = sorted({m for run in runs for m in run.get(notebook, {})})
        for measure in measures:
            values = [float(run[notebook][measure]) for run in runs if measure in run.get(notebook, {})]
            values = [v for v in values if not math.isnan(v)]
            if not values:
                continue
            ordered = sorted(values)
            median = ordered[len(ordered) // 2] if len(ordered) % 2 else sum(ordered[len(ordered) // 2 - 1:][:2]) / 2
            margin = max(ordered[-1] - ordered[0], RELATIVE_MARGIN * abs(median), ABSOLUTE_MARGIN)
            lo_bound, hi_bound = _bounds(measure, values)
            out.setdefault(notebook, {})[measure] = {
                "low": round(max(ordered[0] - margin, lo_bound), 6),
                "high": round(min(ordered[-1] + margin, hi_bound), 6),
                "reference values": values,
            }
    return out


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


def write_ranges(profile: str, runs: list[dict], roots: list[Path], path: Path | None = None) -> Path:
    """Write (or replace) ``profile``'s ranges from ``runs`` and refresh the paper profile's; return the file."""
    path = path or RANGES_FILE
    profiles = read_ranges(path).get("profiles", {})
    data = {"made by": "python -m loopgen expected-ranges (loopgen.book.expectations); never edit by hand", "rule": RULE}
    if runs:
        profiles[profile] = {
            "source": {
                "runs": len(runs),
                "seeds": [run["_seed"] for run in runs],
                "how": f"one `run-notebooks --profile {profile} --seed S` per seed; its build/headlines/{profile}/"
                       f"seed<S>/*.json read from {len(roots)} root(s)",
                "made": _dt.date.today().isoformat(),
            },
            "ranges": ranges_from_runs(runs),
        }
    profiles["paper"] = {"source": {"runs": 0, "from": "loopgen.paper", "rule": PAPER_RULE}, "ranges": paper_ranges()}
    data["profiles"] = dict(sorted(profiles.items()))
    atomic.write_text(path, json.dumps(data, indent=1, sort_keys=False) + "\n")
    return path


def cli_main(argv: list[str]) -> int:
    from loopgen.commands import common
    from loopgen.run.profiles import PROFILES

    parser = common.parser("expected-ranges", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True, choices=sorted(p for p in PROFILES if p != "paper"))
    parser.add_argument("--runs", nargs="+", type=Path, default=[],
                        help="roots of finished runs (folders holding build/headlines/<profile>/seed*/)")
    parser.add_argument("--run-seeds", nargs="+", type=common.seed_int, default=[],
                        help="first run every notebook once per seed into --scratch (one after another)")
    parser.add_argument("--scratch", type=Path, default=None, help="root for --run-seeds (default: build/reference)")
    parser.add_argument("--out", type=Path, default=RANGES_FILE, help="the ranges file to update")
    args = parser.parse_args(argv)
    roots = list(args.runs)
    if args.run_seeds:
        from loopgen.run import runner

        scratch = (args.scratch or Paths().build / "reference" / args.profile).resolve()
        scratch.mkdir(parents=True, exist_ok=True)
        os.environ["LOOPGEN_ROOT"] = str(scratch)  # the notebooks' kernels inherit it
        for seed in args.run_seeds:
            results = runner.run(args.profile, paths=Paths(scratch), seed=seed)
            failed = [r.output_name for r, _, e in results if e is not None]
            if failed:
                raise errors.UserError(f"seed {seed}: notebooks failed ({', '.join(failed)}); no ranges written")
        roots.append(scratch)
    if not roots:
        raise errors.UsageError("give --runs ROOT ... (finished runs) or --run-seeds S ... (run them now)")
    runs = collect_runs(roots, args.profile)
    if not runs:
        raise errors.UserError(f"no headline files under {', '.join(map(str, roots))} for the {args.profile} profile")
    path = write_ranges(args.profile, runs, roots, args.out)
    print(f"{path}: {args.profile} ranges from {len(runs)} run(s) (seeds {', '.join(r['_seed'] for r in runs)}); "
          "paper ranges refreshed")
    return 0
