"""The paper's four autoencoders and the LSTM prior over VQ-VAE codes.

``build(name, **kwargs)`` makes one by name: ``ar_lstm_vae``, ``nonar_lstm_vae``, ``cnn_vae``, ``vq_vae``,
``prior``; ``describe(model)`` gives its layer table (output shapes and parameter counts). One file per model
(``lstm_vae``, ``cnn_vae``, ``vq_vae``, ``prior``, and beyond the paper ``masked_prior``), shared blocks in ``blocks``
and ``base``: each model's plain, readable computation.

May import :mod:`loopgen.errors`, :mod:`loopgen.registry`, :mod:`loopgen.runtime` (the fused recurrence, DDP) and
the package's constants; never data, training or the notebooks' code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn

from loopgen import registry
from loopgen.models.base import ContinuousVAE, LoopModel
from loopgen.models.cnn_vae import CNNVAE
from loopgen.models.lstm_vae import ARLSTMVAE, NonARLSTMVAE, teacher_forcing_prob
from loopgen.models.prior import CodePrior
from loopgen.models.vq_vae import VQVAE, VectorQuantiserEMA, perplexity

if TYPE_CHECKING:  # pandas only for describe()'s table: the models train on a box with only torch
    import pandas as pd


class _ModelClasses(Mapping):
    """Model name -> class, read live from :mod:`loopgen.registry` (so a registered model is buildable)."""

    def __getitem__(self, name: str) -> type[nn.Module]:
        if name not in registry.MODELS:
            raise KeyError(name)
        return registry.MODELS[name].cls

    def __iter__(self) -> Iterator[str]:
        return iter(registry.MODELS)

    def __len__(self) -> int:
        return len(registry.MODELS)


MODELS: Mapping[str, type[nn.Module]] = _ModelClasses()
# the paper's models, as registered at import (code that must see models registered later asks the registry)
AUTOENCODERS = registry.autoencoders()
LSTM_MODELS = registry.names(family="lstm")
TITLES = registry.titles()

__all__ = [
    "ARLSTMVAE",
    "AUTOENCODERS",
    "CNNVAE",
    "CodePrior",
    "ContinuousVAE",
    "LSTM_MODELS",
    "LoopModel",
    "MODELS",
    "NonARLSTMVAE",
    "TITLES",
    "VQVAE",
    "VectorQuantiserEMA",
    "build",
    "count_parameters",
    "describe",
    "explain",
    "perplexity",
    "teacher_forcing_prob",
]


def build(name: str, **kwargs) -> nn.Module:
    """A freshly initialised model called ``name`` (see ``MODELS``), with constructor ``kwargs``."""
    return registry.get(name).cls(**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (the VQ codebook is a buffer, updated by EMA, so not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _first_tensor(out) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for item in out:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


@torch.no_grad()
def describe(model: nn.Module, batch: int = 2) -> pd.DataFrame:
    """Layer table: one row per sub-module with its output shape, the number of times it runs per forward
    pass (the AR decoder's ``recurrence`` runs the 128 steps in one call, on the ``decoder`` LSTM's weights) and its
    parameter count.

    Shapes leave out the batch axis and are written (time, features) like the paper's tables, although
    PyTorch's convolutions hold them as (channels, time)."""
    conv_layout = isinstance(model, (CNNVAE, VQVAE))
    rows: dict[str, dict] = {}
    hooks = []
    for name, module in model.named_modules():
        if not name:
            continue
        rows[name] = {
            "layer": name,
            "type": type(module).__name__,
            "output shape": "",
            "calls": 0,
            "parameters": sum(p.numel() for p in module.parameters()),
            "depth": name.count("."),
        }

        def hook(mod, inputs, output, key=name):
            row = rows[key]
            row["calls"] += 1
            if row["calls"] == 1:
                t = _first_tensor(output)
                shape = tuple(t.shape[1:]) if t is not None else ()
                if conv_layout and len(shape) == 2:
                    shape = shape[::-1]
                if isinstance(mod, VectorQuantiserEMA):
                    shape = (model.latent_steps, mod.dim)
                row["output shape"] = str(shape) if shape else ""

        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        x = model.example_input(batch).to(device)
        if isinstance(model, ContinuousVAE):
            model.reconstruct_logits(x)
        else:
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    import pandas as pd

    table = pd.DataFrame(list(rows.values()))
    table["layer"] = ["  " * d + n for n, d in zip(table["layer"], table["depth"], strict=True)]
    total = pd.DataFrame(
        [
            {
                "layer": "total",
                "type": type(model).__name__,
                "output shape": "",
                "calls": 1,
                "parameters": count_parameters(model),
                "depth": 0,
            }
        ]
    )
    return pd.concat([table, total], ignore_index=True).drop(columns="depth")


_EXPLANATIONS = {
    "ar_lstm_vae": r"""
### AR LSTM-VAE (paper table (a)): a flat MusicVAE

**Encoder.** A bidirectional LSTM (128 units each way in the demo and paper profiles, whose
table prints the concatenated state as 256; 256 each way is the other reading) reads the 128 steps forwards and backwards; its two final hidden states
are concatenated (256 numbers) and two linear layers give the mean $\mu$ (followed by
layer normalisation) and the log-variance $\log\sigma^2$ of a 128-dimensional Gaussian. A latent
$z = \mu + \sigma \odot \varepsilon$, $\varepsilon \sim \mathcal N(0, I)$, is drawn (the *reparameterisation
trick*, so that gradients flow through the sampling).

**Decoder.** An LSTM with 128 units whose hidden and cell states *start as z*. It writes the loop one step at
a time: its input at step $t$ is the previous step $x_{t-1}$ (93 values) concatenated with $z$, and a linear
layer turns its output into 93 logits. During training the previous step is usually the true one (*teacher
forcing*); with probability $1 - p$ it is the model's own previous guess instead (*scheduled sampling*),
where $p = k / (k + e^{\text{epoch}/k})$, $k = 20$, decays from 0.95 towards 0 as training goes on. When
generating, the model always feeds back its own guesses (*full sampling*), so a mistake can snowball.
""",
    "nonar_lstm_vae": r"""
### NonAR LSTM-VAE (paper table (b))

Same encoder as the AR model (bi-LSTM, 128 units each way in the demo and paper profiles;
128-dimensional Gaussian latent $z$).

**Decoder.** No feedback: $z$ is copied to all 128 steps and an LSTM with 256 units turns this constant
sequence into 128 hidden states, each mapped by one linear layer to the 93 logits of its step. The decoder
never sees its own outputs, so errors cannot accumulate over time; the paper expected more stable structure
from this, and indeed finds the lowest bar-1/bar-5 distance (HD) among the continuous VAEs.
""",
    "cnn_vae": r"""
### CNN-VAE (paper table (c))

The loop is read as 93 channels over 128 time steps. Two building blocks:
*conv_block* = 1-D convolution → batch normalisation → LeakyReLU(0.2), and
*residual_block* = $x$ + (conv → BN → LeakyReLU → conv → BN).

**Encoder.** conv(32, kernel 3) keeps 128 steps; two stride-2 conv_blocks, each followed by a residual block,
halve time twice: 128 → 64 → 32 steps of 32 channels. The 32 × 32 = 1,024 numbers are flattened and two linear
layers give $\mu$ (with layer normalisation) and $\log\sigma^2$ of a **512**-dimensional Gaussian.

**Decoder.** The mirror image: a linear layer maps $z$ to 512 numbers read as 16 steps × 32 channels; three
rounds of nearest-neighbour upsampling (×2) with residual blocks in between grow time back to 128, and a
final convolution with kernel 7 gives the 93 logits per step. Convolutions see every step at once, so this
model trains an order of magnitude faster than the LSTMs on a CPU.
""",
    "vq_vae": r"""
### VQ-VAE (paper table (d)): a discrete latent

**Encoder.** Two kernel-1 convolutions (93 → 64 → 32 channels) compress the pitch axis at every step (the
paper's "embedding layer"); stride-2 conv_blocks with residual blocks halve time until $t$ steps remain, and a
last conv_block + residual block maps to $L$ channels. The result is a short sequence of $t$ vectors of $L$
numbers ($t = 32$, $L = 16$ by default: one vector per quarter note).

**Quantiser.** A dictionary (*codebook*) of $K$ vectors $e_1 \dots e_K$ (default $K = 512$). Each encoder vector
$z_i$ is replaced by its nearest code $e_k$, $k = \arg\min_j \lVert z_i - e_j \rVert$; the loop becomes $t$
integers. Rounding has no gradient, so the decoder's gradient is copied straight to the encoder
(*straight-through estimator*), and a *commitment* term $\beta \lVert z - \mathrm{sg}[e] \rVert^2$
($\beta = 0.25$) keeps the encoder close to its codes (paper eq. 2; summed per loop in the demo, averaged per
value in the paper profile). The codebook itself is not learned by
gradients: each code moves to the running average (decay 0.99) of the vectors assigned to it, like a
K-means centroid; in the demo (not in the paper profile) a code nobody uses is restarted at a random encoder
output. **Perplexity** (the exponential
of the entropy of code usage) says how many codes are effectively in use.

**Decoder.** conv_block to 32 channels, upsampling + residual blocks back to 128 steps, two convolutions to
the 93 logits. The latent keeps its time axis, which is what later lets us edit it (copy the codes of bar 1
onto bar 5, notebook 06).
""",
}


def explain(name: str) -> str:
    """A textbook-style Markdown description of model ``name`` (shown by notebook 02)."""
    try:
        return _EXPLANATIONS[name].strip()
    except KeyError:
        raise ValueError(f"no description for {name!r}; choose one of {sorted(_EXPLANATIONS)}") from None
