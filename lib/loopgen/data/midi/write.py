"""The one loop-to-MIDI writer (the appendix of the paper, "How to Play Pianoroll Representation").

A loop array (128 steps x 93 columns, docs/rules.md §1) becomes a type-1 MIDI file at a fixed resolution
(:data:`TICKS_PER_QUARTER`): a conductor track (tempo, 4/4), a track "Bass" (GM program 34, channel 1, velocity 80)
and a track "Drums" (channel 10, velocity 100); every track ends exactly at the end of bar 8 x ``repeats``, so a DAW
loops it without a gap.

* **bass**: column ``c`` is MIDI pitch ``c + 15``; consecutive active steps of one pitch merge into one note,
  because a step grid cannot tell a long note from repeated ones;
* **drums**: each drum column plays one canonical GM note, one step long, at every active step.

Reading the file back with the extractor (docs/rules.md §2) gives the same array. Audio
(:mod:`loopgen.book.audio`), the notebooks, the listening study and the musicians' tools all write through here.
"""

from __future__ import annotations

import io
from pathlib import Path

import mido
import numpy as np

from loopgen import BASS_PITCH_OFFSET, DRUM_CHANNEL, N_COLUMNS, N_DRUM
from loopgen.data.validate import check_loops
from loopgen.store.atomic import atomic_path

TICKS_PER_QUARTER = 480  # fixed resolution: one sixteenth-note step = 120 ticks
STEP_TICKS = TICKS_PER_QUARTER // 4
BASS_CHANNEL = 0
BASS_PROGRAM = 33  # GM "Electric Bass (finger)", 0-based
BASS_VELOCITY = 80
DRUM_VELOCITY = 100
# One canonical General MIDI note per drum column (docs/rules.md §1.2 order), each mapping back to its column.
DRUM_PITCHES = (36, 38, 42, 45, 46, 48, 49, 50, 51)


def bass_notes(roll: np.ndarray) -> list[tuple[int, int, int]]:
    """The bass notes of a (steps, 93) 0/1 roll as (start step, end step (exclusive), MIDI pitch): consecutive
    active steps of one pitch make one note (as the extractor reads them back)."""
    bass = np.asarray(roll)[:, N_DRUM:N_COLUMNS].astype(np.int8)
    edges = np.diff(np.pad(bass, ((1, 1), (0, 0))), axis=0).T  # (84, steps + 1): +1 at a start, -1 at an end
    columns, starts = np.nonzero(edges == 1)  # by column, then by step: the n-th start of a column pairs
    _, ends = np.nonzero(edges == -1)  # with its n-th end
    pitches = columns + N_DRUM + BASS_PITCH_OFFSET
    return list(zip(starts.tolist(), ends.tolist(), pitches.tolist(), strict=True))


def drum_hits(roll: np.ndarray) -> list[tuple[int, int]]:
    """The drum hits of a (steps, 93) 0/1 roll as (step, GM drum note): one canonical note per drum column
    (:data:`DRUM_PITCHES`), one step long, at every active step."""
    columns, steps = np.nonzero(np.asarray(roll)[:, :N_DRUM].T)  # by column, then by step
    return [(step, DRUM_PITCHES[column]) for column, step in zip(columns.tolist(), steps.tolist(), strict=True)]


def _bass_events(roll: np.ndarray, velocity: int) -> list[tuple[int, mido.Message]]:
    events = []
    for start, end, pitch in bass_notes(roll):
        events.append((start * STEP_TICKS, 1, mido.Message("note_on", channel=BASS_CHANNEL, note=pitch,
                                                             velocity=velocity)))
        events.append((end * STEP_TICKS, 0, mido.Message("note_off", channel=BASS_CHANNEL, note=pitch,
                                                           velocity=0)))
    return [(tick, msg) for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1]))]


def _drum_events(roll: np.ndarray, velocity: int) -> list[tuple[int, mido.Message]]:
    events = []
    for step, pitch in drum_hits(roll):
        events.append((step * STEP_TICKS, 1, mido.Message("note_on", channel=DRUM_CHANNEL, note=pitch,
                                                            velocity=velocity)))
        events.append(((step + 1) * STEP_TICKS, 0, mido.Message("note_off", channel=DRUM_CHANNEL, note=pitch,
                                                                  velocity=0)))
    return [(tick, msg) for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1]))]


def _track(name: str, events: list, end_tick: int, head: list | None = None) -> mido.MidiTrack:
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0), *(head or [])])
    now = 0
    for tick, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=end_tick - now))
    return track


def loop_roll(loop: np.ndarray, bpm: float, repeats: int) -> np.ndarray:
    """``loop`` checked, switched on at >= 0.5 and played ``repeats`` times: a bool (128 x repeats, 93) roll."""
    if not np.isfinite(bpm) or bpm <= 0:
        raise ValueError(f"bpm must be positive; got {bpm}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    return np.tile(check_loops(loop, name="loop", one=True, binarize_at=0.5), (int(repeats), 1))


def loop_midi(loop: np.ndarray, bpm: float = 120.0, repeats: int = 1) -> mido.MidiFile:
    """``loop`` (128, 93) as a type-1 :class:`mido.MidiFile`: tempo + 4/4, "Bass" and "Drums" tracks,
    every track ending exactly at bar ``8 * repeats``."""
    roll = loop_roll(loop, bpm, repeats)
    end = len(roll) * STEP_TICKS
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER)
    midi.tracks.append(_track("loopgen loop", [], end, head=[
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0),
        mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
    ]))
    program = mido.Message("program_change", channel=BASS_CHANNEL, program=BASS_PROGRAM, time=0)
    midi.tracks.append(_track("Bass", _bass_events(roll, BASS_VELOCITY), end, head=[program]))
    midi.tracks.append(_track("Drums", _drum_events(roll, DRUM_VELOCITY), end))
    return midi


def write_loop_midi(loop: np.ndarray, path: Path | str, bpm: float = 120.0, repeats: int = 1) -> Path:
    """Write :func:`loop_midi` to ``path`` atomically; return the path."""
    path = Path(path)
    midi = loop_midi(loop, bpm, repeats)
    with atomic_path(path, suffix=".mid") as tmp:
        midi.save(str(tmp))
    return path


def loop_midi_bytes(loop: np.ndarray, bpm: float = 120.0, repeats: int = 1) -> bytes:
    """:func:`loop_midi` as the bytes of a standard MIDI file."""
    buffer = io.BytesIO()
    loop_midi(loop, bpm, repeats).save(file=buffer)
    return buffer.getvalue()
