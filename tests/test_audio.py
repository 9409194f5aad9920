"""loopgen.book.audio: loop -> MIDI (exact grid), WAV via FluidSynth, and the round trip through the extractor."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest

from loopgen import CRASH, KICK, LOOP_STEPS, N_COLUMNS, N_DRUM
from loopgen.book import audio
from loopgen.data.midi import write as midi_write
from loopgen.data.midi.write import write_loop_midi


def make_valid_loop(seed: int = 0) -> np.ndarray:
    """A loop satisfying docs/rules.md §3: kick+crash and bass at step 0, bars 1 and 5 equal, >= 32 cells each.

    Bass is monophonic (the extractor keeps only the lowest pitch) and has repeated and long notes.
    """
    rng = np.random.default_rng(seed)
    bar = np.zeros((16, N_COLUMNS), dtype=bool)
    bar[::4, KICK] = True
    bar[4::8, 1] = True  # snare on 2 and 4
    bar[::2, 2] = True  # closed hi-hat
    bar[14, 4] = True  # open hi-hat
    loop = np.tile(bar, (8, 1))
    loop[0, CRASH] = True
    loop[64, CRASH] = True
    loop[16 * 7 + 12, 3] = True  # a tom fill in the last bar
    loop[16 * 7 + 13, 5] = True
    loop[16 * 7 + 15, 7] = True
    loop[32, 8] = True  # ride
    # Bass: one pitch per step; runs of different lengths, repeated pitches separated by rests.
    pitches = 9 + np.array([12, 12, 19, 24, 15, 31, 12, 7])  # columns, i.e. MIDI 36.. for bar roots
    for b in range(8):
        root = pitches[b]
        loop[16 * b : 16 * b + 3, root] = True  # a three-step note
        loop[16 * b + 4, root] = True  # repeated one-step notes
        loop[16 * b + 6, root] = True
        loop[16 * b + 8 : 16 * b + 12, root + int(rng.integers(1, 8))] = True
        loop[16 * b + 14, root + 12] = True
    # The repetition rule compares "bar 1 and bar 5" of the window; satisfy it whether bars count from 0 or 1.
    loop[16 * 4 : 16 * 5] = loop[0:16]
    loop[16 * 5 : 16 * 6] = loop[16 * 1 : 16 * 2]
    return loop


def test_valid_loop_fixture_obeys_loop_rules() -> None:
    loop = make_valid_loop()
    assert loop.shape == (LOOP_STEPS, N_COLUMNS)
    assert loop[0, KICK] and loop[0, CRASH] and loop[0, N_DRUM:].any()
    assert np.array_equal(loop[16:32], loop[80:96]) and np.array_equal(loop[0:16], loop[64:80])
    assert loop[:, :N_DRUM].sum() >= 32 and loop[:, N_DRUM:].sum() >= 32
    assert (loop[:, N_DRUM:].sum(axis=1) <= 1).all()


def test_loop_to_midi_notes_follow_the_appendix() -> None:
    loop = np.zeros((LOOP_STEPS, N_COLUMNS), dtype=bool)
    loop[0:4, 9 + 21] = True  # MIDI 45 (column 30 -> 30 + 15), steps 0-3: one note
    loop[6, 9 + 21] = True  # a separate note of the same pitch
    loop[[0, 1, 2], KICK] = True  # drum hits never merge
    loop[5, CRASH] = True
    pm = audio.loop_to_midi(loop, tempo=120.0)
    bass, drums = pm.instruments
    assert (bass.program, bass.is_drum) == (33, False)
    assert drums.is_drum
    step = 0.125  # seconds per sixteenth at 120 BPM
    assert [(n.pitch, n.velocity) for n in bass.notes] == [(45, 80), (45, 80)]
    np.testing.assert_allclose([(n.start, n.end) for n in bass.notes], [(0, 4 * step), (6 * step, 7 * step)])
    assert sorted((n.pitch, n.velocity, round(n.start / step), round(n.end / step)) for n in drums.notes) == [
        (36, 100, 0, 1),
        (36, 100, 1, 2),
        (36, 100, 2, 3),
        (49, 100, 5, 6),
    ]
    assert [(ts.numerator, ts.denominator, ts.time) for ts in pm.time_signature_changes] == [(4, 4, 0.0)]


def test_every_drum_column_maps_to_its_gm_note() -> None:
    loop = np.zeros((LOOP_STEPS, N_COLUMNS), dtype=bool)
    for column in range(N_DRUM):
        loop[column, column] = True
    drums = next(i for i in audio.loop_to_midi(loop).instruments if i.is_drum)
    assert [n.pitch for n in sorted(drums.notes, key=lambda n: n.start)] == [
        36,
        38,
        42,
        45,
        46,
        48,
        49,
        50,
        51,
    ]


def test_repeats_and_tempo_scale_time_and_merge_across_the_seam() -> None:
    loop = np.zeros((LOOP_STEPS, N_COLUMNS), dtype=bool)
    loop[0, KICK] = True
    loop[0, 9] = True
    loop[LOOP_STEPS - 1, 9] = True  # last step + first step of the next repeat: one note when repeated
    pm = audio.loop_to_midi(loop, tempo=90.0, repeats=3)
    step = 60.0 / 90.0 / 4
    kicks = [n.start for n in pm.instruments[1].notes]
    # a MIDI file holds the tempo in whole microseconds a quarter note (666,667 at 90 BPM): 5e-7 relative
    np.testing.assert_allclose(kicks, [0.0, 128 * step, 256 * step], rtol=1e-6)
    bass = [(round(n.start / step), round(n.end / step)) for n in pm.instruments[0].notes]
    assert bass == [(0, 1), (127, 129), (255, 257), (383, 384)]
    assert audio.loop_seconds(128, 120.0) == pytest.approx(16.0)


def test_float_loops_are_binarised_and_bad_shapes_rejected() -> None:
    probs = np.full((LOOP_STEPS, N_COLUMNS), 0.2)
    probs[0, KICK] = 0.5
    probs[3, 9 + 40] = 0.97
    pm = audio.loop_to_midi(probs)
    assert len(pm.instruments[0].notes) == 1 and len(pm.instruments[1].notes) == 1
    with pytest.raises(ValueError, match="shape"):
        audio.loop_to_midi(np.zeros((128, 92)))
    with pytest.raises(ValueError, match="shape"):
        audio.loop_to_midi(np.zeros(128 * 93))
    with pytest.raises(ValueError, match="NaN"):
        audio.loop_to_midi(np.full((128, 93), np.nan))
    with pytest.raises(ValueError, match="repeats"):
        audio.loop_to_midi(probs, repeats=0)


def test_written_file_is_on_an_exact_tick_grid(tmp_path) -> None:
    loop = make_valid_loop()
    path = write_loop_midi(loop, tmp_path / "sub" / "loop.mid", bpm=97.0)
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    midi = mido.MidiFile(path)
    assert midi.ticks_per_beat == midi_write.TICKS_PER_QUARTER
    tick = 0
    note_ticks, signatures, tempi = [], [], []
    for message in mido.merge_tracks(midi.tracks):
        tick += message.time
        if message.type in {"note_on", "note_off"}:
            note_ticks.append(tick)
        elif message.type == "time_signature":
            signatures.append((message.numerator, message.denominator))
        elif message.type == "set_tempo":
            tempi.append(message.tempo)
    assert signatures and set(signatures) == {(4, 4)}
    assert len(tempi) == 1 and mido.tempo2bpm(tempi[0]) == pytest.approx(97.0, rel=1e-5)
    assert all(t % midi_write.STEP_TICKS == 0 for t in note_ticks)
    # Every active cell is recoverable from the file read back by pretty_midi.
    pm = pretty_midi.PrettyMIDI(str(path))
    grid = np.zeros_like(loop)
    for instrument in pm.instruments:
        for note in instrument.notes:
            start, end = pm.time_to_tick(note.start) // 120, pm.time_to_tick(note.end) // 120
            if instrument.is_drum:
                grid[start, midi_write.DRUM_PITCHES.index(note.pitch)] = True
            else:
                grid[start:end, note.pitch - 15] = True
    assert np.array_equal(grid, loop)


def _extractor_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("loopgen.data.midi", "loopgen.loops"))


@pytest.mark.skipif(
    not _extractor_available(), reason="the extractor (loopgen.data.midi, loopgen.loops) is not there yet"
)
@pytest.mark.parametrize("backend", ["reference", "fast"])
@pytest.mark.parametrize("tempo", [120.0, 131.0])
def test_round_trip_through_the_extractor(tmp_path, backend: str, tempo: float) -> None:
    from loopgen import loops as loops_mod
    from loopgen.data import midi as midi_mod

    loop = make_valid_loop(seed=3)
    path = write_loop_midi(loop, tmp_path / "round_trip.mid", bpm=tempo)
    params = loops_mod.LoopParams()
    roll = loops_mod.song_roll(midi_mod.read_notes(path, backend=backend), params)
    assert roll.shape == loop.shape
    assert np.array_equal(np.asarray(roll).astype(bool), loop)
    assert loops_mod.find_loops(roll, params) == [0]
    # played twice, the file is a 16-bar song whose loops start at bars 0 and 8
    twice = write_loop_midi(loop, tmp_path / "twice.mid", bpm=tempo, repeats=2)
    roll2 = loops_mod.song_roll(midi_mod.read_notes(twice, backend=backend), params)
    assert np.array_equal(np.asarray(roll2).astype(bool), np.tile(loop, (2, 1)))
    assert {0, 8} <= set(loops_mod.find_loops(roll2, params))


def test_fluidsynth_probe_is_a_bool() -> None:
    assert isinstance(audio.fluidsynth_available(), bool)


@pytest.mark.skipif(not audio.fluidsynth_available(), reason="FluidSynth (libfluidsynth) is not installed")
def test_render_and_write_wav(tmp_path) -> None:
    from scipy.io import wavfile

    loop = make_valid_loop()
    wave = audio.render_audio(loop, fs=8000, tempo=120.0, repeats=1)
    assert wave is not None and wave.ndim == 1
    assert wave.shape[0] >= 16 * 8000  # 16 s of music plus the release tail
    assert np.abs(wave).max() == pytest.approx(1.0, abs=1e-6)
    path = audio.write_wav(loop, tmp_path / "loop.wav", fs=8000)
    rate, pcm = wavfile.read(path)
    assert rate == 8000 and pcm.dtype == np.int16 and pcm.shape[0] >= 16 * 8000
    silent = audio.render_audio(np.zeros((LOOP_STEPS, N_COLUMNS)), fs=8000)
    assert silent is not None and silent.shape == (16 * 8000,) and not silent.any()
    with pytest.raises(FileNotFoundError):
        audio.render_audio(loop, sf2=tmp_path / "missing.sf2")
    bundled = Path(pretty_midi.__file__).with_name("TimGM6mb.sf2")
    if bundled.is_file():  # an explicit SoundFont gives the same sound as the default one
        explicit = audio.render_audio(loop, sf2=bundled, fs=8000)
        assert explicit is not None and explicit.shape == wave.shape


def test_without_fluidsynth_audio_is_none_with_one_warning(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(audio, "fluidsynth_available", lambda: False)
    monkeypatch.setattr(audio, "_warned_no_audio", False)
    loop = make_valid_loop()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert audio.render_audio(loop) is None
        assert audio.write_wav(loop, tmp_path / "x.wav") is None
        note = audio.play(loop)
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1
    assert not (tmp_path / "x.wav").exists()
    assert "FluidSynth" in note.data


@pytest.mark.skipif(not audio.fluidsynth_available(), reason="FluidSynth (libfluidsynth) is not installed")
def test_play_returns_an_audio_widget() -> None:
    from IPython.display import Audio

    player = audio.play(make_valid_loop(), repeats=1, fs=8000)
    assert isinstance(player, Audio)
