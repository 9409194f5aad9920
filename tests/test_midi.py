"""Both MIDI backends: same note tables, same rejections (generated files, raw bytes, real files)."""

from __future__ import annotations

import struct
from pathlib import Path

import mido
import numpy as np
import pytest

from loopgen.data.corpus.smf import vlq
from loopgen.data.midi import MidiRejected, NoteTable, ReadLimits, read_notes
from loopgen.loops import song_roll
from loopgen.store.paths import SHARED_DEV_MIDI
from midi_build import note_events, song_tracks, write_song, write_tracks


def read_both(path: Path, **limits) -> NoteTable | str:
    """Read with both backends (``limits``: fields of ReadLimits), check they agree; the table or the reason."""
    results = []
    for backend in ("fast", "reference"):
        try:
            results.append(read_notes(path, backend, ReadLimits(**limits)))
        except MidiRejected as rejection:
            results.append(rejection.reason)
    fast, reference = results
    assert type(fast) is type(reference)
    assert fast == reference, f"{path.name}: fast {fast!r} != reference {reference!r}"
    return fast


def on(note, channel=0, velocity=100):
    return mido.Message("note_on", note=note, velocity=velocity, channel=channel)


def off(note, channel=0):
    return mido.Message("note_off", note=note, velocity=0, channel=channel)


def program(value, channel=0):
    return mido.Message("program_change", program=value, channel=channel)


FOUR_FOUR = (0, mido.MetaMessage("time_signature", numerator=4, denominator=4))


def test_pretty_midi_pairing_rules(tmp_path):
    bass = [
        (0, program(33)),
        (0, on(40)),
        (0, off(40)),  # note-off finding only a same-tick note: pretty_midi drops it
        (10, on(41)),
        (20, on(41)),
        (30, off(41)),  # ends both open 41s
        (40, on(42)),
        (50, on(42)),
        (50, off(42)),  # ends the tick-40 note only; the tick-50 note stays open
        (60, off(42)),  # ... and ends here
        (70, on(43)),
        (80, program(0)),
        (90, off(43)),  # program at the note's END counts: not a bass note
        (95, program(33)),
        (100, on(44, velocity=0)),  # velocity 0 = note-off (spurious here)
        (110, on(45)),
        (120, on(45, velocity=0)),
        (130, on(46)),  # never ended: dropped
    ]
    drums = [(0, on(36, channel=9)), (5, off(36, channel=9)), (0, on(60, channel=9)), (1, off(60, channel=9))]
    second_bass = [(0, program(35, channel=3)), (200, on(30, channel=3)), (210, off(30, channel=3))]
    path = write_tracks(
        tmp_path / "quirks.mid", [[FOUR_FOUR], bass, drums, second_bass], ticks_per_quarter=96
    )
    notes = read_both(path)
    assert isinstance(notes, NoteTable)
    got = sorted(
        zip(notes.bass_start.tolist(), notes.bass_end.tolist(), notes.bass_pitch.tolist(), strict=True)
    )
    assert got == [(10, 30, 41), (20, 30, 41), (40, 50, 42), (50, 60, 42), (110, 120, 45), (200, 210, 30)]
    assert len(set(notes.bass_instrument.tolist())) == 2
    assert sorted(notes.drum_pitch.tolist()) == [36, 60]
    assert notes.ticks_per_quarter == 96
    assert notes.time_signatures.tolist() == [[0, 4, 4]]


def test_time_signatures_from_every_track(tmp_path):
    tracks = song_tracks(bass=[(0, 480, 40)], drums=[(0, 36)], time_signatures=[(0, 4, 4)])
    tracks[1].append((960, mido.MetaMessage("time_signature", numerator=3, denominator=4)))
    notes = read_both(write_tracks(tmp_path / "ts.mid", tracks))
    assert notes.time_signatures.tolist() == [[0, 4, 4], [960, 3, 4]]


def groove_ticks(tpq: int, n_bars: int = 8):
    step = tpq // 4
    bass, drums = [], []
    for bar in range(n_bars):
        o = 16 * bar * step
        bass += [(o, o + 6 * step, 36), (o + 8 * step, o + 15 * step, 38)]
        drums += [(o, 36), (o, 49), (o + 4 * step, 38), (o + 12 * step, 38)]
        drums += [(o + s * step, 42) for s in range(0, 16, 2)]
    return bass, drums


def test_tempo_changes_do_not_move_the_grid(tmp_path):
    bass, drums = groove_ticks(480)
    plain = write_song(tmp_path / "plain.mid", bass=bass, drums=drums)
    tempo = write_song(
        tmp_path / "tempo.mid", bass=bass, drums=drums, tempo_changes=[(0, 90), (1000, 140), (5000, 61)]
    )
    for backend in ("fast", "reference"):
        a, b = read_notes(plain, backend), read_notes(tempo, backend)
        assert a == b
        assert np.array_equal(song_roll(a), song_roll(b))


def test_read_limits(tmp_path):
    bass, drums = groove_ticks(480)
    path = write_song(tmp_path / "song.mid", bass=bass, drums=drums)
    assert isinstance(read_both(path), NoteTable)
    assert read_both(path, max_file_bytes=100) == "too_large"
    assert read_both(path, max_notes=10) == "too_large"
    assert read_both(path, max_ticks=1000) == "too_large"
    assert read_both(path, min_ticks_per_quarter=960) == "bad_resolution"
    with pytest.raises(ValueError):
        read_notes(path, "nope")


# --- raw bytes: every way mido refuses (or accepts) a file, fast must agree -------------------------




def chunk(name: bytes, body: bytes, size: int | None = None) -> bytes:
    return name + struct.pack(">L", len(body) if size is None else size) + body


def smf(*bodies: bytes, tpq: int = 96, n_tracks: int | None = None, header: bytes | None = None) -> bytes:
    n = len(bodies) if n_tracks is None else n_tracks
    head = header if header is not None else struct.pack(">hhh", 1, n, tpq)
    return chunk(b"MThd", head) + b"".join(chunk(b"MTrk", body) for body in bodies)


TS44 = b"\x00\xff\x58\x04\x04\x02\x18\x08"
EOT = b"\x00\xff\x2f\x00"
NOTES = b"\x00\xc0\x21" + b"\x00\x90\x28\x64" + b"\x60\x28\x00" + b"\x00\x99\x24\x64" + b"\x10\x89\x24\x00"


def meta(kind: int, data: bytes) -> bytes:
    return b"\x00\xff" + bytes([kind]) + vlq(len(data)) + data


RAW_CASES = {
    # readable
    "basic": (smf(TS44 + NOTES + EOT), True),
    "running_status": (smf(TS44 + b"\x00\x90\x28\x64\x10\x29\x64\x10\x28\x00\x10\x29\x00" + EOT), True),
    "sysex_then_running_status": (
        smf(TS44 + b"\x00\xf0\x03\x01\x02\xf7" + b"\x00\x05\x02\x11\x22" + NOTES + EOT),
        True,
    ),
    "escape_sysex": (smf(TS44 + b"\x00\xf7\x02\x01\xf7" + NOTES + EOT), True),
    "key_signature_ok": (smf(TS44 + meta(0x59, b"\xfd\x01") + NOTES + EOT), True),
    "time_signature_4_8": (smf(meta(0x58, b"\x04\x03\x18\x08") + NOTES + EOT), True),
    "quarter_frame_running": (smf(TS44 + b"\x00\xf1\x10\x00\x20" + NOTES + EOT), True),
    "unknown_meta": (smf(TS44 + meta(0x60, b"\xff\xff") + NOTES + EOT), True),
    "empty_sequence_number": (smf(meta(0x00, b"") + TS44 + NOTES + EOT), True),
    "no_end_of_track": (smf(TS44 + NOTES), True),
    "zero_tracks": (smf(n_tracks=0), True),
    # mido reads a count >= 32,768 as negative, so no track; loopgen names the miscount (issue 22)
    "negative_track_count": (smf(TS44 + NOTES, n_tracks=-1), False),
    "empty_track": (smf(b"", TS44 + NOTES + EOT), True),
    "long_header": (
        chunk(b"MThd", struct.pack(">hhh", 1, 1, 96) + b"\0\0\0\0") + chunk(b"MTrk", TS44 + NOTES),
        True,
    ),
    "trailing_chunk": (smf(TS44 + NOTES + EOT) + chunk(b"XFIH", b"abc"), True),
    "trailing_garbage": (smf(TS44 + NOTES + EOT) + b"\x00\x01", True),
    # unreadable to mido, so to both
    "not_midi": (b"RIFF" + bytes(40), False),
    "tiny": (b"MThd", False),
    "short_header": (chunk(b"MThd", b"\x00\x01\x00"), False),
    "missing_track": (smf(TS44 + NOTES, n_tracks=2), False),
    "foreign_chunk_first": (
        chunk(b"MThd", struct.pack(">hhh", 1, 1, 96)) + chunk(b"XFIH", b"ab") + chunk(b"MTrk", TS44),
        False,
    ),
    "chunk_overrun": (
        chunk(b"MThd", struct.pack(">hhh", 1, 1, 96)) + chunk(b"MTrk", TS44 + NOTES, size=10),
        False,
    ),
    "chunk_too_long": (
        chunk(b"MThd", struct.pack(">hhh", 1, 1, 96)) + chunk(b"MTrk", TS44 + NOTES, size=999),
        False,
    ),
    "truncated_event": (smf(TS44 + NOTES)[:-2], False),
    "running_status_without_status": (smf(b"\x00\x28\x64" + TS44), False),
    "undefined_status": (smf(TS44 + b"\x00\xf4" + NOTES), False),
    "data_byte_over_127": (smf(TS44 + b"\x00\x90\x28\x90" + NOTES), False),
    "sysex_byte_over_127": (smf(TS44 + b"\x00\xf0\x03\x01\x85\xf7" + NOTES), False),
    "bad_key_signature": (smf(TS44 + meta(0x59, b"\x08\x00") + NOTES), False),
    "bad_key_mode": (smf(TS44 + meta(0x59, b"\x00\x02") + NOTES), False),
    "bad_smpte_minutes": (smf(TS44 + meta(0x54, b"\x01\x3c\x00\x00\x00") + NOTES), False),
    "bad_smpte_rate": (smf(TS44 + meta(0x54, b"\x81\x00\x00\x00\x00") + NOTES), False),
    "short_tempo": (smf(TS44 + meta(0x51, b"\x07\xa1") + NOTES), False),
    "short_time_signature": (smf(meta(0x58, b"\x04\x02") + NOTES), False),
    "log2_denominator": (smf(meta(0x58, b"\x04\x1d\x18\x08") + NOTES), False),  # 4/2**29: mido's log check
    "one_byte_sequence_number": (smf(meta(0x00, b"\x01") + TS44 + NOTES), False),
    "empty_channel_prefix": (smf(meta(0x20, b"") + TS44 + NOTES), False),
    "clock_running_status": (smf(TS44 + b"\x00\xf8\x00\x10" + NOTES), False),
    "huge_meta": (smf(TS44 + b"\x00\xff\x01" + vlq(2_000_000)), False),
}


@pytest.mark.parametrize("name", sorted(RAW_CASES))
def test_raw_bytes_agree_with_mido(tmp_path, name):
    data, readable = RAW_CASES[name]
    path = tmp_path / f"{name}.mid"
    path.write_bytes(data)
    result = read_both(path)
    assert (result != "unreadable") == readable, result


def test_smpte_division_is_bad_resolution(tmp_path):
    path = tmp_path / "smpte.mid"
    path.write_bytes(smf(TS44 + NOTES, header=struct.pack(">hhh", 1, 1, -7920)))  # 0xE110: 30 fps
    assert read_both(path) == "bad_resolution"


def test_event_beyond_max_ticks(tmp_path):
    path = tmp_path / "long.mid"
    path.write_bytes(smf(TS44 + NOTES + vlq(10_000_000) + b"\xff\x2f\x00"))
    assert read_both(path) == "too_large"


# --- real files ------------------------------------------------------------------------------------


@pytest.mark.realmidi
def test_backends_agree_on_real_files():
    if not SHARED_DEV_MIDI.is_dir():
        pytest.skip("shared dev MIDI folder absent")
    files = sorted(SHARED_DEV_MIDI.rglob("*.mid"))[::8]  # 150 of 1,200, across the genres
    assert len(files) >= 100
    outcomes = {}
    for path in files:
        result = read_both(path)
        outcomes[path.name] = result if isinstance(result, str) else "read"
    assert list(outcomes.values()).count("read") > len(files) // 2


def test_note_events_helper_orders_offs_first():
    events = note_events([(0, 10, 40), (10, 20, 40)], channel=0)
    assert [e[1].type for e in sorted(events, key=lambda e: e[0])] == [
        "note_on",
        "note_off",
        "note_on",
        "note_off",
    ]


@pytest.mark.parametrize(
    "data",
    [smf(n_tracks=0), smf(b"", b"")],
    ids=["zero_tracks", "only_empty_tracks"],
)
def test_a_file_without_any_track_event_is_no_tracks(tmp_path, data):
    path = tmp_path / "empty.mid"
    path.write_bytes(data)
    assert read_both(path) == "no_tracks"


@pytest.mark.parametrize(
    "data,claimed,found",
    [
        (smf(TS44 + NOTES + EOT, NOTES + EOT, header=struct.pack(">HHh", 1, 65535, 96)), "65,535", 2),
        (smf(TS44 + NOTES, n_tracks=-1), "65,535", 1),
        (smf(TS44 + NOTES + EOT, NOTES + EOT, n_tracks=0), "0", 2),
    ],
    ids=["65535_claimed_2_held", "negative_count", "zero_claimed_2_held"],
)
def test_a_header_that_miscounts_its_tracks_is_named_as_such(tmp_path, data, claimed, found):
    """Issue 22: a header claiming 65,535 tracks (mido reads -1, so no track) over 2 tracks with notes was
    rejected as "the file holds no track with any event"; both backends now say what is wrong."""
    path = tmp_path / "miscounted.mid"
    path.write_bytes(data)
    assert read_both(path) == "unreadable"
    for backend in ("fast", "reference"):
        with pytest.raises(MidiRejected) as info:
            read_notes(path, backend)
        assert "track count mismatch" in info.value.detail
        assert f"claims {claimed} tracks but the file holds {found}" in info.value.detail


def test_a_truncated_last_track_is_named_when_the_count_is_wrong(tmp_path):
    data = smf(TS44 + NOTES + EOT, NOTES + EOT, header=struct.pack(">HHh", 1, 65535, 96))[:-3]
    path = tmp_path / "cut.mid"
    path.write_bytes(data)
    assert read_both(path) == "unreadable"
    with pytest.raises(MidiRejected, match="the last one truncated"):
        read_notes(path, "fast")
