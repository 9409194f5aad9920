"""The one data-preparation path of every training: check (:mod:`loopgen.data.validate`), subsample, batch.

``settings.max_train_loops`` / ``max_val_loops`` take seeded random subsets (the same ones on every call);
each epoch reshuffles the training set with a generator seeded by (seed, epoch), so a resumed run sees the
same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from loopgen.run.profiles import TrainSettings

try:
    import numpy as np
except ModuleNotFoundError:  # a box with only torch (benchmarks/gpu_check.py): the checks hand back tensors
    np = None


def subsample(n: int, limit: int | None, seed: int, salt: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of ``limit`` out of ``n`` (all when limit is None or >= n)."""
    if limit is None or limit >= n:
        return np.arange(n)
    rng = np.random.default_rng([seed, salt])
    return np.sort(rng.choice(n, size=limit, replace=False))


def prepare(
    train: np.ndarray,
    val: np.ndarray | None,
    settings: TrainSettings,
    *,
    check: Callable[[np.ndarray, str], np.ndarray],
    names: tuple[str, str],
    seed: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The training and validation tensors: each set checked by ``check`` (``names`` in its errors), cut to
    the settings' seeded subset; on CUDA the whole of both is held on the GPU. No validation set gives None.
    Without numpy (a box with only torch) ``check`` hands back tensors, and only whole sets are taken."""

    def tensor(array: np.ndarray, what: str, limit: int | None, salt: int) -> torch.Tensor:
        array = check(array, what)
        if not isinstance(array, torch.Tensor):
            data = torch.from_numpy(np.ascontiguousarray(array[subsample(len(array), limit, seed, salt)]))
        elif limit is None or limit >= len(array):
            data = array.contiguous()
        else:
            raise ModuleNotFoundError(f"{what}: a seeded subset of {limit} (max_train_loops, max_val_loops) needs numpy")
        return data.to(device) if device.type == "cuda" else data

    train_data = tensor(train, names[0], settings.max_train_loops, 1)
    if val is None or not len(val):
        return train_data, None
    return train_data, tensor(val, names[1], settings.max_val_loops, 2)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the ``n`` training examples in ``epoch`` (seeded by seed and epoch only)."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=g)


def batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """``order`` in batches of ``batch_size``; a last batch of one example is dropped (batchnorm needs two)."""
    chunks = list(torch.split(order, batch_size))
    if len(chunks) > 1 and len(chunks[-1]) < 2:  # batchnorm needs two examples
        chunks = chunks[:-1]
    return chunks


def steps_per_epoch(n: int, batch_size: int) -> int:
    """How many optimiser steps an epoch of ``n`` examples takes (:func:`batches`' rule)."""
    return len(batches(torch.arange(n), batch_size))


def cell_density(train_data: torch.Tensor) -> float:
    """The share of active cells in the training loops (the AR decoder's initial output rate). On CUDA the
    cells are counted as integers, so no float copy of the whole set (7 GB at the paper's size) is made; the CPU
    keeps the float32 mean its checkpoints were made with."""
    if train_data.is_cuda:
        return int(train_data.sum(dtype=torch.int64)) / train_data.numel()
    return float(train_data.float().mean())
