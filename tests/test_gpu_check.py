"""benchmarks/gpu_check.sh at CI size: a paper-profile training on the CPU, stopped, resumed, sampled, summarised; and
(issue 30) the check's JSON whatever happens: a failing training, a GPU that torch does not see, a training that
left the GPU; on a GPU the precision "auto" picks there, the masked prior and two-process DDP."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess

import pytest
import torch

from loopgen.run import rehearse
from loopgen.runtime import device as device_mod


def _summary_of(out: str) -> dict:
    """The check's JSON: the last object printed from the start of a line."""
    return json.loads(out[("\n" + out).rindex("\n{\n"):])


def _gpu_check(repo_root):
    spec = importlib.util.spec_from_file_location("gpu_check", repo_root / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_gpu_check_runs_small_on_a_cpu_and_ends_in_one_json_summary(repo_root, tmp_path):
    proc = subprocess.run(
        ["bash", str(repo_root / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--batch-size", "4",
         "--steps", "2", "--samples", "4", "--only", "cnn_vae"],
        cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    summary = _summary_of(proc.stdout)
    assert summary["ok"] and summary["problems"] == [] and summary["precision"] == "fp32", "tf32 is float32 on a CPU"
    (row,) = summary["trainings"]
    assert row["training"] == "cnn_vae" and row["resumed"] and row["batch"] == 4 and row["device"] == "cpu"
    assert row["steps"] == 3, "one step per epoch: the first, then after the resume a warm-up and the timed one"
    assert row["samples_per_s"] > 0 and row["projected_hours"] > 0
    assert row["projected_hours_with_validation_and_checkpoints"] >= row["projected_hours"]
    assert set(row["table3_row"]) == {"HD", "FNB", "DB", "UP", "ND"}
    assert 0 <= row["table3_row"]["FNB"] <= 1
    assert summary["total_projected_hours"] == pytest.approx(row["projected_hours_with_validation_and_checkpoints"],
                                                             abs=0.1)
    assert summary["auto_precision"] in ("fp32", "bf16") and "fp16" not in summary and "bf16" not in summary
    assert "ddp" not in summary and summary["expected_device"] == "cpu"


def _row(label: str, device: str = "cuda:0", **changes) -> dict:
    """A rehearsal row as rehearsal_rows gives it."""
    return {"training": label, "batch": 8, "steps": 3, "samples/s": 10.0, "peak memory (MB)": 1.0,
            "projected full run (h)": 1.0, "projected with validation and checkpoints (h)": 1.5, "resumed": True,
            "device": device, "loss": 1.0, **{k: 0.5 for k in rehearse.METRIC_COLUMNS}, **changes}


@pytest.fixture
def a_gpu(monkeypatch):
    """A CUDA GPU as torch would show it (its compute capability in ``capability["value"]``), and the rehearsal
    replaced by one that records what it was asked for and returns ``rows``."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "a GPU")
    capability = {"value": (9, 0)}
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability["value"])
    cuda = torch.device("cuda")
    monkeypatch.setattr(device_mod, "pick_device", lambda prefer=None, warn=True: torch.device(prefer or cuda))
    asked, rows = [], {"value": None}

    def fake_rows(profile, *, precision, masked_prior, **kw):
        asked.append((precision, masked_prior))
        return rows["value"] or [_row("cnn_vae")]

    monkeypatch.setattr(rehearse, "rehearsal_rows", fake_rows)
    return {"capability": capability, "asked": asked, "rows": rows}


def test_on_a_t4_the_gpu_check_also_runs_fp16_and_reports_both(repo_root, a_gpu, capsys):
    gpu_check = _gpu_check(repo_root)
    a_gpu["capability"]["value"] = (7, 5)
    cuda = torch.device("cuda")
    assert gpu_check.also_run(cuda, "tf32") == ["fp16"] and gpu_check.also_run(cuda, "fp16") == []
    assert gpu_check.also_run(cuda, "auto") == [] and gpu_check.also_run(torch.device("cpu"), "fp32") == []
    assert gpu_check.main(["--only", "cnn_vae"]) == 0
    summary = _summary_of(capsys.readouterr().out)
    assert a_gpu["asked"] == [("tf32", True), ("fp16", True)], "the masked prior is checked on every GPU"
    assert summary["precision"] == "fp32" and "no TF32" in summary["device"], "a T4 has no TF32"
    assert summary["auto_precision"] == "fp16" and summary["fp16"]["precision"] == "fp16" and summary["ok"]
    assert "fp16 autocast" in summary["fp16"]["device"]


def test_on_an_h100_the_gpu_check_also_runs_bf16_and_with_two_gpus_ddp(repo_root, a_gpu, capsys, monkeypatch):
    gpu_check = _gpu_check(repo_root)
    assert gpu_check.also_run(torch.device("cuda"), "tf32") == ["bf16"]
    assert gpu_check.main([]) == 0
    summary = _summary_of(capsys.readouterr().out)
    assert a_gpu["asked"] == [("tf32", True), ("bf16", True)] and summary["bf16"]["precision"] == "bf16"
    assert "ddp" not in summary, "one GPU: no DDP"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    calls = []
    monkeypatch.setattr(gpu_check, "ddp_check", lambda device, **kw: calls.append(device) or {"ok": False,
                                                                                            "error": "ranks differ"})
    assert gpu_check.main([]) == 1
    summary = _summary_of(capsys.readouterr().out)
    assert calls == [torch.device("cuda")] and summary["ddp"]["ok"] is False
    assert not summary["ok"] and any("ddp: ranks differ" in p for p in summary["problems"])


def test_a_training_that_left_the_gpu_is_not_ok(repo_root, a_gpu, capsys):
    gpu_check = _gpu_check(repo_root)
    a_gpu["rows"]["value"] = [_row("cnn_vae", device="cpu"), _row("vq_vae", **{"peak memory (MB)": 0.0})]
    assert gpu_check.main(["--no-masked-prior"]) == 1
    summary = _summary_of(capsys.readouterr().out)
    assert not summary["ok"]
    assert any("cnn_vae: trained on cpu, not on cuda" in p for p in summary["problems"])
    assert any("vq_vae: allocated no GPU memory" in p for p in summary["problems"])


def test_without_a_gpu_the_gpu_check_says_so_in_its_json_and_trains_nothing(repo_root, monkeypatch, capsys):
    gpu_check = _gpu_check(repo_root)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(rehearse, "rehearsal_rows", lambda *a, **k: pytest.fail("nothing should train"))
    assert gpu_check.main([]) == 1
    summary = _summary_of(capsys.readouterr().out)
    assert not summary["ok"] and "needs a CUDA GPU" in summary["error"] and summary["expected_device"] == "cuda"


def test_one_failing_training_still_gives_the_json_with_its_error(repo_root, monkeypatch, capsys):
    gpu_check = _gpu_check(repo_root)
    real = rehearse.train.train_model

    def failing(name, *args, **kwargs):
        if name == "cnn_vae":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(rehearse.train, "train_model", failing)
    code = gpu_check.main(["--device", "cpu", "--batch-size", "4", "--steps", "2", "--samples", "4",
                           "--only", "cnn_vae", "vq_vae_t32_L16_K256"])
    summary = _summary_of(capsys.readouterr().out)
    assert code == 1 and not summary["ok"]
    failed, trained = summary["trainings"]
    assert failed == {"training": "cnn_vae", "error": "RuntimeError: CUDA error: an illegal memory access was "
                                                      "encountered"}
    assert trained["training"] == "vq_vae_t32_L16_K256" and trained["resumed"] and "error" not in trained
    assert summary["problems"] == ["cnn_vae: RuntimeError: CUDA error: an illegal memory access was encountered"]


@pytest.mark.slow
def test_the_ddp_check_runs_two_gloo_processes_on_a_cpu(repo_root, monkeypatch):
    """The harness of the two-process check: on CUDA it takes NCCL and two GPUs; here gloo and the CPU."""
    gpu_check = _gpu_check(repo_root)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", str(repo_root / "lib"))
    result = gpu_check.ddp_check(torch.device("cpu"), batch=4, steps=2, precision="fp32")
    assert result["ok"], result
    assert result["backend"] == "gloo" and result["exit_codes"] == [0, 0] and result["resumed"]
    assert result["same_parameters_on_both_ranks"], "DDP averaged the gradients: the ranks' weights agree"
