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
    assert summary["auto_precision"] in ("fp32", "bf16") and "fp16" not in summary, "fp16 is checked on a T4 only"


def _gpu_check(repo_root):
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", repo_root / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_on_a_t4_the_gpu_check_also_runs_fp16_and_reports_both(repo_root, monkeypatch, capsys):
    import pandas as pd
    import torch

    from loopgen.run import rehearse
    from loopgen.runtime import device as device_mod

    gpu_check = _gpu_check(repo_root)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    capability = {"value": (7, 5)}
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability["value"])
    cuda = torch.device("cuda")
    assert gpu_check.also_run(cuda, "tf32") == ["fp16"] and gpu_check.also_run(cuda, "fp16") == []
    assert gpu_check.also_run(cuda, "auto") == [] and gpu_check.also_run(torch.device("cpu"), "fp32") == []
    capability["value"] = (8, 0)
    assert gpu_check.also_run(cuda, "tf32") == [], "an A100 has bf16: no fp16 run"
    capability["value"] = (7, 5)

    asked = []

    def fake_rehearse(profile, *, precision, **kw):
        asked.append(precision)
        row = {"batch": 8, "steps": 2, "samples/s": 10.0, "peak memory (MB)": 1.0, "projected full run (h)": 1.0,
               "projected with validation and checkpoints (h)": 1.5, "resumed": True, "loss": 1.0,
               **{k: 0.5 for k in rehearse.METRIC_COLUMNS}}
        return pd.DataFrame([{"training": "cnn_vae", **row}]).set_index("training")

    monkeypatch.setattr(rehearse, "rehearse", fake_rehearse)
    monkeypatch.setattr(device_mod, "pick_device", lambda prefer=None, warn=True: cuda)
    assert gpu_check.main(["--only", "cnn_vae"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("\n{") + 1:])
    assert asked == ["tf32", "fp16"]
    assert summary["precision"] == "tf32" and summary["auto_precision"] == "fp16"
    assert summary["fp16"]["precision"] == "fp16" and summary["fp16"]["ok"] and summary["ok"]
    assert "fp16 autocast" in summary["fp16"]["device"]
