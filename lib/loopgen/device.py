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


PRECISIONS = ("auto", "bf16", "tf32", "fp32")


@contextlib.contextmanager
def _tf32(enabled: bool):
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """The numeric precision of a forward pass (``TrainSettings.precision``).

    ``auto``: bf16 autocast on CUDA, float32 elsewhere (CPU and MPS). ``bf16``: bf16 autocast on CUDA and CPU
    (float32 on MPS). ``tf32``: float32 with TF32 matmuls and convolutions on CUDA (PyTorch 1.9's default on
    Ampere GPUs), plain float32 elsewhere. ``fp32``: float32 everywhere, TF32 off.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16" and device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if device.type == "cuda":
        return _tf32(precision == "tf32")
    return contextlib.nullcontext()


def describe_device(device: torch.device, precision: str = "auto") -> str:
    """A one-line description for notebooks and logs."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    shown = {"bf16": "bf16 autocast", "tf32": "float32, TF32 matmuls", "fp32": "float32"}[precision]
    if device.type != "cuda" and precision == "tf32":
        shown = "float32"
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)}, {shown})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads, {shown})"
    return f"{device.type} (float32)"
