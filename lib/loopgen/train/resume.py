"""Resume: the state of a run in progress, its checkpoint, and Ctrl-C.

A run writes its checkpoint every ``checkpoint_every`` epochs, at the end of the run and of the call, every
``checkpoint_minutes`` (also inside an epoch) and on Ctrl-C. It holds the model, AdamW's state, the
learning-rate schedule, fp16's gradient scaler, the RNG states and the history; one written inside an epoch also
holds the steps done and the epoch's running sums (``partial``). So a killed or interrupted run resumes where it
stopped and ends, bit for bit, as the uninterrupted run would. A finished checkpoint is reused, not retrained,
unless the run is forced.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from loopgen.models import perplexity
from loopgen.runtime import distributed
from loopgen.train.checkpoint import (
    CHECKPOINT_FORMAT,
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from loopgen.train.run import TrainingRun


@dataclass
class TrainState:
    """A run in progress: what its checkpoint holds."""

    model: nn.Module
    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler  # fp16's loss scaling (disabled in the other precisions)
    history: dict[str, list] = field(default_factory=dict)
    epoch: int = 0  # epochs done
    finished: bool = False
    best: dict | None = None  # keep_best: {"loss", "epoch", "model"} of the best validated epoch so far
    partial: dict = field(default_factory=dict)  # a checkpoint written inside an epoch: steps done, sums
    saved_at: float = 0.0  # time.perf_counter() of the last checkpoint
    stopped_at: int = 0  # the step inside an epoch a Ctrl-C's checkpoint was written at
    kept_epoch: int | None = None  # a finished run: the epoch whose weights the model holds (keep_best: the best)


def restore(run: TrainingRun, state: TrainState) -> None:
    """Load the run's checkpoint, when there is one (``force`` deletes it first), into ``state``.

    Read to the CPU, then each piece goes where it belongs: the weights and AdamW's moments to the model's
    device (``load_state_dict`` copies them), AdamW's step counters where torch keeps them (CPU numbers for the
    multi-tensor AdamW, the parameters' device for the fused one), the RNG states are CPU tensors, the running
    code counts go to the training device when the epoch resumes.
    """
    if run.force and distributed.is_main():
        run.checkpoint.unlink(missing_ok=True)
    distributed.barrier()  # under DDP no rank looks for the checkpoint before rank 0 has removed it
    if not run.checkpoint.exists():
        return
    ckpt = read_checkpoint(run.checkpoint, "cpu")
    if ckpt.get("key") != run.key or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise RuntimeError(f"{run.checkpoint} does not hold the run it is named after; delete it or pass force=True")
    state.model.load_state_dict(ckpt["model"])
    state.history = {k: list(v) for k, v in ckpt["history"].items()}
    state.epoch, state.finished = int(ckpt["epoch"]), bool(ckpt["finished"])
    if state.finished:
        state.kept_epoch = ckpt.get("best_epoch") or state.epoch
        return
    load_optimiser_state(state.optimiser, ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    if state.scaler.is_enabled():  # fp16: the loss scale and its count of clean steps
        state.scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"], run.device)
    state.best = ckpt.get("best")
    state.partial = ckpt.get("partial") or {}


def load_optimiser_state(optimiser: torch.optim.Optimizer, state: dict) -> None:
    """Load a saved AdamW state into ``optimiser``, which keeps its own implementation: torch's
    ``load_state_dict`` would take the saved groups' ``fused``/``foreach`` flags too, so a checkpoint written
    by the fused AdamW on a CPU would turn the multi-tensor one of a device without fused kernels fused."""
    saved_groups = state["param_groups"]
    if len(saved_groups) == len(optimiser.param_groups):  # otherwise torch's own error says what differs
        own = ("fused", "foreach", "capturable")
        saved_groups = [
            {**saved, **{k: now[k] for k in own if k in now}}
            for saved, now in zip(saved_groups, optimiser.param_groups, strict=True)
        ]
    optimiser.load_state_dict({**state, "param_groups": saved_groups})


def save(run: TrainingRun, state: TrainState, epochs_done: int, finished: bool, partial: dict | None = None) -> None:
    """Write the run's checkpoint (under DDP only rank 0 writes); ``partial``: inside an epoch, its progress.
    Every rank restarts its checkpoint clock, so that :func:`overdue` does not fire on every later step of the
    ranks that do not write."""
    if not distributed.is_main():
        state.saved_at = time.perf_counter()
        return
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "key": run.key,
        "name": run.name,
        "config": dict(state.model.config),
        "settings": asdict(run.recipe),
        "meta": run.meta,
        "seed": int(run.seed),
        "epoch": epochs_done,
        "total_epochs": run.epochs,
        "finished": finished,
        "best_epoch": None if state.best is None else state.best["epoch"],
        "best": None if finished else state.best,
        "model": state.model.state_dict(),
        "optimizer": state.optimiser.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "rng": rng_state(run.device),
        "history": state.history,
        **({"scaler": state.scaler.state_dict()} if state.scaler.is_enabled() else {}),
        **({"partial": partial} if partial is not None else {}),
    }
    save_checkpoint(checkpoint, run.checkpoint)
    state.saved_at = time.perf_counter()


def overdue(run: TrainingRun, state: TrainState) -> bool:
    """Whether ``checkpoint_minutes`` have passed since the last checkpoint (never when it is 0 or None)."""
    minutes = run.recipe.checkpoint_minutes
    return bool(minutes) and time.perf_counter() - state.saved_at >= 60 * minutes


def due_after(run: TrainingRun, state: TrainState, epoch: int, last: int) -> bool:
    """Whether the end of epoch ``epoch`` (0-based) writes a checkpoint: every ``checkpoint_every`` epochs, the
    last epoch of the run and of this call (``last``), and whenever :func:`overdue`."""
    every = max(1, int(run.recipe.checkpoint_every))
    return (epoch + 1) % every == 0 or epoch + 1 in (run.epochs, last) or overdue(run, state)


def stop_here(run: TrainingRun, where: str) -> None:
    """Say where the checkpoint of an interrupted run stands, then raise ``KeyboardInterrupt``."""
    print(f"{run.name}: interrupted; checkpoint {run.checkpoint} holds the run up to {where}; "
          "the same call again resumes there", file=sys.stderr, flush=True)
    raise KeyboardInterrupt


class EpochSums:
    """An epoch's running sums of the loss terms (each times its batch size), the VQ code counts and the examples
    seen, kept on the training device (one host sync an epoch, not a step). A checkpoint inside the epoch saves
    them (:meth:`saved`) and the resumed epoch starts from them."""

    def __init__(self, device: torch.device, partial: dict) -> None:
        self.dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        self.sums = {k: torch.tensor(float(v), dtype=self.dtype, device=device)
                     for k, v in partial.get("sums", {}).items()}
        counts = partial.get("counts")
        self.counts = None if counts is None else counts.to(device, self.dtype)
        self.n_seen = int(partial.get("n_seen", 0))

    def add(self, loss: torch.Tensor, terms: dict, n: int) -> None:
        """Add one batch of ``n`` examples: its loss and terms (the VQ-VAE's ``code_counts`` are counted)."""
        self.n_seen += n
        for term, value in {"loss": loss, **terms}.items():
            value = value.detach().to(self.dtype)
            if term == "code_counts":
                self.counts = value if self.counts is None else self.counts + value
            else:  # float64: the same sums as Python floats would give
                self.sums[term] = value * n if term not in self.sums else self.sums[term] + value * n

    def saved(self, steps_done: int) -> dict:
        """What a checkpoint inside the epoch holds (a host sync: only when saving)."""
        return {"step_in_epoch": steps_done, "sums": {k: float(v) for k, v in self.sums.items()},
                "counts": None if self.counts is None else self.counts.double().cpu(), "n_seen": self.n_seen}

    def means(self) -> dict[str, float]:
        """The epoch's mean of every term, and the VQ-VAE's code perplexity and dead codes. Under DDP the sums,
        code counts and example count are summed over all ranks first (the history then describes the global
        batches, not rank 0's slices)."""
        sums, counts, n_seen = self.sums, self.counts, self.n_seen
        if distributed.active() and sums:
            names = sorted(sums)
            stacked = torch.stack([sums[k].reshape(()) for k in names] + [sums[names[0]].new_tensor(float(n_seen))])
            distributed.all_reduce_sum_(stacked)
            if counts is not None:
                counts = distributed.all_reduce_sum_(counts.clone())
            sums, n_seen = dict(zip(names, stacked[:-1], strict=True)), int(round(float(stacked[-1])))
        means = {k: float(v) / n_seen for k, v in sums.items()}
        if counts is not None:
            counts = counts.double().cpu()
            means.update(perplexity=perplexity(counts), dead_codes=int((counts == 0).sum()))
        return means


class StopOnCtrlC:
    """Ctrl-C during a training (SIGINT, also a notebook's "interrupt"): the loop finishes the step it is in,
    writes a checkpoint it can resume from, then raises ``KeyboardInterrupt``. A second Ctrl-C stops at once.
    Installed only in the main thread of a single process (under DDP every rank would have to agree on the
    step; there the ``checkpoint_minutes`` checkpoints are what a restart resumes)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> StopOnCtrlC:
        if threading.current_thread() is threading.main_thread() and not distributed.active():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
            except ValueError:  # not the main interpreter
                self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # the second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
