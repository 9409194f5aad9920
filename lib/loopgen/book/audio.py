"""Loops as MIDI and audio (the paper's appendix, "How to Play Pianoroll Representation").

A loop array (128 steps x 93 columns, docs/rules.md §1) becomes a two-instrument MIDI file:

* **bass** (program 33, velocity 80): column ``c`` is MIDI pitch ``c + 15``; consecutive active steps of
  one pitch merge into one note, because a step grid cannot tell a long note from repeated ones;
* **drums** (General MIDI kit, channel 10, velocity 100): each drum column plays one canonical GM note,
  one step long, at every active step.

The file is written at a fixed resolution (:data:`TICKS_PER_QUARTER`) with one tempo and a 4/4 time
signature, so that reading it back with the extractor (docs/rules.md §2) gives the same array.
Audio is ``scipy.io.wavfile.write(pretty_midi.fluidsynth())`` as in the paper; it needs the FluidSynth
shared library. Without it the audio functions say so once and return ``None``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi

from loopgen import BASS_PITCH_OFFSET, N_COLUMNS, N_DRUM, STEPS_PER_BAR
from loopgen.data.validate import check_loops
from loopgen.store.atomic import atomic_path

log = logging.getLogger(__name__)

TICKS_PER_QUARTER = 480  # fixed resolution: one sixteenth-note step = 120 ticks
STEP_TICKS = TICKS_PER_QUARTER // 4
BASS_PROGRAM = 33  # GM "Electric Bass (finger)", 0-based
BASS_VELOCITY = 80
DRUM_VELOCITY = 100
# One canonical General MIDI note per drum column (docs/rules.md §1.2 order), each mapping back to its column.
DRUM_PITCHES = (36, 38, 42, 45, 46, 48, 49, 50, 51)
DEFAULT_SAMPLE_RATE = 22050

_warned_no_audio = False


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """(start, end_exclusive) of each run of consecutive True values in a 1-D boolean array."""
    padded = np.concatenate(([False], active, [False])).astype(np.int8)
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def loop_to_midi(loop: np.ndarray, tempo: float = 120.0, repeats: int = 1) -> pretty_midi.PrettyMIDI:
    """A loop array as a :class:`pretty_midi.PrettyMIDI` (bass program 33 + GM drum kit), played ``repeats`` times.

    Bass notes merge consecutive active steps of one pitch (also across repeats); drum hits last one step.
    ``loop`` is one (128, 93) loop; probabilities play where they are >= 0.5, NaN is refused.
    """
    if not np.isfinite(tempo) or tempo <= 0:
        raise ValueError(f"tempo must be positive; got {tempo}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    roll = np.tile(check_loops(loop, name="loop", one=True, binarize_at=0.5), (int(repeats), 1))
    pm = pretty_midi.PrettyMIDI(resolution=TICKS_PER_QUARTER, initial_tempo=float(tempo))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    seconds_per_step = 60.0 / float(tempo) / 4.0

    bass = pretty_midi.Instrument(program=BASS_PROGRAM, is_drum=False, name="bass")
    for column in range(N_DRUM, N_COLUMNS):
        pitch = column + BASS_PITCH_OFFSET
        for start, end in _runs(roll[:, column]):
            bass.notes.append(
                pretty_midi.Note(BASS_VELOCITY, pitch, start * seconds_per_step, end * seconds_per_step)
            )

    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    for column, pitch in enumerate(DRUM_PITCHES):
        for step in np.flatnonzero(roll[:, column]).tolist():
            drums.notes.append(
                pretty_midi.Note(DRUM_VELOCITY, pitch, step * seconds_per_step, (step + 1) * seconds_per_step)
            )
    for instrument in (bass, drums):
        instrument.notes.sort(key=lambda note: (note.start, note.pitch))
    pm.instruments.extend([bass, drums])
    return pm


def write_midi(loop: np.ndarray, path: Path | str, tempo: float = 120.0, repeats: int = 1) -> Path:
    """Write ``loop`` as a standard MIDI file at ``path`` (atomically); return the path."""
    path = Path(path)
    pm = loop_to_midi(loop, tempo=tempo, repeats=repeats)
    with atomic_path(path, suffix=".mid") as tmp:
        pm.write(str(tmp))
    return path


@functools.lru_cache(maxsize=1)
def _fluidsynth_problem() -> str | None:
    """None when FluidSynth can synthesise, else why not."""
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth loads the shared library on import)
    except (ImportError, OSError) as err:  # missing module or missing libfluidsynth
        return f"pyfluidsynth/libfluidsynth not usable ({err})"
    if not hasattr(fluidsynth, "Synth"):
        return "the 'fluidsynth' module found is not pyfluidsynth (no Synth class)"
    try:
        synth = fluidsynth.Synth(samplerate=float(DEFAULT_SAMPLE_RATE))
        synth.delete()
    except Exception as err:  # any failure of the C library means "no audio"
        return f"libfluidsynth failed to start ({err})"
    return None


def fluidsynth_available() -> bool:
    """True when ``import fluidsynth`` works and the FluidSynth shared library loads and starts."""
    return _fluidsynth_problem() is None


def _say_no_audio_once() -> None:
    global _warned_no_audio
    if not _warned_no_audio:
        _warned_no_audio = True
        message = (
            f"No audio rendering: {_fluidsynth_problem()}. MIDI files still work; install libfluidsynth3 "
            "(Debian: apt-get install libfluidsynth3) for WAV output."
        )
        log.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def render_audio(
    loop: np.ndarray,
    sf2: Path | str | None = None,
    fs: int = DEFAULT_SAMPLE_RATE,
    tempo: float = 120.0,
    repeats: int = 1,
) -> np.ndarray | None:
    """Synthesise ``loop`` with FluidSynth: a float waveform in [-1, 1] at ``fs`` Hz, or None without FluidSynth.

    ``sf2`` is a SoundFont file; by default pretty_midi's bundled General MIDI font (TimGM6mb).
    """
    if sf2 is not None and not Path(sf2).is_file():
        raise FileNotFoundError(f"SoundFont {sf2} does not exist")
    pm = loop_to_midi(loop, tempo=tempo, repeats=repeats)
    if not fluidsynth_available():
        _say_no_audio_once()
        return None
    if all(len(instrument.notes) == 0 for instrument in pm.instruments):  # an empty loop is silence
        n_steps = np.asarray(loop).shape[0] * repeats
        return np.zeros(round(fs * loop_seconds(n_steps, tempo)), dtype=np.float64)
    font = str(sf2) if sf2 is not None else None
    if "synthesizer" in inspect.signature(pm.fluidsynth).parameters:  # pretty_midi >= 0.2.11
        wave = pm.fluidsynth(fs=fs, synthesizer=font)
    else:  # pragma: no cover - pretty_midi 0.2.10
        wave = pm.fluidsynth(fs=fs, sf2_path=font)
    return np.asarray(wave, dtype=np.float64)


def write_wav(
    loop: np.ndarray,
    path: Path | str,
    sf2: Path | str | None = None,
    fs: int = DEFAULT_SAMPLE_RATE,
    tempo: float = 120.0,
    repeats: int = 1,
) -> Path | None:
    """Render ``loop`` to a 16-bit PCM WAV file at ``path`` (atomically); None when FluidSynth is absent."""
    from scipy.io import wavfile

    wave = render_audio(loop, sf2=sf2, fs=fs, tempo=tempo, repeats=repeats)
    if wave is None:
        return None
    path = Path(path)
    pcm = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16)
    with atomic_path(path, suffix=".wav") as tmp:
        wavfile.write(str(tmp), fs, pcm)
    return path


def play(loop: np.ndarray, tempo: float = 120.0, repeats: int = 2, fs: int = DEFAULT_SAMPLE_RATE) -> Any:
    """An ``IPython.display.Audio`` player for ``loop``, or a Markdown note when audio cannot be rendered."""
    from IPython.display import Audio, Markdown

    wave = render_audio(loop, fs=fs, tempo=tempo, repeats=repeats)
    if wave is None:
        return Markdown(
            "*(No audio here: FluidSynth is not available. Write the loop with `loopgen.book.audio.write_midi` "
            "and open it in any MIDI player.)*"
        )
    return Audio(wave, rate=fs, normalize=False)


def loop_seconds(n_steps: int, tempo: float = 120.0) -> float:
    """Duration in seconds of ``n_steps`` sixteenth-note steps at ``tempo`` (a 128-step loop at 120 BPM: 16 s)."""
    return n_steps * 60.0 / tempo / (STEPS_PER_BAR // 4)
