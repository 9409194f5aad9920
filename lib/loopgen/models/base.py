"""What every loop autoencoder offers the training loop and the sampling code.

A model takes loops ``x`` of shape ``(batch, 128, 93)`` (float 0/1) and returns logits of the same shape;
prediction is ``sigmoid(logits) >= 0.5``, i.e. ``logits >= 0``.
"""

from __future__ import annotations

import torch
from torch import nn

from loopgen import LOOP_STEPS, N_COLUMNS
from loopgen.models.blocks import bce_per_loop, kl_divergence, reparameterise

LossTerms = dict[str, torch.Tensor]


class LoopModel(nn.Module):
    """Common interface: ``training_loss`` for the training loop, ``reconstruct_logits`` for evaluation."""

    name: str = "model"
    config: dict

    def example_input(self, batch: int = 2) -> torch.Tensor:
        """A random binary batch of the right shape (for ``describe`` and tests)."""
        return (torch.rand(batch, LOOP_STEPS, N_COLUMNS) < 0.05).float()

    def training_loss(
        self, x: torch.Tensor, *, kl_beta: float = 1.0, epoch: int = 0
    ) -> tuple[torch.Tensor, LossTerms]:
        raise NotImplementedError

    def reconstruct_logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ContinuousVAE(LoopModel):
    """A VAE with a Gaussian latent z (paper eq. 1): loss = BCE (summed over cells) + beta * KL, per loop."""

    latent_size: int

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each ``(batch, latent_size)``."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, 128, 93)`` from z at inference (the AR model samples its own outputs)."""
        raise NotImplementedError

    def decode_train(self, z: torch.Tensor, x: torch.Tensor, epoch: int) -> torch.Tensor:
        """Logits during training (the AR model uses teacher forcing with scheduled sampling here)."""
        return self.decode(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.encode(x)
        return self.decode_train(reparameterise(mu, logvar), x, epoch=0)

    def training_loss(
        self, x: torch.Tensor, *, kl_beta: float = 1.0, epoch: int = 0
    ) -> tuple[torch.Tensor, LossTerms]:
        mu, logvar = self.encode(x)
        z = reparameterise(mu, logvar)
        logits = self.decode_train(z, x, epoch)
        recon = bce_per_loop(logits, x)
        kl = kl_divergence(mu.float(), logvar.float())
        loss = (recon + kl_beta * kl).mean()
        return loss, {"recon": recon.mean().detach(), "kl": kl.mean().detach()}

    def reconstruct_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean (no sampling noise)."""
        mu, _ = self.encode(x)
        return self.decode(mu)
