"""Pianorolls, code maps, training curves, and the one function that saves figures.

Everything draws on a Matplotlib ``Axes`` (made for you when ``ax`` is None) and works headless.
In a notebook, show a figure before saving it (``display(fig)``): :func:`save_fig` closes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from loopgen import (
    BARS_PER_LOOP,
    BASS_HIGHEST_PITCH,
    BASS_LOWEST_PITCH,
    DRUM_NAMES,
    LOOP_STEPS,
    N_DRUM,
    STEPS_PER_BAR,
)
from loopgen.data.validate import check_loops
from loopgen.store.atomic import atomic_path
from loopgen.store.paths import Paths

DRUM_COLOR = "#c0392b"
BASS_COLOR = "#2e6da4"
LANE_COLOR = "#dddddd"
_CMAP = ListedColormap(["#ffffff", DRUM_COLOR, BASS_COLOR, LANE_COLOR])
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
DPI = 130


def pitch_name(pitch: int) -> str:
    """MIDI pitch -> name with octave, C4 = 60 (e.g. 24 -> 'C1')."""
    return f"{_NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def _bass_range(loop: np.ndarray, pitch_range: tuple[int, int] | None) -> tuple[int, int]:
    if pitch_range is not None:
        low, high = pitch_range
    else:
        used = np.flatnonzero(loop[:, N_DRUM:].any(axis=0)) + BASS_LOWEST_PITCH
        if used.size:
            low, high = int(used.min()) - 3, int(used.max()) + 3
        else:
            low, high = 28, 52  # an empty bass part: show E1-E3, the bass guitar's home
        if high - low < 12:
            pad = (12 - (high - low) + 1) // 2
            low, high = low - pad, high + pad
    return max(low, BASS_LOWEST_PITCH), min(high, BASS_HIGHEST_PITCH)


def pianoroll(
    loop: np.ndarray,
    ax: Axes | None = None,
    title: str | None = None,
    *,
    pitch_range: tuple[int, int] | None = None,
    labels: bool = True,
) -> Axes:
    """Draw one (128, 93) loop like the paper's Figure 1: a labelled drum lane at the bottom, bass above.

    Drums are red cells (one row per component), bass pitches blue, bar lines every 16 steps.
    ``pitch_range`` (lowest, highest MIDI pitch) fixes the bass window; by default it fits the notes. A loop of
    probabilities is drawn where they are >= 0.5 (what :func:`loopgen.metrics.binarize` keeps); NaN is refused.
    """
    on = check_loops(loop, name="loop", one=True, binarize_at=0.5)
    low, high = _bass_range(on, pitch_range)
    bass = on[:, N_DRUM + low - BASS_LOWEST_PITCH : N_DRUM + high - BASS_LOWEST_PITCH + 1]
    image = np.concatenate(
        [
            np.where(on[:, :N_DRUM], 1, 0),
            np.full((LOOP_STEPS, 1), 3),  # the grey lane between drums and bass
            np.where(bass, 2, 0),
        ],
        axis=1,
    ).T  # rows = drum components, lane, pitches (bottom to top)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.6))
    ax.imshow(
        image,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        cmap=_CMAP,
        vmin=0,
        vmax=3,
        extent=(0, LOOP_STEPS, -0.5, image.shape[0] - 0.5),
    )
    for step in range(0, LOOP_STEPS + 1, 4):
        is_bar = step % STEPS_PER_BAR == 0
        ax.axvline(step, color="#333333" if is_bar else "#bbbbbb", lw=0.9 if is_bar else 0.3, zorder=2)
    ax.set_xlim(0, LOOP_STEPS)
    ax.set_xticks([b * STEPS_PER_BAR + STEPS_PER_BAR / 2 for b in range(BARS_PER_LOOP)])
    ax.set_xticklabels([f"bar {b + 1}" for b in range(BARS_PER_LOOP)], fontsize=7)
    ax.tick_params(axis="x", length=0)
    if labels:
        pitch_ticks = [p for p in range(low, high + 1) if p % 12 == 0]
        ax.set_yticks(list(range(N_DRUM)) + [N_DRUM + 1 + p - low for p in pitch_ticks])
        ax.set_yticklabels(list(DRUM_NAMES) + [pitch_name(p) for p in pitch_ticks], fontsize=6)
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def contact_sheet(
    loops: np.ndarray | Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    *,
    pitch_range: tuple[int, int] | None = None,
) -> Figure:
    """A grid of pianorolls, one per loop; drum/pitch labels on the first column only."""
    loops = list(loops)
    if not loops:
        raise ValueError("contact_sheet needs at least one loop")
    if titles is not None and len(titles) != len(loops):
        raise ValueError(f"{len(titles)} titles for {len(loops)} loops")
    ncols = max(1, min(ncols, len(loops)))
    nrows = math.ceil(len(loops) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.6 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(loops):
            title = titles[i] if titles is not None else f"#{i}"
            pianoroll(loops[i], ax=ax, title=title, pitch_range=pitch_range, labels=i % ncols == 0)
        else:
            ax.axis("off")
    fig.tight_layout()
    return fig


def code_map(
    codes: np.ndarray,
    ax: Axes | None = None,
    *,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Axes:
    """Figure 4: the dictionary index k over latent time, one line per loop.

    Dotted lines mark the latent steps where each bar begins, so a loop's repetition (bar 1 = bar 5)
    shows as the same code pattern half-way along.
    """
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[None]
    if codes.ndim != 2 or codes.size == 0:
        raise ValueError(f"codes must have shape (n_loops, latent_steps); got {codes.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.6))
    n, steps = codes.shape
    for i in range(n):
        label = labels[i] if labels is not None else f"loop {i}"
        ax.plot(np.arange(steps), codes[i], marker="o", ms=3, lw=1, label=label)
    if steps % BARS_PER_LOOP == 0:
        for b in range(BARS_PER_LOOP + 1):
            ax.axvline(b * steps / BARS_PER_LOOP - 0.5, color="#999999", lw=0.6, ls=":")
    ax.set_xlim(-0.5, steps - 0.5)
    ax.set_xlabel("latent time step")
    ax.set_ylabel("code index k")
    if n <= 10:
        ax.legend(fontsize=7, loc="upper right", ncol=min(n, 5))
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_history(history: pd.DataFrame, *, title: str = "", paper_value: float | None = None) -> Figure:
    """Training curves of one run as a matplotlib Figure with three panels.

    Left: training loss terms per loop (or the prior's cross-entropy). Middle: validation reconstruction
    error (or the prior's next-code accuracy), with the paper's value as a dashed line when given. Right:
    VQ-VAE codebook use (perplexity, dead codes), or the schedules (KL weight, teacher forcing, learning rate).
    """
    h = history
    if "epoch" not in h or not len(h):
        raise ValueError("empty history: nothing to plot")
    x = h["epoch"].to_numpy()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    is_prior = "accuracy" in h

    ax = axes[0]
    terms = ["loss", "val_loss"] if is_prior else [c for c in ("recon", "kl", "commitment") if c in h]
    for c in terms:
        ax.plot(x, h[c], marker=".", label=c)
    ax.set_ylabel("cross-entropy per code" if is_prior else "per loop (sum over cells)")
    ax.set_yscale("log")
    ax.set_title("training loss", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1]
    if is_prior:
        for c in ("accuracy", "val_accuracy"):
            if c in h:
                ax.plot(x, h[c], marker=".", label=c)
        ax.set_ylabel("next-code accuracy (teacher forcing)")
    elif "val_recon_error" in h:
        ax.plot(x, h["val_recon_error"], marker=".", label="ours (validation)")
        ax.set_yscale("log")
        ax.set_ylabel("Hamming error / (128 x 93)")
    if paper_value is not None:
        ax.axhline(paper_value, color="k", ls="--", lw=1, label=f"paper: {paper_value:.3g}")
    ax.set_title("validation", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[2]
    if "perplexity" in h:
        ax.plot(x, h["perplexity"], marker=".", color="C2", label="perplexity")
        ax.set_ylabel("perplexity (codes in use)")
        twin = ax.twinx()
        twin.plot(x, h["dead_codes"], marker=".", color="C3", label="dead codes")
        twin.set_ylabel("codes unused in the epoch")
        lines = ax.get_lines() + twin.get_lines()
        ax.legend(lines, [line.get_label() for line in lines], fontsize=7)
        ax.set_title("codebook use", fontsize=9)
    else:
        for c, label in (("kl_beta", "KL weight beta"), ("teacher_prob", "teacher forcing p")):
            if c in h:
                ax.plot(x, h[c], marker=".", label=label)
        ax.plot(x, h["lr"] / h["lr"].max(), marker=".", label="learning rate / max")
        ax.set_ylim(-0.05, 1.05)
        ax.set_title("schedules", fontsize=9)
        ax.legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("epoch")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def show(fig: Figure) -> Figure:
    """Show ``fig`` in the notebook once and close it (Jupyter's inline backend shows every figure still open at
    the end of a cell: displaying without closing would show it twice). Returns the closed figure."""
    from IPython.display import display

    display(fig)
    plt.close(fig)
    return fig


def save_fig(
    fig: Figure, filename: str, *, paths: Paths | None = None, folder: Path | str | None = None, dpi: int = DPI
) -> Path:
    """Save ``fig`` as ``figures/<filename>`` (or ``folder/<filename>``), tight and atomic, and close it."""
    if (paths is None) == (folder is None):
        raise ValueError("give exactly one of paths= (figures/) or folder=")
    target = Path(folder) / filename if folder is not None else paths.figure(filename)
    suffix = target.suffix.lstrip(".") or "png"
    try:
        with atomic_path(target, suffix=f".{suffix}") as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=suffix)
    finally:
        plt.close(fig)
    return target
