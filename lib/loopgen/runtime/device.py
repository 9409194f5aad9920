"""Which device to train on, which numeric precision it gets, and the contexts that apply that precision.

``precision`` (``TrainSettings.precision``, ``--precision``) is one of :data:`PRECISIONS`. ``"auto"`` is
resolved at run time by :func:`resolve_precision`: bf16 autocast on a CUDA GPU with native bf16 (compute
capability 8.0 or newer) and on a CPU whose oneDNN reports bf16 support (AVX-512 BF16 / AMX units); fp16
autocast with a gradient scaler on a CUDA GPU with float16 tensor cores but no native bf16 (compute capability
7.x: the T4, V100); float32 everywhere else (older GPUs, CPUs without bf16 units, Apple MPS). ``"bf16"`` asks
for bf16 autocast wherever it runs (slow on hardware without bf16 units); ``"fp16"`` asks for float16 autocast
and loss scaling (:func:`grad_scaler`), on CUDA only (a CPU is refused in one line: use bf16 or fp32 there);
``"tf32"`` is float32 with TF32 matmuls and convolutions on a CUDA GPU that has TF32 (compute capability 8.0 or
newer; PyTorch 1.9's default on Ampere GPUs), plain float32 elsewhere (a T4 or V100 has no TF32: there "tf32"
resolves to, and is described as, "fp32"; its checkpoint key keeps "tf32", as on a CPU, because keys do not
depend on where they are computed); ``"fp32"`` is float32 with TF32 off. Sampling
(:mod:`loopgen.sample`) runs in float32 whatever the training precision: the profile's precision is the
training's.

Autocast (:func:`autocast`) covers the forward pass and the loss only, as PyTorch recommends; the TF32
switches (:func:`matmul_precision`) cover the whole optimiser step, backward included, so "fp32" and "tf32"
mean the same thing in both directions. float16 keeps more mantissa bits than bf16 (10 against 7) but has a
5-bit exponent where bf16 and float32 have 8: small gradients underflow to zero unless the loss is scaled up
before the backward pass and the gradients scaled back down before the update, which is what the gradient
scaler does (and why bf16 needs none).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Iterator

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp16", "tf32", "fp32")
RESOLVED = ("bf16", "fp16", "tf32", "fp32")  # what "auto" and the others resolve to
_FP16_DEVICES = ("cuda",)  # where "fp16" trains (the CPU tests of the scaled step add "cpu" here)


# glibc's malloc: keep freed blocks up to 32 MiB in the process (M_MMAP_THRESHOLD; 32 MiB is glibc's upper limit)
# and return free memory to the system only above 256 MiB (M_TRIM_THRESHOLD), instead of the defaults (128 KiB,
# adjusted as the program runs). A training step frees and allocates the same activations every step; with the
# defaults each of those is a fresh mmap whose pages fault in again (~20,000 page faults per AR LSTM-VAE step).
KEEP_FREED_MEMORY = {-3: 32 * 1024 * 1024, -1: 256 * 1024 * 1024}  # {mallopt parameter: bytes}
MALLOC_OPT_OUT = "LOOPGEN_DEFAULT_MALLOC"  # set to 1 to leave malloc's settings alone


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse (:data:`KEEP_FREED_MEMORY`); True when it took effect.

    Once per process, on Linux with glibc only (elsewhere: False, nothing changes), unless the environment sets
    ``LOOPGEN_DEFAULT_MALLOC=1``. Measured on 2 CPU cores, one thread, the demo's recipes, fresh processes taking
    turns (``benchmarks/malloc_speed.py``, 25 steps, median): the CNN-VAE 1.22x as fast, the VQ-VAE 1.06x, the AR
    LSTM-VAE 0.95x (within the noise of a shared machine). The price: the process keeps up to a few hundred MB of
    freed memory instead of giving it back at once. Called wherever loopgen picks its device (training,
    evaluation, sampling).
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux") or os.environ.get(MALLOC_OPT_OUT) == "1":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    return all(mallopt(parameter, value) == 1 for parameter, value in KEEP_FREED_MEMORY.items())


def pick_device(prefer: str | None = None, *, warn: bool = True) -> torch.device:
    """CUDA if present, then Apple MPS, then CPU. ``prefer`` ("cpu", "cuda", "mps") forces a choice.

    Falling back to the CPU on a machine that has an NVIDIA GPU (a CPU-only torch wheel, or a driver that
    does not match) is warned about loudly (:func:`warn_if_gpu_unused`) unless ``warn`` is False. Also tunes the
    memory allocator for training (:func:`keep_freed_memory`)."""
    keep_freed_memory()
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    if warn:
        warn_if_gpu_unused()
    return torch.device("cpu")


def nvidia_gpu_present() -> bool:
    """True when this machine shows an NVIDIA GPU to the operating system (Linux: ``/proc/driver/nvidia`` or a
    ``/dev/nvidia0`` device), whether or not this torch build can use it."""
    return os.path.exists("/proc/driver/nvidia/gpus") or os.path.exists("/dev/nvidia0")


@functools.lru_cache(maxsize=1)
def warn_if_gpu_unused() -> str | None:
    """Warn once when an NVIDIA GPU is present but torch cannot use it; return the warning (or None)."""
    if torch.cuda.is_available() or not nvidia_gpu_present():
        return None
    build = torch.version.cuda
    message = (
        f"an NVIDIA GPU is present but torch {torch.__version__} cannot use it "
        f"({'a CPU-only build' if build is None else f'built for CUDA {build}; check the driver'}); "
        "training runs on the CPU. Install the CUDA build of torch (https://pytorch.org/get-started/locally/)"
    )
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return message


GPU_PROFILES = ("paper", "colab")  # profiles written for a GPU


def warn_if_gpu_profile_on_cpu(profile: str, device: torch.device) -> str | None:
    """Warn loudly when a profile written for a GPU is about to train on a CPU (the paper profile: ~2,000 h);
    return the warning (or None)."""
    if profile not in GPU_PROFILES or torch.device(device).type != "cpu":
        return None
    message = (
        f"the {profile} profile is written for a GPU and is about to train on the CPU, which takes weeks; "
        f"run 'python -m loopgen rehearse --profile {profile}' for the projected time, and check that torch "
        "sees the GPU (torch.cuda.is_available())"
    )
    warnings.warn(message, RuntimeWarning, stacklevel=2)
    return message


def cpu_supports_bf16() -> bool:
    """True when this CPU runs bf16 matrix products natively (oneDNN reports AVX-512 BF16 or AMX support)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN, or an older torch
        return False


def cuda_capability(device: torch.device | None = None) -> tuple[int, int] | None:
    """The CUDA GPU's compute capability (major, minor), or None without CUDA."""
    if not torch.cuda.is_available():
        return None
    index = None if device is None or device.index is None else device.index
    major, minor = torch.cuda.get_device_capability(index)
    return int(major), int(minor)


def cuda_supports_bf16(device: torch.device | None = None) -> bool:
    """True when the CUDA GPU computes in bf16 natively (compute capability 8.0 or newer: A100, RTX 30xx, H100;
    not the T4 or V100, where torch emulates it slowly)."""
    capability = cuda_capability(device)
    return capability is not None and capability[0] >= 8


def cuda_supports_tf32(device: torch.device | None = None) -> bool:
    """True when the CUDA GPU has TF32 tensor cores (compute capability 8.0 or newer; not the T4 or V100)."""
    capability = cuda_capability(device)
    return capability is not None and capability[0] >= 8


def cuda_has_fp16_tensor_cores(device: torch.device | None = None) -> bool:
    """True when the CUDA GPU has float16 tensor cores (compute capability 7.0 or newer: V100, T4 and later)."""
    capability = cuda_capability(device)
    return capability is not None and capability[0] >= 7


def _auto_on_cuda(device: torch.device) -> str:
    """"auto" on a CUDA GPU: bf16 from compute capability 8.0, fp16 on 7.x (tensor cores), float32 below."""
    if cuda_supports_bf16(device):
        return "bf16"
    return "fp16" if cuda_has_fp16_tensor_cores(device) else "fp32"


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """What ``precision`` means on ``device``: "bf16", "fp16", "tf32" or "fp32" (see the module docstring).

    "fp16" off CUDA is refused (:class:`loopgen.commands.common.UserError`, one line naming what to use instead)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = torch.device(device)
    if precision == "fp16" and device.type not in _FP16_DEVICES:
        from loopgen.errors import UserError

        instead = "bf16 or fp32" if device.type == "cpu" else "fp32"
        raise UserError(f"precision fp16 (float16 autocast with a gradient scaler) is for CUDA GPUs; "
                        f"on {device.type} use --precision {instead}")
    if precision == "auto":
        if device.type == "cuda":
            return _auto_on_cuda(device)
        if device.type == "cpu":
            return "bf16" if cpu_supports_bf16() else "fp32"
        return "fp32"
    if precision == "bf16" and device.type not in ("cuda", "cpu"):
        return "fp32"
    if precision == "tf32" and (device.type != "cuda" or not cuda_supports_tf32(device)):
        return "fp32"  # no TF32 off CUDA, nor on a GPU before compute capability 8.0 (T4, V100)
    return precision


@contextlib.contextmanager
def _tf32(enabled: bool):
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def matmul_precision(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """The TF32 switches for a whole optimiser step (forward, backward, update) on CUDA: on for "tf32", off
    otherwise (bf16 autocast computes its matmuls in bf16 either way). A no-op on other devices."""
    device = torch.device(device)
    if device.type != "cuda":
        return contextlib.nullcontext()
    return _tf32(resolve_precision(device, precision) == "tf32")


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """The numeric precision of a forward pass: bf16 or fp16 autocast where :func:`resolve_precision` says so,
    otherwise the TF32 switches of :func:`matmul_precision` (a training step takes those around its backward
    pass too)."""
    device = torch.device(device)
    resolved = resolve_precision(device, precision)
    if resolved in AUTOCAST_DTYPES:
        return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[resolved])
    return matmul_precision(device, precision)


def grad_scaler(device: torch.device, precision: str = "auto") -> torch.amp.GradScaler:
    """The gradient scaler of a training in ``precision`` on ``device``: enabled for "fp16" (the loss is scaled up
    so that float16 gradients do not underflow), disabled otherwise (then it passes everything through
    unchanged: ``scale(loss)`` is the loss, ``step(optimiser)`` is ``optimiser.step()``)."""
    device = torch.device(device)
    return torch.amp.GradScaler(device.type, enabled=resolve_precision(device, precision) == "fp16")


def describe_precision(device: torch.device, precision: str = "auto") -> str:
    """In words: what ``precision`` means on ``device`` and, for "auto", why."""
    device = torch.device(device)
    resolved = resolve_precision(device, precision)
    shown = {"bf16": "bf16 autocast", "fp16": "fp16 autocast, gradient scaling", "tf32": "float32, TF32 matmuls",
             "fp32": "float32"}[resolved]
    if precision == "tf32" and resolved == "fp32" and device.type == "cuda":
        return f"{shown} (tf32 asked; this GPU has no TF32)"
    if precision != "auto":
        return shown
    if device.type == "cpu":
        why = "this CPU has bf16 units" if resolved == "bf16" else "this CPU has no bf16 units"
    elif device.type == "cuda":
        why = {"bf16": "native bf16 on this GPU", "fp16": "float16 tensor cores, no native bf16 on this GPU",
               }.get(resolved, "this GPU has neither native bf16 nor tensor cores")
    else:
        why = device.type
    return f"{shown}: auto, {why}"


def describe_device(device: torch.device, precision: str = "auto") -> str:
    """A one-line description for notebooks and logs: the device and the precision it trains in."""
    device = torch.device(device)
    shown = describe_precision(device, precision)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)}, {shown})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads, {shown})"
    return f"{device.type} ({shown})"


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.device]:
    """Eval mode without gradients for the block (sampling, decoding); yields the model's device and restores the
    model's mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield next(model.parameters()).device
    finally:
        model.train(was_training)
