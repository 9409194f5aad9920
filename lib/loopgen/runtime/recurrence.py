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
"""

from __future__ import annotations

import torch
from torch import nn


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
    """
    batch, hidden_size = h0.shape
    columns = w_cat.shape[1] - hidden_size
    one = c0.new_ones(())
    w_cat_t, w_out_t = w_cat.t(), w_out.t()
    teacher = None if x is None or teacher_mask is None else teacher_mask.unsqueeze(-1)
    pre = torch.empty_like(latent_gates)
    tanh_c = torch.empty_like(c0)
    c = c0.clone()
    step_input = h0.new_zeros(batch, columns + hidden_size)  # previous_0 = x_{-1} = 0
    step_input[:, columns:] = h0
    inputs, forget, local, dc_from_dh = [], [], [], []
    for t in range(steps):
        h_prev, previous = step_input[:, columns:], step_input[:, :columns]
        if t > 0:  # the input: the previous target step or the own previous prediction (no gradient either way)
            torch.ge(torch.addmm(b_out, h_prev, w_out_t), 0, out=previous)
            if teacher is not None:
                torch.where(teacher[:, t], x[:, t - 1], previous, out=previous)
        torch.addmm(latent_gates, step_input, w_cat_t, out=pre)  # [previous_t | h_{t-1}] [W_prev | W_hh]^T
        act = torch.sigmoid(pre.view(batch, 4, hidden_size))  # i, f, o (and g, overwritten next)
        torch.tanh(pre[:, 2 * hidden_size : 3 * hidden_size], out=act[:, 2])
        i, f, g, o = act.unbind(1)
        c_prev, c = c, torch.mul(f, c)
        c.addcmul_(i, g)  # c_t = f * c_{t-1} + i * g
        torch.tanh(c, out=tanh_c)
        inputs.append(step_input)
        step_input = h0.new_empty(batch, columns + hidden_size)
        torch.mul(o, tanh_c, out=step_input[:, columns:])  # h_t = o * tanh(c_t), into the next step's input
        if keep_history:
            a = act.to(c.dtype)  # the gates in the cell state's dtype (the same tensor unless under autocast)
            d = torch.rsub(a, 1).mul_(a)  # sigmoid' = s (1 - s), as autograd computes it ...
            torch.addcmul(one, a[:, 2], a[:, 2], value=-1, out=d[:, 2])  # ... tanh' = 1 - g^2
            d[:, 0].mul_(a[:, 2])  # times each product's other factor: i * g, f * c_{t-1}, i * g, o * tanh(c_t)
            d[:, 1].mul_(c_prev)
            d[:, 2].mul_(a[:, 0])
            d[:, 3].mul_(tanh_c)
            local.append(d)
            forget.append(a[:, 1])
            dc_from_dh.append(torch.addcmul(one, tanh_c, tanh_c, value=-1).mul_(o))
    inputs.append(step_input)  # holds only h_T
    hidden = torch.stack([step[:, columns:] for step in inputs[1:]], dim=1)
    history = {"inputs": inputs[:steps], "forget": forget, "local": local, "dc_from_dh": dc_from_dh}
    return {"hidden": hidden, **(history if keep_history else {})}


class _Recurrence(torch.autograd.Function):
    """The whole recurrence as one autograd node; see the module docstring for the backward pass."""

    @staticmethod
    def forward(ctx, latent_gates, w_cat, h0, c0, x, teacher_mask, w_out, b_out, steps):
        with torch.autocast(latent_gates.device.type, enabled=False):
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
        with torch.autocast(d_hidden.device.type, enabled=False):
            d_latent, d_w_cat, dh0, dc0, d_x = _backward_through_time(
                d_hidden, history, w_cat, teacher_mask if need_x else None
            )
        return d_latent.to(latent_dtype), d_w_cat, dh0.to(h_dtype), dc0.to(c_dtype), d_x, None, None, None, None


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
    dh_back = None  # the gradient flowing back into h_t from step t+1: dpre_{t+1} W_hh
    for t in range(steps - 1, -1, -1):
        if dh_back is None:
            dh.copy_(d_hidden[:, t])
        else:
            torch.add(d_hidden[:, t], dh_back, out=dh)
        dc.addcmul_(dh, dc_from_dh[t])  # dc_t
        torch.mul(local[t][:, :3], dc.unsqueeze(1), out=d_pre[:, :3])  # d pre for i, f, g
        torch.mul(local[t][:, 3], dh, out=d_pre[:, 3])  # d pre for o
        dh_back = flat.mm(w_hh)
        if acc == w_cat.dtype:
            d_w_cat_t.addmm_(inputs[t].t(), flat)
        else:  # a bf16 product per step, summed in float32
            d_w_cat_t.add_(inputs[t].t().mm(flat))
        d_latent.add_(flat)
        if d_x is not None and t > 0:
            torch.mul(flat.mm(w_prev), teacher_mask[:, t : t + 1], out=d_x[:, t - 1])
        dc.mul_(forget[t])  # the share of dc_{t-1} that flows through c
    return d_latent, d_w_cat_t.t().to(w_cat.dtype), dh_back, dc, d_x


class ScheduledSamplingRecurrence(nn.Module):
    """The AR decoder's 128 LSTM steps with their inputs chosen step by step; no parameters of its own.

    ``forward`` takes the pieces of the decoder's ``nn.LSTM`` weights and returns the hidden states h_1 .. h_T,
    (batch, T, H); see the module docstring. With autograd on (training), it runs as one autograd node with
    the hand-written backward pass; with autograd off (inference) it keeps nothing for a backward pass.
    """

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
    ) -> torch.Tensor:
        """``latent_gates`` (batch, 4H), ``w_cat = [W_prev | W_hh]`` (4H, P + H) and ``h0`` (batch, H) in the
        products' dtype; ``c0`` (batch, H) in the cell state's; ``x`` (batch, T, P) the teacher and
        ``teacher_mask`` (batch, T, bool) where step t is fed ``x[:, t-1]`` (either None: always the own
        prediction); ``w_out`` (P, H) and ``b_out`` (P) give the logits that decide the own predictions (no
        gradient flows to them)."""
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (latent_gates, w_cat, h0, c0, x)):
            return _Recurrence.apply(
                latent_gates, w_cat, h0, c0, x, teacher_mask, w_out.detach(), b_out.detach(), steps
            )
        with torch.no_grad(), torch.autocast(latent_gates.device.type, enabled=False):
            return _run_forward(latent_gates, w_cat, h0, c0, x, teacher_mask, w_out, b_out, steps, False)["hidden"]
