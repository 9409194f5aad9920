"""docs/rules.md §2-4: note table -> song roll -> 8-bar loops -> train/val/test splits.

Pure numpy, no I/O. Every rule marked (param) in docs/rules.md is a field of :class:`LoopParams`.
A file refused by a rule raises :class:`loopgen.data.midi.MidiRejected` with its reason code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from loopgen import (
    BAR_CELLS,
    BARS_PER_LOOP,
    BASS_HIGHEST_PITCH,
    BASS_LOWEST_PITCH,
    BASS_PITCH_OFFSET,
    CRASH,
    KICK,
    LOOP_STEPS,
    N_BASS,
    N_COLUMNS,
    N_DRUM,
    STEPS_PER_BAR,
)
from loopgen.data.midi.notes import MidiRejected, NoteTable, ReadLimits
from loopgen.store.digest import ContentDigest

REPEATED_BARS = (0, 4)  # docs/rules.md §3.1 and the HD metric: "the first and fifth bar"

# Drum components in column order: kick, snare, closed hi-hat, low tom, open hi-hat, mid tom, crash,
# high tom, ride (loopgen.DRUM_NAMES).
DRUM_MAPS: dict[str, tuple[tuple[int, ...], ...]] = {
    # The authors' public code (docs/rules.md §1.3): every other drum note is dropped.
    "default": (
        (35, 36),
        (37, 38, 39, 40),
        (42, 44),
        (41, 43, 45),
        (46,),
        (47, 48),
        (49, 55, 57),
        (50,),
        (51, 59),
    ),
    # Magenta's nine drum classes (note_seq / MusicVAE), reordered into our columns; wider.
    "magenta": (
        (36, 35),
        (38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85),
        (42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22),
        (45, 29, 41, 43, 61, 64, 84),
        (46, 67, 72, 74, 79, 81, 26),
        (48, 47, 60, 63, 77, 86, 87),
        (49, 52, 55, 57, 58),
        (50, 30, 62, 76, 83),
        (51, 53, 59, 82),
    ),
}


def drum_lookup(name: str) -> np.ndarray:
    """Array of 128 entries: drum component (column) of each General MIDI drum note, -1 if dropped."""
    try:
        groups = DRUM_MAPS[name]
    except KeyError:
        raise ValueError(f"unknown drum map {name!r}; choose one of {sorted(DRUM_MAPS)}") from None
    table = np.full(128, -1, dtype=np.int64)
    for component, pitches in enumerate(groups):
        table[list(pitches)] = component
    return table


@dataclass(frozen=True)
class LoopParams:
    """Every extraction choice of docs/rules.md (defaults = the rules') plus safety caps.

    :meth:`as_dict` (what dataset manifests store and :meth:`key` hashes) lists the read limits inline,
    as flat as the fields were before they moved into :class:`ReadLimits`; :meth:`from_dict` reads it back.
    """

    hamming_threshold: float = 0.0015  # bar 1 vs bar 5, fraction of 1488 cells, strictly below
    stride_bars: int = 1
    min_drum_cells: int = 32
    min_bass_cells: int = 32
    allow_missing_time_signature: bool = False
    bass_tracks: str = "all"  # "all" bass instruments merged, or the "first" in pretty_midi's order
    drum_map: str = "default"  # "default" (authors' code) or "magenta"
    # safety caps: a file beyond one is rejected as "too_large" / "bad_resolution"
    limits: ReadLimits = ReadLimits()
    max_bars: int = 4000  # song-roll length cap (at 60 bpm, over two hours)

    def __post_init__(self) -> None:
        if self.bass_tracks not in ("all", "first"):
            raise ValueError(f"bass_tracks must be 'all' or 'first', not {self.bass_tracks!r}")
        drum_lookup(self.drum_map)
        if self.stride_bars < 1:
            raise ValueError("stride_bars must be >= 1")

    def as_dict(self) -> dict:
        """Every parameter by name, the read limits' fields inline (in field order)."""
        flat: dict = {}
        for item in fields(self):
            value = getattr(self, item.name)
            flat.update(asdict(value) if isinstance(value, ReadLimits) else {item.name: value})
        return flat

    @classmethod
    def from_dict(cls, values: Mapping) -> LoopParams:
        """The parameters of an :meth:`as_dict` dict (a dataset manifest's ``params``) or of ``dataclasses.asdict``."""
        values = dict(values)
        limit_names = {item.name for item in fields(ReadLimits)}
        nested = dict(values.pop("limits", None) or {})  # dataclasses.asdict nests them; as_dict lists them flat
        limits = ReadLimits(**nested, **{k: v for k, v in values.items() if k in limit_names})
        return cls(**{k: v for k, v in values.items() if k not in limit_names}, limits=limits)

    def key(self) -> str:
        """Short stable hash of the parameters (8 hex characters), to name dataset folders."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return ContentDigest().text(text).hex(8)


def ticks_to_steps(ticks: np.ndarray, ticks_per_quarter: int) -> np.ndarray:
    """``round_half_up(ticks / (ticks_per_quarter / 4))`` in exact integer arithmetic."""
    ticks = np.asarray(ticks, dtype=np.int64)
    return (8 * ticks + ticks_per_quarter) // (2 * ticks_per_quarter)


def check_time_signatures(notes: NoteTable, params: LoopParams = LoopParams()) -> None:
    """docs/rules.md §2.1: raise unless every time signature is 4/4 (and there is one, unless allowed)."""
    ts = notes.time_signatures
    bad = (ts[:, 1] != 4) | (ts[:, 2] != 4)
    if bad.any():
        tick, num, den = ts[np.argmax(bad)]
        raise MidiRejected("time_signature", f"{num}/{den} at tick {tick}")
    if len(ts) == 0 and not params.allow_missing_time_signature:
        raise MidiRejected("no_time_signature")


def song_roll(notes: NoteTable, params: LoopParams = LoopParams()) -> np.ndarray:
    """docs/rules.md §2: the whole song as a binary (S, 93) uint8 array, S a multiple of 16.

    Raises :class:`MidiRejected` ("time_signature", "no_time_signature", "no_bass", "no_drums",
    "too_short", "too_large").
    """
    check_time_signatures(notes, params)
    tpq = notes.ticks_per_quarter

    # Bass (rule 3): one instrument or all, in-range pitches, note length rule.
    keep = np.ones(notes.n_bass, dtype=bool)
    if params.bass_tracks == "first" and notes.n_bass:
        keep &= notes.bass_instrument == notes.bass_instrument.min()
    keep &= (notes.bass_pitch >= BASS_LOWEST_PITCH) & (notes.bass_pitch <= BASS_HIGHEST_PITCH)
    if not keep.any():
        raise MidiRejected("no_bass")
    bass_first = ticks_to_steps(notes.bass_start[keep], tpq)
    bass_last = np.maximum(ticks_to_steps(notes.bass_end[keep], tpq), bass_first + 1) - 1
    bass_column = notes.bass_pitch[keep] - BASS_PITCH_OFFSET

    # Drums (rule 4): mapped hits at their start step.
    component = drum_lookup(params.drum_map)[notes.drum_pitch]
    hit = component >= 0
    if not hit.any():
        raise MidiRejected("no_drums")
    drum_step = ticks_to_steps(notes.drum_start[hit], tpq)
    component = component[hit]

    # Length (rule 6): whole bars up to the last occupied step.
    last_step = int(max(bass_last.max(), drum_step.max()))
    n_bars = last_step // STEPS_PER_BAR + 1
    if n_bars > params.max_bars:
        raise MidiRejected("too_large", f"{n_bars} bars > max_bars={params.max_bars}")
    if n_bars < BARS_PER_LOOP:
        raise MidiRejected("too_short", f"{n_bars} bars")
    n_steps = n_bars * STEPS_PER_BAR

    roll = np.zeros((n_steps, N_COLUMNS), dtype=np.uint8)
    roll[drum_step, component] = 1
    # Bass: count the notes sounding at each (step, column), then keep the lowest column per step.
    # (+1 where a note starts, -1 after it ends, summed down the steps; bincount is the fast np.add.at)
    pitch_index = bass_column - N_DRUM
    n_cells = (n_steps + 1) * N_BASS
    delta = np.bincount(bass_first * N_BASS + pitch_index, minlength=n_cells) - np.bincount(
        (bass_last + 1) * N_BASS + pitch_index, minlength=n_cells
    )
    bass_on = np.cumsum(delta.reshape(n_steps + 1, N_BASS)[:n_steps], axis=0) > 0
    any_bass = bass_on.any(axis=1)
    lowest = np.argmax(bass_on, axis=1)
    steps = np.flatnonzero(any_bass)
    roll[steps, N_DRUM + lowest[steps]] = 1
    return roll


def repetition_distance(loops: np.ndarray) -> np.ndarray:
    """Per loop of (N, 128, 93): the cells that differ between bar 1 and bar 5 (docs/rules.md §3.1; HD)."""
    first, fifth = (loops[:, k * STEPS_PER_BAR : (k + 1) * STEPS_PER_BAR] for k in REPEATED_BARS)
    return np.count_nonzero((first != fifth).reshape(len(loops), -1), axis=1)


def starts_with_kick_and_crash(loops: np.ndarray) -> np.ndarray:
    """Per loop of (N, 128, 93): kick and crash both on at step 0 (docs/rules.md §3.2; FND)."""
    return (loops[:, 0, KICK] != 0) & (loops[:, 0, CRASH] != 0)


def starts_with_bass(loops: np.ndarray) -> np.ndarray:
    """Per loop of (N, 128, 93): some bass pitch on at step 0 (docs/rules.md §3.3; FNB)."""
    return loops[:, 0, N_DRUM:].any(axis=1)


def find_loops(roll: np.ndarray, params: LoopParams = LoopParams()) -> list[int]:
    """docs/rules.md §3: start bars of the 8-bar windows of ``roll`` (a binary song roll (S, 93)) that are loops."""
    if roll.ndim != 2 or roll.shape[1] != N_COLUMNS:
        raise ValueError(f"roll must be a song roll of shape (steps, {N_COLUMNS}); got {roll.shape}")
    n_bars = roll.shape[0] // STEPS_PER_BAR
    if n_bars < BARS_PER_LOOP:
        return []
    roll = roll[: n_bars * STEPS_PER_BAR]
    every_step = np.lib.stride_tricks.sliding_window_view(roll, (LOOP_STEPS, N_COLUMNS))[:, 0]
    windows = every_step[:: STEPS_PER_BAR * params.stride_bars]  # a view (n, 128, 93), no copy
    starts = np.arange(len(windows)) * params.stride_bars
    # 1. bar 1 vs bar 5; 2.-3. kick + crash and some bass at step 0
    repeat = repetition_distance(windows) / BAR_CELLS < params.hamming_threshold
    ok = repeat & starts_with_kick_and_crash(windows) & starts_with_bass(windows)
    # 4. enough music: active cells over the 8 bars (running totals per bar)
    for columns, least in ((slice(None, N_DRUM), params.min_drum_cells), (slice(N_DRUM, None), params.min_bass_cells)):
        per_bar = np.count_nonzero(roll[:, columns].reshape(n_bars, -1), axis=1)
        running = np.concatenate([[0], np.cumsum(per_bar)])
        ok &= running[starts + BARS_PER_LOOP] - running[starts] >= least
    return [int(k) for k in starts[ok]]


def loop_at(roll: np.ndarray, start_bar: int) -> np.ndarray:
    """The (128, 93) window of ``roll`` starting at bar ``start_bar``."""
    first = start_bar * STEPS_PER_BAR
    return roll[first : first + LOOP_STEPS]


SPLITS = ("train", "val", "test")


def assign_splits(sources: Sequence[str], cuts: tuple[float, float] = (0.8, 0.9)) -> np.ndarray:
    """docs/rules.md §4: the split ("train"/"val"/"test") of each loop.

    ``sources`` gives each loop's source file, loops already in (sorted path, start bar) order, so
    each file's loops are contiguous. The cuts at 80 % and 90 % of the loop count move to the nearest
    file boundary (the earlier one on a tie), so that no file feeds two splits.
    """
    sources = np.asarray(sources, dtype=str)
    n = len(sources)
    labels = np.empty(n, dtype="<U5")
    if n == 0:
        return labels
    new_file = np.flatnonzero(sources[1:] != sources[:-1]) + 1
    if len(np.unique(sources)) != len(new_file) + 1:
        raise ValueError("each source's loops must be contiguous (order loops by source path first)")
    boundaries = np.concatenate([[0], new_file, [n]])
    positions = []
    for cut in cuts:
        target = cut * n
        positions.append(int(boundaries[np.argmin(np.abs(boundaries - target))]))
    first_cut, second_cut = positions[0], max(positions)
    labels[:first_cut] = "train"
    labels[first_cut:second_cut] = "val"
    labels[second_cut:] = "test"
    return labels
