"""The two input checks every module uses: loop arrays (docs/rules.md §1) and latent code sequences.

Each raises a one-line :class:`ValueError` that names the argument and says what was wrong (shape, dtype or
values), and returns the array in the form the caller computes with. Callers differ only through keywords.

On a box with only torch (no numpy: ``benchmarks/gpu_check.py`` on a bare GPU machine) both checks take torch
tensors and return tensors; wherever numpy is installed every input becomes a numpy array, as always.
"""

from __future__ import annotations

import sys

from loopgen import LOOP_STEPS, N_COLUMNS

try:
    import numpy as np
except ModuleNotFoundError:  # a box with only torch: tensors are checked by torch (_check_loop_tensor)
    np = None

_ONE_LOOP = (LOOP_STEPS, N_COLUMNS)


def check_loops(
    loops: object,
    *,
    name: str = "loops",
    one: bool = False,
    single_as_batch: bool = False,
    allow_empty: bool = False,
    binarize_at: float | None = None,
) -> np.ndarray:
    """``loops`` checked as a batch (N, 128, 93) of 0/1 loops (``one=True``: a single (128, 93) loop).

    - ``single_as_batch``: a lone (128, 93) loop is taken as a batch of one.
    - ``allow_empty``: a batch of 0 loops is accepted (otherwise an error).
    - ``binarize_at``: numbers (probabilities) are accepted and switched on where ``>= binarize_at``; the
      result is ``bool``. Without it every value must be 0 or 1 and the result is ``uint8`` (a view of
      the input when it already is uint8 or bool).
    """
    if np is None:
        return _check_loop_tensor(_tensor(loops, name), name=name, one=one, single_as_batch=single_as_batch,
                                  allow_empty=allow_empty, binarize_at=binarize_at)
    arr = np.asarray(loops)
    if single_as_batch and arr.shape == _ONE_LOOP:
        arr = arr[None]
    well_shaped = arr.shape == _ONE_LOOP if one else (arr.ndim == 3 and arr.shape[1:] == _ONE_LOOP)
    if not well_shaped:
        expected = f"({LOOP_STEPS}, {N_COLUMNS})" if one else f"(N, {LOOP_STEPS}, {N_COLUMNS})"
        raise ValueError(f"{name} must have shape {expected}; got {arr.shape}")
    if not one and len(arr) == 0 and not allow_empty:
        raise ValueError(f"{name} is an empty batch (0 loops): there is nothing to use")
    if arr.dtype == np.bool_:
        return arr if binarize_at is not None else arr.view(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must hold numbers; got dtype {arr.dtype}")
    if binarize_at is not None:
        if np.isnan(arr).any():
            raise ValueError(f"{name} must not contain NaN")
        return arr >= binarize_at
    if arr.dtype == np.uint8:
        if arr.size and arr.max() > 1:
            raise ValueError(f"{name} must be binary (0/1); found the value {int(arr.max())}")
        return arr
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        raise ValueError(
            f"{name} must be binary (0/1); found {arr[bad].flat[0].item()!r} (binarise model outputs first: "
            "metrics.binarize(probs) keeps sigmoid >= 0.5)"
        )
    return arr.astype(np.uint8)


def check_codes(
    codes: object,
    *,
    name: str = "codes",
    num_codes: int | None = None,
    rows: int | None = None,
    min_steps: int = 1,
    allow_empty: bool = False,
) -> np.ndarray:
    """``codes`` checked as integer code sequences (N, latent_steps); returned as contiguous int64.

    - ``num_codes``: every code must lie in 0..num_codes-1 (codes are never negative either way).
    - ``rows``: exactly this many sequences (one per loop of a batch).
    - ``min_steps``: at least this many latent steps per sequence.
    - ``allow_empty``: 0 sequences are accepted (otherwise an error).
    """
    if np is None:
        return _check_code_tensor(_tensor(codes, name), name=name, num_codes=num_codes, rows=rows,
                                  min_steps=min_steps, allow_empty=allow_empty)
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, latent_steps); got {arr.shape}")
    if rows is not None and len(arr) != rows:
        raise ValueError(f"{name} must hold {rows} sequences (one per loop); got shape {arr.shape}")
    if arr.shape[1] < min_steps:
        raise ValueError(f"{name} must have at least {min_steps} latent steps; got shape {arr.shape}")
    if len(arr) == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (0 code sequences)")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer code indices; got dtype {arr.dtype}")
    if arr.size:
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or (num_codes is not None and high >= num_codes):
            top = "K-1" if num_codes is None else num_codes - 1
            raise ValueError(f"{name} holds codes outside 0..{top}: found {low}..{high}")
    return np.ascontiguousarray(arr, dtype=np.int64)


# ------------------------------------------------------------------------------- without numpy: torch tensors
def _tensor(values: object, name: str):
    """``values`` as a torch tensor (a box without numpy has nothing else that holds loops or codes)."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(values, torch.Tensor):
        raise ValueError(f"{name} must be a torch tensor here (numpy is not installed); got {type(values).__name__}")
    return values


def _check_loop_tensor(arr, *, name: str, one: bool, single_as_batch: bool, allow_empty: bool,
                       binarize_at: float | None):
    """:func:`check_loops` for a torch tensor: the same checks and messages, a tensor back."""
    import torch

    if single_as_batch and tuple(arr.shape) == _ONE_LOOP:
        arr = arr[None]
    shape = tuple(arr.shape)
    well_shaped = shape == _ONE_LOOP if one else (arr.ndim == 3 and shape[1:] == _ONE_LOOP)
    if not well_shaped:
        expected = f"({LOOP_STEPS}, {N_COLUMNS})" if one else f"(N, {LOOP_STEPS}, {N_COLUMNS})"
        raise ValueError(f"{name} must have shape {expected}; got {shape}")
    if not one and len(arr) == 0 and not allow_empty:
        raise ValueError(f"{name} is an empty batch (0 loops): there is nothing to use")
    if arr.dtype == torch.bool:
        return arr if binarize_at is not None else arr.view(torch.uint8)
    if arr.is_complex():
        raise ValueError(f"{name} must hold numbers; got dtype {arr.dtype}")
    if binarize_at is not None:
        if arr.is_floating_point() and bool(torch.isnan(arr).any()):
            raise ValueError(f"{name} must not contain NaN")
        return arr >= binarize_at
    if arr.dtype == torch.uint8:
        if arr.numel() and int(arr.max()) > 1:
            raise ValueError(f"{name} must be binary (0/1); found the value {int(arr.max())}")
        return arr
    bad = (arr != 0) & (arr != 1)
    if bool(bad.any()):
        raise ValueError(f"{name} must be binary (0/1); found {arr[bad].reshape(-1)[0].item()!r} (binarise model "
                         "outputs first: metrics.binarize(probs) keeps sigmoid >= 0.5)")
    return arr.to(torch.uint8)


def _check_code_tensor(arr, *, name: str, num_codes: int | None, rows: int | None, min_steps: int,
                       allow_empty: bool):
    """:func:`check_codes` for a torch tensor: the same checks and messages, a contiguous int64 tensor back."""
    import torch

    shape = tuple(arr.shape)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, latent_steps); got {shape}")
    if rows is not None and len(arr) != rows:
        raise ValueError(f"{name} must hold {rows} sequences (one per loop); got shape {shape}")
    if shape[1] < min_steps:
        raise ValueError(f"{name} must have at least {min_steps} latent steps; got shape {shape}")
    if len(arr) == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (0 code sequences)")
    if arr.is_floating_point() or arr.is_complex() or arr.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer code indices; got dtype {arr.dtype}")
    if arr.numel():
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or (num_codes is not None and high >= num_codes):
            top = "K-1" if num_codes is None else num_codes - 1
            raise ValueError(f"{name} holds codes outside 0..{top}: found {low}..{high}")
    return arr.to(torch.int64).contiguous()
