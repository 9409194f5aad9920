"""Fast backend: a raw Standard MIDI File parser compiled with numba.

It walks the bytes the way mido 1.3 reads them (so it refuses exactly the files mido refuses:
truncated chunks, bad chunk names, running status without a status, undefined status bytes, data
bytes above 127, meta events mido cannot decode, ...) and pairs notes the way pretty_midi 0.2.x does
(docs/rules.md §2.0: an instrument is a (track, channel, program) triple, program current at the
note's end; a note-off ends every open note of that track/channel/pitch begun at an earlier tick,
and one that finds only same-tick notes drops them; a note never ended is dropped).
The equivalence test against :mod:`loopgen.data.midi.reference` on real files is what proves it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numba
import numpy as np

from loopgen import DRUM_CHANNEL

from .notes import BASS_PROGRAMS, MidiRejected, NoteTable, ReadLimits

# mido checks a time-signature denominator 2**k with ``math.log(2**k, 2) == int(...)``, which fails
# for some k through rounding; those files are unreadable to mido, so they must be here too.
_BAD_DENOMINATOR_EXPONENT = np.array(
    [math.log(2**k, 2) != int(math.log(2**k, 2)) for k in range(256)], dtype=np.bool_
)

# Bytes a channel / system message has, status byte included, as mido's message specs say; 0: undefined.
_MESSAGE_LENGTH = np.zeros(256, dtype=np.int64)
_MESSAGE_LENGTH[0x80:0xC0] = 3
_MESSAGE_LENGTH[0xC0:0xE0] = 2
_MESSAGE_LENGTH[0xE0:0xF0] = 3
for _status, _length in {
    0xF1: 2,
    0xF2: 3,
    0xF3: 2,
    0xF6: 1,
    0xF8: 1,
    0xFA: 1,
    0xFB: 1,
    0xFC: 1,
    0xFE: 1,
}.items():
    _MESSAGE_LENGTH[_status] = _length

_ERRORS = {
    1: "EOFError: file or chunk ends early",
    2: "OSError: MThd not found",
    3: "OSError: no MTrk header at start of track",
    4: "OSError: running status without last_status",
    5: "OSError: undefined status byte",
    6: "OSError: data byte must be in range 0..127",
    7: "OSError: message length exceeds maximum length",
    8: "meta message mido cannot decode",
    9: "ValueError: sysex data byte must be in range 0..127",
    10: "ValueError: wrong number of bytes for message",
}

_SATURATED = 1 << 56  # variable-length numbers beyond this are clamped (far above every limit)
_MAX_MESSAGE_LENGTH = 1_000_000  # mido's MAX_MESSAGE_LENGTH


@numba.njit(cache=True, nogil=True)
def _read_varint(data, pos, n):
    """Return (value, new position, ok) for a variable-length quantity starting at ``pos``."""
    value = 0
    while True:
        if pos >= n:
            return value, pos, False
        byte = data[pos]
        pos += 1
        if value < _SATURATED:
            value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos, True


@numba.njit(cache=True, nogil=True)
def _read_data_length(data, pos, n):
    """Return (length, position after it, error code or 0) for the data of a meta or sysex event."""
    length, pos, ok = _read_varint(data, pos, n)
    if not ok:
        return length, pos, 1
    if length > _MAX_MESSAGE_LENGTH:
        return length, pos, 7
    if pos + length > n:
        return length, pos, 1
    return length, pos, 0


@numba.njit(cache=True, nogil=True)
def _parse(data, note_cap, bad_denominator, message_length):  # noqa: C901 - one linear byte walk
    n = data.shape[0]
    cap = min(note_cap, n // 3 + 1) + 1
    note_start = np.empty(cap, np.int64)
    note_end = np.empty(cap, np.int64)
    note_pitch = np.empty(cap, np.int64)
    note_channel = np.empty(cap, np.int64)
    note_program = np.empty(cap, np.int64)
    note_instrument = np.empty(cap, np.int64)
    ts_cap = n // 8 + 1
    ts = np.empty((ts_cap, 3), np.int64)
    # open notes: one linked list per (channel, pitch), entries indexed by note-on number
    open_start = np.empty(cap, np.int64)
    open_next = np.empty(cap, np.int64)
    head = np.empty(16 * 128, np.int64)
    instrument_of = np.empty(16 * 128, np.int64)  # per track: (channel, program) -> instrument index
    program = np.zeros(16, np.int64)

    n_notes = 0
    n_ts = 0
    n_note_on = 0
    n_instruments = 0
    last_tick = -1
    error = 0
    tpq = 0

    n_tracks = 0
    pos = n
    if n < 8:
        error = 1
    elif not (data[0] == 77 and data[1] == 84 and data[2] == 104 and data[3] == 100):  # MThd
        error = 2
    else:
        header_size = (
            (np.int64(data[4]) << 24) | (np.int64(data[5]) << 16) | (np.int64(data[6]) << 8) | data[7]
        )
        header_read = min(header_size, n - 8)  # mido reads up to header_size bytes, needs 6
        if header_read < 6:
            error = 1
        else:
            n_tracks = (np.int64(data[10]) << 8) | np.int64(data[11])
            if n_tracks >= 32768:  # signed, as mido unpacks it; a negative count reads no track
                n_tracks -= 65536
            tpq = (np.int64(data[12]) << 8) | np.int64(data[13])
            if tpq >= 32768:
                tpq -= 65536
            pos = 8 + header_read

    for _track in range(n_tracks):
        if n - pos < 8:
            error = 1
            break
        if not (data[pos] == 77 and data[pos + 1] == 84 and data[pos + 2] == 114 and data[pos + 3] == 107):
            error = 3  # MTrk
            break
        size = (
            (np.int64(data[pos + 4]) << 24)
            | (np.int64(data[pos + 5]) << 16)
            | (np.int64(data[pos + 6]) << 8)
            | np.int64(data[pos + 7])
        )
        pos += 8
        start = pos
        last_status = -1
        tick = 0
        n_events = 0
        head[:] = -1
        instrument_of[:] = -1
        program[:] = 0
        while True:
            if pos - start == size:
                break
            delta, pos, ok = _read_varint(data, pos, n)
            if not ok or pos >= n:
                error = 1
                break
            status = np.int64(data[pos])
            pos += 1
            peek = -1
            if status < 0x80:
                if last_status < 0:
                    error = 4
                    break
                peek = status
                status = last_status
            elif status != 0xFF:
                last_status = status
            tick = min(tick + min(delta, _SATURATED), _SATURATED)
            n_events += 1

            if status == 0xFF:  # meta event
                if pos >= n:
                    error = 1
                    break
                meta_type = data[pos]
                pos += 1
                length, pos, error = _read_data_length(data, pos, n)
                if error:
                    break
                d = pos
                pos += length
                if meta_type == 0x00:  # sequence number
                    if length == 1:
                        error = 8
                        break
                elif meta_type == 0x20:  # channel prefix
                    if length == 0:
                        error = 8
                        break
                elif meta_type == 0x51:  # set tempo
                    if length < 3:
                        error = 8
                        break
                elif meta_type == 0x54:  # SMPTE offset: mido checks frame rate and value ranges
                    if (
                        length < 5
                        or (data[d] >> 5) >= 4
                        or data[d + 1] > 59
                        or data[d + 2] > 59
                        or data[d + 4] > 99
                    ):
                        error = 8
                        break
                elif meta_type == 0x58:  # time signature
                    if length < 4 or bad_denominator[data[d + 1]]:
                        error = 8
                        break
                    exponent = np.int64(data[d + 1])
                    ts[n_ts, 0] = tick
                    ts[n_ts, 1] = data[d]
                    ts[n_ts, 2] = (np.int64(1) << exponent) if exponent < 63 else 0
                    n_ts += 1
                elif meta_type == 0x59:  # key signature: only keys mido can name
                    if length < 2:
                        error = 8
                        break
                    key = np.int64(data[d])
                    if key >= 128:
                        key -= 256
                    if key < -7 or key > 7 or data[d + 1] > 1:
                        error = 8
                        break
            elif status == 0xF0 or status == 0xF7:  # sysex (a running-status data byte is dropped)
                length, pos, error = _read_data_length(data, pos, n)
                if error:
                    break
                a = pos
                b = pos + length
                pos = b
                if b > a and data[a] == 0xF0:
                    a += 1
                if b > a and data[b - 1] == 0xF7:
                    b -= 1
                for i in range(a, b):
                    if data[i] > 127:
                        error = 9
                        break
                if error:
                    break
            else:  # channel or system message
                length = message_length[status]
                if length == 0:
                    error = 5
                    break
                n_read = length - 1 - (1 if peek >= 0 else 0)
                if n_read < 0:
                    error = 10
                    break
                if pos + n_read > n:
                    error = 1
                    break
                byte1 = -1
                byte2 = -1
                if peek >= 0:
                    byte1 = peek
                    if n_read == 1:
                        byte2 = np.int64(data[pos])
                else:
                    if n_read >= 1:
                        byte1 = np.int64(data[pos])
                    if n_read == 2:
                        byte2 = np.int64(data[pos + 1])
                pos += n_read
                if byte1 > 127 or byte2 > 127:
                    error = 6
                    break
                kind = status & 0xF0
                channel = status & 0x0F
                if kind == 0xC0:
                    program[channel] = byte1
                elif kind == 0x90 and byte2 > 0:  # note on
                    n_note_on += 1
                    if n_note_on <= note_cap:
                        key = channel * 128 + byte1
                        entry = n_note_on - 1
                        open_start[entry] = tick
                        open_next[entry] = head[key]
                        head[key] = entry
                elif kind == 0x80 or kind == 0x90:  # note off (or note on with velocity 0)
                    key = channel * 128 + byte1
                    if n_note_on <= note_cap and head[key] >= 0:
                        closed = 0
                        kept = -1
                        entry = head[key]
                        while entry >= 0:
                            following = open_next[entry]
                            if open_start[entry] != tick:
                                slot = channel * 128 + program[channel]
                                if instrument_of[slot] < 0:
                                    instrument_of[slot] = n_instruments
                                    n_instruments += 1
                                note_start[n_notes] = open_start[entry]
                                note_end[n_notes] = tick
                                note_pitch[n_notes] = byte1
                                note_channel[n_notes] = channel
                                note_program[n_notes] = program[channel]
                                note_instrument[n_notes] = instrument_of[slot]
                                n_notes += 1
                                closed += 1
                            else:
                                open_next[entry] = kept
                                kept = entry
                            entry = following
                        head[key] = kept if (closed > 0 and kept >= 0) else -1
        if error:
            break
        if n_events > 0:
            last_tick = max(last_tick, tick)
    return (
        error, tpq, last_tick, n_note_on, n_notes, note_start, note_end, note_pitch,
        note_channel, note_program, note_instrument, n_ts, ts,
    )  # fmt: skip


def read_notes_fast(path: str | os.PathLike, limits: ReadLimits = ReadLimits()) -> NoteTable:
    """Read ``path`` with the compiled parser; same table and same rejections as the reference."""
    path = Path(path)
    limits.check_file_size(path)
    data = np.fromfile(path, dtype=np.uint8)
    (error, tpq, last_tick, n_note_on, n_notes, start, end, pitch, channel, program, instrument, n_ts, ts) = (
        _parse(data, limits.max_notes, _BAD_DENOMINATOR_EXPONENT, _MESSAGE_LENGTH)
    )
    if error:
        raise MidiRejected("unreadable", _ERRORS[int(error)])
    limits.check_parsed(int(tpq), int(last_tick), int(n_note_on), data.tobytes())
    start, end, pitch = start[:n_notes], end[:n_notes], pitch[:n_notes]
    channel, program, instrument = channel[:n_notes], program[:n_notes], instrument[:n_notes]
    is_drum = channel == DRUM_CHANNEL
    is_bass = ~is_drum & (program >= BASS_PROGRAMS.start) & (program < BASS_PROGRAMS.stop)
    return NoteTable.build(
        int(tpq),
        bass=(start[is_bass], end[is_bass], pitch[is_bass], instrument[is_bass]),
        drums=(start[is_drum], pitch[is_drum]),
        time_signatures=ts[:n_ts],
    )
