"""Run every notebook at the smoke profile through papermill and check what they wrote to figures/; then run the
worked solutions on that run's data and check its headline numbers against the smoke expected ranges.

Marked ``notebooks``: select it alone with ``pytest -m notebooks``, or skip it with ``-m 'not notebooks'``.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest

from loopgen.store.outputs import OUTPUTS


@pytest.mark.notebooks
def test_smoke_profile_regenerates_every_output(repo_root, smoke_run):
    """Runs in an isolated root (``LOOPGEN_ROOT``): a user's figures/, data/ and build/ are never touched."""
    root, started, user_figures, tail = smoke_run.root, smoke_run.started, smoke_run.user_figures, smoke_run.log_tail
    assert smoke_run.returncode == 0, f"notebook run failed:\n{tail}"
    problems = []
    for output in OUTPUTS:
        path = root / "figures" / output.filename
        if not path.exists() or path.stat().st_size == 0:
            problems.append(f"{output.filename} (from {output.notebook}) was not written")
            continue
        if path.stat().st_mtime < started:
            problems.append(f"{output.filename} is stale: not rewritten by this run")
        if output.filename.endswith(".png"):
            image = mpimg.imread(path)
            if image.ndim < 2 or min(image.shape[:2]) < 50:
                problems.append(f"{output.filename} is not a proper image: shape {image.shape}")
        else:
            table = pd.read_csv(path)
            if table.empty:
                problems.append(f"{output.filename} has no rows")
            header = " ".join(path.read_text(encoding="utf-8").splitlines()[:3]).lower()
            if "paper" not in header:
                problems.append(f"{output.filename} has no paper column beside ours: {header[:200]}")
            md = path.with_suffix(".md")
            if not md.exists() or "|" not in md.read_text():
                problems.append(f"{md.name} (Markdown table) missing or not a table")
    assert not problems, "\n".join(problems) + f"\n--- run log tail ---\n{tail}"
    assert {p: p.stat().st_mtime for p in (repo_root / "figures").glob("*")} == user_figures, (
        "the notebook test touched the checkout's figures/"
    )


SOLUTIONS = sorted((Path(__file__).resolve().parents[1] / "notebooks" / "solutions").glob("*_solutions.ipynb"))


@pytest.mark.notebooks
def test_worked_solutions_run_at_the_smoke_profile(smoke_run, monkeypatch):
    """Every worked solution runs on the smoke run's data, and every ``assert exercises.check(...)`` in it holds."""
    import papermill as pm

    from loopgen.run import runner

    assert smoke_run.returncode == 0, f"the smoke run failed, so the solutions cannot run:\n{smoke_run.log_tail}"
    assert len(SOLUTIONS) == 9, [p.name for p in SOLUTIONS]
    monkeypatch.setenv("LOOPGEN_ROOT", str(smoke_run.root))  # the kernels inherit it
    runner._use_own_kernel()
    out = smoke_run.root / "build" / "executed" / "solutions"
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for nb in SOLUTIONS:
        try:
            pm.execute_notebook(str(nb), str(out / nb.name), parameters={"PROFILE": "smoke", "SEED": 0},
                                kernel_name=runner.KERNEL_NAME, progress_bar=False, execution_timeout=600,
                                cwd=str(nb.parent))
        except Exception as exc:  # noqa: BLE001 - report every failing solution
            failed.append(f"{nb.name}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}")
    assert not failed, "\n".join(failed)


@pytest.mark.notebooks
def test_smoke_headlines_fall_in_the_expected_ranges(smoke_run):
    """The numbers each notebook's "What you should see" cell recorded lie in the smoke ranges of the ranges file."""
    from loopgen.book import expectations

    assert smoke_run.returncode == 0, f"notebook run failed:\n{smoke_run.log_tail}"
    ranges = expectations.read_ranges()
    smoke = ranges["profiles"]["smoke"]
    assert smoke["source"]["runs"] >= 3, "the smoke ranges come from at least three reference runs"
    folder = smoke_run.root / "build" / "headlines" / "smoke" / "seed0"
    recorded = {p.stem for p in folder.glob("*.json")}
    assert recorded >= set(smoke["ranges"]), f"no headlines for {sorted(set(smoke['ranges']) - recorded)}"
    unusual = []
    for notebook in sorted(smoke["ranges"]):
        values = json.loads((folder / f"{notebook}.json").read_text(encoding="utf-8"))
        lines = expectations.compare(notebook, values, "smoke", ranges)
        assert lines[-1].startswith(("As expected", "No expected")) or "unusual" in lines[-1], lines
        unusual += [f"{notebook}: {line}" for line in lines if line.startswith("UNUSUAL")]
    assert not unusual, "\n".join(unusual)
    for notebook in ("02-vq_vae", "03", "04", "05"):  # every model's numbers beside their trivial baselines
        values = json.loads((folder / f"{notebook}.json").read_text(encoding="utf-8"))
        assert any(name.endswith(("baseline: silence", "baseline: copy 16 back", "shuffled bars: HD"))
                   for name in values), (notebook, sorted(values))
