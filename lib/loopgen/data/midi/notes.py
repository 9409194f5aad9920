"""The note table: what a MIDI file contributes to a song roll, whichever backend read it.

Both backends (:mod:`loopgen.data.midi.reference`, :mod:`loopgen.data.midi.fast`) return a :class:`NoteTable`
in MIDI ticks, with notes paired the way pretty_midi 0.2.x pairs them (docs/rules.md §2.0),
and both raise :class:`MidiRejected` with the same reason code for a file they refuse.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

BASS_PROGRAMS = range(32, 40)  # General MIDI 33-40 (0-based 32-39): the bass family

# Every rejection reason, in the order the checks are made (a file gets the first that applies).
REASONS: dict[str, str] = {
    "too_large": "file bigger than max_file_bytes, more than max_notes note-ons, an event at tick >= "
    "max_ticks, or a song longer than max_bars",
    "unreadable": "not a MIDI file mido can parse (bad header or chunk, truncated, invalid bytes, a header whose "
    "track count differs from the tracks the file holds), or a header of format 2 (independent sequential patterns, "
    "not tracks that play together) or of a format that does not exist (above 2)",
    "bad_resolution": "ticks per quarter note below min_ticks_per_quarter (SMPTE division or 0)",
    "no_tracks": "a valid header but no track with any event (zero tracks, or only empty ones)",
    "time_signature": "a time-signature event other than 4/4 on some track",
    "no_time_signature": "no time-signature event at all (unless allow_missing_time_signature)",
    "no_bass": "no bass note (program 32-39, pitch 24-107)",
    "no_drums": "no drum hit (channel 10) that the drum map keeps",
    "too_short": "fewer than 8 bars from step 0 to the last note",
    "no_loop": "no 8-bar window passes the loop rules",
    "error": "an unexpected error while processing the file (a bug: see the report's details)",
}


class MidiRejected(Exception):
    """A file refused by a reading or extraction rule; ``reason`` is a key of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ReadLimits:
    """The safety caps of reading one MIDI file, the same for both backends (a field of ``LoopParams``).

    A file beyond a cap is rejected as "too_large" (or "bad_resolution"), before or right after parsing.
    """

    max_file_bytes: int = 4 * 1024 * 1024  # LMD-full's largest real songs are well below 1 MB
    max_notes: int = 200_000  # note-on events (velocity > 0) in the whole file
    max_ticks: int = 10_000_000  # pretty_midi's own limit: an event at tick >= 1e7 means "likely corrupt"
    min_ticks_per_quarter: int = 1  # SMPTE time division (negative) and 0 are refused

    def check_file_size(self, path: os.PathLike | str) -> None:
        """Refuse a file bigger than ``max_file_bytes`` before reading it."""
        size = os.stat(path).st_size
        if size > self.max_file_bytes:
            raise MidiRejected("too_large", f"{size} bytes > max_file_bytes={self.max_file_bytes}")

    def check_parsed(self, tpq: int, last_tick: int, n_note_on: int, data: bytes | None = None) -> None:
        """The rejections both backends apply once a file has parsed, in this order.

        ``last_tick`` is the tick of the last event over all tracks, -1 when no track holds an event.
        ``data`` (the file's bytes) tells a file without tracks from one whose header miscounts them.
        """
        if tpq < self.min_ticks_per_quarter:
            raise MidiRejected("bad_resolution", f"ticks_per_quarter={tpq}")
        if last_tick < 0:
            mismatch = None if data is None else track_count_mismatch(data)
            if mismatch:  # mido read no track because the header's count is wrong (e.g. 65,535 read as -1)
                raise MidiRejected("unreadable", mismatch)
            raise MidiRejected("no_tracks", "the file holds no track with any event")
        if last_tick >= self.max_ticks:
            raise MidiRejected("too_large", f"an event at tick {last_tick} >= max_ticks={self.max_ticks}")
        if n_note_on > self.max_notes:
            raise MidiRejected("too_large", f"{n_note_on} note-ons > max_notes={self.max_notes}")


def file_format_problem(head: bytes) -> str | None:
    """What is wrong with a Standard MIDI File's format field (``head``: the file's first 14 bytes), or ``None``.

    Formats 0 (one track) and 1 (tracks that play together) are read. Format 2 holds independent patterns played
    one after another, which a reader of simultaneous tracks would overlay: it is refused, not misread. Formats
    above 2 do not exist. Anything that is not an ``MThd`` header is left to the readers to refuse."""
    if len(head) < 10 or head[:4] != b"MThd":
        return None
    file_format = int.from_bytes(head[8:10], "big")
    if file_format == 2:
        return "MIDI format 2 (independent sequential patterns, not tracks that play together): save it as format 1"
    if file_format > 2:
        return f"MIDI format {file_format} does not exist (only 0, 1 and 2)"
    return None


def track_count_mismatch(data: bytes) -> str | None:
    """What is wrong when a file's header and its track chunks disagree: the header's track count (read
    unsigned) against the ``MTrk`` chunks actually there, and whether the last one is cut short; ``None`` when
    they agree (or the file is no Standard MIDI File)."""
    data = bytes(data)
    if len(data) < 14 or data[:4] != b"MThd":
        return None
    claimed = int.from_bytes(data[10:12], "big")
    pos, found, cut = 8 + int.from_bytes(data[4:8], "big"), 0, False
    while pos + 8 <= len(data):
        name, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "big")
        if name == b"MTrk":
            found += 1
            cut = pos + 8 + size > len(data)
        elif not (name.isascii() and name.isalnum()):
            break  # trailing bytes that are no chunk
        pos += 8 + size
    if claimed == found and not cut:
        return None
    text = f"track count mismatch: the header claims {claimed:,} tracks but the file holds {found}"
    return text + (" (the last one truncated)" if cut else " (a damaged header, or a truncated file)")


def _int_array(values=()) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


@dataclass(frozen=True, eq=False)
class NoteTable:
    """Bass-candidate and drum notes of one file, in ticks, in a canonical (sorted) order.

    - ``bass_*``: notes of every non-drum instrument whose program is 32-39, any pitch;
      ``bass_instrument`` is the instrument's index in pretty_midi's instrument order.
    - ``drum_*``: every note on channel 10 (index 9), any pitch (the drum map is applied later).
    - ``time_signatures``: (n, 3) rows ``(tick, numerator, denominator)`` from every track;
      a denominator too large for int64 (2**63 and up) is stored as 0.
    """

    ticks_per_quarter: int
    bass_start: np.ndarray = field(default_factory=_int_array)
    bass_end: np.ndarray = field(default_factory=_int_array)
    bass_pitch: np.ndarray = field(default_factory=_int_array)
    bass_instrument: np.ndarray = field(default_factory=_int_array)
    drum_start: np.ndarray = field(default_factory=_int_array)
    drum_pitch: np.ndarray = field(default_factory=_int_array)
    time_signatures: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))

    @classmethod
    def build(
        cls,
        ticks_per_quarter: int,
        bass: tuple = ((), (), (), ()),
        drums: tuple = ((), ()),
        time_signatures=(),
    ) -> NoteTable:
        """Make a table from unsorted columns: ``bass=(start, end, pitch, instrument)``,
        ``drums=(start, pitch)``, ``time_signatures`` rows ``(tick, numerator, denominator)``."""
        b_start, b_end, b_pitch, b_inst = (_int_array(x) for x in bass)
        order = np.lexsort((b_pitch, b_end, b_start, b_inst))
        d_start, d_pitch = (_int_array(x) for x in drums)
        d_order = np.lexsort((d_pitch, d_start))
        ts = np.asarray(time_signatures, dtype=np.int64).reshape(-1, 3)
        ts = ts[np.lexsort((ts[:, 2], ts[:, 1], ts[:, 0]))]
        return cls(
            ticks_per_quarter=int(ticks_per_quarter),
            bass_start=b_start[order],
            bass_end=b_end[order],
            bass_pitch=b_pitch[order],
            bass_instrument=b_inst[order],
            drum_start=d_start[d_order],
            drum_pitch=d_pitch[d_order],
            time_signatures=ts,
        )

    @property
    def n_bass(self) -> int:
        return len(self.bass_start)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoteTable):
            return NotImplemented
        return self.ticks_per_quarter == other.ticks_per_quarter and all(
            np.array_equal(getattr(self, name), getattr(other, name))
            for name in (
                "bass_start",
                "bass_end",
                "bass_pitch",
                "bass_instrument",
                "drum_start",
                "drum_pitch",
                "time_signatures",
            )
        )

    __hash__ = None  # type: ignore[assignment]
