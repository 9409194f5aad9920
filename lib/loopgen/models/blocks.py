"""Building blocks shared by the models (paper, Appendix A).

* ``conv_block`` = conv1d - batchnorm - leakyrelu(0.2), written ``conv(channel, kernel, padding, stride)``.
* ``residual_block`` = x + (conv1d - batchnorm - leakyrelu(0.2) - conv1d - batchnorm), ``resblock(...)``.
* The bi-LSTM encoder of both LSTM-VAEs, the Gaussian head ``mu = LayerNorm(Linear(h))``,
  ``logvar = Linear(h)`` and the reparameterisation trick.
* He (kaiming) initialisation of every weight matrix (paper: "All models are initialized with He initializer").

Convolutions work on ``(batch, channels, time)``; the loops arrive as ``(batch, time=128, columns=93)``.
"""

from __future__ import annotations

import torch
from torch import nn

LEAKY_SLOPE = 0.2


class ConvBlock(nn.Module):
    """conv1d - batchnorm - leakyrelu(0.2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, padding: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, stride=stride, padding=padding)
        self.bn = nn.BatchNorm1d(out_channels)
        self.act = nn.LeakyReLU(LEAKY_SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class ResidualBlock(nn.Module):
    """x + (conv1d - batchnorm - leakyrelu(0.2) - conv1d - batchnorm); keeps channels and length."""

    def __init__(self, channels: int, kernel: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, kernel, padding=padding)
        self.bn1 = nn.BatchNorm1d(channels)
        self.act = nn.LeakyReLU(LEAKY_SLOPE)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=padding)
        self.bn2 = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class Upsample(nn.Module):
    """Nearest-neighbour upsampling along time by ``factor``."""

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, scale_factor=self.factor, mode="nearest")

    def extra_repr(self) -> str:
        return f"factor={self.factor}, mode=nearest"


class GaussianHead(nn.Module):
    """``mu = LayerNorm(Linear(h))`` and ``logvar = Linear(h)`` (the table's sigma, read as log-variance)."""

    def __init__(self, in_features: int, latent: int) -> None:
        super().__init__()
        self.mu = nn.Sequential(nn.Linear(in_features, latent), nn.LayerNorm(latent))
        self.logvar = nn.Linear(in_features, latent)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(h), self.logvar(h)


class BiLSTMEncoder(nn.Module):
    """Bi-LSTM over the 128 steps; the last forward and backward hidden states, concatenated."""

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_features, hidden, batch_first=True, bidirectional=True)
        self.out_features = 2 * hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)  # h: (2, batch, hidden)
        return torch.cat([h[0], h[1]], dim=-1)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) (torch's global generator, seeded by loopgen.runtime.seed)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma) || N(0, I)) summed over latent dimensions, one value per example."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def bce_per_loop(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits (paper eq. 3) summed over all 128 x 93 cells, one value per loop."""
    bce = nn.functional.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return bce.flatten(1).sum(dim=1)


def he_init(module: nn.Module) -> None:
    """He (kaiming-normal, fan-in) initialisation of every weight matrix; zero biases.

    Convolutions use the leaky-ReLU gain (slope 0.2), linear and LSTM matrices the ReLU gain.
    Normalisation layers keep (1, 0); embeddings and VQ codebooks keep their own initialisation.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv1d):
            nn.init.kaiming_normal_(m.weight, a=LEAKY_SLOPE, nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LSTM):
            for name, p in m.named_parameters():
                if name.startswith("weight"):
                    nn.init.kaiming_normal_(p, nonlinearity="relu")
                else:
                    nn.init.zeros_(p)
