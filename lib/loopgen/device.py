"""Which device to train on, and the mixed-precision context that goes with it."""

from __future__ import annotations

import contextlib

import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA if present, then Apple MPS, then CPU. ``prefer`` ("cpu", "cuda", "mps") forces a choice."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op elsewhere (CPU and MPS train in float32)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe_device(device: torch.device) -> str:
    """A one-line description for notebooks and logs."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)}, bf16 autocast)"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads, float32)"
    return f"{device.type} (float32)"
