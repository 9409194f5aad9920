"""The one data-preparation path of every training: check (:mod:`loopgen.data.validate`), subsample, batch.

``settings.max_train_loops`` / ``max_val_loops`` take seeded random subsets (the same ones on every call);
each epoch reshuffles the training set with a generator seeded by (seed, epoch), so a resumed run sees the
same batches as an uninterrupted one.

Augmentation (``augment_rotate_bars``, ``augment_transpose``; off by default) changes each training loop of an
autoencoder as its batch is taken, in ways that keep a loop a loop (:func:`augment`): a rotation by a multiple of
4 bars keeps the bar 1 / bar 5 and bar 4 / bar 8 pairs the loop rules and loopability compare; a transposition of
the bass moves every bass note by the same interval, chosen so that none leaves the 84 pitches. The draws of an
epoch are seeded by (seed, epoch), one pair per training loop, so a resumed run sees the same loops.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from loopgen import BARS_PER_LOOP, N_COLUMNS, N_DRUM, STEPS_PER_BAR
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


# ------------------------------------------------------------------------------------------ augmentation
def check_augmentation(settings: TrainSettings) -> None:
    """ValueError unless the augmentation settings are usable: a rotation by a divisor of 8 bars (or 0), and a
    transposition range of 0..83 semitones."""
    if settings.augment_rotate_bars and (settings.augment_rotate_bars < 0
                                         or BARS_PER_LOOP % settings.augment_rotate_bars):
        raise ValueError(f"augment_rotate_bars must be 0 or a divisor of {BARS_PER_LOOP} (1, 2, 4), "
                         f"got {settings.augment_rotate_bars}")
    if not 0 <= settings.augment_transpose < N_COLUMNS - N_DRUM:
        raise ValueError(f"augment_transpose must lie in 0..{N_COLUMNS - N_DRUM - 1}, got {settings.augment_transpose}")


def augments(settings: TrainSettings) -> bool:
    """Whether ``settings`` change the training loops (:func:`augment`)."""
    return bool(settings.augment_rotate_bars or settings.augment_transpose)


def augmentation_draws(n: int, seed: int, epoch: int) -> torch.Tensor:
    """float32 (n, 2) uniform draws in [0, 1) for the ``n`` training loops of ``epoch``: column 0 chooses the
    rotation, column 1 the transposition (seeded by seed and epoch only, apart from :func:`epoch_order`'s)."""
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch)) * 7 + 3)
    return torch.rand(n, 2, generator=g)


def augment(batch: torch.Tensor, draws: torch.Tensor, *, rotate_bars: int = 0, transpose: int = 0) -> torch.Tensor:
    """``batch`` (N, 128, 93) of loops with each loop changed by its ``draws`` row (:func:`augmentation_draws`).

    * ``rotate_bars`` k: the loop starts at bar ``1 + j k`` (j drawn from 0 .. 8/k - 1), its bars rolled round;
      k = 4 starts at bar 1 or bar 5, which swaps the pairs (1, 5) and (4, 8) with (5, 1) and (8, 4), so the loop
      rules and the loopability of the loop are unchanged.
    * ``transpose`` N: every bass column moved by the same number of semitones, drawn from the shifts in -N..N
      that keep all of the loop's bass notes inside columns 9..92 (a loop without bass is left where it is); the
      drums are untouched and no note is dropped.

    0 (both): ``batch`` itself, unchanged. The result has ``batch``'s dtype and device."""
    if not rotate_bars and not transpose:
        return batch
    draws = draws.to(batch.device)
    out = batch
    if rotate_bars:
        if BARS_PER_LOOP % rotate_bars:
            raise ValueError(f"rotate_bars must divide {BARS_PER_LOOP}, got {rotate_bars}")
        choices = BARS_PER_LOOP // rotate_bars
        start = (draws[:, 0] * choices).long().clamp_max(choices - 1) * rotate_bars * STEPS_PER_BAR  # first step
        steps = torch.arange(out.shape[1], device=out.device)
        rows = (steps[None, :] + start[:, None]) % out.shape[1]  # (N, 128): new step s reads old step s + start
        out = out.gather(1, rows[:, :, None].expand(-1, -1, out.shape[2]))
    if transpose:
        bass = out[:, :, N_DRUM:]
        width = bass.shape[2]
        active = bass.amax(dim=1) > 0  # (N, 84): pitches the loop plays
        columns = torch.arange(width, device=out.device)
        lowest = torch.where(active, columns, width).amin(dim=1)
        highest = torch.where(active, columns, -1).amax(dim=1)
        has_bass = highest >= 0
        down = torch.where(has_bass, torch.clamp(-lowest, min=-transpose), 0)  # the lowest note stays >= column 0
        up = torch.where(has_bass, torch.clamp(width - 1 - highest, max=transpose), 0)
        shift = down + (draws[:, 1] * (up - down + 1)).long().clamp_max(up - down)
        source = (columns[None, :] - shift[:, None]) % width  # new column c reads old column c - shift
        moved = bass.gather(2, source[:, None, :].expand(-1, bass.shape[1], -1))
        out = torch.cat([out[:, :, :N_DRUM], moved], dim=2)
    return out


def augmented_copies(loops: np.ndarray, *, rotate_bars: int = 0, transpose: int = 0) -> np.ndarray:
    """``loops`` (N, 128, 93) followed by every copy :func:`augment` can make of each: every start at a multiple
    of ``rotate_bars`` bars, times every bass shift in -``transpose``..``transpose`` that keeps all of the loop's
    bass notes in range (the unchanged loop once, first). The training codes of a prior whose recipe sets the
    augmentation fields are the codes of these loops (:func:`loopgen.musician.trained.prior_training_codes`)."""
    loops = np.asarray(loops)
    if not rotate_bars and not transpose:
        return loops
    starts = range(0, BARS_PER_LOOP, rotate_bars) if rotate_bars else [0]
    bass = loops[:, :, N_DRUM:]
    active = bass.any(axis=1)  # (N, 84)
    width = bass.shape[2]
    has_bass = active.any(axis=1)
    lowest = np.where(has_bass, active.argmax(axis=1), 0)
    highest = np.where(has_bass, width - 1 - active[:, ::-1].argmax(axis=1), width - 1)
    copies = [loops]
    for start in starts:
        rotated = np.roll(loops, -start * STEPS_PER_BAR, axis=1)
        for shift in range(-transpose, transpose + 1):
            if start == 0 and shift == 0:
                continue
            fits = has_bass & (lowest + shift >= 0) & (highest + shift <= width - 1) if shift else np.ones(len(loops), bool)
            moved = rotated[fits].copy()
            moved[:, :, N_DRUM:] = np.roll(moved[:, :, N_DRUM:], shift, axis=2)
            copies.append(moved)
    return np.concatenate(copies)
