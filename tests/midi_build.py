"""Write small MIDI files from note lists, with mido (for tests, examples and round trips).

Times are absolute ticks. ``write_tracks`` takes raw events, so that tests can build any quirk
(same-tick note-offs, program changes, running status is left to mido's writer).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import mido

from loopgen import DRUM_CHANNEL

Event = tuple[int, mido.Message | mido.MetaMessage]  # (absolute tick, message without time)


def write_tracks(
    path: str | os.PathLike, tracks: Sequence[Iterable[Event]], *, ticks_per_quarter: int = 480
) -> Path:
    """Write one MIDI track per list of ``(tick, message)`` events (stably sorted by tick)."""
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_quarter)
    for events in tracks:
        track = mido.MidiTrack()
        now = 0
        for tick, message in sorted(events, key=lambda event: event[0]):
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(path)
    return path


def note_events(notes: Iterable[tuple[int, int, int]], channel: int, velocity: int = 100) -> list[Event]:
    """Note-on / note-off events of ``(start_tick, end_tick, pitch)`` notes; offs first at a tick."""
    offs, ons = [], []
    for start, end, pitch in notes:
        ons.append((start, mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)))
        offs.append((end, mido.Message("note_off", note=pitch, velocity=0, channel=channel)))
    return offs + ons


def song_tracks(
    *,
    bass: Iterable[tuple[int, int, int]] = (),
    drums: Iterable[tuple[int, int]] = (),
    ticks_per_quarter: int = 480,
    time_signatures: Iterable[tuple[int, int, int]] = ((0, 4, 4),),
    bass_program: int = 33,
    tempo_changes: Iterable[tuple[int, int]] = (),
) -> list[list[Event]]:
    """A conductor track (time signatures ``(tick, num, den)``, tempos ``(tick, bpm)``), a bass track
    of ``(start, end, pitch)`` notes and a drum track of ``(tick, pitch)`` hits (a 32nd note long)."""
    conductor: list[Event] = [
        (tick, mido.MetaMessage("time_signature", numerator=num, denominator=den))
        for tick, num, den in time_signatures
    ]
    conductor += [
        (tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))) for tick, bpm in tempo_changes
    ]
    bass_track: list[Event] = [(0, mido.Message("program_change", program=bass_program, channel=0))]
    bass_track += note_events(bass, channel=0)
    hit = max(1, ticks_per_quarter // 8)
    drum_track = note_events(((tick, tick + hit, pitch) for tick, pitch in drums), channel=DRUM_CHANNEL)
    return [conductor, bass_track, drum_track]


def write_song(path: str | os.PathLike, *, ticks_per_quarter: int = 480, **song) -> Path:
    """Write :func:`song_tracks` (same keywords) to ``path``."""
    return write_tracks(
        path, song_tracks(ticks_per_quarter=ticks_per_quarter, **song), ticks_per_quarter=ticks_per_quarter
    )
