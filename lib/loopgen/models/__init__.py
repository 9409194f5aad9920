"""The paper's four autoencoders and the LSTM prior over VQ-VAE codes.

``build(name, **kwargs)`` makes one by name: ``ar_lstm_vae``, ``nonar_lstm_vae``, ``cnn_vae``, ``vq_vae``,
``prior``; ``describe(model)`` gives its layer table (output shapes and parameter counts).
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from loopgen.models.base import ContinuousVAE, LoopModel
from loopgen.models.cnn_vae import CNNVAE
from loopgen.models.lstm_vae import ARLSTMVAE, NonARLSTMVAE, teacher_forcing_prob
from loopgen.models.prior import CodePrior
from loopgen.models.vq_vae import VQVAE, VectorQuantiserEMA, perplexity

MODELS: dict[str, type[nn.Module]] = {
    "ar_lstm_vae": ARLSTMVAE,
    "nonar_lstm_vae": NonARLSTMVAE,
    "cnn_vae": CNNVAE,
    "vq_vae": VQVAE,
    "prior": CodePrior,
}
AUTOENCODERS = ("ar_lstm_vae", "nonar_lstm_vae", "cnn_vae", "vq_vae")
LSTM_MODELS = ("ar_lstm_vae", "nonar_lstm_vae")
TITLES = {
    "ar_lstm_vae": "AR LSTM-VAE",
    "nonar_lstm_vae": "NonAR LSTM-VAE",
    "cnn_vae": "CNN-VAE",
    "vq_vae": "VQ-VAE",
    "prior": "LSTM prior",
}

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
    "perplexity",
    "teacher_forcing_prob",
]


def build(name: str, **kwargs) -> nn.Module:
    """A freshly initialised model called ``name`` (see ``MODELS``), with constructor ``kwargs``."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None
    return cls(**kwargs)


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
    pass (the AR decoder runs once per step) and its parameter count.

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
    table = pd.DataFrame(list(rows.values()))
    table["layer"] = ["  " * d + n for n, d in zip(table["layer"], table["depth"], strict=True)]
    total = pd.DataFrame(
        [{"layer": "total", "type": type(model).__name__, "output shape": "", "calls": 1,
          "parameters": count_parameters(model), "depth": 0}]
    )
    return pd.concat([table, total], ignore_index=True).drop(columns="depth")
