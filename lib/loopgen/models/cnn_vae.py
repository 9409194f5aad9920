"""CNN-VAE (paper Appendix A, table (c)); shapes are written (time, channels) as in the paper.

Encoder: conv(32,3,1,1) -> (128, 32); conv(32,3,1,2) + resblock(32) -> (64, 32);
conv(32,3,1,2) + resblock(32) -> (32, 32); flatten (1024) -> mu = LayerNorm(Linear), logvar = Linear, z 512.
Decoder: Linear(512 -> 512) read as (16, 32); upsample(2) + resblock -> (32, 32); upsample(2) + resblock
-> (64, 32); upsample(2) -> (128, 32); conv(93,7,3,1) -> (128, 93) logits.
Upsampling is nearest-neighbour. The final conv is a plain convolution (no batchnorm / activation: its
output is the logits that the sigmoid of the table turns into probabilities).
"""

from __future__ import annotations

import torch
from torch import nn

from loopgen import LOOP_STEPS, N_COLUMNS
from loopgen.models.base import ContinuousVAE
from loopgen.models.blocks import ConvBlock, GaussianHead, ResidualBlock, Upsample, he_init


class CNNVAE(ContinuousVAE):
    """Convolutional VAE with a 512-dimensional Gaussian latent."""

    name = "cnn_vae"

    def __init__(self, channels: int = 32, latent: int = 512) -> None:
        super().__init__()
        self.config = {"channels": channels, "latent": latent}
        self.latent_size = latent
        self.channels = channels
        self.encoder = nn.Sequential(
            ConvBlock(N_COLUMNS, channels, 3, 1, 1),
            ConvBlock(channels, channels, 3, 1, 2),
            ResidualBlock(channels),
            ConvBlock(channels, channels, 3, 1, 2),
            ResidualBlock(channels),
            nn.Flatten(),
        )
        encoded = channels * (LOOP_STEPS // 4)
        self.head = GaussianHead(encoded, latent)
        if latent % channels:
            raise ValueError(f"latent size {latent} must be a multiple of the channel count {channels}")
        self.start_steps = latent // channels  # 16
        if self.start_steps * 8 != LOOP_STEPS:
            raise ValueError(
                f"latent {latent} / channels {channels} must give {LOOP_STEPS // 8} decoder steps"
            )
        self.project = nn.Linear(latent, latent)
        self.decoder = nn.Sequential(
            Upsample(2),
            ResidualBlock(channels),
            Upsample(2),
            ResidualBlock(channels),
            Upsample(2),
            nn.Conv1d(channels, N_COLUMNS, 7, padding=3),
        )
        he_init(self)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.encoder(x.transpose(1, 2)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(-1, self.channels, self.start_steps)
        return self.decoder(h).transpose(1, 2)
