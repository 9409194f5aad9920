"""The autoregressive prior over VQ-VAE codes (paper, "Music VQ-VAE").

A 2-layer LSTM reads the code sequence ``z_0 .. z_{t-1}`` (each code embedded) and predicts, by a softmax over
the K codes, the next code at every step: ``p(z_i | z_<i)`` for i = 1 .. t-1, trained with teacher forcing.
``z_0`` is not modelled here: sampling draws it from the training set's empirical first-code distribution
(see ``loopgen.sample``). The paper gives no sizes for the embedding and the LSTM; we use 128 and 256.
``dropout`` (0 by default, as nothing in the paper suggests any) drops embedding inputs, the output of the
first LSTM layer and the last layer's output during training: the demo profile uses it, because a prior
trained on a few thousand code sequences otherwise memorises them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from loopgen.models.base import LossTerms
from loopgen.models.blocks import he_init

if TYPE_CHECKING:
    import numpy as np

ACCURACY_BATCH = 4096  # sequences per forward in :meth:`CodePrior.accuracy` (~0.5 GB at K = 512, t = 32)


def next_code(logits: torch.Tensor, temperature: float | None, generator: torch.Generator | None) -> torch.Tensor:
    """(B, 1) next codes from last-step logits (B, K): the argmax (``temperature=None``) or a draw from
    ``softmax(logits / temperature)`` by ``generator``, on the logits' device (give a generator of that device:
    nothing is copied to the host)."""
    logits = logits.float()
    if temperature is None:
        return logits.argmax(dim=-1, keepdim=True)
    return torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1, generator=generator)


class CodePrior(nn.Module):
    """2-layer LSTM language model over code indices."""

    name = "prior"

    def __init__(
        self,
        num_codes: int = 512,
        seq_len: int = 32,
        embed_dim: int = 128,
        hidden: int = 256,
        layers: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.config = {
            "num_codes": num_codes,
            "seq_len": seq_len,
            "embed_dim": embed_dim,
            "hidden": hidden,
            "layers": layers,
            "dropout": dropout,
        }
        self.num_codes, self.seq_len = num_codes, seq_len
        self.embedding = nn.Embedding(num_codes, embed_dim)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.output = nn.Linear(hidden, num_codes)
        he_init(self)

    def example_input(self, batch: int = 2) -> torch.Tensor:
        return torch.randint(0, self.num_codes, (batch, self.seq_len))

    def forward(
        self, codes: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Next-code logits (batch, steps, K) after each input code, and the LSTM state."""
        out, state = self.lstm(self.drop(self.embedding(codes)), state)
        return self.output(self.drop(out)), state

    def training_loss(
        self, codes: torch.Tensor, *, kl_beta: float = 1.0, epoch: int = 0
    ) -> tuple[torch.Tensor, LossTerms]:
        """Mean cross-entropy of predicting codes 1..t-1 from their predecessors (teacher forcing)."""
        logits, _ = self(codes[:, :-1])
        target = codes[:, 1:]
        loss = nn.functional.cross_entropy(logits.reshape(-1, self.num_codes).float(), target.reshape(-1))
        correct = (logits.argmax(dim=-1) == target).float().mean()
        return loss, {"accuracy": correct.detach()}

    @torch.no_grad()
    def generate(
        self, first: torch.Tensor, temperature: float | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Code sequences (B, t) that start with ``first`` (B,) and continue one code at a time from this prior
        (:func:`next_code`), on the device ``first`` is on (the model's)."""
        current = first.unsqueeze(1)
        sequence = [current]
        state = None
        for _ in range(self.seq_len - 1):
            logits, state = self(current, state)
            current = next_code(logits[:, -1], temperature, generator)
            sequence.append(current)
        return torch.cat(sequence, dim=1)

    @torch.no_grad()
    def accuracy(self, codes: torch.Tensor | np.ndarray, batch_size: int = ACCURACY_BATCH) -> float:
        """Teacher-forcing next-code accuracy on ``codes`` (n, t): the share of codes 1..t-1 that are the argmax
        of the prediction from their predecessors, over all n x (t - 1) of them.

        Runs in eval mode (no dropout), ``batch_size`` sequences at a time on the model's device, so memory stays
        bounded (one forward over the paper's 120,600 sequences would hold ~14 GB of logits at once); the
        correct predictions are counted on the device and read once at the end.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        codes = torch.as_tensor(codes)
        if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] < 2:
            raise ValueError(f"codes must be (n >= 1, t >= 2) code sequences, got shape {tuple(codes.shape)}")
        device = self.output.weight.device
        was_training = self.training
        self.eval()
        try:
            correct = torch.zeros((), dtype=torch.int64, device=device)
            for start in range(0, codes.shape[0], batch_size):
                chunk = codes[start : start + batch_size].to(device)
                logits, _ = self(chunk[:, :-1])
                correct += (logits.argmax(dim=-1) == chunk[:, 1:]).sum()
        finally:
            self.train(was_training)
        return int(correct) / (codes.shape[0] * (codes.shape[1] - 1))
