"""The GPU path of training, checked on a CPU (issue 19): AdamW's implementation per device, CUDA RNG states for
fewer devices than were saved, evaluation on the training device, the precision "auto" resolves to, and the lock
every training takes (a resume on another device: test_train_resume.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from loopgen import train
from loopgen.run import profiles
from loopgen.runtime import device as device_mod
from loopgen.train import checkpoint, loop, resume


def _settings(**kw) -> train.TrainSettings:
    base = profiles.get("smoke").train
    return dataclasses.replace(base, epochs=2, conv_batch_size=8, batch_size=8, max_train_loops=None, **kw)


def _loops(n: int = 24) -> np.ndarray:
    return (np.random.default_rng(0).random((n, 128, 93)) < 0.03).astype(np.uint8)


def test_the_optimiser_is_fused_on_cpus_and_cuda_and_multi_tensor_elsewhere():
    """Fused AdamW (one kernel over all parameters) where torch has it; test_train_resume.py resumes a CPU run on the
    'meta' stand-in, which gets the multi-tensor AdamW, as MPS does, and its other situations run it fused."""
    model = torch.nn.Linear(4, 3)
    settings = _settings()
    assert loop.make_optimiser(model, settings, torch.device("cpu")).defaults["fused"] is True
    meta = torch.nn.Linear(4, 3, device="meta")
    assert not loop.make_optimiser(meta, settings, torch.device("meta")).defaults["fused"]
    assert loop.FUSED_ADAMW_DEVICES == ("cpu", "cuda")



@pytest.mark.parametrize("saved_fused", [True, False])
def test_a_saved_adamw_state_loads_into_either_implementation_and_the_optimiser_keeps_its_own(saved_fused):
    """Checkpoints of earlier versions hold the multi-tensor AdamW, new ones the fused one: either resumes into
    either, with the same moments, and the optimiser stays the implementation make_optimiser chose."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    before = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=saved_fused)
    model(torch.randn(5, 4)).sum().backward()
    before.step()
    saved = before.state_dict()
    now = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=not saved_fused)
    resume.load_optimiser_state(now, saved)
    assert now.param_groups[0]["fused"] is (not saved_fused)
    for p in model.parameters():
        torch.testing.assert_close(now.state[p]["exp_avg"], before.state[p]["exp_avg"])
        assert float(now.state[p]["step"]) == 1.0


def test_a_run_saved_with_more_gpus_than_are_visible_restores_the_ones_there_are(monkeypatch):
    state = checkpoint.rng_state(torch.device("cpu"))
    state["cuda"] = [torch.full((16,), i, dtype=torch.uint8) for i in range(8)]  # saved with 8 visible GPUs
    restored = {}

    def set_all(states):  # torch's own: one state per visible device, an IndexError beyond them
        if len(states) > 1:
            raise IndexError("list index out of range")
        restored.update(enumerate(states))

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", set_all)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device=0: restored.__setitem__(device, s))
    checkpoint.set_rng_state(state, torch.device("cuda", 0))
    assert list(restored) == [0] and int(restored[0][0]) == 0


def test_numpy_and_torch_rng_states_restore_from_the_saved_tensors():
    torch.manual_seed(1)
    np.random.seed(1)  # noqa: NPY002 - the legacy state checkpoints save
    state = checkpoint.rng_state(torch.device("cpu"))
    expected = (np.random.random(), float(torch.rand(())))  # noqa: NPY002
    np.random.seed(2)  # noqa: NPY002
    torch.manual_seed(2)
    checkpoint.set_rng_state(state, torch.device("cpu"))
    assert (np.random.random(), float(torch.rand(()))) == expected  # noqa: NPY002


def test_evaluation_loads_models_on_its_training_device(monkeypatch):
    from loopgen.book import evaluation

    seen = {}

    def fake_load(name, settings, **kw):
        seen.update(kw)
        return torch.nn.Linear(1, 1), None

    monkeypatch.setattr(evaluation.Evaluation, "data_key", "d")
    ev = evaluation.Evaluation.__new__(evaluation.Evaluation)
    ev.profile, ev.seed = profiles.get("smoke"), 0
    ev.paths = type("P", (), {"checkpoints": "x"})()
    ev.__dict__["device"] = torch.device("meta")  # stands in for "cuda"
    monkeypatch.setattr(train, "load_trained", fake_load)
    ev.load("cnn_vae")
    assert seen.get("device") == torch.device("meta")


# ------------------------------------------------------------------------------------------- precision
def test_auto_precision_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(device_mod, "cpu_supports_bf16", lambda: True)
    assert device_mod.resolve_precision(torch.device("cpu")) == "bf16"
    assert "bf16 units" in device_mod.describe_device(torch.device("cpu"))
    monkeypatch.setattr(device_mod, "cpu_supports_bf16", lambda: False)
    assert device_mod.resolve_precision(torch.device("cpu")) == "fp32"
    for capability, expected in (((6, 1), "fp32"), ((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")):  # P100, T4, A100, H100
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None, c=capability: c)
        assert device_mod.resolve_precision(torch.device("cuda")) == expected
    assert device_mod.resolve_precision(torch.device("cuda"), "tf32") == "tf32"
    assert device_mod.resolve_precision(torch.device("cpu"), "tf32") == "fp32"


def test_float32_keys_stay_and_bf16_is_keyed(monkeypatch):
    settings = _settings()
    monkeypatch.setattr(device_mod, "cpu_supports_bf16", lambda: False)
    fp32 = {p: train.checkpoint_key("cnn_vae", dataclasses.replace(settings, precision=p), data_key="d")
            for p in ("auto", "fp32")}
    assert fp32["auto"] == fp32["fp32"], "float32, however asked for, has one key"
    bf16 = train.checkpoint_key("cnn_vae", dataclasses.replace(settings, precision="bf16"), data_key="d")
    assert bf16 != fp32["fp32"]
    monkeypatch.setattr(device_mod, "cpu_supports_bf16", lambda: True)
    auto_here = train.checkpoint_key("cnn_vae", dataclasses.replace(settings, precision="auto"), data_key="d")
    assert auto_here == bf16, "auto is keyed by what it resolves to"


def test_the_training_step_runs_in_the_precision_it_is_given(tmp_path):
    """bf16 autocast on the CPU trains (any CPU runs it; only the speed needs bf16 units) and is keyed so."""
    result = train.train_model(
        "cnn_vae", _loops(), _loops(8), dataclasses.replace(_settings(), epochs=1, precision="bf16"), data_key="d",
        checkpoint_dir=tmp_path, device="cpu", progress=False,
    )
    ckpt = train.read_checkpoint(result.checkpoint)
    assert ckpt["settings"]["precision"] == "bf16" and np.isfinite(result.history["loss"]).all()
    fp32 = train.checkpoint_key("cnn_vae", dataclasses.replace(_settings(), epochs=1), data_key="d")
    assert result.key != fp32


def test_a_gpu_the_torch_build_cannot_use_is_warned_about_loudly(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "nvidia_gpu_present", lambda: True)
    device_mod.warn_if_gpu_unused.cache_clear()
    with pytest.warns(RuntimeWarning, match="NVIDIA GPU is present but torch"):
        assert device_mod.pick_device() == torch.device("cpu")
    device_mod.warn_if_gpu_unused.cache_clear()
    with pytest.warns(RuntimeWarning, match="paper profile is written for a GPU"):
        device_mod.warn_if_gpu_profile_on_cpu("paper", torch.device("cpu"))
    assert device_mod.warn_if_gpu_profile_on_cpu("demo", torch.device("cpu")) is None


def test_a_model_trained_under_auto_loads_wherever_auto_resolves_otherwise(tmp_path, monkeypatch):
    """Trained where "auto" meant bf16 (a GPU or a bf16 CPU), loaded on a device where it means float32."""
    settings = dataclasses.replace(_settings(), epochs=1, precision="auto")
    monkeypatch.setattr(device_mod, "cpu_supports_bf16", lambda: True)
    trained = train.train_model("cnn_vae", _loops(), None, settings, data_key="d", checkpoint_dir=tmp_path,
                                device="cpu", progress=False)
    assert train.read_checkpoint(trained.checkpoint)["settings"]["precision"] == "bf16"
    monkeypatch.setattr(device_mod, "cpu_supports_bf16", lambda: False)
    model, history = train.load_trained("cnn_vae", settings, data_key="d", checkpoint_dir=tmp_path)
    assert train.weights_digest(model) == train.weights_digest(trained.model) and len(history) == 1


def test_train_takes_precision_and_wait():
    from loopgen.commands import train as train_command

    args = train_command._parse(["--model", "cnn_vae", "--precision", "bf16", "--wait"])
    assert args.precision == "bf16" and args.wait
    with pytest.raises(SystemExit):
        train_command._parse(["--model", "cnn_vae", "--precision", "fp8"])


def test_the_precision_switches_cover_every_whole_step(tmp_path, monkeypatch):
    """The TF32 switches (on CUDA) wrap forward, backward and update, and a fresh context serves each step (a
    generator-based context cannot be entered twice; "fp32"/"tf32" on CUDA use one)."""
    import contextlib

    state = {"switches": 0}
    seen = []

    @contextlib.contextmanager
    def switches(device, precision="auto"):
        state["switches"] += 1
        try:
            yield
        finally:
            state["switches"] -= 1

    monkeypatch.setattr(device_mod, "matmul_precision", switches)
    monkeypatch.setattr(device_mod, "autocast", lambda device, precision="auto": switches(device, precision))
    real_backward = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        seen.append(state["switches"])
        return real_backward(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "backward", backward)
    train.train_model("cnn_vae", _loops(), None, dataclasses.replace(_settings(), epochs=1), data_key="d",
                      checkpoint_dir=tmp_path, device="cpu", progress=False)
    assert len(seen) == 3 and all(n >= 1 for n in seen), "every backward pass runs inside the switches"


@pytest.mark.slow
def test_the_allocator_keeps_freed_memory_unless_told_not_to():
    """Training asks glibc's malloc to keep freed memory (fewer page faults per step); LOOPGEN_DEFAULT_MALLOC=1
    leaves malloc alone. Fresh processes: the setting is made once per process."""
    import subprocess
    import sys

    code = "from loopgen.runtime import device; print(device.keep_freed_memory())"
    tuned = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    if not sys.platform.startswith("linux"):
        assert tuned == "False"
        return
    assert tuned == "True"
    env = {**__import__("os").environ, "LOOPGEN_DEFAULT_MALLOC": "1"}
    left = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert left.stdout.strip() == "False"
