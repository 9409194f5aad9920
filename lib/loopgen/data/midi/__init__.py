"""Reading MIDI files into note tables (docs/rules.md §2.0).

Two backends return the same :class:`NoteTable` and raise the same :class:`MidiRejected`:
``"reference"`` (mido + pretty_midi 0.2.x, the paper's parser; slow) and ``"fast"`` (a numba-compiled
raw parser that reproduces it; the default). Rejection reason codes are listed in :data:`REASONS`.
"""

from __future__ import annotations

import os

from .notes import REASONS, MidiRejected, NoteTable, ReadLimits, file_format_problem

BACKENDS = ("fast", "reference")

__all__ = ["BACKENDS", "REASONS", "MidiRejected", "NoteTable", "ReadLimits", "read_notes"]


def read_notes(
    path: str | os.PathLike, backend: str = "fast", limits: ReadLimits = ReadLimits()
) -> NoteTable:
    """The bass and drum notes of one MIDI file, in ticks; raises :class:`MidiRejected`.

    ``limits`` are the safety caps (``LoopParams.limits`` when extracting).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown MIDI backend {backend!r}; choose one of {BACKENDS}")
    try:
        with open(path, "rb") as handle:
            problem = file_format_problem(handle.read(14))
    except OSError:
        problem = None  # the backend reports the unreadable file in its own words
    if problem:
        raise MidiRejected("unreadable", problem)
    if backend == "fast":
        from .fast import read_notes_fast

        return read_notes_fast(path, limits)
    if backend == "reference":
        from .reference import read_notes_reference

        return read_notes_reference(path, limits)
    raise ValueError(f"unknown MIDI backend {backend!r}; choose one of {BACKENDS}")
