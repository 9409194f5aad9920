"""Song planning: everything about one song decided up front (genre, tempo, key, form, grooves, bass
styles, performance habits, defects), recorded in a :class:`SongPlan` that ``corpus.json`` reports.

All draws come from ``numpy.random.default_rng([seed, index])``, in the order the steps of
:func:`plan_song` run; changing that order changes every corpus.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from loopgen.data.corpus.songwriter.styles import (
    BASS_PROGRAMS,
    FORMS,
    GENRES,
    GROOVES,
    HARMONY_WEIGHTS,
    INSTRUMENTS,
    PRECHORUS_BARS,
    PROGRESSIONS,
    SECTION_BARS,
    SECTION_KINDS,
    VERSE_BARS,
    groove_kind,
)

# Defects that must lead the extractor (docs/rules.md §2 and §5) to reject the file, and the reason.
EXPECTED_REJECTION = {
    "broken_truncated": "unreadable",
    "broken_garbage": "unreadable",
    "broken_zero_tracks": "no_tracks",
    "meter_3_4": "time_signature",
    "meter_6_8": "time_signature",
    "meter_12_8": "time_signature",
    "odd_bar_7_8": "time_signature",
    "no_time_signature": "no_time_signature",
    "hidden_meter_3_4": "time_signature",
    "no_bass": "no_bass",
    "bass_as_piano": "no_bass",
    "no_drums": "no_drums",
    "drums_off_channel_10": "no_drums",
}


@dataclass
class Section:
    name: str
    bars: int
    phrase: int  # 4 or 8 bars
    progression: tuple[int, ...]
    groove: int  # index into the genre's grooves for this section kind
    bass_style: str
    has_bass: bool = True
    has_drums: bool = True


@dataclass
class SongPlan:
    """Everything decided about one song before it is rendered (recorded in ``corpus.json``)."""

    index: int
    file: str
    genre: str
    tempo: float
    meter: str
    ticks_per_quarter: int
    key: int
    minor: bool
    form: list[str]
    sections: list[Section]
    defects: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    bass_program: int = 33
    n_bass_tracks: int = 1
    timing_jitter: float = 0.0  # standard deviation, in sixteenth steps
    crash_every_phrase: bool = True
    crash_style: str = "with_kick"  # "with_kick" on the downbeat, "pushed" (anticipated), "none"
    articulation: float = 0.9  # bass note length as a fraction of its slot
    drum_fill: str = "snare"  # "snare", "toms" or "mixed"
    bass_fill_chance: float = 0.3  # chance that a phrase's last bar ends with a bass run
    repeat_variation: float = 0.3  # chance that a repeated section is played differently
    crash_replaces_hat: bool = False  # the hi-hat rests under a crash
    bass_embellish: bool = False  # plain root patterns end each bar on the fifth
    open_hat_accent: bool = False  # the hi-hat opens on the last off-beat of each bar
    variation: float = 0.0  # chance per bar that bass or drums deviate from the pattern
    pickup_steps: int = 0  # >0: the whole song is shifted by this many steps (misaligned grid)
    pickup_bar: bool = False  # a harmless one-bar lead-in before bar 1
    tempo_changes: list[tuple[int, float]] = field(default_factory=list)  # (bar, bpm)
    instruments: list[str] = field(default_factory=list)

    @property
    def expected_rejection(self) -> str | None:
        for defect in self.defects:
            if defect in EXPECTED_REJECTION:
                return EXPECTED_REJECTION[defect]
        return None

    @property
    def n_bars(self) -> int:
        return sum(s.bars for s in self.sections) + int(self.pickup_bar)

    def summary(self) -> dict:
        """JSON-friendly description of the song for ``corpus.json``."""
        out = asdict(self)
        out["sections"] = [
            {
                "name": s.name,
                "bars": s.bars,
                "phrase": s.phrase,
                "bass_style": s.bass_style,
                "has_bass": s.has_bass,
                "has_drums": s.has_drums,
                "progression": list(s.progression),
            }
            for s in self.sections
        ]
        out["tempo_changes"] = [list(t) for t in self.tempo_changes]
        out["expected_rejection"] = self.expected_rejection
        out["n_bars"] = self.n_bars
        return out


# --- defects: a fixed mix of special songs in every block of 20 ---------------------------------------
BLOCK = 20
_SPECIAL_SLOTS = (
    "meter",
    "meter",
    "meter",
    "meter_change",
    "no_bass",
    "no_bass",
    "no_drums",
    "pickup_offset",
    "broken",
)
_BROKEN_KINDS = ("broken_truncated", "broken_garbage", "broken_zero_tracks")
_METER_KINDS = ("meter_3_4", "meter_6_8", "meter_3_4", "meter_12_8")
_METER_OF_KIND = {"meter_3_4": "3/4", "meter_6_8": "6/8", "meter_12_8": "12/8"}
_METER_CHANGE_KINDS = ("odd_bar_7_8", "no_time_signature", "hidden_meter_3_4")
_NO_BASS_KINDS = ("no_bass", "bass_as_piano")
_NO_DRUM_KINDS = ("no_drums", "drums_off_channel_10")


def _special_slot(seed: int, index: int) -> str | None:
    """Which special kind of song (if any) song ``index`` is: a fixed share per block of 20."""
    block, pos = divmod(index, BLOCK)
    order = np.random.default_rng([seed, 7, block]).permutation(BLOCK)
    slots: list[str | None] = list(_SPECIAL_SLOTS) + [None] * (BLOCK - len(_SPECIAL_SLOTS))
    slot = slots[int(order[pos])]
    if slot in ("broken", "no_drums") and block % 2 == 1:  # these in every other block only (2.5 %)
        return None
    return slot


def _defect(seed: int, index: int) -> str | None:
    """The defect song ``index`` carries, if any (no draw from the song's generator)."""
    block = index // BLOCK
    slot = _special_slot(seed, index)
    if slot == "broken":
        return _BROKEN_KINDS[(block // 2) % len(_BROKEN_KINDS)]
    if slot == "meter":
        return _METER_KINDS[(block + index) % len(_METER_KINDS)]
    if slot == "meter_change":
        return _METER_CHANGE_KINDS[block % len(_METER_CHANGE_KINDS)]
    if slot == "no_bass":
        return _NO_BASS_KINDS[(block + index) % 2]
    if slot == "no_drums":
        return _NO_DRUM_KINDS[(block // 2) % 2]
    return slot  # "pickup_offset" or None


# --- the steps of plan_song, in draw order ---------------------------------------------------------------
def _draw_genre(rng: np.random.Generator) -> str:
    names = list(GENRES)
    weights = np.array([GENRES[g].weight for g in names])
    return str(rng.choice(names, p=weights / weights.sum()))


def _draw_tempo(rng: np.random.Generator, genre: str, meter: str) -> float:
    """A tempo in the genre's range; compound meters (counted in dotted quarters) are slower."""
    lo, hi = GENRES[genre].tempo
    tempo = float(round(rng.uniform(lo, hi)))
    if meter in ("6/8", "12/8"):
        tempo = float(round(rng.uniform(50, 80)))
    return tempo


def _draw_progressions(rng: np.random.Generator, genre: str, minor: bool) -> dict[str, tuple[int, ...]]:
    """One chord progression per section kind, in the song's kind of harmony (the outro plays the chorus)."""
    fam4 = PROGRESSIONS["minor4" if minor else "major4"]
    fam8 = PROGRESSIONS["minor8" if minor else "major8"]
    harmony = rng.choice(list(HARMONY_WEIGHTS), p=list(HARMONY_WEIGHTS.values()))
    if genre == "shuffle" and rng.random() < 0.6:
        harmony = "blues"
    progressions: dict[str, tuple[int, ...]] = {}
    for kind in SECTION_KINDS:
        if harmony == "blues":
            prog = PROGRESSIONS["blues"][int(rng.integers(2))]
        elif harmony == "vamp":
            prog = PROGRESSIONS["vamp"][int(rng.integers(3))]
        elif harmony == "slow":  # two bars per chord
            a, b, c, d = fam4[int(rng.integers(len(fam4)))]
            prog = (a, a, b, b) if rng.random() < 0.6 else (a, a, b, b, c, c, d, d)
        elif (harmony == "cycle8" and kind in ("verse", "bridge", "solo")) or rng.random() < 0.15:
            prog = fam8[int(rng.integers(len(fam8)))]
        else:
            prog = fam4[int(rng.integers(len(fam4)))]
        progressions[kind] = prog
    progressions["outro"] = progressions["chorus"]
    return progressions


def _draw_grooves(rng: np.random.Generator, genre: str) -> dict[str, int]:
    """Which of the genre's verse and chorus grooves the song plays."""
    grooves = GROOVES[genre]
    return {kind: int(rng.integers(len(grooves[kind]))) for kind in ("verse", "chorus")}


def _draw_bass_styles(rng: np.random.Generator, genre: str, default: str) -> dict[str, str]:
    """The bass style per section kind: the song's default, perhaps another in the chorus, a calmer bridge."""
    styles = {kind: default for kind in SECTION_KINDS}
    if rng.random() < 0.5:
        styles["chorus"] = str(rng.choice(GENRES[genre].bass_styles))
    styles["bridge"] = str(rng.choice(["whole", "half", "quarters", default]))
    return styles


def _draw_section_bars(rng: np.random.Generator, name: str, progression: tuple[int, ...]) -> int:
    """A section's length in bars (a blues section is one or two 12-bar choruses)."""
    if name == "prechorus":
        bars = PRECHORUS_BARS
    else:
        bars = int(rng.choice(SECTION_BARS.get(name, VERSE_BARS)))
    if len(progression) == 12:  # blues: sections are whole choruses of 12 bars
        bars = 12 if bars <= 8 else 24
    return bars


def _draw_sections(
    rng: np.random.Generator,
    form: list[str],
    progressions: dict[str, tuple[int, ...]],
    grooves: dict[str, int],
    bass_styles: dict[str, str],
) -> list[Section]:
    """The sections of ``form``: length, phrase length, and whether the intro has bass and drums."""
    intro_has_bass = bool(rng.random() < 0.5)
    intro_has_drums = bool(rng.random() < 0.7)
    sections = []
    for name in form:
        bars = _draw_section_bars(rng, name, progressions[name])
        phrase = 4 if bars == 4 or rng.random() < 0.6 else 8
        sections.append(
            Section(
                name=name,
                bars=bars,
                phrase=phrase,
                progression=progressions[name],
                groove=grooves[groove_kind(name)],
                bass_style=bass_styles[name],
                has_bass=intro_has_bass if name == "intro" else True,
                has_drums=intro_has_drums if name == "intro" else True,
            )
        )
    return sections


def _draw_performance(rng: np.random.Generator, plan: SongPlan) -> None:
    """How the song is played: timing spread, crashes, fills, bass articulation, variation."""
    # Human feel: most files are quantised, some are played in with a little timing spread.
    plan.timing_jitter = float(rng.choice([0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.1, 0.18, 0.25]))
    if plan.timing_jitter:
        plan.features.append("humanised")
    plan.crash_every_phrase = bool(rng.random() < 0.75)
    plan.crash_style = str(rng.choice(["with_kick", "pushed", "none"], p=[0.74, 0.13, 0.13]))
    plan.crash_replaces_hat = bool(rng.random() < 0.25)
    plan.bass_embellish = bool(rng.random() < 0.65)
    plan.articulation = float(rng.choice([0.95, 0.95, 0.8, 0.6, 0.5, 0.45]))
    plan.drum_fill = str(rng.choice(["snare", "snare", "snare", "toms", "mixed"]))
    plan.open_hat_accent = bool(rng.random() < 0.35)
    plan.bass_fill_chance = float(rng.choice([0.0, 0.2, 0.5]))
    plan.repeat_variation = float(rng.choice([0.0, 0.0, 0.3, 0.5]))
    plan.variation = float(rng.choice([0.0, 0.0, 0.02, 0.05, 0.1, 0.2]))


def _draw_file_features(rng: np.random.Generator, plan: SongPlan) -> None:
    """How the file is laid out: pickup, a second bass track, double stops, legato, split drums."""
    if "pickup_offset" in plan.defects:
        plan.pickup_steps = int(rng.choice([4, 8, 12, 2]))
    elif rng.random() < 0.1:
        plan.pickup_bar = True
        plan.features.append("pickup_bar")
    if rng.random() < 0.1 and "no_bass" not in plan.defects and "bass_as_piano" not in plan.defects:
        plan.n_bass_tracks = 2
        plan.features.append("multiple_bass_tracks")
    for name, chance in (("double_stops", 0.15), ("legato_overlap", 0.2), ("split_drum_tracks", 0.1)):
        if rng.random() < chance:
            plan.features.append(name)


def _draw_tempo_changes(rng: np.random.Generator, plan: SongPlan) -> None:
    """Now and then a slower bridge and a ritardando over the last four bars."""
    if rng.random() >= 0.15:
        return
    plan.features.append("tempo_changes")
    start = 0
    for s in plan.sections:
        if s.name == "bridge":
            plan.tempo_changes.append((start, round(plan.tempo * float(rng.uniform(0.85, 0.95)), 1)))
            plan.tempo_changes.append((start + s.bars, plan.tempo))
        start += s.bars
    end = plan.n_bars
    for i, factor in enumerate((0.97, 0.93, 0.88, 0.8)):
        plan.tempo_changes.append((end - 4 + i, round(plan.tempo * factor, 1)))


def _draw_instruments(rng: np.random.Generator) -> list[str]:
    """One to four of the other instruments, in table order."""
    pool = list(INSTRUMENTS)
    k = int(rng.integers(1, 5))
    return [pool[i] for i in sorted(rng.choice(len(pool), size=k, replace=False))]


def plan_song(seed: int, index: int) -> SongPlan:
    """Decide everything about song ``index`` of the corpus with this ``seed``."""
    rng = np.random.default_rng([seed, index])
    defect = _defect(seed, index)
    meter = _METER_OF_KIND.get(defect or "", "4/4")
    genre = _draw_genre(rng)
    tempo = _draw_tempo(rng, genre, meter)
    tpq = int(rng.choice([96, 220, 384, 480, 480, 480, 960]))
    key = int(rng.integers(0, 12))
    minor = bool(rng.random() < 0.4)
    form = list(FORMS[int(rng.integers(len(FORMS)))])
    default_bass_style = str(rng.choice(GENRES[genre].bass_styles))
    progressions = _draw_progressions(rng, genre, minor)
    grooves = _draw_grooves(rng, genre)
    bass_styles = _draw_bass_styles(rng, genre, default_bass_style)
    sections = _draw_sections(rng, form, progressions, grooves, bass_styles)
    plan = SongPlan(
        index=index,
        file=f"song_{index:05d}.mid",
        genre=genre,
        tempo=tempo,
        meter=meter,
        ticks_per_quarter=tpq,
        key=key,
        minor=minor,
        form=form,
        sections=sections,
        defects=[defect] if defect else [],
        bass_program=int(rng.choice(BASS_PROGRAMS)),
    )
    _draw_performance(rng, plan)
    _draw_file_features(rng, plan)
    _draw_tempo_changes(rng, plan)
    plan.instruments = _draw_instruments(rng)
    return plan
