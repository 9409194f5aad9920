"""Seeds are set in one place."""

from __future__ import annotations

import random

try:
    import numpy as np
except ModuleNotFoundError:  # a box with only torch (benchmarks/gpu_check.py): no numpy RNG to seed
    np = None

DEFAULT_SEED = 0


def seed_everything(seed: int = DEFAULT_SEED) -> np.random.Generator | None:
    """Seed Python, NumPy (when installed) and torch (if importable); return a NumPy Generator with that seed
    (None without numpy)."""
    random.seed(seed)
    if np is not None:
        np.random.seed(seed % (2**32))  # noqa: NPY002 - for code that still uses the global RNG
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a hard dependency, but keep seeding usable without it
        pass
    return None if np is None else np.random.default_rng(seed)
