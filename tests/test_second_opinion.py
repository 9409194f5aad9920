"""The second opinion (loopgen.book.second_opinion): MusPy's loop metrics on hand-built loops, by definition."""

from __future__ import annotations

import math
from types import SimpleNamespace

import muspy  # a dependency (pyproject.toml): a missing install fails here rather than skipping
import numpy as np
import pandas as pd
import pytest

from loopgen import BASS_PITCH_OFFSET, N_DRUM, paper, registry
from loopgen.book import baselines, second_opinion
from loopgen.book.evaluation import PaperTable
from loopgen.book.second_opinion import (
    DRUM_PATTERN,
    EMPTY_BEATS,
    GROOVE,
    MEAN,
    NAN_LOOPS,
    PC_ENTROPY,
    PITCHES,
    POLYPHONY,
)
from loopgen.data.midi.write import loop_midi
from loopgen.store.paths import Paths

KICK, SNARE, CLOSED_HAT = 0, 1, 2
C3 = 48


def loop() -> np.ndarray:
    return np.zeros((128, 93), dtype=np.uint8)


def bass(x: np.ndarray, pitch: int, start: int, end: int) -> np.ndarray:
    x[start:end, pitch - BASS_PITCH_OFFSET] = 1
    return x


def kick_on_every_beat() -> np.ndarray:
    x = loop()
    x[::4, KICK] = 1
    return x


def test_a_kick_on_every_beat_is_perfectly_consistent_and_has_no_bass():
    values = second_opinion.loop_metrics(kick_on_every_beat())
    assert values[GROOVE] == 1.0  # every bar's onsets are the same
    assert values[DRUM_PATTERN] == 1.0
    assert values[EMPTY_BEATS] == 0.0
    assert math.isnan(values[POLYPHONY]) and math.isnan(values[PC_ENTROPY])  # MusPy: no bass note, NaN
    assert values[PITCHES] == 0.0


def test_the_music_is_at_four_steps_a_beat_in_four_four():
    music = second_opinion.to_music(bass(kick_on_every_beat(), C3, 0, 8))
    assert music.resolution == 4
    assert [(ts.numerator, ts.denominator) for ts in music.time_signatures] == [(4, 4)]
    drums = next(t for t in music.tracks if t.is_drum)
    assert [n.time for n in drums.notes] == list(range(0, 128, 4)) and {n.duration for n in drums.notes} == {1}
    (note,) = next(t for t in music.tracks if not t.is_drum).notes
    assert (note.time, note.duration, note.pitch) == (0, 8, C3)


def test_drum_pattern_consistency_is_the_larger_of_the_duple_and_triple_rates():
    # Kicks on the beats and hi-hats on the off-beat eighths: on MusPy's triple pattern (at 4 steps a beat, the
    # beat only) half the hits lie, on its duple pattern (every sixteenth at 4 steps a beat) all of them.
    x = kick_on_every_beat()
    x[2::4, CLOSED_HAT] = 1
    music = second_opinion.to_music(x)
    assert muspy.drum_in_pattern_rate(music, "triple") == pytest.approx(0.5)
    assert muspy.drum_in_pattern_rate(music, "duple") == 1.0
    assert second_opinion.loop_metrics(x)[DRUM_PATTERN] == 1.0


def test_groove_consistency_counts_the_onset_differences_of_neighbouring_bars():
    x = kick_on_every_beat()
    x[7 * 16 + 2, SNARE] = 1  # one more onset position in bar 8, between two kicks
    # 8 bars, 7 neighbouring pairs of 16 positions, one position differs (bar 7 against bar 8)
    assert second_opinion.loop_metrics(x)[GROOVE] == pytest.approx(1 - 1 / (7 * 16))


def test_a_note_that_ends_with_the_loop_adds_an_empty_ninth_bar():
    # One bar repeated 8 times, with a hi-hat on its last sixteenth: the last hit ends at step 128, so MusPy
    # sees 9 bars (length // 16 + 1), the 9th empty: 1 - (onsets in bar 8) / 128, as second_opinion.EDGE_NOTE says
    x = kick_on_every_beat()
    x[15::16, CLOSED_HAT] = 1
    onsets_in_bar_8 = 5  # four kicks and the hi-hat
    assert second_opinion.loop_metrics(x)[GROOVE] == pytest.approx(1 - onsets_in_bar_8 / 128)


def test_empty_beat_rate_counts_beats_up_to_the_last_note():
    x = loop()
    x[0, KICK] = 1  # beat 0
    bass(x, C3, 64, 68)  # beat 16, ending on the boundary of beat 17
    # MusPy: 68 // 4 + 1 = 18 beats; beats 0, 16 and 17 (a note ending on its boundary marks it) are not empty
    assert second_opinion.loop_metrics(x)[EMPTY_BEATS] == pytest.approx(1 - 3 / 18)
    # the array: 30 of its 32 beats are silent, more than MusPy counts (check 4 of agreement)
    assert second_opinion.silent_beat_share(x)[0] == pytest.approx(30 / 32)


def test_a_single_bass_note_has_polyphony_one_and_zero_entropy():
    values = second_opinion.loop_metrics(bass(kick_on_every_beat(), C3, 0, 16))
    assert values[POLYPHONY] == 1.0
    assert values[PC_ENTROPY] == 0.0 and math.copysign(1.0, values[PC_ENTROPY]) == 1.0  # not MusPy's -0.0
    assert values[PITCHES] == 1.0


def test_two_bass_pitches_at_once_raise_polyphony_and_entropy():
    x = kick_on_every_beat()
    bass(bass(bass(x, C3, 0, 4), C3 + 7, 0, 4), C3 + 12, 8, 12)  # C3 + G3 together, then C4 alone
    values = second_opinion.loop_metrics(x)
    assert values[POLYPHONY] == pytest.approx((4 * 2 + 4 * 1) / 8)  # pitches sounding / steps with a pitch
    # pitch classes of the three notes: C, G, C
    assert values[PC_ENTROPY] == pytest.approx(-(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3)))
    assert values[PITCHES] == 3.0


def test_an_empty_loop_is_nan_to_muspy_and_counted_not_dropped():
    values = second_opinion.per_loop(np.stack([loop(), bass(kick_on_every_beat(), C3, 0, 16)]))
    assert values[[DRUM_PATTERN, GROOVE, EMPTY_BEATS, POLYPHONY, PC_ENTROPY]].iloc[0].isna().all()
    assert values[PITCHES].iloc[0] == 0.0
    row = second_opinion.summary(values)
    assert row[second_opinion.LOOPS] == 2
    assert row[(POLYPHONY, MEAN)] == 1.0 and row[(POLYPHONY, NAN_LOOPS)] == 1  # the mean of the loop with bass
    assert row[(PITCHES, MEAN)] == 0.5 and row[(PITCHES, NAN_LOOPS)] == 0
    all_empty = second_opinion.summary(second_opinion.per_loop(np.stack([loop(), loop()])))
    assert math.isnan(all_empty[(GROOVE, MEAN)]) and all_empty[(GROOVE, NAN_LOOPS)] == 2


def notes_of(music, is_drum: bool) -> list[tuple[int, int, int, int]]:
    (track,) = [t for t in music.tracks if t.is_drum == is_drum]
    return sorted((n.time, n.pitch, n.duration, n.velocity) for n in track.notes)


def test_the_conversion_gives_the_notes_muspy_reads_from_our_midi_file():
    rng = np.random.default_rng(0)
    for density in (0.02, 0.2):
        x = (rng.random((128, 93)) < density).astype(np.uint8)
        ours = second_opinion.to_music(x)
        theirs = muspy.from_mido(loop_midi(x))  # MusPy's MIDI reader on the file loopgen writes (480 ticks a beat)
        theirs.adjust_resolution(4)
        for is_drum in (False, True):
            assert notes_of(ours, is_drum) == notes_of(theirs, is_drum)


def test_agreement_holds_on_loops_and_fails_when_a_value_is_wrong():
    rng = np.random.default_rng(1)
    x = (rng.random((6, 128, 93)) < 0.03).astype(np.uint8)
    x[0] = 0  # an empty loop
    x[1, :, N_DRUM:] = 0  # drums without bass
    sets = {"a": x[:3], "b": x[3:]}
    measured = {label: second_opinion.per_loop(loops) for label, loops in sets.items()}
    claims = second_opinion.agreement(sets, measured)
    assert len(claims) == 4 and all(c.holds for c in claims), claims
    wrong = {label: frame.copy() for label, frame in measured.items()}
    wrong["b"].loc[0, PITCHES] += 1
    wrong["b"].loc[1, DRUM_PATTERN] = 0.5
    verdicts = [c.holds for c in second_opinion.agreement(sets, wrong)]
    assert verdicts == [False, True, False, True]


def _fake_run(tmp_path):
    return SimpleNamespace(profile=SimpleNamespace(name="smoke"), paths=Paths(tmp_path), seed=0)


def test_one_companion_row_per_row_of_table_3(tmp_path, capsys):
    groups = {name: SimpleNamespace(loops=np.stack([kick_on_every_beat(), bass(loop(), C3, 0, 4)]))
              for name in (registry.TRAINING_SET, *registry.continuous(), "vq_vae_argmax", "vq_vae_temp1")}
    train = np.stack([bass(kick_on_every_beat(), C3, 0, 16)] * 3)
    sets = second_opinion.table3_loop_sets(groups, train, seed=0)
    # the rows musical_metrics_table makes: each group's paper label, then the shuffled-bars baseline
    labels = [paper.GROUP_LABELS[name] for name in groups]
    assert list(sets) == [*labels, baselines.SHUFFLED_BARS]
    assert np.array_equal(sets[baselines.SHUFFLED_BARS], baselines.shuffle_bars(train, 0))
    ours = pd.DataFrame({"HD": 0.0}, index=labels)
    trivial = pd.DataFrame({"HD": 0.0}, index=[baselines.SHUFFLED_BARS])
    table3 = PaperTable("table3_musical_metrics", "Table 3: musical metrics", ours, ours, [], baselines=trivial)
    opinion = second_opinion.companion(_fake_run(tmp_path), table3, sets)
    assert list(opinion.table.index) == [*labels, baselines.SHUFFLED_BARS]
    assert opinion.stem == "table3_second_opinion" and opinion.title.startswith("Table 3, a second opinion")
    assert (opinion.table[second_opinion.LOOPS] == [2] * len(labels) + [3]).all()
    text = (tmp_path / "figures" / "table3_second_opinion.md").read_text()
    assert "Not in the paper" in text and f"MusPy {muspy.__version__}" in text
    csv = pd.read_csv(tmp_path / "figures" / "table3_second_opinion.csv", index_col=0)
    assert list(csv.index) == [*labels, baselines.SHUFFLED_BARS]
    assert "groove consistency (muspy)" in csv.columns and "groove consistency (NaN loops)" in csv.columns
    assert (csv["all metrics (paper)"] == "not in the paper").all()  # every table has the paper's column
    second_opinion.check(opinion)
    assert "agrees with our metrics on all 4 checks" in capsys.readouterr().out


def test_one_companion_row_per_row_of_table_7_and_a_missing_row_is_an_error(tmp_path):
    labels = ["Training set", "VQ-VAE + masked prior (temp 1)"]
    sets = second_opinion.table7_loop_sets({label: SimpleNamespace(loops=kick_on_every_beat()[None])
                                            for label in labels})
    ours = pd.DataFrame({"HD": 0.0}, index=labels)
    table7 = PaperTable("table7_masked_prior", "Table 7 (not in the paper): a masked prior", ours, ours, [])
    opinion = second_opinion.companion(_fake_run(tmp_path), table7, sets)
    assert list(opinion.table.index) == labels and opinion.stem == "table7_second_opinion"
    assert (tmp_path / "figures" / "table7_second_opinion.csv").is_file()
    with pytest.raises(ValueError, match="no loops for the rows"):
        second_opinion.companion(_fake_run(tmp_path), table7, {labels[0]: sets[labels[0]]})


def test_check_raises_when_a_check_fails():
    bad = second_opinion.SecondOpinion("table3_second_opinion", "Table 3, a second opinion", pd.DataFrame(),
                                       pd.DataFrame(), [], claims=[second_opinion.claim("a wrong claim", False)])
    with pytest.raises(AssertionError, match="disagree"):
        second_opinion.check(bad)


def test_rows_of_many_loops_are_a_seeded_sample():
    from loopgen.book import second_opinion as so

    loops = np.zeros((50, 128, 93), dtype=np.uint8)
    loops[:, 0, 0] = 1
    loops[np.arange(50), 1, 9 + np.arange(50) % 84] = 1
    assert so.sample_rows(loops, 0, limit=60) is loops
    a, b, c = so.sample_rows(loops, 0, limit=10), so.sample_rows(loops, 0, limit=10), so.sample_rows(loops, 1, limit=10)
    assert len(a) == 10 and np.array_equal(a, b) and not np.array_equal(a, c)
