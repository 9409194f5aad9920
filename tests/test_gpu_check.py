"""benchmarks/gpu_check.sh at CI size: a paper-profile training on the CPU, stopped, resumed, sampled, summarised."""

from __future__ import annotations

import json
import os
import subprocess

import pytest


def test_the_gpu_check_runs_small_on_a_cpu_and_ends_in_one_json_summary(repo_root, tmp_path):
    proc = subprocess.run(
        ["bash", str(repo_root / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--batch-size", "4",
         "--steps", "2", "--samples", "4", "--only", "cnn_vae"],
        cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("\n{") + 1:])
    assert summary["ok"] and summary["precision"] == "fp32", "the paper profile's tf32 is float32 on a CPU"
    (row,) = summary["trainings"]
    assert row["training"] == "cnn_vae" and row["resumed"] and row["batch"] == 4 and row["steps"] == 2
    assert row["samples_per_s"] > 0 and row["projected_hours"] > 0
    assert row["projected_hours_with_validation_and_checkpoints"] >= row["projected_hours"]
    assert set(row["table3_row"]) == {"HD", "FNB", "DB", "UP", "ND"}
    assert 0 <= row["table3_row"]["FNB"] <= 1
    assert summary["total_projected_hours"] == pytest.approx(row["projected_hours_with_validation_and_checkpoints"],
                                                             abs=0.1)
