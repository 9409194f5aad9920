"""The AR LSTM-VAE's fused decoder recurrence (one autograd node, hand-written backward) against its plain loop.

The model's plain loop (``ARLSTMVAE.plain_steps``, one ``nn.LSTM`` call per step) is the reference the fused path
(``ARLSTMVAE.fused_steps``, the default) must equal: the same weights, the same scheduled-sampling coins, the same
logits and gradients (float64 for the random-weight checks, where an untrained 128-step LSTM amplifies float32
rounding; float32 to 1e-5 at a moderate latent scale; float32 for the shipped weights, which must load unchanged
and decode as before), and the same behaviour under bf16 autocast. The hand-written backward pass is also checked
by ``torch.autograd.gradcheck`` on a tiny recurrence.
"""

from __future__ import annotations

import copy

import pytest
import torch

from loopgen import LOOP_STEPS, N_COLUMNS
from loopgen.models import ARLSTMVAE, build
from loopgen.runtime.recurrence import ScheduledSamplingRecurrence
from loopgen.train import shipped

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _plain(model: ARLSTMVAE) -> ARLSTMVAE:
    """A copy of ``model`` (same weights) that decodes with the plain loop."""
    plain = copy.deepcopy(model)
    plain.fused_recurrence = False
    return plain


def _loops(batch: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, LOOP_STEPS, N_COLUMNS, generator=g) < 0.05).to(dtype)


def _random_model(seed: int, dtype=torch.float64) -> ARLSTMVAE:
    torch.manual_seed(seed)
    model = build("ar_lstm_vae", encoder_hidden=32)
    model.init_output_bias(0.05)
    with torch.no_grad():  # a non-zero output bias and LSTM biases, so every weight is exercised
        for name, p in model.named_parameters():
            if "bias" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model.to(dtype)


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("batch", [1, 5, 33])
@pytest.mark.parametrize("epoch", [0.0, 60.0, 400.0])  # teacher forcing p = 0.95, 0.5, ~0
def test_training_loss_and_gradients_equal_the_plain_loop(batch, epoch):
    model = _random_model(batch).train()
    plain = _plain(model)
    x = _loops(batch, seed=batch, dtype=torch.float64)
    losses, rng_after = [], []
    for each in (plain, model):
        torch.manual_seed(7)  # the same reparameterisation noise and teacher-forcing coins
        loss, _ = each.training_loss(x, kl_beta=0.5, epoch=epoch)
        loss.backward()
        losses.append(loss.detach())
        rng_after.append(torch.get_rng_state())
    assert torch.equal(rng_after[0], rng_after[1]), "the fused decoder draws random numbers differently"
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-10, atol=1e-8)
    old, new = _grads(plain), _grads(model)
    assert old.keys() == new.keys() and len(new) == len(list(model.parameters()))
    for name in old:
        torch.testing.assert_close(new[name], old[name], rtol=1e-8, atol=1e-8, msg=name)


@pytest.mark.parametrize("batch", [1, 4, 17])
def test_full_sampling_and_teacher_forcing_equal_the_plain_loop(batch):
    model = _random_model(100 + batch).eval()
    plain = _plain(model)
    x = _loops(batch, seed=batch, dtype=torch.float64)
    z = torch.randn(batch, 128, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(batch, LOOP_STEPS) < 0.5
    for args in ((z, None, None), (z, x, mask)):
        old = plain.decode_steps(*args)
        new = model.decode_steps(*args)
        torch.testing.assert_close(new, old, rtol=1e-10, atol=1e-9)
        (g_old,) = torch.autograd.grad(old.square().sum(), z)
        (g_new,) = torch.autograd.grad(new.square().sum(), z)
        torch.testing.assert_close(g_new, g_old, rtol=1e-8, atol=1e-8)
    with torch.no_grad():
        torch.testing.assert_close(
            model.reconstruct_logits(x), plain.reconstruct_logits(x), rtol=1e-10, atol=1e-9
        )


def test_float32_random_weights_agree_to_float32_rounding():
    model = _random_model(3, dtype=torch.float32).eval()
    plain = _plain(model)
    x = _loops(8, seed=3)
    with torch.no_grad():
        old, new = plain.reconstruct_logits(x), model.reconstruct_logits(x)
    assert torch.equal(old >= 0, new >= 0)
    torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-5)


def _shipped_ar_payloads() -> list[dict]:
    entries = [e for e in shipped.read_index().values() if e["name"] == "ar_lstm_vae"]
    return [shipped.load(e["name"], e["key"]) for e in entries]


def test_there_are_shipped_ar_weights_to_check():
    assert _shipped_ar_payloads(), "no shipped AR LSTM-VAE weights: the checks below would check nothing"


@pytest.mark.parametrize("payload", _shipped_ar_payloads(), ids=lambda p: p["key"])
def test_shipped_weights_load_unchanged_and_decode_as_before(payload):
    """Identical in float64; in float32 both are as far from float64 as float32 rounding takes either.

    (A trained 128-step decoder amplifies rounding: on the shipped weights the plain loop's float32 logits differ
    from float64 by up to ~5e-3 at |logit| ~20, the fused ones by about as much, and from each other by ~2e-3; no
    predicted cell changes.)
    """
    model = build("ar_lstm_vae", **payload["config"])
    model.load_state_dict(payload["model"], strict=True)  # the same state-dict keys as before
    model.eval()
    plain = _plain(model)
    exact_new, exact_plain = copy.deepcopy(model).double(), _plain(model).double()
    x = _loops(32, seed=5)
    torch.manual_seed(0)
    z = torch.randn(32, model.latent_size)
    with torch.no_grad():
        for decode, inputs in ((ARLSTMVAE.reconstruct_logits, x), (ARLSTMVAE.decode, z)):
            exact = decode(exact_plain, inputs.double())
            torch.testing.assert_close(decode(exact_new, inputs.double()), exact, rtol=1e-9, atol=1e-9)
            old, new = decode(plain, inputs), decode(model, inputs)
            assert torch.equal(old >= 0, new >= 0)
            float32_error = float((old.double() - exact).abs().max())
            assert float((new.double() - exact).abs().max()) <= 2 * float32_error
            torch.testing.assert_close(new, old, rtol=1e-3, atol=1e-3)


def test_the_decoder_keeps_its_state_dict_keys_and_its_recurrence_has_no_parameters():
    model = build("ar_lstm_vae")
    assert [k for k in model.state_dict() if k.startswith("decoder")] == [
        "decoder.weight_ih_l0",
        "decoder.weight_hh_l0",
        "decoder.bias_ih_l0",
        "decoder.bias_hh_l0",
    ]
    assert list(ScheduledSamplingRecurrence().parameters()) == []


def test_the_fused_recurrence_is_the_default_and_one_flag_selects_the_plain_loop(monkeypatch):
    """``decode_steps`` is the one place the implementation is chosen; training and sampling both go through it."""
    model = _random_model(61, dtype=torch.float32)
    assert model.fused_recurrence is True
    called = []
    for path in ("plain_steps", "fused_steps"):
        real = getattr(model, path)
        monkeypatch.setattr(model, path, lambda *args, path=path, real=real: called.append(path) or real(*args))
    x = _loops(3, seed=61)
    model.train()
    model.training_loss(x, epoch=60.0)
    with torch.no_grad():
        model.eval().decode(torch.randn(3, model.latent_size))
    assert called == ["fused_steps", "fused_steps"]
    model.fused_recurrence = False
    model.train()
    model.training_loss(x, epoch=60.0)
    assert called[-1] == "plain_steps"


@pytest.mark.parametrize("train", [True, False])
def test_bf16_autocast_runs_and_stays_near_float32(train):
    model = _random_model(11, dtype=torch.float32).train(train)
    x = _loops(6, seed=11)
    torch.manual_seed(2)
    with torch.no_grad():
        reference = model.decode_steps(torch.randn(6, 128) * 0.1, x, None)
    torch.manual_seed(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model.decode_steps(torch.randn(6, 128) * 0.1, x, None)
        loss, _ = model.training_loss(x, epoch=30.0)
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits).all()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert (
        model.decoder.weight_hh_l0.grad is not None and model.decoder.weight_hh_l0.grad.dtype == torch.float32
    )
    # bf16 keeps ~3 significant digits; full sampling may flip a few near-zero cells, so compare the first step
    torch.testing.assert_close(logits[:, 0].float(), reference[:, 0], rtol=0.05, atol=0.05)


def _decoder_outputs_and_gradients(
    decoder, model: ARLSTMVAE, z: torch.Tensor, x: torch.Tensor | None, mask: torch.Tensor | None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits of ``decoder(model, z, x, mask)`` and the gradients of a fixed function of them (all parameters, z)."""
    model.zero_grad(set_to_none=True)
    z = z.detach().clone().requires_grad_()
    logits = decoder(model, z, x, mask)
    weights = torch.linspace(-1, 1, logits.shape[-1], dtype=logits.dtype)
    (logits.float().sin() * weights.float()).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    grads["z"] = z.grad.clone()
    return logits.detach(), grads


_FEEDS = {
    "scheduled_sampling": lambda batch: torch.rand(batch, LOOP_STEPS) < 0.5,
    "full_sampling": lambda batch: None,
    "teacher_forced": lambda batch: torch.ones(batch, LOOP_STEPS, dtype=torch.bool),
}


@pytest.mark.parametrize("feed", list(_FEEDS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_logits_and_gradients_of_every_parameter_and_z_equal_the_reference(feed, dtype):
    """The hand-written backward pass gives autograd's gradients through ``nn.LSTM`` step by step, to 1e-5.

    float32 at a latent scale where the untrained decoder does not amplify rounding past that (see the module
    docstring); float64 to 1e-10.
    """
    model = _random_model(21, dtype=dtype).train()
    batch = 6
    x = _loops(batch, seed=21, dtype=dtype)
    torch.manual_seed(4)
    z = 0.3 * torch.randn(batch, model.latent_size, dtype=dtype)
    mask = _FEEDS[feed](batch)
    old_logits, old = _decoder_outputs_and_gradients(ARLSTMVAE.plain_steps, model, z, x, mask)
    new_logits, new = _decoder_outputs_and_gradients(ARLSTMVAE.fused_steps, model, z, x, mask)
    assert torch.equal(old_logits >= 0, new_logits >= 0)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(new_logits, old_logits, rtol=tol, atol=tol)
    decoder_parameters = [n for n, _ in model.named_parameters() if n.startswith(("decoder.", "output."))]
    assert new.keys() == old.keys() == {*decoder_parameters, "z"} and len(decoder_parameters) == 6
    for name in old:  # relative to the gradient's largest entry: sums over 128 steps x 64 loops
        scale = float(old[name].abs().max())
        torch.testing.assert_close(new[name], old[name], rtol=tol, atol=tol * scale, msg=name)


@pytest.mark.parametrize("teacher", [True, False])
def test_the_hand_written_backward_pass_passes_gradcheck(teacher):
    """``torch.autograd.gradcheck`` (float64 finite differences) on a tiny recurrence: 7 steps, 3 loops, H = 2."""
    torch.manual_seed(0)
    steps, batch, hidden, columns = 7, 3, 2, 4
    recurrence = ScheduledSamplingRecurrence()
    latent_gates = torch.randn(batch, 4 * hidden, dtype=torch.float64, requires_grad=True)
    w_cat = torch.randn(4 * hidden, columns + hidden, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(batch, hidden, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(batch, hidden, dtype=torch.float64, requires_grad=True)
    x = torch.rand(batch, steps, columns, dtype=torch.float64).requires_grad_()  # soft teacher: every path counts
    mask = torch.rand(batch, steps) < 0.5 if teacher else None
    w_out = torch.randn(columns, hidden, dtype=torch.float64)
    b_out = 0.3 + torch.zeros(columns, dtype=torch.float64)  # logits away from 0: no prediction flips under eps

    def run(latent_gates, w_cat, h0, c0, x):
        return recurrence(latent_gates, w_cat, h0, c0, x, mask, w_out, b_out, steps)

    assert torch.autograd.gradcheck(run, (latent_gates, w_cat, h0, c0, x), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("feed", list(_FEEDS))
def test_inference_without_autograd_gives_the_training_logits(feed):
    """With autograd off the recurrence keeps only the latest step's gates; the logits do not change."""
    model = _random_model(31, dtype=torch.float32).train()
    x = _loops(4, seed=31)
    torch.manual_seed(1)
    z, mask = torch.randn(4, model.latent_size), _FEEDS[feed](4)
    trained = model.decode_steps(z.requires_grad_(), x, mask)
    assert trained.grad_fn is not None
    with torch.no_grad():
        inferred = model.decode_steps(z, x, mask)
    assert torch.equal(inferred, trained.detach())


def test_training_records_one_autograd_node_for_the_whole_recurrence():
    """The plain loop records a dozen autograd nodes per step (over 1,500 per batch); the fused recurrence records
    the 128 steps as one node, so the graph is the same size whatever the loop length."""
    model = _random_model(41, dtype=torch.float32).train()
    x = _loops(2, seed=41)
    z = torch.randn(2, model.latent_size, requires_grad=True)
    logits = model.decode_steps(z, x, torch.rand(2, LOOP_STEPS) < 0.5)
    seen, stack = set(), [logits.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    assert len(seen) < 40, f"{len(seen)} autograd nodes: the recurrence is recorded step by step again"


@pytest.mark.parametrize("feed", list(_FEEDS))
def test_bf16_autocast_gradients_stay_near_the_float32_reference(feed):
    """Under bf16 autocast the products run in bf16, the cell state and the backward pass's running dh, dc in
    float32: logits and every gradient within bf16's few significant digits of the float32 reference's (teacher
    forced; with the decoder's own predictions only while no predicted cell flips)."""
    model = _random_model(51, dtype=torch.float32).train()
    batch = 6
    x = _loops(batch, seed=51)
    torch.manual_seed(5)
    z = 0.3 * torch.randn(batch, model.latent_size)
    mask = _FEEDS[feed](batch)
    old_logits, old = _decoder_outputs_and_gradients(ARLSTMVAE.plain_steps, model, z, x, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        new_logits, new = _decoder_outputs_and_gradients(ARLSTMVAE.fused_steps, model, z, x, mask)
    assert new_logits.dtype == torch.bfloat16
    assert all(g.dtype == torch.float32 for g in new.values())
    flipped = int(((old_logits >= 0) != (new_logits >= 0)).sum())
    if feed != "teacher_forced" and flipped:
        pytest.skip(f"{flipped} predicted cells flipped under bf16: the two decoders were fed different inputs")
    torch.testing.assert_close(new_logits.float(), old_logits, rtol=0.05, atol=0.05)
    for name in old:  # relative error of the whole gradient, bf16 rounding summed over 128 steps
        error = float((new[name] - old[name]).norm() / old[name].norm().clamp_min(1e-12))
        assert error < 0.05, f"{name}: relative error {error:.3g}"
