"""Training on several processes (GPUs) with PyTorch DistributedDataParallel, started by ``torchrun``.

``torchrun --nproc-per-node N -m loopgen train --model vq_vae --profile paper`` starts N processes; each calls
:func:`init_from_env` (``loopgen.train`` does), which joins the process group (NCCL on CUDA, gloo on CPU) and
pins process ``LOCAL_RANK`` to GPU ``LOCAL_RANK``. Then, in ``loopgen.train.loop.fit``:

* **The same global batch as one process.** Every rank builds the same seeded batch order; each takes its
  contiguous slice of every global batch (:func:`local_slice`). DDP averages the gradients over the ranks, so
  with equal slices one optimiser step equals one step of a single process on the whole batch (exactly, up
  to floating-point summation order; the test compares the prior's weights after several steps). When a batch
  does not split evenly (e.g. a last partial batch), the ranks' gradients still count equally, a small
  deviation from the one-process mean.
* **BatchNorm.** On CUDA, ``TrainSettings.sync_batchnorm`` (default) turns every BatchNorm into
  ``SyncBatchNorm``: statistics over the global batch, as one GPU computes them. ``SyncBatchNorm`` needs a GPU,
  so on CPU (gloo) each rank normalises with its slice's statistics, and the running statistics are rank 0's
  (DDP broadcasts buffers from rank 0 before every forward).
* **The VQ codebook.** The EMA update sums the code counts and the per-code sums of encoder outputs over all
  ranks (:func:`all_reduce_sum_`) before updating, so every rank applies the one update a single process would
  apply to the global batch and the codebooks stay identical. A dead-code restart draws its replacement vectors
  on rank 0 and broadcasts them (:func:`broadcast_`). DDP's buffer broadcast from rank 0 would re-align any drift.
* **Noise.** Each rank re-seeds its torch generator from (seed, epoch, rank) at the start of every epoch, so the
  reparameterisation noise and scheduled-sampling draws differ between ranks (one process draws them for the
  whole batch) and a run resumed at an epoch boundary draws what the uninterrupted run drew (one resumed
  inside an epoch draws fresh noise for the rest of that epoch).
* **Checkpoints.** Only rank 0 writes (:func:`is_main`); every rank reads the same file when resuming. Only rank
  0 validates and shows progress.

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment, or 1) every function here is a no-op.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
from torch import nn


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes checkpoints and shows progress."""
    return rank() == 0


def init_from_env(device: str | None = None) -> torch.device | None:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ...).

    Returns this process's device (``cuda:LOCAL_RANK`` with NCCL when CUDA is there and ``device`` is not
    ``"cpu"``, else CPU with gloo), or None when not started by torchrun with more than one process.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    use_cuda = torch.cuda.is_available() and device != "cpu"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=60)
        )
    return torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")


def local_slice(global_batch: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous share of the indices of one global batch (all of it on one process)."""
    if not active():
        return global_batch
    return torch.tensor_split(global_batch, world_size())[rank()]


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, in place (no-op on one process)."""
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``tensor`` with rank ``src``'s, in place (no-op on one process)."""
    if active():
        dist.broadcast(tensor, src)
    return tensor


def barrier() -> None:
    if active():
        dist.barrier()


def reseed_for_epoch(seed: int, epoch: int) -> None:
    """Give each rank its own noise stream for this epoch (only under DDP; one process keeps its stream)."""
    if active():
        torch.manual_seed((int(seed) * 1_000_003 + int(epoch)) * 1_009 + rank() + 1)


class _LossModule(nn.Module):
    """Lets DDP wrap ``model.training_loss`` (DDP synchronises gradients of what its forward returns)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, kl_beta: float, epoch: float):
        return self.model.training_loss(x, kl_beta=kl_beta, epoch=epoch)


def wrap_for_training(model: nn.Module, device: torch.device, *, sync_batchnorm: bool = True):
    """A callable ``(x, kl_beta, epoch) -> (loss, terms)``: the model itself on one process, DDP on several.

    Under DDP on CUDA with ``sync_batchnorm``, BatchNorm layers of ``model`` are converted in place to
    ``SyncBatchNorm`` (same parameters and buffers, so checkpoints keep their keys).
    """
    if not active():
        return lambda x, kl_beta, epoch: model.training_loss(x, kl_beta=kl_beta, epoch=epoch)
    if device.type == "cuda" and sync_batchnorm:
        for parent in model.modules():
            for child_name, child in parent.named_children():
                if isinstance(child, nn.BatchNorm1d):
                    setattr(parent, child_name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(_LossModule(model), device_ids=device_ids)
