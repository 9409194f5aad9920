"""fp16 training for GPUs without native bf16 (issue 19): float16 autocast with a gradient scaler on a CUDA GPU of
compute capability 7.x (T4, V100). No GPU here: the capability is faked, and the scaled step runs on the CPU
(torch's CPU float16 autocast and ``GradScaler("cpu")``) once the test lets fp16 onto the CPU."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from loopgen import errors, train
from loopgen.run import profiles
from loopgen.runtime import device as device_mod
from loopgen.train import checkpoint, loop

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _settings(**kw) -> train.TrainSettings:
    base = profiles.get("smoke").train
    return dataclasses.replace(base, epochs=2, conv_batch_size=8, batch_size=8, max_train_loops=None, **kw)


def _loops(n: int = 24, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 128, 93)) < 0.03).astype(np.uint8)


def _fake_gpu(monkeypatch, capability: tuple[int, int]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability)


@pytest.mark.parametrize(("capability", "expected"), [((6, 1), "fp32"), ((7, 0), "fp16"), ((7, 5), "fp16"),
                                                      ((8, 0), "bf16"), ((8, 9), "bf16"), ((9, 0), "bf16")])
def test_auto_on_cuda_follows_the_compute_capability(monkeypatch, capability, expected):
    """P100/GTX 10xx: float32; V100/T4: fp16 on the tensor cores; A100, L4, H100: bf16."""
    _fake_gpu(monkeypatch, capability)
    assert device_mod.resolve_precision(torch.device("cuda")) == expected
    assert device_mod.resolve_precision(torch.device("cuda"), "fp16") == "fp16", "asked for: on any CUDA GPU"


def test_describe_device_says_why_auto_gave_fp16(monkeypatch):
    _fake_gpu(monkeypatch, (7, 5))
    text = device_mod.describe_precision(torch.device("cuda"))
    assert "fp16" in text and "gradient scaling" in text and "no native bf16" in text


def test_cpu_and_mps_are_unchanged_and_fp16_there_is_refused_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(device_mod, "cpu_supports_bf16", lambda: False)
    assert device_mod.resolve_precision(torch.device("cpu")) == "fp32"
    assert device_mod.resolve_precision(torch.device("mps")) == "fp32"
    with pytest.raises(errors.UserError, match="on cpu use --precision bf16 or fp32") as err:
        device_mod.resolve_precision(torch.device("cpu"), "fp16")
    assert "\n" not in str(err.value)
    with pytest.raises(errors.UserError, match="on mps use --precision fp32"):
        device_mod.autocast(torch.device("mps"), "fp16")
    with pytest.raises(errors.UserError, match="fp16"):  # before any work: no checkpoint is written
        train.train_model("cnn_vae", _loops(), None, _settings(precision="fp16"), data_key="d",
                          checkpoint_dir=tmp_path, device="cpu", progress=False)
    assert not list(tmp_path.glob("*.pt"))


def test_fp16_is_keyed_and_auto_on_a_t4_is_keyed_as_fp16(monkeypatch):
    settings = _settings()
    keys = {p: train.checkpoint_key("cnn_vae", dataclasses.replace(settings, precision=p), data_key="d")
            for p in ("fp32", "bf16", "fp16")}
    assert len(set(keys.values())) == 3
    assert checkpoint.weight_settings("cnn_vae", dataclasses.replace(settings, precision="fp16"))["precision"] == "fp16"
    _fake_gpu(monkeypatch, (7, 5))
    on_t4 = checkpoint.settings_on(dataclasses.replace(settings, precision="auto"), "cuda")
    assert on_t4.precision == "fp16"
    assert train.checkpoint_key("cnn_vae", on_t4, data_key="d") == keys["fp16"]


def test_train_and_rehearse_take_fp16(capsys):
    from loopgen.commands import rehearse as rehearse_command
    from loopgen.commands import train as train_command

    assert train_command._parse(["--model", "cnn_vae", "--precision", "fp16"]).precision == "fp16"
    with pytest.raises(SystemExit) as stop:
        rehearse_command.main(["--help"])
    assert stop.value.code == 0 and "auto,bf16,fp16,tf32,fp32" in capsys.readouterr().out


# ---------------------------------------------------------------------------------- the scaled step (CPU)
def _tiny(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 1)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=10)
    return model, optimiser, scheduler


def test_a_scaler_that_sees_inf_gradients_skips_the_update_and_the_learning_rate_step():
    model, optimiser, scheduler = _tiny()
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    x = torch.randn(8, 4)
    before = [p.detach().clone() for p in model.parameters()]
    lr = optimiser.param_groups[0]["lr"]
    overflow = lambda x: ((model(x) * float("inf")).sum(), {})  # noqa: E731 - inf gradients
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "lr_scheduler.step() before optimizer.step()" warning, none at all
        for _ in range(3):
            loop.optimiser_step(overflow, x, optimiser, scheduler, grad_clip=1.0, autocast=torch.autocast("cpu", dtype=torch.float16),
                                scaler=scaler)
        for p, q in zip(model.parameters(), before, strict=True):
            assert torch.equal(p, q), "an overflowed step leaves the weights as they were"
        assert scheduler.last_epoch == 0 and optimiser.param_groups[0]["lr"] == lr, "and the learning rate"
        assert scaler.get_scale() == 1024.0 / 8, "the scale is halved at each overflow"
        clean = lambda x: (model(x).pow(2).mean(), {})  # noqa: E731
        loop.optimiser_step(clean, x, optimiser, scheduler, grad_clip=1.0, autocast=torch.autocast("cpu", dtype=torch.float16),
                            scaler=scaler)
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))
    assert scheduler.last_epoch == 1 and optimiser.param_groups[0]["lr"] < lr


def test_the_scaled_step_unscales_before_clipping():
    """The clip sees the true gradients: with a scale of 2**10 and a clip of 1, the applied gradient has norm 1."""
    model, optimiser, scheduler = _tiny()
    seen = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def clip(params, max_norm):
        params = list(params)
        seen.append(float(torch.cat([p.grad.reshape(-1) for p in params]).norm()))
        return real_clip(params, max_norm)

    x = torch.randn(8, 4)
    loss_of = lambda x: (model(x).sum(), {})  # noqa: E731
    expected = torch.autograd.grad(model(x).sum(), list(model.parameters()))
    torch.nn.utils.clip_grad_norm_, restore = clip, real_clip
    try:
        loop.optimiser_step(loss_of, x, optimiser, scheduler, grad_clip=1.0, autocast=torch.autocast("cpu", enabled=False),
                            scaler=torch.amp.GradScaler("cpu", init_scale=1024.0))
    finally:
        torch.nn.utils.clip_grad_norm_ = restore
    assert seen == pytest.approx([float(torch.cat([g.reshape(-1) for g in expected]).norm())], rel=1e-5)


def test_without_a_scaler_the_step_is_the_plain_one():
    """bf16 and float32 runs take a disabled scaler: the same weights as the textbook step, bit for bit."""
    x = torch.randn(8, 4)
    results = []
    for scaler in (None, device_mod.grad_scaler(torch.device("cpu"), "fp32")):
        model, optimiser, scheduler = _tiny()
        loop.optimiser_step(lambda x, m=model: (m(x).pow(2).mean(), {}), x, optimiser, scheduler, grad_clip=None,
                            autocast=torch.autocast("cpu", enabled=False), scaler=scaler)
        results.append([p.detach().clone() for p in model.parameters()])
    model, optimiser, scheduler = _tiny()
    optimiser.zero_grad()
    model(x).pow(2).mean().backward()
    optimiser.step()
    for got in results:
        for p, q in zip(got, model.parameters(), strict=True):
            assert torch.equal(p, q)
    assert not device_mod.grad_scaler(torch.device("cpu"), "bf16").is_enabled()


# ------------------------------------------------------------------------------ an fp16 training on the CPU
# (fixture fp16_on_cpu: tests/conftest.py; a fp16 run stopped and resumed: tests/test_train_resume.py)
def test_float32_and_bf16_checkpoints_hold_no_scaler(tmp_path):
    result = train.train_model("cnn_vae", _loops(), None, dataclasses.replace(_settings(), epochs=1), data_key="d",
                               checkpoint_dir=tmp_path, device="cpu", progress=False, max_epochs_this_call=1)
    assert "scaler" not in train.read_checkpoint(result.checkpoint)


def test_an_fp16_model_trained_under_auto_loads_where_auto_means_something_else(tmp_path, monkeypatch, fp16_on_cpu):
    """Trained where "auto" meant fp16 (a T4), loaded on a machine where it means float32 (a CPU)."""
    settings = dataclasses.replace(_settings(), epochs=1, precision="fp16")
    trained = train.train_model("cnn_vae", _loops(), None, settings, data_key="d", checkpoint_dir=tmp_path,
                                device="cpu", progress=False)
    monkeypatch.setattr(device_mod, "cpu_supports_bf16", lambda: False)
    model, history = train.load_trained("cnn_vae", dataclasses.replace(settings, precision="auto"), data_key="d",
                                        checkpoint_dir=tmp_path)
    assert train.weights_digest(model) == train.weights_digest(trained.model) and len(history) == 1


def test_the_scaled_step_reads_the_scale_once_a_step(monkeypatch):
    """Each get_scale() is a host sync on a GPU: the scale before a step is the one after the previous step."""
    model, optimiser, scheduler = _tiny()
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    reads = []
    real = scaler.get_scale
    monkeypatch.setattr(scaler, "get_scale", lambda: reads.append(1) or real())
    clean = lambda x: (model(x).pow(2).mean(), {})  # noqa: E731
    overflow = lambda x: ((model(x) * float("inf")).sum(), {})  # noqa: E731
    autocast = torch.autocast("cpu", dtype=torch.float16)
    for loss_of in (clean, overflow, clean, clean):
        loop.optimiser_step(loss_of, torch.randn(8, 4), optimiser, scheduler, grad_clip=None, autocast=autocast,
                            scaler=scaler)
    assert len(reads) == 4 + 1, "one read a step, plus the first step's scale before"
    assert scheduler.last_epoch == 3, "the overflowed step did not count as an update"


def test_a_skipped_fp16_update_does_not_advance_the_kl_ramp(tmp_path, monkeypatch, fp16_on_cpu):
    """The KL weight follows the updates made: an overflowed step leaves it where it was."""
    from loopgen.train import run as run_mod

    betas = []

    original = run_mod.TrainingRun.kl_beta
    monkeypatch.setattr(run_mod.TrainingRun, "kl_beta", lambda self, step: betas.append(step) or original(self, step))
    calls = {"n": 0}
    real_step = loop.optimiser_step

    def overflow_on_third(loss_of, x, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            return real_step(lambda x: ((loss_of(x)[0]) * float("inf"), {}), x, *args, **kwargs)
        return real_step(loss_of, x, *args, **kwargs)

    monkeypatch.setattr(loop, "optimiser_step", overflow_on_third)
    settings = dataclasses.replace(_settings(precision="fp16"), epochs=1)
    train.train_model("cnn_vae", _loops(40), None, settings, data_key="d", checkpoint_dir=tmp_path, progress=False)
    steps = betas[: calls["n"]]
    assert steps[:3] == [0, 1, 2] and steps[3] == 2, steps  # step 3 overflowed: step 4 sees the same ramp
