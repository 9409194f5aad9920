"""The AR decoder's recurrence made ready for a GPU, proven on a CPU (issue 30, N10).

* Padding: on CUDA the fed-back columns are padded from 93 to 96, so that every matrix product of a step gets
  aligned operands (checked on the meta device, where the unpadded layout's are not); it adds exact zeros (float64
  equal to 1e-12, gradcheck), and the CPU keeps its layout unless asked.
* CUDA graphs: ``cuda_graphs`` (off by default, ignored on a CPU) runs the 128 steps from static buffers; with
  ``capture=False`` the same buffers run eagerly, which must give the eager recurrence's logits and gradients bit
  for bit, and so must the capture path's bookkeeping with a stand-in for CUDA's capture (outputs spoilt at
  capture, recomputed in place at each replay). The capture preconditions: no host sync (the whole path runs on
  the meta device), shapes fixed by the run's key, a backward pass only for the latest forward pass. On a GPU,
  one test captures for real.
* Launches: kernels and views per step, counted on the meta device (the figures docs/gpu.md projects from).
"""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from loopgen import LOOP_STEPS, N_COLUMNS
from loopgen.models import ARLSTMVAE, build
from loopgen.runtime import recurrence
from loopgen.runtime.recurrence import ScheduledSamplingRecurrence, pad_fed_back_columns

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HIDDEN = 128
GEMMS = {"aten.addmm", "aten.addmm_", "aten.mm"}
NO_KERNEL = {"aten.empty", "aten.empty_like", "aten.new_empty"}  # allocations launch nothing


class _OpLog(TorchDispatchMode):
    """Counts the aten operations below autograd (views apart) and keeps the tensor operands of the products."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels: Counter = Counter()
        self.views: Counter = Counter()
        self.gemm_operands: list[tuple[str, torch.Tensor]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.overloadpacket)
        if func.is_view:
            self.views[name] += 1
        elif name not in NO_KERNEL:
            self.kernels[name] += 1
        if name in GEMMS:
            self.gemm_operands += [(name, t) for t in [*args, *kwargs.values()] if isinstance(t, torch.Tensor)]
        return func(*args, **kwargs)


def _operands(batch: int, steps: int, device: str = "meta", dtype=torch.float32, seed: int = 0) -> dict:
    """Random (or, on meta, shape-only) inputs of the recurrence at the model's sizes."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        if device == "meta":
            return torch.empty(*shape, device=device, dtype=dtype)
        return torch.randn(*shape, generator=g, dtype=dtype)

    if device == "meta":
        mask = torch.empty(batch, steps, dtype=torch.bool, device=device)
        x = torch.empty(batch, steps, N_COLUMNS, device=device, dtype=dtype)
    else:
        mask = torch.rand(batch, steps, generator=g) < 0.5
        x = (torch.rand(batch, steps, N_COLUMNS, generator=g) < 0.1).to(dtype)
    return {
        "latent_gates": randn(batch, 4 * HIDDEN),
        "w_cat": 0.2 * randn(4 * HIDDEN, N_COLUMNS + HIDDEN),
        "h0": randn(batch, HIDDEN),
        "c0": randn(batch, HIDDEN),
        "x": x,
        "teacher_mask": mask,
        "w_out": randn(N_COLUMNS, HIDDEN),
        "b_out": randn(N_COLUMNS),
    }


def _logged_steps(steps: int, pad: bool, history: bool = True) -> tuple[_OpLog, _OpLog]:
    """The forward and (with ``history``) backward functions over ``steps`` steps on meta, logged."""
    ops = _operands(64, steps)
    w_cat, x, w_out, b_out = ops["w_cat"], ops["x"], ops["w_out"], ops["b_out"]
    if pad:
        w_cat, x, w_out, b_out = pad_fed_back_columns(w_cat, x, w_out, b_out)
    args = (ops["latent_gates"], w_cat, ops["h0"], ops["c0"], x, ops["teacher_mask"], w_out, b_out)
    with _OpLog() as forward:
        run = recurrence._run_forward(*args, steps, history)
    with _OpLog() as backward:
        if history:
            d_hidden = torch.empty(64, steps, HIDDEN, device="meta")
            recurrence._backward_through_time(d_hidden, run, w_cat, None)
    return forward, backward


def _aligned(t: torch.Tensor) -> bool:
    """Starts at a multiple of 8 elements and steps between rows (or columns) by multiples of 8."""
    steps = [s for s, n in zip(t.stride(), t.shape, strict=True) if s != 1 and n > 1]
    return t.storage_offset() % 8 == 0 and all(s % 8 == 0 for s in steps)


# ----------------------------------------------------------------------------------------------------- padding
def test_padding_is_on_cuda_only_unless_asked():
    rec = ScheduledSamplingRecurrence()
    assert rec.pad_columns is None
    assert rec.pads(torch.device("cuda")) and not rec.pads(torch.device("cpu")) and not rec.pads(torch.device("meta"))
    rec.pad_columns = True
    assert rec.pads(torch.device("cpu"))
    rec.pad_columns = False
    assert not rec.pads(torch.device("cuda"))


def test_padded_steps_give_every_product_aligned_operands_and_the_unpadded_do_not():
    forward, backward = _logged_steps(3, pad=True)
    operands = forward.gemm_operands + backward.gemm_operands
    assert {name for name, _ in operands} == GEMMS
    misaligned = [(name, tuple(t.shape), t.storage_offset(), t.stride()) for name, t in operands if not _aligned(t)]
    assert not misaligned, misaligned
    forward, _ = _logged_steps(3, pad=False)  # the CPU's layout: h_{t-1} starts at column 93 of 221
    assert any(t.storage_offset() == N_COLUMNS for _, t in forward.gemm_operands)
    assert not all(_aligned(t) for _, t in forward.gemm_operands)


def test_the_padding_of_the_fed_back_input_is_exactly_zero_at_every_step():
    ops = _operands(5, 12, device="cpu", dtype=torch.float64, seed=3)
    w_cat, x, w_out, b_out = pad_fed_back_columns(ops["w_cat"], ops["x"], ops["w_out"], ops["b_out"])
    assert w_cat.shape[1] == 96 + HIDDEN and x.shape[-1] == w_out.shape[0] == b_out.shape[0] == 96
    for mask in (ops["teacher_mask"], None):  # teacher-fed and own predictions
        run = recurrence._run_forward(ops["latent_gates"], w_cat, ops["h0"], ops["c0"], x, mask, w_out, b_out, 12, True)
        padding = torch.stack([step[:, N_COLUMNS:96] for step in run["inputs"]])
        assert torch.equal(padding, torch.zeros_like(padding))
    assert torch.equal(w_cat[:, N_COLUMNS:96], torch.zeros(4 * HIDDEN, 3, dtype=torch.float64))


def _random_model(seed: int, dtype=torch.float64) -> ARLSTMVAE:
    torch.manual_seed(seed)
    model = build("ar_lstm_vae", encoder_hidden=32)
    model.init_output_bias(0.05)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "bias" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model.to(dtype).train()


def _loops(batch: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, LOOP_STEPS, N_COLUMNS, generator=g) < 0.05).to(dtype)


def _training_step(model: ARLSTMVAE, x: torch.Tensor, epoch: float, autocast: bool = False) -> list[torch.Tensor]:
    """Loss and every parameter's gradient of one training step (the same noise and coins for every model)."""
    torch.manual_seed(7)
    model.zero_grad(set_to_none=True)
    context = torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)
    with context:
        loss, _ = model.training_loss(x, kl_beta=0.5, epoch=epoch)
    loss.backward()
    return [loss.detach(), *(p.grad for p in model.parameters())]


@pytest.mark.parametrize("epoch", [0.0, 60.0, 400.0])  # teacher forcing p = 0.95, 0.5, ~0
def test_padding_adds_exact_zeros_float64(epoch):
    model = _random_model(5)
    padded = copy.deepcopy(model)
    padded.recurrence.pad_columns = True
    x = _loops(9, seed=5)
    for reference, result in zip(_training_step(model, x, epoch), _training_step(padded, x, epoch), strict=True):
        scale = float(reference.abs().max())
        torch.testing.assert_close(result, reference, rtol=1e-12, atol=1e-12 * scale)
    with torch.no_grad():
        z = torch.randn(4, 128, dtype=torch.float64)
        assert torch.equal(model.decode(z) >= 0, padded.decode(z) >= 0)
        torch.testing.assert_close(padded.decode(z), model.decode(z), rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("teacher", [True, False])
def test_the_padded_recurrence_passes_gradcheck(teacher):
    torch.manual_seed(0)
    steps, batch, hidden, columns = 6, 3, 2, 5  # 5 fed-back columns padded to 8
    rec = ScheduledSamplingRecurrence()
    rec.pad_columns = True
    leaves = [
        torch.randn(batch, 4 * hidden, dtype=torch.float64),
        torch.randn(4 * hidden, columns + hidden, dtype=torch.float64),
        torch.randn(batch, hidden, dtype=torch.float64),
        torch.randn(batch, hidden, dtype=torch.float64),
        torch.rand(batch, steps, columns, dtype=torch.float64),  # a soft teacher: every path counts
    ]
    leaves = [t.requires_grad_() for t in leaves]
    mask = torch.rand(batch, steps) < 0.5 if teacher else None
    w_out = torch.randn(columns, hidden, dtype=torch.float64)
    b_out = 0.3 + torch.zeros(columns, dtype=torch.float64)

    def run(latent_gates, w_cat, h0, c0, x):
        return rec(latent_gates, w_cat, h0, c0, x, mask, w_out, b_out, steps)

    assert torch.autograd.gradcheck(run, tuple(leaves), eps=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------- CUDA graphs
def _static(model: ARLSTMVAE) -> ARLSTMVAE:
    """A copy of ``model`` on the CUDA-graph path, its static buffers run eagerly (what a CPU can run)."""
    static = copy.deepcopy(model)
    static.cuda_graphs = True
    static.recurrence.capture = False
    return static


def test_cuda_graphs_are_off_by_default_and_ignored_on_the_cpu():
    model = _random_model(11, dtype=torch.float32)
    assert model.cuda_graphs is False and "cuda_graphs" not in model.config  # no checkpoint key changes
    reference = _training_step(model, _loops(4, seed=11, dtype=torch.float32), 60.0)
    model.cuda_graphs = True  # capture stays on: a CPU cannot capture, so the flag does nothing here
    assert not model.recurrence.uses_static_runs(torch.device("cpu"), True)
    result = _training_step(model, _loops(4, seed=11, dtype=torch.float32), 60.0)
    assert not model.recurrence._static_runs
    assert all(torch.equal(a, b) for a, b in zip(reference, result, strict=True))
    assert model.recurrence.uses_static_runs(torch.device("cuda"), True)
    assert not model.recurrence.uses_static_runs(torch.device("cuda"), False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("pad", [False, True])
def test_the_static_buffers_give_the_eager_logits_and_gradients_bit_for_bit(dtype, pad):
    """Several training steps in a row on one static run (new data each time, the teacher coins changing with
    the epoch), then inference: every loss, gradient and logit equal to the eager recurrence's."""
    model = _random_model(21, dtype=dtype)
    model.recurrence.pad_columns = pad
    static = _static(model)
    for step, epoch in enumerate((0.0, 60.0, 400.0)):
        x = _loops(6, seed=step, dtype=dtype)
        for reference, result in zip(_training_step(model, x, epoch), _training_step(static, x, epoch), strict=True):
            assert torch.equal(result, reference)
    assert len(static.recurrence._static_runs) == 1  # one shape: one run, reused
    z = torch.randn(6, 128, dtype=dtype)
    with torch.no_grad():
        assert torch.equal(static.decode(z), model.decode(z))
        assert torch.equal(static.reconstruct_logits(x), model.reconstruct_logits(x))
    assert len(static.recurrence._static_runs) == 2  # inference keeps no history: a run of its own


def test_the_static_buffers_equal_the_eager_recurrence_under_bf16_autocast():
    model = _random_model(23, dtype=torch.float32)
    static = _static(model)
    x = _loops(5, seed=23, dtype=torch.float32)
    reference, result = _training_step(model, x, 60.0, autocast=True), _training_step(static, x, 60.0, autocast=True)
    assert all(torch.equal(a, b) for a, b in zip(reference, result, strict=True))


def test_the_static_buffers_pass_the_teacher_gradient_through():
    """With a teacher that requires a gradient (``x``, a soft one here), the static run's backward pass gives it."""
    ops = _operands(4, 9, device="cpu", dtype=torch.float64, seed=9)
    results = []
    for use_static in (False, True):
        rec = ScheduledSamplingRecurrence()
        rec.capture = False
        leaves = {k: ops[k].clone().requires_grad_() for k in ("latent_gates", "w_cat", "h0", "c0")}
        leaves["x"] = torch.rand_like(ops["x"], generator=torch.Generator().manual_seed(1)).requires_grad_()
        hidden = rec(
            leaves["latent_gates"], leaves["w_cat"], leaves["h0"], leaves["c0"], leaves["x"], ops["teacher_mask"],
            ops["w_out"], ops["b_out"], 9, cuda_graphs=use_static,
        )
        hidden.sin().sum().backward()
        results.append([hidden.detach(), *(t.grad for t in leaves.values())])
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))


def test_a_backward_pass_after_a_later_forward_pass_is_refused():
    """A forward pass overwrites the static history; the earlier output's backward pass would read the later
    steps, so it is refused in words instead."""
    static = _static(_random_model(31, dtype=torch.float32))
    z = torch.randn(3, 128, requires_grad=True)
    x = _loops(3, seed=31, dtype=torch.float32)
    mask = torch.rand(3, LOOP_STEPS) < 0.5
    first = static.decode_steps(z, x, mask)
    second = static.decode_steps(z, x, mask)
    with pytest.raises(RuntimeError, match="ran forward again"):
        first.sum().backward()
    second.sum().backward()  # the latest forward pass's backward pass is fine
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_static_runs_are_kept_per_shape_a_few_at_a_time_and_left_behind_by_copies():
    model = _static(_random_model(41, dtype=torch.float32))
    with torch.no_grad():
        for batch in range(2, 3 + recurrence.MAX_STATIC_RUNS):
            model.decode(torch.randn(batch, 128))
        runs = model.recurrence._static_runs
        assert len(runs) == recurrence.MAX_STATIC_RUNS  # the least recently used batch shape was dropped
        assert {run.inputs[0].shape[0] for run in runs.values()} == set(range(3, 3 + recurrence.MAX_STATIC_RUNS))
        for run in runs.values():  # fixed shapes: the static buffers are the key's
            assert all(t is None or t.is_contiguous() for t in run.inputs)
    copied = copy.deepcopy(model)
    assert not copied.recurrence._static_runs and len(model.recurrence._static_runs) == recurrence.MAX_STATIC_RUNS
    assert list(copied.state_dict()) == list(build("ar_lstm_vae", encoder_hidden=32).state_dict())


@pytest.mark.parametrize("teacher", [True, False])
@pytest.mark.parametrize("pad", [True, False])
def test_the_captured_functions_never_wait_for_the_device(teacher, pad):
    """The whole static path, training and inference, at the paper's batch, on the meta device: a host sync (a
    ``.item()``, a ``bool`` of a tensor, a ``nonzero``) or a shape read from the data would fail there."""
    with pytest.raises((RuntimeError, NotImplementedError)):
        bool(torch.empty((), device="meta"))  # what a sync does on meta
    ops = _operands(2048, LOOP_STEPS)
    rec = ScheduledSamplingRecurrence()
    rec.capture, rec.pad_columns = False, pad
    leaves = {k: ops[k].requires_grad_() for k in ("latent_gates", "w_cat", "h0", "c0")}
    mask = ops["teacher_mask"] if teacher else None
    args = (*leaves.values(), ops["x"], mask, ops["w_out"], ops["b_out"], LOOP_STEPS)
    hidden = rec(*args, cuda_graphs=True)
    assert hidden.shape == (2048, LOOP_STEPS, HIDDEN) and hidden.device.type == "meta"
    hidden.sum().backward()
    assert all(leaf.grad.shape == leaf.shape for leaf in leaves.values())
    with torch.no_grad():
        assert rec(*args, cuda_graphs=True).shape == hidden.shape
    assert len(rec._static_runs) == 2


class _StandInGraph:
    """What a CPU can do of a CUDA graph: ``body`` run once at "capture" for its output tensors, which are then
    spoilt (a capture computes nothing), and each replay writes a fresh run's results into them (a replay
    overwrites its static outputs in place)."""

    captures = 0

    def __init__(self, body) -> None:
        self.body, self.outputs, self.replays = body, body(), 0
        for tensor in tree_flatten(self.outputs)[0]:
            if tensor is not None and tensor.is_floating_point():
                tensor.fill_(float("nan"))
        _StandInGraph.captures += 1

    def replay(self) -> None:
        fresh, _ = tree_flatten(self.body())
        static, _ = tree_flatten(self.outputs)
        for old, new in zip(static, fresh, strict=True):
            if old is not None:
                old.copy_(new)
        self.replays += 1


def _stand_in_capture(body, warmups: int = 2):
    graph = _StandInGraph(body)
    return graph, graph.outputs


def test_the_capture_bookkeeping_with_a_stand_in_graph(monkeypatch):
    """The capture path's own logic (capture once per shape, the backward graph readied by the forward pass,
    replays into static outputs, copies out) with a stand-in for CUDA's capture: bit for bit the eager results."""
    monkeypatch.setattr(recurrence, "_captured", _stand_in_capture)
    monkeypatch.setattr(ScheduledSamplingRecurrence, "uses_static_runs", lambda self, device, cuda_graphs: cuda_graphs)
    _StandInGraph.captures = 0
    model = _random_model(25, dtype=torch.float32)
    graphed = copy.deepcopy(model)
    graphed.cuda_graphs = True
    assert graphed.recurrence.capture is True
    for step, epoch in enumerate((0.0, 60.0, 400.0, 60.0)):
        x = _loops(5, seed=step, dtype=torch.float32)
        for reference, result in zip(_training_step(model, x, epoch), _training_step(graphed, x, epoch), strict=True):
            assert torch.equal(result, reference)
    (run,) = graphed.recurrence._static_runs.values()
    assert _StandInGraph.captures == 2 and run.forward_graph.replays == 4  # one forward, one backward graph
    assert list(run.backward_runs) == [False] and run.backward_runs[False]["graph"].replays == 4
    with torch.no_grad():
        z = torch.randn(5, 128)
        assert torch.equal(graphed.decode(z), model.decode(z))
    assert _StandInGraph.captures == 3  # inference: a forward graph of its own, no backward graph


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (capture and replay)")
def test_captured_graphs_give_the_eager_results_on_a_gpu():
    model = _random_model(51, dtype=torch.float32).cuda()
    graphed = copy.deepcopy(model)
    graphed.cuda_graphs = True
    for step in range(3):  # capture on the first, replays after
        x = _loops(64, seed=step, dtype=torch.float32).cuda()
        for reference, result in zip(_training_step(model, x, 60.0), _training_step(graphed, x, 60.0), strict=True):
            torch.testing.assert_close(result, reference, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        z = torch.randn(64, 128, device="cuda")
        torch.testing.assert_close(graphed.decode(z), model.decode(z), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------------- launches
def _per_step(small: Counter, large: Counter, steps: int) -> float:
    return (sum(large.values()) - sum(small.values())) / steps


def test_kernels_and_views_per_step():
    """18 kernels and 9 views per training step forward (19 and 20 before), 8 kernels and 3 views backward (8 and
    7), 10 kernels forward at inference: the counts docs/gpu.md projects the GPU's per-step time from."""
    forward_5, backward_5 = _logged_steps(5, pad=True)
    forward_9, backward_9 = _logged_steps(9, pad=True)
    assert _per_step(forward_5.kernels, forward_9.kernels, 4) == 18
    assert _per_step(forward_5.views, forward_9.views, 4) == 9
    assert _per_step(backward_5.kernels, backward_9.kernels, 4) == 8
    assert _per_step(backward_5.views, backward_9.views, 4) == 3
    inference_5, _ = _logged_steps(5, pad=True, history=False)
    inference_9, _ = _logged_steps(9, pad=True, history=False)
    assert _per_step(inference_5.kernels, inference_9.kernels, 4) == 10
    per_step = forward_9.kernels - forward_5.kernels
    assert per_step["aten.addmm"] == 2 * 4  # the logits and the gates: two products forward ...
    assert (backward_9.kernels - backward_5.kernels)["aten.mm"] + (backward_9.kernels - backward_5.kernels)[
        "aten.addmm_"
    ] == 2 * 4  # ... and two backward (dh_{t-1}, the weight gradient)
