"""docs/rules.md §2-4 on note tables built in memory (no files)."""

from __future__ import annotations

import numpy as np
import pytest

from loopgen import CRASH, KICK, N_DRUM
from loopgen.data.midi import MidiRejected, NoteTable, ReadLimits
from loopgen.loops import (
    DRUM_MAPS,
    LoopParams,
    assign_splits,
    drum_lookup,
    find_loops,
    song_roll,
    ticks_to_steps,
)

TPQ = 4  # one tick per sixteenth-note step: ticks are steps


def groove_bar(bar: int, crash: bool = True) -> tuple[list, list]:
    """One bar of a steady groove: (bass notes (start, end, pitch), drum hits (tick, pitch)), in steps."""
    o = 16 * bar
    bass = [(o, o + 8, 36), (o + 8, o + 16, 43)]  # 16 bass cells per bar
    drums = [(o, 36), (o + 8, 36), (o + 4, 38), (o + 12, 38)] + [(o + s, 42) for s in range(0, 16, 2)]
    if crash:
        drums.append((o, 49))
    return bass, drums  # 12 or 13 drum cells per bar


def table(bass=(), drums=(), ts=((0, 4, 4),), tpq=TPQ) -> NoteTable:
    bass = list(bass)
    columns = (
        [b[0] for b in bass],
        [b[1] for b in bass],
        [b[2] for b in bass],
        [b[3] if len(b) > 3 else 0 for b in bass],
    )
    drums = list(drums)
    return NoteTable.build(
        tpq, bass=columns, drums=([d[0] for d in drums], [d[1] for d in drums]), time_signatures=ts
    )


def groove(n_bars: int = 8, crash_bars=None) -> tuple[list, list]:
    bass, drums = [], []
    for bar in range(n_bars):
        b, d = groove_bar(bar, crash=crash_bars is None or bar in crash_bars)
        bass += b
        drums += d
    return bass, drums


def test_drum_maps_cover_nine_components_and_drop_others():
    table_ = drum_lookup("default")
    expected = {35: 0, 36: 0, 37: 1, 38: 1, 39: 1, 40: 1, 42: 2, 44: 2, 41: 3, 43: 3, 45: 3, 46: 4, 47: 5}
    expected.update({48: 5, 49: 6, 55: 6, 57: 6, 50: 7, 51: 8, 59: 8})
    for pitch in range(128):
        assert table_[pitch] == expected.get(pitch, -1)
    assert len(DRUM_MAPS["magenta"]) == 9
    assert drum_lookup("magenta")[56] == 1 and table_[56] == -1  # cowbell: snare class in Magenta's map
    with pytest.raises(ValueError):
        drum_lookup("nope")


def test_drum_roll_maps_and_drops_notes():
    bass, drums = groove(8)
    roll = song_roll(table(bass, drums + [(3, 56), (3, 81)]))
    assert roll[3, :N_DRUM].sum() == 0  # cowbell and triangle dropped
    roll_magenta = song_roll(table(bass, drums + [(3, 56)]), LoopParams(drum_map="magenta"))
    assert roll_magenta[3, 1] == 1
    assert roll[0, KICK] == roll[0, CRASH] == 1 and roll[4, 1] == 1 and roll[2, 2] == 1
    assert roll[1, :N_DRUM].sum() == 0  # drums have no length


def test_lowest_bass_pitch_wins_and_pitch_clipping():
    bass, drums = groove(8)
    bass = [b for b in bass if b[0] >= 16]  # bar 0 left for the test notes
    bass += [(0, 4, 40), (2, 6, 30), (6, 8, 23), (8, 10, 108), (10, 12, 24), (12, 14, 107)]
    roll = song_roll(table(bass, drums))
    cols = [np.flatnonzero(roll[s, N_DRUM:]) + 24 for s in range(16)]
    assert [list(c) for c in cols[:6]] == [[40], [40], [30], [30], [30], [30]]
    assert roll[6:10, N_DRUM:].sum() == 0  # 23 and 108 are out of range
    assert roll[10, 9] == 1 and roll[12, 92] == 1  # pitch 24 -> column 9, 107 -> column 92
    assert (roll[:, N_DRUM:].sum(axis=1) <= 1).all()


def test_tick_grid_rounds_half_up():
    # 480 ticks per quarter: a step is 120 ticks
    assert list(ticks_to_steps(np.array([0, 59, 60, 61, 179, 180, 181]), 480)) == [0, 0, 1, 1, 1, 2, 2]
    # 90 ticks per quarter: a step is 22.5 ticks; 11 -> 0.49, 12 -> 0.53, 45 -> 2.0
    assert list(ticks_to_steps(np.array([11, 12, 33, 34, 45]), 90)) == [0, 1, 1, 2, 2]
    # 120 ticks per quarter: step 30 ticks, 15 -> 0.5 -> 1, 45 -> 1.5 -> 2
    assert list(ticks_to_steps(np.array([14, 15, 44, 45]), 120)) == [0, 1, 1, 2]


def test_bass_note_length_rule():
    bass, drums = groove(8)
    bass = [b for b in bass if b[0] >= 16]
    tpq = 480  # step = 120 ticks; test notes in bar 0
    scale = 120
    ticks_bass = [(s * scale, e * scale, p) for s, e, p in bass]
    ticks_bass += [
        (0, 10, 30),
        (2 * scale, 2 * scale + 60, 31),
        (4 * scale, 8 * scale, 32),
        (9 * scale, 9 * scale + 59, 33),
    ]
    ticks_drums = [(t * scale, p) for t, p in drums]
    roll = song_roll(table(ticks_bass, ticks_drums, tpq=tpq))
    low = lambda s: int(np.flatnonzero(roll[s, N_DRUM:])[0] + 24) if roll[s, N_DRUM:].any() else None  # noqa: E731
    assert [low(s) for s in range(11)] == [30, None, 31, None, 32, 32, 32, 32, None, 33, None]


def test_rejections_in_order():
    bass, drums = groove(8)
    with pytest.raises(MidiRejected) as info:
        song_roll(table(bass, drums, ts=((0, 4, 4), (64, 3, 4))))
    assert info.value.reason == "time_signature"
    with pytest.raises(MidiRejected) as info:
        song_roll(table(bass, drums, ts=()))
    assert info.value.reason == "no_time_signature"
    assert song_roll(table(bass, drums, ts=()), LoopParams(allow_missing_time_signature=True)).shape == (
        128,
        93,
    )
    with pytest.raises(MidiRejected) as info:
        song_roll(table([(b[0], b[1], 110) for b in bass], drums))
    assert info.value.reason == "no_bass"
    with pytest.raises(MidiRejected) as info:
        song_roll(table(bass, [(t, 60) for t, _ in drums]))
    assert info.value.reason == "no_drums"
    short_bass, short_drums = groove(7)
    with pytest.raises(MidiRejected) as info:
        song_roll(table(short_bass, short_drums))
    assert info.value.reason == "too_short"
    with pytest.raises(MidiRejected) as info:
        song_roll(table(bass, drums), LoopParams(max_bars=4))
    assert info.value.reason == "too_large"


def test_partial_last_bar_counts_as_a_bar():
    bass, drums = groove(7)
    roll = song_roll(table(bass, drums + [(16 * 7, 42)]))  # one hit at the first step of bar 8
    assert roll.shape == (128, 93)  # 7 bars + 1 step: padded to 8 whole bars
    assert find_loops(roll) == [0]
    with pytest.raises(MidiRejected):
        song_roll(table(bass, drums))  # without that hit: 7 bars, too short


def test_stride_and_every_window():
    bass, drums = groove(12)
    roll = song_roll(table(bass, drums))
    assert find_loops(roll) == [0, 1, 2, 3, 4]
    assert find_loops(roll, LoopParams(stride_bars=2)) == [0, 2, 4]
    assert find_loops(roll, LoopParams(stride_bars=8)) == [0]


def test_hamming_threshold_two_cells_pass_three_fail():
    bass, drums = groove(8)
    base = song_roll(table(bass, drums))
    for extra, expected in ((2, [0]), (3, [])):
        roll = base.copy()
        roll[16 * 4 + 1, N_DRUM + 60 : N_DRUM + 60 + extra] = 1  # bar 5 differs from bar 1 in `extra` cells
        assert find_loops(roll) == expected


def test_window_start_rules():
    bass, drums = groove(9, crash_bars={1})
    roll = song_roll(table(bass, drums))
    assert find_loops(roll) == [1]  # only bar 1 starts with kick + crash
    roll[0, CRASH] = 1
    assert find_loops(roll) == [0, 1]
    roll[16, KICK] = 0
    assert find_loops(roll) == [0]
    no_bass_start = song_roll(table(*groove(8)))
    no_bass_start[0, N_DRUM:] = 0
    assert find_loops(no_bass_start) == []


def test_minimum_cells():
    bass, drums = groove(8)
    roll = song_roll(table(bass, drums))
    n_drum, n_bass = int(roll[:, :N_DRUM].sum()), int(roll[:, N_DRUM:].sum())
    assert find_loops(roll, LoopParams(min_drum_cells=n_drum, min_bass_cells=n_bass)) == [0]
    assert find_loops(roll, LoopParams(min_drum_cells=n_drum + 1)) == []
    assert find_loops(roll, LoopParams(min_bass_cells=n_bass + 1)) == []


def test_first_bass_instrument_only():
    bass, drums = groove(8)
    other = [(s, e, p + 12, 5) for s, e, p in bass] + [(0, 128, 30, 7)]
    both = song_roll(table(bass + other, drums))
    assert both[5, N_DRUM + 30 - 24] == 1  # instrument 7's long low note wins everywhere
    first = song_roll(
        table([(s, e, p, 2) for s, e, p in bass] + other, drums), LoopParams(bass_tracks="first")
    )
    assert first[5, N_DRUM + 36 - 24] == 1 and first[:, N_DRUM + 30 - 24].sum() == 0


def test_params_key_and_validation():
    assert LoopParams().key() == LoopParams().key() and len(LoopParams().key()) == 8
    assert LoopParams(stride_bars=8).key() != LoopParams().key()
    assert LoopParams().as_dict()["hamming_threshold"] == 0.0015
    custom = LoopParams(stride_bars=2, limits=ReadLimits(max_notes=10))
    assert custom.as_dict()["max_notes"] == 10 and "limits" not in custom.as_dict()  # manifests stay flat
    assert LoopParams.from_dict(custom.as_dict()) == custom
    assert LoopParams().key() == "2dfe4fa2"  # existing dataset folders (named by the key) keep their names
    with pytest.raises(ValueError):
        LoopParams(bass_tracks="some")
    with pytest.raises(ValueError):
        LoopParams(drum_map="808")


def test_splits_cut_at_file_boundaries():
    sources = ["a"] * 10 + ["b"] * 70 + ["c"] * 5 + ["d"] * 5 + ["e"] * 10
    labels = assign_splits(sources)
    assert (labels[:80] == "train").all() and (labels[80:90] == "val").all() and (labels[90:] == "test").all()
    # 80 % of 100 falls inside file "b" (loops 10..84): the cut moves to the nearest boundary, 85
    sources = ["a"] * 10 + ["b"] * 75 + ["c"] * 5 + ["d"] * 10
    labels = assign_splits(sources)
    assert (
        list(labels).count("train") == 85
        and list(labels).count("val") == 5
        and list(labels).count("test") == 10
    )
    for name in set(sources):
        assert len(set(labels[np.asarray(sources) == name])) == 1
    assert len(assign_splits([])) == 0
    with pytest.raises(ValueError):
        assign_splits(["a", "b", "a"])


def test_loop_params_read_back_from_either_dict_form():
    import dataclasses

    params = LoopParams(stride_bars=1, limits=ReadLimits(max_file_bytes=1234))
    assert LoopParams.from_dict(params.as_dict()) == params
    assert LoopParams.from_dict(dataclasses.asdict(params)) == params
    assert params.key() != LoopParams().key()


def test_find_loops_refuses_a_roll_of_the_wrong_width():
    with pytest.raises(ValueError, match=r"song roll of shape \(steps, 93\)"):
        find_loops(np.zeros((256, 95), dtype=np.uint8))
