"""A musician's loop in and out: read an 8-bar loop (or a song) from MIDI, write DAW-ready MIDI and WAV stems.

Reading reuses the extractor (:mod:`loopgen.data.midi` + :mod:`loopgen.loops`), so a loop read here is exactly the
array the training data holds. Writing makes one type-1 MIDI file per loop: a conductor track (tempo, 4/4),
a track named "Bass" (GM program 34, channel 1) and a track named "Drums" (channel 10); every track ends exactly
at the end of bar 8 x ``repeats``, so a DAW loops it without a gap. :func:`loop_multitrack` gives the same loop as a
:class:`pypianoroll.Multitrack` (the field's pianoroll object, saved as ``.npz`` for research code).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loopgen import BARS_PER_LOOP, BASS_PITCH_OFFSET, N_COLUMNS, N_DRUM, STEPS_PER_BAR
from loopgen.book import audio
from loopgen.data.midi import MidiRejected, read_notes
from loopgen.data.midi.write import BASS_PROGRAM, DRUM_PITCHES, loop_roll
from loopgen.errors import UserError, shown_name
from loopgen.loops import LoopParams, find_loops, loop_at, song_roll
from loopgen.store.atomic import atomic_path

# One line per rejection reason, in a musician's words.
REASON_MESSAGES = {
    "no_bass": "has no usable bass (a bass-family instrument, GM programs 33-40, with notes between C1 and B7)",
    "no_drums": "has no usable drums (channel 10 notes of the drum map)",
    "time_signature": "is not in 4/4",
    "no_time_signature": "has no time signature (loops need an explicit 4/4)",
    "too_short": "is shorter than 8 bars",
    "unreadable": "is not a readable MIDI file",
    "too_large": "is too large",
    "bad_resolution": "has no usable tick resolution",
    "no_tracks": "has no tracks",
}


@dataclass(frozen=True)
class UserLoop:
    """An 8-bar loop read from a file: the (128, 93) array, where it starts in the song and how long the song is."""

    loop: np.ndarray
    start_bar: int  # 0-based bar of the song where the loop starts
    song_bars: int
    source: str


def read_loop(path: Path | str, start_bar: int | None = None, params: LoopParams = LoopParams()) -> UserLoop:
    """The loop of a MIDI file: a file of 8 bars is the loop; a longer song gives its first extracted loop, or
    the 8 bars from ``start_bar`` (1-based, as a DAW counts). Raises :class:`UserError` with one line."""
    path = Path(path)
    try:
        roll = song_roll(read_notes(path, "fast", params.limits), params)
    except MidiRejected as rejection:
        why = REASON_MESSAGES.get(rejection.reason, rejection.reason)
        detail = f" ({rejection.detail})" if rejection.detail else ""
        raise UserError(f"{shown_name(path.name)} {why}{detail}") from None
    n_bars = len(roll) // STEPS_PER_BAR
    if start_bar is not None:
        if not 1 <= start_bar <= n_bars - BARS_PER_LOOP + 1:
            raise UserError(
                f"--start-bar {start_bar}: {shown_name(path.name)} has {n_bars} bars, so an 8-bar loop starts at bar 1.."
                f"{n_bars - BARS_PER_LOOP + 1}"
            )
        first = start_bar - 1
    elif n_bars == BARS_PER_LOOP:
        first = 0
    else:
        starts = find_loops(roll, params)
        if not starts:
            raise UserError(
                f"{shown_name(path.name)} ({n_bars} bars) holds no 8-bar loop by the extraction rules: choose one with --start-bar"
            )
        first = starts[0]
    loop = np.ascontiguousarray(loop_at(roll, first), dtype=np.uint8)
    for what, columns in (("drums", slice(0, N_DRUM)), ("bass", slice(N_DRUM, N_COLUMNS))):
        if not loop[:, columns].any():
            raise UserError(f"{shown_name(path.name)}: the 8 bars from bar {first + 1} have no {what}")
    return UserLoop(loop, first, n_bars, shown_name(str(path)))


def loop_multitrack(loop: np.ndarray, bpm: float = 120.0, repeats: int = 1, name: str = "loopgen loop"):
    """``loop`` (128, 93) as a :class:`pypianoroll.Multitrack`: resolution 4 steps per quarter note, a "Bass"
    and a "Drums" binary track over the 128 MIDI pitches (the same pitches as :func:`loop_midi`), a downbeat
    every bar."""
    import pypianoroll  # (it imports matplotlib: only when a Multitrack is asked for)

    roll = loop_roll(loop, bpm, repeats)
    bass = np.zeros((len(roll), 128), dtype=bool)
    bass[:, N_DRUM + BASS_PITCH_OFFSET : N_COLUMNS + BASS_PITCH_OFFSET] = roll[:, N_DRUM:]
    drums = np.zeros((len(roll), 128), dtype=bool)
    drums[:, list(DRUM_PITCHES)] = roll[:, :N_DRUM]
    downbeat = np.zeros(len(roll), dtype=bool)
    downbeat[::STEPS_PER_BAR] = True
    return pypianoroll.Multitrack(
        name=name,
        resolution=STEPS_PER_BAR // 4,  # 4/4: four quarter notes a bar
        tempo=np.full(len(roll), float(bpm)),
        downbeat=downbeat,
        tracks=[
            pypianoroll.BinaryTrack(name="Bass", program=BASS_PROGRAM, is_drum=False, pianoroll=bass),
            pypianoroll.BinaryTrack(name="Drums", program=0, is_drum=True, pianoroll=drums),
        ],
    )


def write_loop_npz(loop: np.ndarray, path: Path | str, bpm: float = 120.0, repeats: int = 1) -> Path:
    """Write :func:`loop_multitrack` as pypianoroll's compressed ``.npz`` atomically; return the path."""
    import pypianoroll

    path = Path(path)
    multitrack = loop_multitrack(loop, bpm, repeats, name=path.stem)
    with atomic_path(path, suffix=".npz") as tmp:
        pypianoroll.save(tmp, multitrack)
    return path


def stems(loop: np.ndarray) -> dict[str, np.ndarray]:
    """The loop split into a bass-only and a drums-only loop."""
    bass, drums = np.array(loop, dtype=np.uint8), np.array(loop, dtype=np.uint8)
    bass[:, :N_DRUM] = 0
    drums[:, N_DRUM:] = 0
    return {"bass": bass, "drums": drums}


def write_wavs(
    loop: np.ndarray, stem_path: Path, *, bpm: float, repeats: int, with_stems: bool
) -> dict[str, Path]:
    """``<stem_path>.wav`` (the mix) and with ``with_stems`` ``<stem_path>_bass.wav``, ``_drums.wav``;
    empty without FluidSynth."""
    if not audio.fluidsynth_available():
        return {}
    written = {"mix": audio.write_wav(loop, stem_path.with_suffix(".wav"), tempo=bpm, repeats=repeats)}
    if with_stems:
        for part, part_loop in stems(loop).items():
            written[part] = audio.write_wav(
                part_loop, stem_path.with_name(f"{stem_path.name}_{part}.wav"), tempo=bpm, repeats=repeats
            )
    return {k: v for k, v in written.items() if v is not None}
