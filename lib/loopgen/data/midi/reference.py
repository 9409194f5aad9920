"""Reference backend: notes exactly as pretty_midi 0.2.x pairs them (the paper's parser).

mido reads the file; pretty_midi's own ``_load_instruments`` pairs the notes. Only the tick -> seconds
map is replaced by the identity, so that notes come out in ticks (the grid is counted in ticks, docs/rules.md
§2.2), and pretty_midi's track-0-only metadata is skipped: time signatures are read here from every
track (§2.1). Slow (pure Python); :mod:`loopgen.data.midi.fast` must agree with it exactly.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import mido
import pretty_midi

from .notes import BASS_PROGRAMS, MidiRejected, NoteTable, ReadLimits


class _TickIdentity:
    """Stands in for pretty_midi's tick -> seconds array: tick ``i`` maps to ``i``."""

    def __getitem__(self, tick: int) -> int:
        return tick


class _TickPrettyMIDI(pretty_midi.PrettyMIDI):
    """pretty_midi with times in ticks; note pairing (``_load_instruments``) is pretty_midi's own."""

    def _load_tempo_changes(self, midi_data) -> None:  # tempo never moves the tick grid
        self._tick_scales = [(0, 1.0)]

    def _update_tick_to_time(self, max_tick) -> None:
        self._PrettyMIDI__tick_to_time = _TickIdentity()

    def _load_metadata(self, midi_data) -> None:  # time signatures are read from every track below
        self.key_signature_changes, self.time_signature_changes = [], []
        self.lyrics, self.text_events = [], []


def _denominator(value: int) -> int:
    return value if value < 2**63 else 0


def read_notes_reference(path: str | os.PathLike, limits: ReadLimits = ReadLimits()) -> NoteTable:
    """Read ``path`` with mido + pretty_midi; raise :class:`MidiRejected` for a refused file."""
    path = Path(path)
    limits.check_file_size(path)
    try:
        midi = mido.MidiFile(filename=path, charset="latin1")
    except Exception as exc:  # noqa: BLE001 - any parse failure is a rejection, never a crash
        raise MidiRejected("unreadable", f"{type(exc).__name__}: {exc}") from None
    tpq = int(midi.ticks_per_beat)

    time_signatures, n_note_on, last_tick = [], 0, -1
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                n_note_on += 1
            elif msg.type == "time_signature":
                time_signatures.append((tick, msg.numerator, _denominator(msg.denominator)))
        if len(track):
            last_tick = max(last_tick, tick)
    limits.check_parsed(int(tpq), int(last_tick), int(n_note_on), path.read_bytes() if last_tick < 0 else None)

    # pretty_midi fails on an empty track (max of an empty list); an empty track holds nothing anyway.
    midi.tracks = [track for track in midi.tracks if len(track)]
    bass = ([], [], [], [])
    drums = ([], [])
    if midi.tracks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = _TickPrettyMIDI(mido_object=midi)
        for index, instrument in enumerate(pm.instruments):
            if instrument.is_drum:
                for note in instrument.notes:
                    drums[0].append(note.start)
                    drums[1].append(note.pitch)
            elif instrument.program in BASS_PROGRAMS:
                for note in instrument.notes:
                    for column, value in zip(bass, (note.start, note.end, note.pitch, index), strict=True):
                        column.append(value)
    return NoteTable.build(tpq, bass=bass, drums=drums, time_signatures=time_signatures)
