"""Loops as audio (the paper's appendix, "How to Play Pianoroll Representation").

A loop is written as MIDI by the one writer, :mod:`loopgen.data.midi.write` (bass program 34, GM drums; the
extractor reads it back to the same array). Audio is ``scipy.io.wavfile.write(pretty_midi.fluidsynth())`` as in the paper; it needs the FluidSynth
shared library. Without it the audio functions say so once and return ``None``.
"""

from __future__ import annotations

import functools
import inspect
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi

from loopgen import STEPS_PER_BAR
from loopgen.data.midi.write import loop_midi_bytes
from loopgen.store.atomic import atomic_path

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE = 22050

_warned_no_audio = False


def loop_to_midi(loop: np.ndarray, tempo: float = 120.0, repeats: int = 1) -> pretty_midi.PrettyMIDI:
    """The loop's MIDI file (:func:`loopgen.data.midi.write.loop_midi`, the one writer) as pretty_midi reads it,
    for FluidSynth: a "Bass" and a "Drums" instrument, played ``repeats`` times."""
    return pretty_midi.PrettyMIDI(io.BytesIO(loop_midi_bytes(loop, bpm=tempo, repeats=repeats)))


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
            "*(No audio here: FluidSynth is not available. Write the loop with `loopgen.data.midi.write.write_loop_midi` "
            "and open it in any MIDI player.)*"
        )
    return Audio(wave, rate=fs, normalize=False)


def loop_seconds(n_steps: int, tempo: float = 120.0) -> float:
    """Duration in seconds of ``n_steps`` sixteenth-note steps at ``tempo`` (a 128-step loop at 120 BPM: 16 s)."""
    return n_steps * 60.0 / tempo / (STEPS_PER_BAR // 4)
