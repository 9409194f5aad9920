"""Issue 30: what runs on a GPU stays there. Checked on the meta device (no data: any host sync, ``.item()``, copy
to the host or boolean index raises there) under a recorder of every tensor an op leaves on the CPU (a draw on the
host, then copied over, would show there); and each device-side form is held equal to the CPU's own form, which
keeps every CPU result bit for bit."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from loopgen import sample, train
from loopgen import sample_masked as masked
from loopgen.models.masked_prior import MaskedCodePrior, masked_terms, random_mask
from loopgen.models.prior import CodePrior
from loopgen.run.profiles import TrainSettings
from loopgen.runtime import device as device_mod

pytestmark = pytest.mark.usefixtures("one_torch_thread")
META = torch.device("meta")
K, T = 16, 32
TINY_MASKED = {"num_codes": K, "seq_len": T, "dim": 32, "layers": 1, "heads": 4, "dropout": 0.0}


class HostWatch(TorchDispatchMode):
    """Records every op that leaves a tensor on the CPU while the block runs."""

    def __init__(self) -> None:
        super().__init__()
        self.on_host: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in tree_flatten(out)[0]):
            self.on_host.append(str(func))
        return out


def _masked_prior(device=None) -> MaskedCodePrior:
    torch.manual_seed(0)
    return MaskedCodePrior(**TINY_MASKED).to(device or "cpu").eval()


# ------------------------------------------------------------------------------- N7: the masked prior's step
def test_a_masked_prior_training_step_draws_its_mask_on_the_device_and_waits_for_nothing():
    prior = _masked_prior(META).train()
    codes = torch.zeros(8, T, dtype=torch.int64, device=META)
    with HostWatch() as watch:
        loss, terms = prior.training_loss(codes)  # today: the mask drawn on the CPU, then a boolean index (sync)
        loss.backward()
    assert loss.device == META and terms["accuracy"].device == META
    assert watch.on_host == [], f"ops that left tensors on the host: {watch.on_host[:5]}"


def test_the_masks_of_a_cpu_training_stay_the_cpu_generators():
    torch.manual_seed(3)
    before = random_mask(6, T)
    torch.manual_seed(3)
    assert torch.equal(random_mask(6, T, device="cpu"), before), "the CPU's masks (and checkpoints) are unchanged"
    generator = torch.Generator().manual_seed(5)
    fixed = random_mask(6, T, generator=generator, device=META)
    assert fixed.device == META, "a given (validation) generator still draws on the CPU and moves the mask"


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_the_weighted_masked_loss_equals_the_gathered_one(reduction):
    prior = _masked_prior()
    codes = torch.randint(0, K, (8, T), generator=torch.Generator().manual_seed(1))
    mask = random_mask(8, T, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        gathered_loss, gathered_accuracy = prior.masked_loss(codes, mask, reduction=reduction)  # the CPU's form
        logits = prior(codes.masked_fill(mask, prior.mask_id))
        loss, accuracy = masked_terms(logits, codes, mask, reduction)
    assert float(loss) == pytest.approx(float(gathered_loss), rel=1e-5)
    assert float(accuracy) == pytest.approx(float(gathered_accuracy), abs=1e-7)


# ------------------------------------------------------------------------------- N8: masked sampling
@pytest.mark.parametrize("temperature", [None, 1.0])
def test_a_masked_sampling_round_never_leaves_the_models_device(temperature):
    prior = _masked_prior(META)
    codes = torch.zeros(4, T, dtype=torch.int64, device=META)
    regenerate = torch.ones(4, T, dtype=torch.bool, device=META)
    with HostWatch() as watch:
        out = masked.decode_codes(prior, codes, regenerate, steps=3, temperature=temperature, seed=0, mask_noise=1.0)
    assert out.device == META and out.shape == (4, T)
    assert watch.on_host == [], f"ops that left tensors on the host: {watch.on_host[:5]}"


def test_the_device_rounds_decode_as_the_cpus_rounds_when_nothing_is_drawn():
    """Argmax and no noise: the device form (every position scored, the mask choosing) and the CPU's (the masked
    positions gathered) fix the same codes in the same rounds."""
    prior = _masked_prior()
    codes = torch.randint(0, K, (6, T), generator=torch.Generator().manual_seed(4))
    regenerate = torch.rand(6, T, generator=torch.Generator().manual_seed(5)) < 0.5
    generator = torch.Generator().manual_seed(0)
    cpu_form = masked._decode_batch(prior, codes, regenerate, 5, None, 0.0, generator)
    device_form = masked._decode_batch_on_device(prior, codes, regenerate, 5, None, 0.0, generator)
    assert torch.equal(device_form, cpu_form)


def test_the_device_rounds_write_only_the_positions_asked_and_every_one_of_them():
    prior = _masked_prior()
    codes = torch.randint(0, K, (6, T), generator=torch.Generator().manual_seed(4))
    regenerate = torch.rand(6, T, generator=torch.Generator().manual_seed(5)) < 0.3
    out = masked._decode_batch_on_device(prior, codes, regenerate, 4, 1.0, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(out[~regenerate], codes[~regenerate])
    assert int(out.min()) >= 0 and int(out.max()) < K, "no [MASK] left, no code outside the codebook"


def test_masked_sampling_on_the_cpu_is_unchanged():
    """The CPU keeps its rounds: the same seed gives the same codes as decode_codes, which takes the same path."""
    prior = _masked_prior()
    drawn = masked.sample_masked(prior, 5, steps=4, seed=7)
    again = masked.decode_codes(prior, torch.zeros(5, T, dtype=torch.int64), torch.ones(5, T, dtype=torch.bool),
                                steps=4, seed=7)
    assert np.array_equal(drawn, again.numpy())


# ------------------------------------------------------------------------------- the LSTM prior's draws
def test_the_lstm_priors_draws_stay_on_its_device():
    torch.manual_seed(0)
    prior = CodePrior(num_codes=K, seq_len=8, embed_dim=8, hidden=16).to(META).eval()
    first = torch.zeros(4, dtype=torch.int64, device=META)
    with HostWatch() as watch, torch.no_grad():
        out = prior.generate(first, temperature=1.0)  # today's loop copied each step's probabilities to the host
    assert out.device == META and out.shape == (4, 8)
    assert watch.on_host == [], f"ops that left tensors on the host: {watch.on_host[:5]}"


def test_sampling_codes_on_the_cpu_is_unchanged():
    """sample_codes through CodePrior.generate draws what the former per-step loop drew (same generator, order)."""
    torch.manual_seed(0)
    prior = CodePrior(num_codes=K, seq_len=8, embed_dim=8, hidden=16).eval()
    first_probs = np.full(K, 1 / K)
    generator = torch.Generator().manual_seed(3)
    first = torch.multinomial(torch.from_numpy(first_probs / first_probs.sum()), 5, replacement=True,
                              generator=generator)
    current, expected = first.unsqueeze(1), [first.unsqueeze(1)]
    state = None
    with torch.no_grad():
        for _ in range(7):  # the loop as it was: softmax at the temperature, one draw per step
            logits, state = prior(current, state)
            current = torch.multinomial(torch.softmax(logits[:, -1].float() / 1.3, dim=-1), 1, generator=generator)
            expected.append(current)
    drawn = sample.sample_codes(prior, 5, first_probs, temperature=1.3, seed=3)
    assert np.array_equal(drawn, torch.cat(expected, dim=1).numpy())


# ------------------------------------------------------------------------------- N9: where models load and score
def test_code_log_likelihood_in_batches_equals_the_one_pass(monkeypatch):
    torch.manual_seed(0)
    prior = CodePrior(num_codes=K, seq_len=8, embed_dim=8, hidden=16).eval()
    codes = np.random.default_rng(0).integers(0, K, size=(7, 8))
    one_pass = sample.code_log_likelihood(prior, codes, start=2)
    batch_of = sample._likelihood_batch
    assert batch_of(torch.device("cpu"), 15_000) >= 15_000, "the CPU keeps its one pass"
    assert batch_of(torch.device("cuda"), 15_000) == sample.LIKELIHOOD_BATCH
    monkeypatch.setattr(sample, "_likelihood_batch", lambda device, n: 3)  # what a GPU does, with batches of 3
    batched = sample.code_log_likelihood(prior, codes, start=2)
    assert np.allclose(batched, one_pass, rtol=1e-6, atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*meta parameter:UserWarning")
def test_a_trained_model_loads_where_training_runs(tmp_path, monkeypatch):
    """load_trained without a device: the training's device (pick_device), not always the CPU; the musicians'
    commands and notebook 09 call it so."""
    settings = TrainSettings(epochs=1, batch_size=8, precision="fp32")
    loops = (np.random.default_rng(0).random((16, 128, 93)) < 0.05).astype(np.uint8)
    train.train_model("cnn_vae", loops, None, settings, data_key="d", checkpoint_dir=tmp_path, device="cpu",
                      progress=False)
    from loopgen.train import load

    monkeypatch.setattr(load, "pick_device", lambda: META)
    model, history = train.load_trained("cnn_vae", settings, data_key="d", checkpoint_dir=tmp_path)
    assert next(model.parameters()).device == META and len(history) == 1
    model, _ = train.load_trained("cnn_vae", settings, data_key="d", checkpoint_dir=tmp_path, device="cpu")
    assert next(model.parameters()).device.type == "cpu", "an explicit device still wins"


# ------------------------------------------------------------------------------- N11: no TF32 on a T4 or V100
def test_tf32_on_a_gpu_without_tf32_is_float32_in_name_and_key(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    capability = {"value": (7, 5)}
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability["value"])
    cuda = torch.device("cuda")
    assert device_mod.resolve_precision(cuda, "tf32") == "fp32"
    described = device_mod.describe_device(cuda, "tf32")
    assert "TF32 matmuls" not in described and "no TF32" in described
    settings = TrainSettings(epochs=1, precision="tf32")
    on_t4 = train.checkpoint_key("cnn_vae", train.checkpoint.settings_on(settings, cuda), data_key="d")
    capability["value"] = (8, 0)
    assert device_mod.resolve_precision(cuda, "tf32") == "tf32"
    assert "TF32 matmuls" in device_mod.describe_device(cuda, "tf32")
    on_a100 = train.checkpoint_key("cnn_vae", train.checkpoint.settings_on(settings, cuda), data_key="d")
    assert on_t4 == on_a100, "keys name the profile's precision, wherever computed (a T4's checkpoint is found)"


# ------------------------------------------------------------------------------- N12: the torch the code needs
# torch APIs the library calls, and the release that brought each (PyTorch's release notes).
TORCH_API_SINCE = {
    r"torch\.amp\.GradScaler": (2, 3),
    r"torch\.get_autocast_dtype\(": (2, 4),
    r"torch\.is_autocast_enabled\(\s*['\"a-z]": (2, 4),  # with a device type
}


def test_pyproject_asks_for_a_torch_that_has_every_api_the_library_calls(repo_root):
    (spec,) = re.findall(r'^\s*"(torch[^"]*)"', (repo_root / "pyproject.toml").read_text(), re.MULTILINE)
    floor = tuple(int(v) for v in re.search(r">=\s*([\d.]+)", spec).group(1).split(".")[:2])
    source = "\n".join(p.read_text() for p in (repo_root / "lib" / "loopgen").rglob("*.py"))
    needed = {pattern: since for pattern, since in TORCH_API_SINCE.items() if re.search(pattern, source)}
    assert needed, "the table names APIs the library calls"
    for pattern, since in needed.items():
        assert floor >= since, f"pyproject.toml allows torch {spec}; the library calls {pattern} (torch >= {since})"
