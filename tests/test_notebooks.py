"""Run every notebook at the smoke profile through papermill and check what they wrote to figures/.

Marked ``notebooks``: select it alone with ``pytest -m notebooks``, or skip it with ``-m 'not notebooks'``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import matplotlib.image as mpimg
import pandas as pd
import pytest

from loopgen.outputs import OUTPUTS


@pytest.mark.notebooks
def test_smoke_profile_regenerates_every_output(repo_root, tmp_path_factory):
    """Runs in an isolated root (``LOOPGEN_ROOT``): a user's figures/, data/ and build/ are never touched."""
    root = tmp_path_factory.mktemp("smoke-root")
    started = time.time() - 1
    user_figures = {p: p.stat().st_mtime for p in (repo_root / "figures").glob("*")}
    proc = subprocess.run(
        [sys.executable, "-m", "loopgen", "run-notebooks", "--profile", "smoke", "--cell-timeout", "900"],
        cwd=root,
        env={**os.environ, "LOOPGEN_ROOT": str(root)},
        capture_output=True,
        text=True,
        timeout=1500,
    )
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"notebook run failed:\n{tail}"
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
