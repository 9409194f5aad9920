"""A second opinion from the field's own library: the loops of Tables 3 and 7 measured by MusPy.

MusPy (Dong et al., "MusPy: A Toolkit for Symbolic Music Generation", ISMIR 2020) implements the loop metrics
of the symbolic-music literature. Here it measures **our** loops, so that our own metrics
(:mod:`loopgen.metrics`) sit beside code we did not write. Only the conversion is ours (:func:`to_music`);
every number is what a ``muspy`` function returns for one loop:

==========================  ========================================================================
column                      MusPy function
==========================  ========================================================================
drum-pattern consistency    ``muspy.drum_pattern_consistency(music)``
groove consistency          ``muspy.groove_consistency(music, measure_resolution=16)``
empty-beat rate             ``muspy.empty_beat_rate(music)``
polyphony (bass)            ``muspy.polyphony(music)`` (MusPy leaves drum tracks out)
pitch-class entropy (bass)  ``muspy.pitch_class_entropy(music)`` (MusPy leaves drum tracks out)
pitches used (bass)         ``muspy.n_pitches_used(music)`` (MusPy leaves drum tracks out)
==========================  ========================================================================

A row is MusPy's mean over the loops it gives a number for; the loops it gives NaN for (no drums, no bass, no
note at all, shorter than two bars) are counted in a column of their own, never dropped silently.
:func:`companion` writes ``figures/table3_second_opinion.*`` and ``figures/table7_second_opinion.*``, one row
per row of the table it accompanies, with the checks of :func:`agreement` under it: where MusPy's numbers and
ours measure the same thing, they must agree on every loop. docs/rules.md §6.6 lists the conversion choices
and the known differences.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from loopgen import N_DRUM, STEPS_PER_BAR, metrics, paper
from loopgen.book import baselines
from loopgen.book.evaluation import Evaluation, PaperTable
from loopgen.book.tables import Claim, claim, format_number
from loopgen.data.midi.write import BASS_PROGRAM, BASS_VELOCITY, DRUM_VELOCITY, bass_notes, drum_hits
from loopgen.data.validate import check_loops

LIBRARY = "muspy"
STEPS_PER_BEAT = STEPS_PER_BAR // 4  # MusPy's resolution: time steps per quarter note (a beat of 4/4)
MAX_LOOPS_PER_ROW = 2000  # our choice: a seeded sample per row beyond this (demo rows hold ~6,000 loops)
TEMPO = 120.0  # no metric reads it; the tempo of the MIDI files loopgen writes by default

DRUM_PATTERN = "drum-pattern consistency"
GROOVE = "groove consistency"
EMPTY_BEATS = "empty-beat rate"
POLYPHONY = "polyphony (bass)"
PC_ENTROPY = "pitch-class entropy (bass)"
PITCHES = "pitches used (bass)"
METRICS = (DRUM_PATTERN, GROOVE, EMPTY_BEATS, POLYPHONY, PC_ENTROPY, PITCHES)
MEAN, NAN_LOOPS = "muspy", "NaN loops"  # each metric's two columns: MusPy's mean, the loops it gives NaN for
LOOPS = ("loops", "measured")
PAPER = ("all metrics", "paper")  # the paper's column, as in every table: it reports none of these
NOT_IN_THE_PAPER = "not in the paper"

DEFINITIONS = {
    DRUM_PATTERN: (
        "the larger of the shares of drum notes that start on MusPy's duple pattern and on its triple one; "
        "at 4 steps a beat the duple pattern holds every sixteenth, so every loop of ours with drums "
        "scores 1 (NaN without drums). Not notebook 05's own drum_pattern_consistency (how alike a loop's "
        "8 bars of drums are), which shares only the name"
    ),
    GROOVE: (
        "1 - the mean Hamming distance between the onset patterns (16 positions, drums and bass together) of "
        "neighbouring bars, divided by 16 (NaN under two bars)"
    ),
    EMPTY_BEATS: "the share of beats in which no note sounds (NaN for a loop without a note)",
    POLYPHONY: (
        "the mean number of bass pitches sounding at the steps where one sounds: 1 for a monophonic bass "
        "(NaN without bass)"
    ),
    PC_ENTROPY: (
        "the Shannon entropy in bits of the bass notes' pitch-class histogram, each note counted once (0 "
        "for one pitch class, at most log2 12 = 3.58; NaN without bass)"
    ),
    PITCHES: "the number of distinct bass pitches (0 without bass)",
}
EDGE_NOTE = (
    "MusPy measures a piece up to the end of its last note, not the 8 bars: empty-beat rate and groove "
    "consistency count the beats and bars up to there, plus one more (an empty 33rd beat, 9th bar) when a "
    "note ends exactly at the end of bar 8; and a note that ends on a beat boundary marks the next beat as "
    "not empty. So a loop that repeats one bar perfectly and plays to its last step scores 1 - (onsets in "
    "bar 8)/128 in groove consistency, not 1. The values are MusPy's as they are."
)


def _muspy():
    import muspy  # (it imports music21, which takes seconds: only when a loop is measured)

    return muspy


def version() -> str:
    """The installed MusPy's version."""
    return str(_muspy().__version__)


# --------------------------------------------------------------------------- the conversion (ours)
def to_music(loop: np.ndarray):
    """One loop (128, 93) as a :class:`muspy.Music`: resolution 4 (steps per quarter note), one 4/4 time
    signature, a "Bass" track (GM program 34) and a "Drums" track (``is_drum``), both always present.

    The notes are those of the MIDI file loopgen writes (:mod:`loopgen.data.midi.write`: a bass note per
    run of consecutive active steps of one pitch, a one-step hit per active drum cell at its component's GM
    note), so MusPy's own MIDI reader gives the same notes from that file (a test checks). Unlike that
    reader, an empty part keeps its (empty) track, so that a silent loop reaches MusPy's own NaN rules
    instead of an error."""
    muspy = _muspy()
    roll = check_loops(loop, name="loop", one=True)
    bass = [muspy.Note(time=start, pitch=pitch, duration=end - start, velocity=BASS_VELOCITY)
            for start, end, pitch in bass_notes(roll)]
    drums = [muspy.Note(time=step, pitch=pitch, duration=1, velocity=DRUM_VELOCITY)
             for step, pitch in drum_hits(roll)]
    return muspy.Music(
        resolution=STEPS_PER_BEAT,
        tempos=[muspy.Tempo(time=0, qpm=TEMPO)],
        time_signatures=[muspy.TimeSignature(time=0, numerator=4, denominator=4)],
        tracks=[muspy.Track(program=BASS_PROGRAM, is_drum=False, name="Bass", notes=bass),
                muspy.Track(program=0, is_drum=True, name="Drums", notes=drums)],
    )


# --------------------------------------------------------------------------- MusPy's numbers
def _number(value: object) -> float:
    return float(value) + 0.0  # MusPy's entropy of a single pitch class is -0.0: made 0.0


def loop_metrics(loop: np.ndarray) -> dict[str, float]:
    """MusPy's metrics of one loop (:data:`METRICS`), NaN where MusPy returns NaN."""
    muspy = _muspy()
    music = to_music(loop)
    return {
        DRUM_PATTERN: _number(muspy.drum_pattern_consistency(music)),
        GROOVE: _number(muspy.groove_consistency(music, measure_resolution=STEPS_PER_BAR)),
        EMPTY_BEATS: _number(muspy.empty_beat_rate(music)),
        POLYPHONY: _number(muspy.polyphony(music)),
        PC_ENTROPY: _number(muspy.pitch_class_entropy(music)),
        PITCHES: _number(muspy.n_pitches_used(music)),
    }


def per_loop(loops: np.ndarray) -> pd.DataFrame:
    """MusPy's metrics of every loop of a batch (N, 128, 93): a row per loop, the columns :data:`METRICS`."""
    x = check_loops(loops, single_as_batch=True)
    return pd.DataFrame([loop_metrics(loop) for loop in x], columns=list(METRICS), dtype=float)


def summary(values: pd.DataFrame) -> dict[tuple[str, str], float]:
    """One table row from :func:`per_loop`: the loops measured, then for each metric MusPy's mean over the
    loops it gives a number for (NaN when it gives none) and how many loops it gives NaN for."""
    row: dict[tuple[str, str], float] = {LOOPS: len(values)}
    for metric in METRICS:
        column = values[metric]
        row[(metric, MEAN)] = float(column.mean()) if column.notna().any() else math.nan
        row[(metric, NAN_LOOPS)] = int(column.isna().sum())
    return row


def opinion_table(measured: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """:func:`summary` of each label's :func:`per_loop` frame, in order: the number of loops measured, then
    columns (metric, 'muspy' | 'NaN loops'), then the paper's column ('not in the paper' on every row)."""
    pairs = [(metric, kind) for metric in METRICS for kind in (MEAN, NAN_LOOPS)]
    columns = pd.MultiIndex.from_tuples([LOOPS, *pairs], names=["metric", "source"])
    rows = [summary(values) for values in measured.values()]
    frame = pd.DataFrame(rows, index=list(measured), columns=columns)
    counts = [LOOPS] + [(metric, NAN_LOOPS) for metric in METRICS]
    frame[counts] = frame[counts].astype(int)
    frame[PAPER] = NOT_IN_THE_PAPER
    frame.index.name = "model"
    return frame


# --------------------------------------------------------------------------- the rows of Tables 3 and 7
def table3_loop_sets(
    groups: Mapping[str, object], train_loops: np.ndarray, seed: int
) -> dict[str, np.ndarray]:
    """The loops behind each row of Table 3 (:func:`loopgen.book.evaluation.musical_metrics_table`): every
    group under its paper label, then the baseline of the training loops with their bars shuffled (the same
    shuffle: :func:`loopgen.book.baselines.shuffle_bars` with the run's seed)."""
    sets = {paper.GROUP_LABELS[name]: group.loops for name, group in groups.items()}
    sets[baselines.SHUFFLED_BARS] = baselines.shuffle_bars(train_loops, seed)
    return sets


def table7_loop_sets(groups: Mapping[str, object]) -> dict[str, np.ndarray]:
    """The loops behind each row of Table 7 (:func:`loopgen.book.prior_comparison.comparison_table`)."""
    return {label: group.loops for label, group in groups.items()}


# --------------------------------------------------------------------------- where MusPy and we must agree
def silent_beat_share(loops: np.ndarray) -> np.ndarray:
    """Per loop: the share of its 32 beats (4 steps each) in which no cell of the array is on."""
    x = check_loops(loops, single_as_batch=True)
    return (x.reshape(len(x), -1, STEPS_PER_BEAT * x.shape[2]).max(axis=2) == 0).mean(axis=1)


def agreement(loop_sets: Mapping[str, np.ndarray], measured: Mapping[str, pd.DataFrame]) -> list[Claim]:
    """Where MusPy's numbers (``measured``: :func:`per_loop` of each set) and ours measure the same thing,
    checked loop by loop over every set, each a :class:`loopgen.book.tables.Claim` that says whether it holds:

    1. UP (ours) minus the drum components a loop uses equals MusPy's count of bass pitches used;
    2. MusPy's polyphony is above 1 on exactly the loops whose DB (ours) is above 0;
    3. MusPy's drum-pattern consistency is 1 on every loop with drums (our grid lies on its duple pattern);
    4. MusPy's empty-beat rate is at most the share of the 32 beats in which the array has nothing on (it can
       only find fewer empty beats: see :data:`EDGE_NOTE`).
    """
    n = up_misses = db_misses = with_bass = doubled = with_drums = off_pattern = too_empty = silent_loops = 0
    up_sum = drums_sum = pitches_sum = silent_sum = library_sum = 0.0
    for label, loops in loop_sets.items():
        x, values = check_loops(loops, single_as_batch=True), measured[label]
        n += len(x)
        has_drums = x[:, :, :N_DRUM].any(axis=(1, 2))

        up = np.array([metrics.unique_pitch(loop) for loop in x])
        drums_used = x[:, :, :N_DRUM].any(axis=1).sum(axis=1)
        pitches = values[PITCHES].to_numpy()
        up_misses += int(np.count_nonzero(up - drums_used != pitches))
        up_sum += float(up.sum())
        drums_sum += float(drums_used.sum())
        pitches_sum += float(pitches.sum())

        db = np.array([metrics.dup_bass(loop) for loop in x])
        polyphony = values[POLYPHONY].to_numpy()
        bass = ~np.isnan(polyphony)
        db_misses += int(np.count_nonzero((polyphony[bass] > 1) != (db[bass] > 0)))
        db_misses += int(np.count_nonzero(db[~bass] > 0))  # no bass for MusPy: no doubled step for us either
        with_bass, doubled = with_bass + int(bass.sum()), doubled + int(np.count_nonzero(db > 0))

        pattern = values[DRUM_PATTERN].to_numpy()
        with_drums += int(np.count_nonzero(has_drums))
        off_pattern += int(np.count_nonzero(has_drums & (pattern != 1.0)))  # NaN != 1 too: drums MusPy missed
        off_pattern += int(np.count_nonzero(~has_drums & ~np.isnan(pattern)))

        library = values[EMPTY_BEATS].to_numpy()
        silent = silent_beat_share(x)
        sounding = ~np.isnan(library)
        too_empty += int(np.count_nonzero(library[sounding] > silent[sounding] + 1e-12))
        silent_loops += int(np.count_nonzero(~sounding))
        silent_sum += float(silent[sounding].sum())
        library_sum += float(library[sounding].sum())
    def mean(total: float, count: int = n) -> str:
        return format_number(total / max(count, 1))

    sounding_n = n - silent_loops
    return [
        claim(f"UP (ours, mean {mean(up_sum)}) minus the drum components a loop uses (mean "
              f"{mean(drums_sum)}) equals MusPy's count of bass pitches used (mean {mean(pitches_sum)}) on "
              f"every one of the {n:,} loops ({up_misses:,} differ)", up_misses == 0),
        claim(f"MusPy's polyphony is above 1 on exactly the loops whose DB (ours) is above 0 ({doubled:,} "
              f"of the {with_bass:,} loops with bass play two bass pitches at once somewhere; {db_misses:,} "
              "loops disagree)", db_misses == 0),
        claim(f"MusPy's drum-pattern consistency is 1 on every one of the {with_drums:,} loops with drums "
              f"(at 4 steps a beat its duple pattern holds all 16 steps of our grid; {off_pattern:,} differ)",
              off_pattern == 0),
        claim(f"MusPy's empty-beat rate (mean {mean(library_sum, sounding_n)}) is at most the share of "
              f"silent beats in the arrays (mean {mean(silent_sum, sounding_n)}) on every loop with a note "
              f"({too_empty:,} exceed it; the {silent_loops:,} loops without a note are NaN to MusPy)",
              too_empty == 0),
    ]


# --------------------------------------------------------------------------- the companion table
@dataclass(repr=False)
class SecondOpinion(PaperTable):
    """A companion table: MusPy's numbers for every row of another table (``table``, the same as ``ours``: no
    paper values), MusPy's value for every loop of each row (``per_loop``) and the checks against our own
    metrics (``claims``)."""

    per_loop: dict[str, pd.DataFrame] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)


def sample_rows(loops: np.ndarray, seed: int, limit: int | None = None) -> np.ndarray:
    """At most ``limit`` (:data:`MAX_LOOPS_PER_ROW`) of ``loops``, a seeded sample in their own order: MusPy takes
    1-4 ms a loop, and a mean over 2,000 loops is already exact to about 1 %."""
    limit = MAX_LOOPS_PER_ROW if limit is None else limit
    if len(loops) <= limit:
        return loops
    keep = np.sort(np.random.default_rng(seed).choice(len(loops), size=limit, replace=False))
    return loops[keep]


def _table_name(of: PaperTable) -> str:
    return of.title.split(":")[0].split(" (")[0]  # "Table 3", "Table 7"


def companion(ev: Evaluation, of: PaperTable, loop_sets: Mapping[str, np.ndarray]) -> SecondOpinion:
    """MusPy's numbers for every row of the table ``of`` (Table 3 or Table 7) from ``loop_sets`` (label ->
    loops: :func:`table3_loop_sets`, :func:`table7_loop_sets`), in ``of``'s order, with the checks of
    :func:`agreement` under it; written to ``figures/<tableN>_second_opinion.{csv,md}``. Raises ValueError
    when a row of ``of`` has no loops."""
    rows = [*of.ours.index, *of.baselines.index]
    missing = [row for row in rows if row not in loop_sets]
    if missing:
        raise ValueError(f"no loops for the rows {missing} of {of.stem}; loop sets given: {list(loop_sets)}")
    ordered = {row: sample_rows(loop_sets[row], ev.seed) for row in rows}
    measured = {label: per_loop(loops) for label, loops in ordered.items()}
    sampled = [row for row in rows if len(ordered[row]) < len(loop_sets[row])]
    frame = opinion_table(measured)
    claims = agreement(ordered, measured)
    name = _table_name(of)
    notes = [
        f"Profile: {ev.profile.name}. Not in the paper: the paper reports none of these metrics (its column "
        f"says so on every row). One row per row of {name} ({of.stem}), on the same loops"
        + (f"; rows of more than {MAX_LOOPS_PER_ROW:,} loops on a seeded sample of {MAX_LOOPS_PER_ROW:,} of them "
           f"(seed {ev.seed}; {len(sampled)} such rows)." if sampled else ", all of them."),
        f"Computed by MusPy {version()} (muspy.drum_pattern_consistency, groove_consistency with "
        "measure_resolution=16, empty_beat_rate, polyphony, pitch_class_entropy, n_pitches_used). The "
        "conversion is ours: a muspy.Music at resolution 4 (steps per quarter note) in 4/4 with a Bass "
        "track (a note per run of consecutive active steps of one pitch) and a Drums track (a one-step "
        "note per active drum cell): the notes of the MIDI file loopgen writes.",
        *(f"{metric}: {text}." for metric, text in DEFINITIONS.items()),
        f"'{MEAN}' = MusPy's mean over the loops it gives a number for; '{NAN_LOOPS}' = the loops it gives "
        "NaN for, counted and left out of the mean; '-' = no loop of the row has a value.",
        EDGE_NOTE,
        "Checks against our own metrics, loop by loop over every row: "
        + " ".join(f"({i}) {c}" for i, c in enumerate(claims, 1)),
    ]
    title = f"{name}, a second opinion (not in the paper): MusPy's loop metrics on the loops of {name}"
    stem = f"{of.stem.split('_')[0]}_second_opinion"
    opinion = SecondOpinion(stem, title, frame, frame, notes, per_loop=measured, claims=claims)
    opinion.write(ev)
    return opinion


def check(opinion: SecondOpinion) -> None:
    """Print each check of ``opinion`` and raise AssertionError when one fails: where MusPy and our metrics
    measure the same thing, a difference is a bug in the conversion or in one of the two."""
    for sentence in opinion.claims:
        print("•", sentence)
    failed = [c for c in opinion.claims if not c.holds]
    assert not failed, f"MusPy and our metrics disagree where they must agree ({len(failed)} checks): above"
    print(f"MusPy {version()} agrees with our metrics on all {len(opinion.claims)} checks, on every loop of "
          f"every row of {opinion.title.split(',')[0]}.")
