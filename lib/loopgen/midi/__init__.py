"""Reading MIDI files into note tables (spec section 2, rule 0).

Two backends return the same :class:`NoteTable` and raise the same :class:`MidiRejected`:
``"reference"`` (mido + pretty_midi 0.2.x, the paper's parser; slow) and ``"fast"`` (a numba-compiled
raw parser that reproduces it; the default). Rejection reason codes are listed in :data:`REASONS`.
"""

from __future__ import annotations

import os

from .notes import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_NOTES,
    DEFAULT_MAX_TICKS,
    DEFAULT_MIN_TICKS_PER_QUARTER,
    REASONS,
    MidiRejected,
    NoteTable,
)

BACKENDS = ("fast", "reference")

__all__ = ["BACKENDS", "REASONS", "MidiRejected", "NoteTable", "read_notes"]


def read_notes(
    path: str | os.PathLike,
    backend: str = "fast",
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_notes: int = DEFAULT_MAX_NOTES,
    max_ticks: int = DEFAULT_MAX_TICKS,
    min_ticks_per_quarter: int = DEFAULT_MIN_TICKS_PER_QUARTER,
) -> NoteTable:
    """The bass and drum notes of one MIDI file, in ticks; raises :class:`MidiRejected`.

    The keyword limits are safety caps (see :class:`loopgen.loops.LoopParams`).
    """
    limits = dict(
        max_file_bytes=max_file_bytes,
        max_notes=max_notes,
        max_ticks=max_ticks,
        min_ticks_per_quarter=min_ticks_per_quarter,
    )
    if backend == "fast":
        from .fast import read_notes_fast

        return read_notes_fast(path, **limits)
    if backend == "reference":
        from .reference import read_notes_reference

        return read_notes_reference(path, **limits)
    raise ValueError(f"unknown MIDI backend {backend!r}; choose one of {BACKENDS}")
