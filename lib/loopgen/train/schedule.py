"""How long and how fast a model trains: epochs, batch size, the cosine learning rate and the KL weight.

The paper trains every model with AdamW and a cosine schedule from 1e-3 down to 5e-6; the continuous VAEs
anneal the KL weight beta from 0 to 1. The learning rate follows a cosine from ``lr_max`` to ``lr_min`` over
all optimisation steps of the run (optionally after a linear warm-up), stepped after every batch; beta rises
linearly from 0 to ``kl_beta_max`` over the first ``kl_anneal_fraction`` of those steps, then stays there.
"""

from __future__ import annotations

import math

import torch

from loopgen import registry
from loopgen.run.profiles import TrainSettings, batch_size_for, epochs_for  # noqa: F401 - re-exported


def model_family(name: str) -> str:
    """``"lstm"``, ``"conv"`` or ``"prior"``: which epoch and batch fields of the settings ``name`` reads."""
    return registry.MODELS[name].family if name in registry.MODELS else "conv"


def is_gaussian(name: str) -> bool:
    """True for the VAEs with a Gaussian latent (they anneal a KL weight)."""
    return name in registry.MODELS and registry.MODELS[name].kind == registry.CONTINUOUS


def is_prior(name: str) -> bool:
    """True for the priors over VQ-VAE codes (the LSTM prior, the masked prior): they read code sequences."""
    return name in registry.MODELS and registry.MODELS[name].kind == registry.PRIOR


def kl_beta_at(step: int, total_steps: int, anneal_fraction: float) -> float:
    """KL weight at optimisation ``step`` (0-based): linear 0 -> 1 over ``anneal_fraction`` of the run."""
    ramp = anneal_fraction * total_steps
    if ramp <= 0:
        return 1.0
    return float(min(1.0, step / ramp))


def cosine_lr(step: int, total_steps: int, lr_max: float, lr_min: float) -> float:
    """The learning rate after ``step`` scheduler steps (the closed form of the cosine schedule)."""
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))


def warmup_cosine_lr(step: int, total_steps: int, warmup_steps: int, lr_max: float, lr_min: float) -> float:
    """Linear warm-up from ``lr_max / warmup_steps`` to ``lr_max``, then the cosine down to ``lr_min``."""
    if step < warmup_steps:
        return lr_max * (step + 1) / warmup_steps
    return cosine_lr(step - warmup_steps, max(1, total_steps - warmup_steps), lr_max, lr_min)


def make_scheduler(
    optimiser: torch.optim.Optimizer, settings: TrainSettings, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """PyTorch's ``CosineAnnealingLR`` (the paper's schedule), or warm-up + cosine when ``warmup_steps`` > 0."""
    if settings.warmup_steps <= 0:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total_steps, eta_min=settings.lr_min)
    warmup = min(settings.warmup_steps, max(1, total_steps - 1))
    return torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: warmup_cosine_lr(step, total_steps, warmup, settings.lr_max, settings.lr_min) / settings.lr_max,
    )
