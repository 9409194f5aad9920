"""The AR LSTM-VAE's decoder recurrence with a hand-written backward pass (one autograd node for 128 steps).

The decoder is a one-layer LSTM whose input at step t is ``concat(previous_t, z)``, where ``previous_t`` is the
previous step of the target loop (teacher forcing) or the decoder's own previous prediction (``logit >= 0``),
coin by coin (scheduled sampling). Splitting the input weights ``W_ih = [W_prev | W_z]``, step t computes

    pre_t = latent_gates + previous_t W_prev^T + h_{t-1} W_hh^T      latent_gates = z W_z^T + b_ih + b_hh
    i, f, o = sigmoid(pre_t[i], pre_t[f], pre_t[o]);  g = tanh(pre_t[g])     (PyTorch's gate order i, f, g, o)
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t);  h_0 = c_0 = z

``latent_gates`` is the same at every step and is computed once, outside, by ordinary autograd.

**Why a hand-written backward pass.** Left to autograd, each of the 128 steps records a dozen small operations
(matrix products, slices, sigmoids, products), and the backward pass replays them one by one: at batch 64 the
bookkeeping is a good share of the cost. But the only paths a gradient takes through time are ``h`` and
``c``: ``previous_t`` is data (the target) or a thresholded prediction, and neither carries a gradient.
So the forward pass here runs with autograd off and keeps, per step, only what the backward pass needs: the
step's input ``[previous_t | h_{t-1}]``, the forget gate f, and the local derivatives of the gate
pre-activations (below), computed while the step's numbers are at hand. One matrix product per step gives both
shares of the gates, ``[previous_t | h_{t-1}] [W_prev | W_hh]^T``.
The backward pass then walks the steps backwards, t = T-1 .. 0, with a handful of operations each; given
``dh_t`` (from the logits at step t plus from step t+1) and ``dc_t`` (from step t+1):

    dc_t   += dh_t * o * (1 - tanh(c_t)^2)
    dpre_t  = [dc_t * g * i(1-i),  dc_t * c_{t-1} * f(1-f),  dc_t * i * (1-g^2),  dh_t * tanh(c_t) * o(1-o)]
    dh_{t-1} += dpre_t W_hh;   dc_{t-1} = dc_t * f
    [dW_prev | dW_hh] += dpre_t^T [previous_t | h_{t-1}];   d latent_gates += dpre_t

``d latent_gates`` goes on through ordinary autograd into ``W_z``, the biases and z; ``dh_0`` and ``dc_0``
flow into z too (``h_0 = c_0 = z``). The gradients are the same as autograd's through ``nn.LSTM`` step by step
(tests/test_ar_decoder.py checks them against the plain loop ``ARLSTMVAE.plain_steps`` and with
``torch.autograd.gradcheck``). What it saves on a CPU is measured by ``benchmarks/ar_decoder_speed.py``
(docs/gpu.md quotes it).

**Precision.** The caller hands the matrices in the dtype the products should run in (bf16 under bf16 autocast)
and the initial cell state in its own (float32 under autocast): as with ``nn.LSTM`` under autocast, the matrix
products and the gates run in the autocast dtype; here the cell state, and the backward pass's running
``dh``/``dc``, stay in float32.

**On a GPU: aligned operands.** A step's input ``[previous_t | h_{t-1}]`` is sliced at column P = 93 (where h
starts), which puts ``h_{t-1}`` at byte 372 of each 884-byte row: no GEMM operand of the step is 16-byte aligned.
On CUDA (``pad_columns``, default: CUDA only) the fed-back part is padded to a multiple of 8 columns
(:func:`pad_fed_back_columns`): ``[previous_t | 0 0 0 | h_{t-1}]`` (224 columns, h at column 96), the matching
columns of ``W_cat`` zero, ``x`` padded with zero columns and the logits with three that are always -1, so that
the fed-back padding is exactly 0 at every step. The products gain only exact zeros; the CPU keeps its layout
(and its results, bit for bit).

**CUDA graphs (opt-in).** Eager, each step costs the host about 19 kernel launches forward and 8 backward, which
on a GPU take longer than the kernels themselves at the paper's batch. ``cuda_graphs=True`` runs the 128 steps
from static buffers (:class:`_StaticRun`): the same :func:`_run_forward` and :func:`_backward_through_time`, captured
once per shape as one CUDA graph each and replayed (a handful of launches per training step). Off by default and
ignored off CUDA; ``capture=False`` runs the static buffers eagerly instead of capturing them, which is how the
CPU tests prove the path equal to the eager one.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

GEMM_ALIGNMENT = 8  # columns: 32 bytes in float32, 16 in bf16; where a step's h starts and how wide its input is
MAX_STATIC_RUNS = 4  # shapes kept captured at once (training batch, an epoch's last batch, validation, sampling)


def _without_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast off for the recurrence's own arithmetic (nothing to turn off on the meta device, which the
    tests use to show that the steps never wait for the device)."""
    return contextlib.nullcontext() if device.type == "meta" else torch.autocast(device.type, enabled=False)


def pad_fed_back_columns(
    w_cat: torch.Tensor,
    x: torch.Tensor | None,
    w_out: torch.Tensor,
    b_out: torch.Tensor,
    multiple: int = GEMM_ALIGNMENT,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """The fed-back columns P padded to a multiple of ``multiple``, so that h starts at an aligned column.

    ``[W_prev | W_hh]`` becomes ``[W_prev | 0 | W_hh]``, ``x`` gets zero columns, and the logits that decide the
    own predictions get rows whose logit is always -1 (zero weights, bias -1): the padding of ``previous_t`` is
    then exactly 0 at every step, teacher-fed or not, and adds exact zeros to the products. Through autograd, so
    the gradients of ``w_cat`` and ``x`` come back without the padding.
    """
    columns = w_out.shape[0]
    extra = -columns % multiple
    if extra == 0:
        return w_cat, x, w_out, b_out
    w_prev, w_hh = w_cat.split([columns, w_cat.shape[1] - columns], dim=1)
    w_cat = torch.cat([w_prev, w_prev.new_zeros(w_prev.shape[0], extra), w_hh], dim=1)
    x = None if x is None else F.pad(x, (0, extra))
    return w_cat, x, F.pad(w_out, (0, 0, 0, extra)), F.pad(b_out, (0, extra), value=-1.0)


def _run_forward(
    latent_gates: torch.Tensor,
    w_cat: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    x: torch.Tensor | None,
    teacher_mask: torch.Tensor | None,
    w_out: torch.Tensor,
    b_out: torch.Tensor,
    steps: int,
    keep_history: bool,
) -> dict:
    """The ``steps`` steps without autograd.

    ``w_cat = [W_prev | W_hh]`` (4H, P + H), so that one matrix product per step gives both shares of the gates:
    ``inputs[t] = [previous_t | h_{t-1}]`` (batch, P + H). Returns ``hidden`` (batch, steps, H: h_1 .. h_T) and,
    with ``keep_history``, per step what the backward pass needs: ``inputs``, ``forget`` (the f gates),
    ``local`` (batch, 4, H: what d c_t, or d h_t for o, is multiplied by to give d pre_t of each gate, see the
    module docstring) and ``dc_from_dh`` (``o * (1 - tanh(c_t)^2)``), computed here while each step's numbers
    are at hand. Each step's tensors are small ones of their own, not slices of tensors over all 128 steps:
    the memory allocator recycles small blocks from one training step to the next, whereas several large ones
    are handed back to the operating system and cost page faults on every step.

    Step t keeps ``c_{t-1}`` and ``tanh(c_t)`` side by side in one (batch, 2, H) tensor, so that the f and o gates'
    factors take one product instead of two; the views a step needs are taken once (``split``, ``unbind``), not
    one by one. Neither changes a number: every element goes through the same operations as before.
    """
    batch, hidden_size = h0.shape
    columns = w_cat.shape[1] - hidden_size
    one = c0.new_ones(())
    w_cat_t, w_out_t = w_cat.t(), w_out.t()
    teacher_steps = x_steps = None
    if x is not None and teacher_mask is not None:
        teacher_steps, x_steps = teacher_mask.unsqueeze(-1).unbind(1), x.unbind(1)
    pre = torch.empty_like(latent_gates)
    gate_pre = pre.view(batch, 4, hidden_size)
    g_pre = gate_pre[:, 2]
    cells = c0.new_empty(batch, 2, hidden_size)  # [c_{t-1} | tanh(c_t)] of step t
    cells[:, 0] = c0
    step_input = h0.new_zeros(batch, columns + hidden_size)  # previous_0 = x_{-1} = 0
    step_input[:, columns:] = h0
    inputs, forget, local, dc_from_dh = [], [], [], []
    for t in range(steps):
        previous, h_prev = step_input.split([columns, hidden_size], dim=1)
        if t > 0:  # the input: the previous target step or the own previous prediction (no gradient either way)
            torch.ge(torch.addmm(b_out, h_prev, w_out_t), 0, out=previous)
            if teacher_steps is not None:
                torch.where(teacher_steps[t], x_steps[t - 1], previous, out=previous)
        torch.addmm(latent_gates, step_input, w_cat_t, out=pre)  # [previous_t | h_{t-1}] [W_prev | W_hh]^T
        act = torch.sigmoid(gate_pre)  # i, f, o (and g, overwritten next)
        i, f, g, o = act.unbind(1)
        torch.tanh(g_pre, out=g)
        next_cells = c0.new_empty(batch, 2, hidden_size)
        c_prev, tanh_c = cells.unbind(1)
        c = next_cells[:, 0]
        torch.mul(f, c_prev, out=c)
        c.addcmul_(i, g)  # c_t = f * c_{t-1} + i * g
        torch.tanh(c, out=tanh_c)
        inputs.append(step_input)
        step_input = h0.new_empty(batch, columns + hidden_size)
        torch.mul(o, tanh_c, out=step_input[:, columns:])  # h_t = o * tanh(c_t), into the next step's input
        if keep_history:
            a = act.to(c.dtype)  # the gates in the cell state's dtype (the same tensor unless under autocast)
            a_i, a_f, a_g, _ = a.unbind(1)
            d = torch.rsub(a, 1).mul_(a)  # sigmoid' = s (1 - s), as autograd computes it ...
            d_i, _, d_g, _ = d.unbind(1)
            torch.addcmul(one, a_g, a_g, value=-1, out=d_g)  # ... tanh' = 1 - g^2
            d_i.mul_(a_g)  # times each product's other factor: i * g, f * c_{t-1}, i * g, o * tanh(c_t)
            d_g.mul_(a_i)
            d[:, 1::2].mul_(cells)  # f and o at once: [c_{t-1} | tanh(c_t)]
            local.append(d)
            forget.append(a_f)
            dc_from_dh.append(torch.addcmul(one, tanh_c, tanh_c, value=-1).mul_(o))
        cells = next_cells
    inputs.append(step_input)  # holds only h_T
    hidden = torch.stack([step[:, columns:] for step in inputs[1:]], dim=1)
    history = {"inputs": inputs[:steps], "forget": forget, "local": local, "dc_from_dh": dc_from_dh}
    return {"hidden": hidden, **(history if keep_history else {})}


class _Recurrence(torch.autograd.Function):
    """The whole recurrence as one autograd node; see the module docstring for the backward pass."""

    @staticmethod
    def forward(ctx, latent_gates, w_cat, h0, c0, x, teacher_mask, w_out, b_out, steps):
        with _without_autocast(latent_gates.device):
            run = _run_forward(latent_gates, w_cat, h0, c0, x, teacher_mask, w_out, b_out, steps, True)
        # saved like any tensors (so freed after the backward pass): w_cat, the mask, then the four per-step lists
        ctx.save_for_backward(w_cat, teacher_mask, *run["inputs"], *run["forget"], *run["local"], *run["dc_from_dh"])
        ctx.steps = steps
        ctx.dtypes = (latent_gates.dtype, h0.dtype, c0.dtype)
        ctx.teacher = x is not None and teacher_mask is not None
        return run["hidden"]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_hidden):
        w_cat, teacher_mask, *per_step = ctx.saved_tensors
        history = dict(zip(("inputs", "forget", "local", "dc_from_dh"), _chunks(per_step, ctx.steps), strict=True))
        latent_dtype, h_dtype, c_dtype = ctx.dtypes
        need_x = ctx.needs_input_grad[4] and ctx.teacher  # only a teacher-fed step passes a gradient to x
        with _without_autocast(d_hidden.device):
            d_latent, d_w_cat, dh0, dc0, d_x = _backward_through_time(
                d_hidden, history, w_cat, teacher_mask if need_x else None
            )
        return d_latent.to(latent_dtype), d_w_cat, dh0.to(h_dtype), dc0.to(c_dtype), d_x, None, None, None, None


def _run_key(inputs: tuple, steps: int, keep_history: bool) -> tuple:
    """What a static run is captured for: shapes, dtypes, device, steps, history or not, and the matmul switches
    (a captured product keeps the TF32 / reduced-precision choice it was captured with)."""
    shapes = tuple(None if t is None else (tuple(t.shape), t.dtype, t.device) for t in inputs)
    matmul = torch.backends.cuda.matmul
    return shapes, steps, keep_history, matmul.allow_tf32, matmul.allow_bf16_reduced_precision_reduction


def _captured(body: Callable[[], object], warmups: int = 2) -> tuple[torch.cuda.CUDAGraph, object]:
    """``body`` captured as a CUDA graph after ``warmups`` eager runs on a side stream (cuBLAS handles and
    workspaces, allocator blocks), and the tensors it returned: the graph's static outputs, which every replay
    overwrites. Capture runs nothing: replay the graph to compute them."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmups):
            body()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        outputs = body()
    return graph, outputs


class _StaticRun:
    """The recurrence for one :func:`_run_key` on static buffers: inputs copied in, :func:`_run_forward` (and, for
    training, :func:`_backward_through_time`) run on them, outputs copied out.

    With ``capture`` (CUDA) each of the two is captured once as a CUDA graph and then only replayed: a training
    step launches the copies and two graphs instead of some 3,000 kernels. Without it (``capture=False``, the CPU
    tests) the same two functions run eagerly on the same buffers, so the CPU proves the path equal to the eager
    one. The capture preconditions hold by construction: the shapes are the key's, both functions make no host
    sync (tests run them on the meta device) and allocate nothing whose size depends on the data.

    A forward pass overwrites the history the backward pass reads: a backward pass after a later forward pass of
    the same run is refused (``generation``) rather than given the wrong steps.
    """

    def __init__(self, inputs: tuple, steps: int, keep_history: bool, capture: bool) -> None:
        self.inputs = tuple(
            None if t is None else torch.empty_like(t, memory_format=torch.contiguous_format) for t in inputs
        )
        self.steps, self.keep_history, self.capture = steps, keep_history, capture
        self.forward_graph: torch.cuda.CUDAGraph | None = None
        self.outputs: dict = {}
        self.backward_runs: dict[bool, dict] = {}  # need_x -> d_hidden buffer, function, graph, outputs
        self.generation = 0

    def _forward_body(self) -> dict:
        with _without_autocast(self.inputs[0].device):
            return _run_forward(*self.inputs, self.steps, self.keep_history)

    def forward(self, inputs: tuple, need_x: bool | None = None) -> torch.Tensor:
        """h_1 .. h_T for ``inputs`` (the :class:`ScheduledSamplingRecurrence` arguments before ``steps``).
        ``need_x`` (training: whether the backward pass gives the teacher a gradient) also readies the backward
        pass's graph, captured here on the caller's thread rather than later in autograd's."""
        for static, given in zip(self.inputs, inputs, strict=True):
            if static is not None:
                static.copy_(given)
        if not self.capture:
            self.outputs = self._forward_body()
        else:
            if self.forward_graph is None:
                self.forward_graph, self.outputs = _captured(self._forward_body)
            self.forward_graph.replay()
        if need_x is not None:
            self._backward_run(need_x)
        self.generation += 1
        return self.outputs["hidden"].clone()

    def _backward_run(self, need_x: bool) -> dict:
        """The backward pass's input buffer, function and (with ``capture``) graph for ``need_x``, made once."""
        if need_x not in self.backward_runs:
            d_hidden = torch.zeros_like(self.outputs["hidden"], memory_format=torch.contiguous_format)
            w_cat, teacher_mask = self.inputs[1], self.inputs[5] if need_x else None

            def body() -> tuple:
                history = {k: self.outputs[k] for k in ("inputs", "forget", "local", "dc_from_dh")}
                with _without_autocast(d_hidden.device):
                    return _backward_through_time(d_hidden, history, w_cat, teacher_mask)

            graph, outputs = _captured(body) if self.capture else (None, None)
            self.backward_runs[need_x] = {"d_hidden": d_hidden, "body": body, "graph": graph, "outputs": outputs}
        return self.backward_runs[need_x]

    def backward(self, d_hidden: torch.Tensor, need_x: bool) -> tuple:
        """:func:`_backward_through_time` of the latest forward pass, copied out of the static buffers."""
        run = self._backward_run(need_x)
        run["d_hidden"].copy_(d_hidden)
        if run["graph"] is None:
            outputs = run["body"]()
        else:
            run["graph"].replay()
            outputs = run["outputs"]
        return tuple(None if t is None else t.clone() for t in outputs)


class _ReplayedRecurrence(torch.autograd.Function):
    """:class:`_Recurrence` on a :class:`_StaticRun`: the same forward and backward functions, from static buffers."""

    @staticmethod
    def forward(ctx, run, latent_gates, w_cat, h0, c0, x, teacher_mask, w_out, b_out):
        ctx.need_x = ctx.needs_input_grad[5] and x is not None and teacher_mask is not None
        hidden = run.forward((latent_gates, w_cat, h0, c0, x, teacher_mask, w_out, b_out), ctx.need_x)
        ctx.run, ctx.generation = run, run.generation
        ctx.dtypes = (latent_gates.dtype, h0.dtype, c0.dtype)
        return hidden

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_hidden):
        if ctx.generation != ctx.run.generation:
            raise RuntimeError(
                "the AR decoder's CUDA-graph recurrence ran forward again before this backward pass, overwriting "
                "the steps it needs: call backward after each forward pass, or turn cuda_graphs off"
            )
        latent_dtype, h_dtype, c_dtype = ctx.dtypes
        d_latent, d_w_cat, dh0, dc0, d_x = ctx.run.backward(d_hidden, ctx.need_x)
        grads = (d_latent.to(latent_dtype), d_w_cat, dh0.to(h_dtype), dc0.to(c_dtype), d_x)
        return None, *grads, None, None, None


def _chunks(items: list, size: int) -> list[list]:
    return [items[k : k + size] for k in range(0, len(items), size)]


def _backward_through_time(
    d_hidden: torch.Tensor, history: dict, w_cat: torch.Tensor, teacher_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Gradients of ``latent_gates``, ``w_cat``, h_0, c_0 and (given ``teacher_mask``) the teacher x.

    ``d_hidden[:, t]`` is the gradient arriving at h_{t+1} from outside (the logits); the loop adds what flows
    back from the later steps, and sums each step's share of the weight gradient ``dpre_t^T [previous_t |
    h_{t-1}]`` (kept transposed, the faster product) and of ``d latent_gates`` as it goes, in the cell state's
    dtype (float32 under autocast).
    """
    inputs, forget, local, dc_from_dh = (history[k] for k in ("inputs", "forget", "local", "dc_from_dh"))
    steps = len(inputs)
    batch, width = inputs[0].shape
    hidden_size = forget[0].shape[-1]
    columns = width - hidden_size
    w_prev, w_hh = w_cat[:, :columns], w_cat[:, columns:]
    acc = local[0].dtype  # float32 (or float64): running dh and dc, summed gradients
    d_pre = torch.empty(batch, 4, hidden_size, dtype=w_cat.dtype, device=w_cat.device)
    flat = d_pre.view(batch, 4 * hidden_size)
    d_w_cat_t = torch.zeros(width, 4 * hidden_size, dtype=acc, device=w_cat.device)
    d_latent = torch.zeros(batch, 4 * hidden_size, dtype=acc, device=w_cat.device)
    d_x = None if teacher_mask is None else torch.zeros(batch, steps, columns, dtype=w_cat.dtype, device=w_cat.device)
    dh = torch.empty(batch, hidden_size, dtype=acc, device=w_cat.device)
    dc = torch.zeros_like(dh)
    # the views the loop needs, taken once
    d_pre_ifg, d_pre_o, dc_per_gate = d_pre[:, :3], d_pre[:, 3], dc.unsqueeze(1)
    d_hidden_steps = d_hidden.unbind(1)
    d_x_steps = None if d_x is None else d_x.unbind(1)
    teacher_steps = None if teacher_mask is None else teacher_mask.unsqueeze(-1).unbind(1)
    dh_back = None  # the gradient flowing back into h_t from step t+1: dpre_{t+1} W_hh
    for t in range(steps - 1, -1, -1):
        if dh_back is None:
            dh.copy_(d_hidden_steps[t])
        else:
            torch.add(d_hidden_steps[t], dh_back, out=dh)
        dc.addcmul_(dh, dc_from_dh[t])  # dc_t
        local_ifg, local_o = local[t].split([3, 1], dim=1)
        torch.mul(local_ifg, dc_per_gate, out=d_pre_ifg)  # d pre for i, f, g
        torch.mul(local_o.squeeze(1), dh, out=d_pre_o)  # d pre for o
        dh_back = flat.mm(w_hh)
        if acc == w_cat.dtype:
            d_w_cat_t.addmm_(inputs[t].t(), flat)
        else:  # a bf16 product per step, summed in float32
            d_w_cat_t.add_(inputs[t].t().mm(flat))
        d_latent.add_(flat)
        if d_x_steps is not None and t > 0:
            torch.mul(flat.mm(w_prev), teacher_steps[t], out=d_x_steps[t - 1])
        dc.mul_(forget[t])  # the share of dc_{t-1} that flows through c
    return d_latent, d_w_cat_t.t().to(w_cat.dtype), dh_back, dc, d_x


class ScheduledSamplingRecurrence(nn.Module):
    """The AR decoder's 128 LSTM steps with their inputs chosen step by step; no parameters of its own.

    ``forward`` takes the pieces of the decoder's ``nn.LSTM`` weights and returns the hidden states h_1 .. h_T,
    (batch, T, H); see the module docstring. With autograd on (training), it runs as one autograd node with
    the hand-written backward pass; with autograd off (inference) it keeps nothing for a backward pass.

    Settings (plain attributes: no state-dict entries, no checkpoint keys): ``pad_columns`` (None: pad the
    fed-back columns to a multiple of 8 on CUDA only, :func:`pad_fed_back_columns`; True or False: everywhere or
    nowhere) and ``capture`` (True: ``cuda_graphs`` captures CUDA graphs on CUDA and is ignored elsewhere; False:
    it runs the static buffers eagerly on any device, the tests' stand-in for a replay).
    """

    def __init__(self) -> None:
        super().__init__()
        self.pad_columns: bool | None = None
        self.capture = True
        self._static_runs: OrderedDict[tuple, _StaticRun] = OrderedDict()

    def __getstate__(self) -> dict:
        """Copies and pickles leave the captured runs behind (CUDA graphs cannot be copied; a copy captures its own)."""
        state = dict(self.__dict__)
        state["_static_runs"] = OrderedDict()
        return state

    def pads(self, device: torch.device) -> bool:
        """Whether the fed-back columns are padded on ``device`` (see ``pad_columns``)."""
        return torch.device(device).type == "cuda" if self.pad_columns is None else self.pad_columns

    def uses_static_runs(self, device: torch.device, cuda_graphs: bool) -> bool:
        """Whether ``cuda_graphs`` takes effect on ``device``: on CUDA, or anywhere without ``capture``."""
        return cuda_graphs and (torch.device(device).type == "cuda" or not self.capture)

    def static_run(self, inputs: tuple, steps: int, keep_history: bool) -> _StaticRun:
        """The :class:`_StaticRun` for these inputs' shapes (made on first use; the least recently used of more
        than :data:`MAX_STATIC_RUNS` is dropped, with its graphs and buffers)."""
        key = _run_key(inputs, steps, keep_history)
        if key not in self._static_runs:
            self._static_runs[key] = _StaticRun(inputs, steps, keep_history, self.capture)
            while len(self._static_runs) > MAX_STATIC_RUNS:
                self._static_runs.popitem(last=False)
        self._static_runs.move_to_end(key)
        return self._static_runs[key]

    def forward(
        self,
        latent_gates: torch.Tensor,
        w_cat: torch.Tensor,
        h0: torch.Tensor,
        c0: torch.Tensor,
        x: torch.Tensor | None,
        teacher_mask: torch.Tensor | None,
        w_out: torch.Tensor,
        b_out: torch.Tensor,
        steps: int,
        cuda_graphs: bool = False,
    ) -> torch.Tensor:
        """``latent_gates`` (batch, 4H), ``w_cat = [W_prev | W_hh]`` (4H, P + H) and ``h0`` (batch, H) in the
        products' dtype; ``c0`` (batch, H) in the cell state's; ``x`` (batch, T, P) the teacher and
        ``teacher_mask`` (batch, T, bool) where step t is fed ``x[:, t-1]`` (either None: always the own
        prediction); ``w_out`` (P, H) and ``b_out`` (P) give the logits that decide the own predictions (no
        gradient flows to them). ``cuda_graphs``: replay the steps as CUDA graphs (on CUDA; see the class)."""
        w_out, b_out = w_out.detach(), b_out.detach()
        if self.pads(latent_gates.device):
            w_cat, x, w_out, b_out = pad_fed_back_columns(w_cat, x, w_out, b_out)
        training = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (latent_gates, w_cat, h0, c0, x)
        )
        inputs = (latent_gates, w_cat, h0, c0, x, teacher_mask, w_out, b_out)
        if self.uses_static_runs(latent_gates.device, cuda_graphs):
            run = self.static_run(inputs, steps, keep_history=training)
            if training:
                return _ReplayedRecurrence.apply(run, *inputs)
            with torch.no_grad():
                return run.forward(inputs)
        if training:
            return _Recurrence.apply(*inputs, steps)
        with torch.no_grad(), _without_autocast(latent_gates.device):
            return _run_forward(*inputs, steps, False)["hidden"]
