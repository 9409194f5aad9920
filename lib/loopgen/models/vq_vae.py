"""VQ-VAE (paper Appendix A, table (d)) with an EMA codebook; shapes written (time, channels).

Encoder ("embedding layer" + strided blocks):
conv(64,1,0,1) -> conv(32,1,0,1) -> (128, 32); then ``n = log2(128 / t)`` times conv(32,3,1,2) + resblock(32),
halving time; then conv(L,3,1,1) + resblock(L) -> (t, L). For the default t = 32, L = 16 this gives the
table's shapes (128,32) -> (64,32) -> (32,32) -> (32,16). (The table prints the third block as
conv(32,3,1,2), but its output shape (32, 16) and the decoder's two upsamplings fix t = 32, L = 16: the last
block keeps the time axis and maps to L channels.)

Quantiser: nearest of K codes (squared Euclidean distance, computed by one matmul), straight-through
gradients, commitment loss ``beta * ||z_e - sg[e]||^2`` (beta 0.25). The codebook is not trained by gradients
but by exponential moving averages (decay 0.99) of code counts and code sums, with Laplace smoothing
(eps 1e-5) of the counts; a code whose moving count falls below ``restart_threshold`` (1.0) is restarted
at a random encoder output of the current batch (so unused random initial codes are replaced at the first
step; on a GPU without the host waiting for the count, see :meth:`VectorQuantiserEMA.restart`). Updates happen
only in training mode.

Decoder: conv(32,3,1,1) -> (t, 32); ``n`` times upsample(2) + resblock(32) -> (128, 32);
conv(64,1,0,1) -> conv(93,3,1,1) -> (128, 93) logits (the last conv plain, no batchnorm / activation).
Loss (``loss_reduction``): "sum" (default) = per loop, BCE with logits summed over cells + beta * commitment
summed over the t x L latent values; "mean" (the paper profile, the usual reading of eq. 2 as in Oord et al.'s
implementation) = BCE averaged over cells + beta * squared error averaged over latent values. The reported
terms (recon, commitment) are per-loop sums either way. Under DDP (``loopgen.runtime.distributed``) the EMA update
uses counts and sums over all ranks, and restarts draw on rank 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from loopgen import LOOP_STEPS, N_COLUMNS
from loopgen.models.base import LoopModel, LossTerms
from loopgen.models.blocks import ConvBlock, ResidualBlock, Upsample, bce_per_loop, he_init
from loopgen.runtime import distributed


def perplexity(counts: torch.Tensor) -> float:
    """exp(entropy) of the code-usage distribution given by ``counts`` (K,); 0 for no counts."""
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts.double() / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


class VectorQuantiserEMA(nn.Module):
    """Codebook of ``num_codes`` vectors of size ``dim``, updated by EMA (see the module docstring)."""

    def __init__(
        self,
        num_codes: int = 512,
        dim: int = 16,
        decay: float = 0.99,
        eps: float = 1e-5,
        restart_threshold: float = 1.0,
    ) -> None:
        super().__init__()
        self.num_codes, self.dim = num_codes, dim
        self.decay, self.eps, self.restart_threshold = decay, eps, restart_threshold
        codebook = torch.randn(num_codes, dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("embed_sum", codebook.clone())

    def extra_repr(self) -> str:
        return (
            f"num_codes={self.num_codes}, dim={self.dim}, decay={self.decay}, eps={self.eps}, "
            f"restart_threshold={self.restart_threshold}"
        )

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of ``z`` (N, dim): one matmul, no (N, K, dim) tensor."""
        cb = self.codebook
        dist = z.pow(2).sum(1, keepdim=True) - 2.0 * (z @ cb.t()) + cb.pow(2).sum(1).unsqueeze(0)
        return dist.argmin(dim=1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Code vectors for integer codes of any shape: (...,) -> (..., dim)."""
        return nn.functional.embedding(codes, self.codebook)

    @torch.no_grad()
    def ema_update(self, z: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> None:
        """One EMA step of counts and sums, Laplace-smoothed codebook, then dead-code restarts.

        ``counts`` must already be the global counts under DDP (``forward`` sums them over the ranks); the
        per-code sums are summed over the ranks here, so every rank applies the same update.
        """
        batch_sum = torch.zeros_like(self.embed_sum).index_add_(0, codes, z)
        distributed.all_reduce_sum_(batch_sum)
        self.cluster_size.mul_(self.decay).add_(counts.to(self.cluster_size.dtype), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(batch_sum, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
        self.codebook.copy_(self.embed_sum / smoothed.unsqueeze(1))
        if self.restart_threshold > 0:
            self.restart(z, self.cluster_size < self.restart_threshold, counted=z.device.type == "cpu")

    @torch.no_grad()
    def restart(self, z: torch.Tensor, dead: torch.Tensor, counted: bool = True) -> None:
        """Move the ``dead`` codes (bool (K,)) to random rows of ``z`` (rank 0's draw on every rank).

        ``counted`` (the CPU's way): one random row per dead code. On a GPU, counting the dead codes would make
        the host wait for the device at every training step, so there every code draws a row and only the dead
        ones take theirs: the same distribution, without a wait.
        """
        if counted:
            n_dead = int(dead.sum())
            if n_dead:
                rows = torch.randint(0, z.shape[0], (n_dead,), device=z.device)
                fresh = distributed.broadcast_(z[rows].contiguous())
                self.codebook[dead] = fresh
                self.embed_sum[dead] = fresh
                self.cluster_size[dead] = 1.0
            return
        rows = torch.randint(0, z.shape[0], (self.num_codes,), device=z.device)
        fresh = distributed.broadcast_(z[rows].contiguous())
        self.codebook.copy_(torch.where(dead.unsqueeze(1), fresh, self.codebook))
        self.embed_sum.copy_(torch.where(dead.unsqueeze(1), fresh, self.embed_sum))
        self.cluster_size.masked_fill_(dead, 1.0)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantise rows of ``z`` (N, dim).

        Returns (straight-through quantised z, codes (N,), squared error per row (N,), counts (K,)).
        """
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            codes = self.nearest(z.detach())
            quantised = self.lookup(codes)
            # exact integer counts; unlike torch.bincount, no host wait on a GPU (it reads codes.max() first)
            counts = torch.zeros(self.num_codes, dtype=torch.long, device=codes.device)
            counts.index_add_(0, codes, torch.ones_like(codes))
            if self.training:
                distributed.all_reduce_sum_(counts)  # global counts under DDP
                self.ema_update(z.detach(), codes, counts)
            sq_error = (z - quantised.detach()).pow(2).sum(dim=1)
            straight_through = z + (quantised - z).detach()
        return straight_through, codes, sq_error, counts


class VQVAE(LoopModel):
    """Music VQ-VAE; ``latent_steps`` t, ``latent_dim`` L, ``num_codes`` K (paper default 32, 16, 512)."""

    name = "vq_vae"

    def __init__(
        self,
        latent_steps: int = 32,
        latent_dim: int = 16,
        num_codes: int = 512,
        beta: float = 0.25,
        decay: float = 0.99,
        eps: float = 1e-5,
        restart_threshold: float = 1.0,
        channels: int = 32,
        loss_reduction: str = "sum",
    ) -> None:
        super().__init__()
        if loss_reduction not in ("sum", "mean"):
            raise ValueError(f"loss_reduction must be 'sum' or 'mean', got {loss_reduction!r}")
        n_down = math.log2(LOOP_STEPS / latent_steps) if latent_steps > 0 else -1
        if n_down < 0 or n_down != int(n_down):
            raise ValueError(f"latent_steps must be 128 / 2**n (8, 16, 32, 64, 128), not {latent_steps}")
        n_down = int(n_down)
        self.config = {
            "latent_steps": latent_steps,
            "latent_dim": latent_dim,
            "num_codes": num_codes,
            "beta": beta,
            "decay": decay,
            "eps": eps,
            "restart_threshold": restart_threshold,
            "channels": channels,
        }
        if loss_reduction != "sum":  # only when not the default, so earlier checkpoint keys stay valid
            self.config["loss_reduction"] = loss_reduction
        self.loss_reduction = loss_reduction
        self.latent_steps, self.latent_dim, self.num_codes, self.beta = (
            latent_steps,
            latent_dim,
            num_codes,
            beta,
        )
        down: list[nn.Module] = []
        for _ in range(n_down):
            down += [ConvBlock(channels, channels, 3, 1, 2), ResidualBlock(channels)]
        self.encoder = nn.Sequential(
            ConvBlock(N_COLUMNS, 64, 1, 0, 1),
            ConvBlock(64, channels, 1, 0, 1),
            *down,
            ConvBlock(channels, latent_dim, 3, 1, 1),
            ResidualBlock(latent_dim),
        )
        self.quantiser = VectorQuantiserEMA(num_codes, latent_dim, decay, eps, restart_threshold)
        up: list[nn.Module] = []
        for _ in range(n_down):
            up += [Upsample(2), ResidualBlock(channels)]
        self.decoder = nn.Sequential(
            ConvBlock(latent_dim, channels, 3, 1, 1),
            *up,
            ConvBlock(channels, 64, 1, 0, 1),
            nn.Conv1d(64, N_COLUMNS, 3, padding=1),
        )
        he_init(self)

    # --- pieces ---
    def encode_continuous(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output before quantisation, (batch, t, L)."""
        return self.encoder(x.transpose(1, 2)).transpose(1, 2)

    def decode_latent(self, zq: torch.Tensor) -> torch.Tensor:
        """Logits (batch, 128, 93) from quantised latents (batch, t, L)."""
        return self.decoder(zq.transpose(1, 2)).transpose(1, 2)

    def encode_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Code indices (batch, t) of loops (no codebook update)."""
        z = self.encode_continuous(x).float()
        return self.quantiser.nearest(z.reshape(-1, self.latent_dim)).view(x.shape[0], self.latent_steps)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Logits (batch, 128, 93) from code indices (batch, t)."""
        return self.decode_latent(self.quantiser.lookup(codes))

    # --- the interface of LoopModel ---
    def _quantise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encode_continuous(x)
        batch = z.shape[0]
        zq, codes, sq_error, counts = self.quantiser(z.reshape(-1, self.latent_dim))
        zq = zq.view(batch, self.latent_steps, self.latent_dim)
        return zq, codes.view(batch, -1), sq_error.view(batch, -1).sum(dim=1), counts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        zq, _, _, _ = self._quantise(x)
        return self.decode_latent(zq)

    def training_loss(
        self, x: torch.Tensor, *, kl_beta: float = 1.0, epoch: int = 0
    ) -> tuple[torch.Tensor, LossTerms]:
        zq, _, commitment, counts = self._quantise(x)
        recon = bce_per_loop(self.decode_latent(zq), x)
        if self.loss_reduction == "mean":  # per cell and per latent value (Oord et al.'s implementation)
            loss = recon.mean() / x[0].numel() + self.beta * commitment.mean() / zq[0].numel()
        else:  # per loop: sums over the 128 x 93 cells and the t x L latent values
            loss = (recon + self.beta * commitment).mean()
        terms = {
            "recon": recon.mean().detach(),
            "commitment": commitment.mean().detach(),
            "code_counts": counts.detach(),
        }
        return loss, terms

    def reconstruct_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode_codes(self.encode_codes(x))
