"""What a training run measures on its validation set after every epoch."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from loopgen import LOOP_CELLS
from loopgen.runtime import device as device_mod

EVAL_BATCH = 512


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode and without gradients for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def evaluate_autoencoder(
    model: nn.Module, loops: torch.Tensor, device: torch.device, precision: str = "auto"
) -> dict[str, float]:
    """Validation reconstruction error (Hamming fraction, paper Tables 1-2) and BCE per loop."""
    wrong = 0.0
    bce = 0.0
    with _evaluating(model):
        for start in range(0, len(loops), EVAL_BATCH):
            x = loops[start : start + EVAL_BATCH].to(device).float()
            with device_mod.autocast(device, precision):
                logits = model.reconstruct_logits(x)
            logits = logits.float()
            wrong += float(((logits >= 0).float() != x).float().sum())
            bce += float(nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum"))
    n = len(loops)
    return {"val_recon_error": wrong / (n * LOOP_CELLS), "val_recon": bce / n}


def evaluate_prior(
    model: nn.Module, codes: torch.Tensor, device: torch.device, precision: str = "auto"
) -> dict[str, float]:
    """The prior's next-code cross-entropy and accuracy (teacher forcing) on validation code sequences; a prior
    with an ``evaluate_codes`` method (the masked prior) measures itself."""
    if hasattr(model, "evaluate_codes"):
        return model.evaluate_codes(codes, device, precision)
    loss_sum, correct, count = 0.0, 0.0, 0
    with _evaluating(model):
        for start in range(0, len(codes), EVAL_BATCH):
            c = codes[start : start + EVAL_BATCH].to(device)
            with device_mod.autocast(device, precision):
                logits, _ = model(c[:, :-1])
            logits = logits.float()
            target = c[:, 1:]
            loss_sum += float(
                nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum"
                )
            )
            correct += float((logits.argmax(-1) == target).sum())
            count += target.numel()
    return {"val_loss": loss_sum / count, "val_accuracy": correct / count}
