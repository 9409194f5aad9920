"""Seeds are set in one place."""

from __future__ import annotations

import random

import numpy as np

DEFAULT_SEED = 0


def seed_everything(seed: int = DEFAULT_SEED) -> np.random.Generator:
    """Seed Python, NumPy and torch (if importable); return a NumPy Generator with that seed."""
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - for code that still uses the global RNG
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a hard dependency, but keep seeding usable without it
        pass
    return np.random.default_rng(seed)
