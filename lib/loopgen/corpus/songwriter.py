"""The procedural songwriter: a seeded stand-in for the Lakh MIDI Dataset.

Each song is planned first (genre, tempo, key, form, grooves, bass style, defects), then rendered to
Standard MIDI bytes. Songs are built from sections (intro / verse / pre-chorus / chorus / bridge /
outro) made of 4- and 8-bar phrases; drums play a genre groove with fills at phrase ends and crashes
at section starts; the bass follows a chord progression in one of several styles; piano, guitar,
strings and a lead line fill out the arrangement. A share of the songs carries the defects real
collections have (other meters, no bass, no drums, misaligned pickups, broken files, ...), and every
defect is recorded in the song's plan so that tests can check the extractor's verdict.

Everything random comes from ``numpy.random.default_rng([seed, song_index, ...])``: song ``i`` is the
same whatever the corpus size, and the bytes are the same on every run.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, field

import numpy as np

from loopgen.corpus.smf import Track, encode_file

# --- General MIDI drum notes used by the grooves ---------------------------------------------------
KICK, KICK2, SNARE, RIM, CLAP, SNARE2 = 36, 35, 38, 37, 39, 40
HAT, PEDAL_HAT, OPEN_HAT = 42, 44, 46
CRASH, CRASH2, SPLASH, CHINA = 49, 57, 55, 52
RIDE, RIDE_BELL, RIDE2 = 51, 53, 59
TOMS = (50, 48, 47, 45, 43, 41)  # high to low
TAMBOURINE, COWBELL, SHAKER = 54, 56, 70

DRUM_CHANNEL = 9

# A groove is one bar of strings, one character per grid position ("x" hit, "X" accent, "g" ghost).
# 4/4 grooves use 16 positions (sixteenths); swung grooves use 12 (eighth-note triplets).
GROOVES: dict[str, dict[str, list[dict[int, str]]]] = {
    "rock": {
        "verse": [
            {KICK: "x.......x.x.....", SNARE: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
            {KICK: "x......xx.......", SNARE: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
            {KICK: "x.x.....x.x.....", SNARE: "....X.......X...", HAT: "X.x.X.x.X.x.X.x."},
        ],
        "chorus": [
            {KICK: "x.......x.x.....", SNARE: "....X.......X...", OPEN_HAT: "x.x.x.x.x.x.x.x."},
            {KICK: "x.x.....x.x.....", SNARE: "....X.......X...", RIDE: "x.x.x.x.x.x.x.x."},
            {KICK: "x......xx.x.....", SNARE: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
        ],
    },
    "pop": {
        "verse": [
            {KICK: "x.....x.x.......", SNARE: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
            {KICK: "x..x..x.x.......", SNARE: "....X.......X...", HAT: "xxxxxxxxxxxxxxxx"},
            {KICK: "x.......x.....x.", CLAP: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
        ],
        "chorus": [
            {KICK: "x.....x.x.......", SNARE: "....X.......X...", HAT: "xxxxxxxxxxxxxxxx"},
            {
                KICK: "x...x...x...x...",
                SNARE: "....X.......X...",
                HAT: "x.x.x.x.x.x.x.x.",
                TAMBOURINE: "....x.......x...",
            },
            {
                KICK: "x..x..x.x.......",
                SNARE: "....X.......X...",
                OPEN_HAT: "..x...x...x...x.",
                HAT: "x...x...x...x...",
            },
        ],
    },
    "funk": {
        "verse": [
            {KICK: "x..x......x.....", SNARE: "....X..g.g..X..g", HAT: "xxxxxxxxxxxxxxxx"},
            {
                KICK: "x.x....x..x.....",
                SNARE: "....X..g....X.g.",
                HAT: "xxxxxxxxxxxxxx.x",
                OPEN_HAT: "..............x.",
            },
        ],
        "chorus": [
            {
                KICK: "x..x..x...x.....",
                SNARE: "....X..g.g..X...",
                HAT: "x.x.x.x.x.x.x.x.",
                OPEN_HAT: "..............x.",
            },
            {
                KICK: "x.x....x..x..x..",
                SNARE: "....X.......X...",
                HAT: "xxxxxxxxxxxxxxxx",
                COWBELL: "x...x...x...x...",
            },
        ],
    },
    "disco": {
        "verse": [
            {
                KICK: "x...x...x...x...",
                SNARE: "....X.......X...",
                HAT: "x...x...x...x...",
                OPEN_HAT: "..x...x...x...x.",
            },
        ],
        "chorus": [
            {
                KICK: "x...x...x...x...",
                CLAP: "....X.......X...",
                HAT: "xxxxxxxxxxxxxxxx",
                OPEN_HAT: "..x...x...x...x.",
            },
            {
                KICK: "x...x...x...x...",
                SNARE: "....X.......X...",
                OPEN_HAT: "..x...x...x...x.",
                HAT: "x...x...x...x...",
            },
        ],
    },
    "hiphop": {
        "verse": [
            {KICK: "x......x..x.....", SNARE: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
            {KICK: "x.x.......x..x..", SNARE: "....X.......X...", HAT: "xxxxxxxxxxxxxxxx"},
        ],
        "chorus": [
            {KICK: "x......x..x..x..", CLAP: "....X.......X...", HAT: "x.xxx.x.x.xxx.x."},
            {
                KICK: "x.x.......x.....",
                SNARE: "....X.......X...",
                HAT: "xxxxxxxxxxxxxxxx",
                OPEN_HAT: "......x.........",
            },
        ],
    },
    "halftime": {
        "verse": [
            {KICK: "x.........x.....", SNARE: "........X.......", HAT: "x.x.x.x.x.x.x.x."},
        ],
        "chorus": [
            {KICK: "x.x.......x.....", SNARE: "........X.......", RIDE: "x.x.x.x.x.x.x.x."},
            {KICK: "x.........x..x..", SNARE: "........X.......", OPEN_HAT: "x...x...x...x..."},
        ],
    },
    "reggae": {
        "verse": [
            {KICK: "........x.......", RIM: "........x.......", HAT: "x.x.x.x.x.x.x.x."},
        ],
        "chorus": [
            {KICK: "x.......x.......", RIM: "....x.......x...", HAT: "x.x.x.x.x.x.x.x."},
        ],
    },
    "country": {
        "verse": [
            {KICK: "x.......x.......", SNARE: "....x.......x...", HAT: "x.x.x.x.x.x.x.x."},
            {KICK: "x.......x.......", SNARE: "..x...x...x...x.", HAT: "x...x...x...x..."},
        ],
        "chorus": [
            {KICK: "x.......x.x.....", SNARE: "....X.......X...", RIDE: "x.x.x.x.x.x.x.x."},
            {KICK: "x.......x.......", SNARE: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
        ],
    },
    "ballad": {
        "verse": [
            {KICK: "x.......x.......", RIM: "....x.......x...", HAT: "x.x.x.x.x.x.x.x."},
            {KICK: "x.........x.....", SNARE: "........X.......", HAT: "x...x...x...x..."},
        ],
        "chorus": [
            {KICK: "x.......x.x.....", SNARE: "....X.......X...", RIDE: "x.x.x.x.x.x.x.x."},
        ],
    },
    "bossa": {
        "verse": [
            {KICK: "x..xx..xx..xx..x", RIM: "x..x..x...x..x..", HAT: "x.x.x.x.x.x.x.x."},
        ],
        "chorus": [
            {KICK: "x..xx..xx..xx..x", RIM: "x..x...x..x..x..", RIDE: "x.x.x.x.x.x.x.x."},
        ],
    },
    # swung grooves: 12 eighth-note-triplet positions per 4/4 bar
    "shuffle": {
        "verse": [
            {KICK: "x.....x.....", SNARE: "...X.....X..", HAT: "x.xx.xx.xx.x"},
        ],
        "chorus": [
            {KICK: "x..x..x..x..", SNARE: "...X.....X..", RIDE: "x.xx.xx.xx.x"},
            {KICK: "x.....x.x...", SNARE: "...X.....X..", OPEN_HAT: "x.xx.xx.xx.x"},
        ],
    },
}

# Grooves in other meters (12 sixteenth positions per bar: 3/4 and 6/8 both span 12 sixteenths).
ODD_GROOVES: dict[str, dict[int, str]] = {
    "3/4": {KICK: "x...........", SNARE: "....x...x...", HAT: "x.x.x.x.x.x."},
    "6/8": {KICK: "x.....x.....", SNARE: "......X.....", HAT: "x.x.x.x.x.x."},
    "12/8": {KICK: "x.....x.....", SNARE: "......X.....", HAT: "x.x.x.x.x.x."},
}

GENRES: dict[str, dict] = {
    # tempo range (bpm), bass styles, progression families, swing
    "rock": {"tempo": (96, 150), "bass": ["eighths", "eighths", "rock_pump", "root_fifth", "octaves"]},
    "pop": {"tempo": (88, 128), "bass": ["eighths", "syncopated", "quarters", "root_fifth", "octaves"]},
    "funk": {"tempo": (92, 116), "bass": ["funk", "funk", "syncopated", "octaves"]},
    "disco": {"tempo": (112, 128), "bass": ["octaves", "octaves", "eighths"]},
    "hiphop": {"tempo": (80, 100), "bass": ["hiphop", "hiphop", "whole", "syncopated"]},
    "halftime": {"tempo": (120, 150), "bass": ["whole", "half", "eighths"]},
    "reggae": {"tempo": (70, 90), "bass": ["reggae", "reggae", "syncopated"]},
    "country": {"tempo": (100, 140), "bass": ["root_fifth", "root_fifth", "walking", "quarters"]},
    "ballad": {"tempo": (64, 84), "bass": ["whole", "half", "quarters"]},
    "bossa": {"tempo": (120, 140), "bass": ["root_fifth", "bossa"]},
    "shuffle": {"tempo": (90, 130), "bass": ["walking", "shuffle", "shuffle"], "swing": True},
}
GENRE_WEIGHTS = {
    "rock": 0.2,
    "pop": 0.24,
    "funk": 0.07,
    "disco": 0.05,
    "hiphop": 0.1,
    "halftime": 0.05,
    "reggae": 0.04,
    "country": 0.11,
    "ballad": 0.06,
    "bossa": 0.03,
    "shuffle": 0.05,
}

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# Progressions as chord roots in semitones above the key's tonic, one chord per bar.
PROGRESSIONS = {
    "major4": [
        (0, 7, 9, 5),
        (0, 5, 7, 5),
        (0, 9, 5, 7),
        (9, 5, 0, 7),
        (0, 0, 5, 7),
        (0, 10, 5, 0),
        (0, 5, 0, 7),
    ],
    "minor4": [(0, 8, 3, 10), (0, 5, 7, 0), (0, 10, 8, 10), (0, 0, 5, 7), (0, 8, 5, 7), (0, 3, 10, 5)],
    "major8": [
        (0, 5, 0, 7, 5, 5, 0, 7),
        (0, 0, 5, 5, 7, 7, 0, 0),
        (0, 9, 5, 7, 9, 5, 7, 7),
        (5, 7, 0, 9, 2, 7, 0, 0),
    ],
    "minor8": [(0, 8, 3, 10, 8, 10, 0, 0), (0, 5, 0, 7, 8, 8, 7, 7)],
    "vamp": [(0,), (0, 0, 5, 5), (0, 5)],
    "blues": [(0, 0, 0, 0, 5, 5, 0, 0, 7, 5, 0, 7), (0, 5, 0, 0, 5, 5, 0, 0, 7, 5, 0, 7)],
}

KEY_SHARPS = {0: 0, 7: 1, 2: 2, 9: 3, 4: 4, 11: 5, 5: -1, 10: -2, 3: -3, 8: -4, 1: -5, 6: 6}

# Defects that must lead the extractor (spec sections 2 and 5) to reject the file, and the reason.
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


# --- planning ----------------------------------------------------------------------------------------

# Fixed mix of special songs in every block of 20: the rest are ordinary songs (with random features).
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
_METER_CHANGE_KINDS = ("odd_bar_7_8", "no_time_signature", "hidden_meter_3_4")
_NO_BASS_KINDS = ("no_bass", "bass_as_piano")
_NO_DRUM_KINDS = ("no_drums", "drums_off_channel_10")
_FORMS = (
    ("intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"),
    ("intro", "verse", "prechorus", "chorus", "verse", "prechorus", "chorus", "chorus", "outro"),
    ("intro", "verse", "verse", "chorus", "verse", "chorus", "outro"),
    ("verse", "chorus", "verse", "chorus", "bridge", "chorus"),
    ("intro", "chorus", "verse", "chorus", "verse", "chorus", "outro"),
    ("intro", "verse", "chorus", "verse", "chorus", "solo", "chorus", "outro"),
)


def _special_slot(seed: int, index: int) -> str | None:
    """Which special kind of song (if any) song ``index`` is: a fixed share per block of 20."""
    block, pos = divmod(index, BLOCK)
    order = np.random.default_rng([seed, 7, block]).permutation(BLOCK)
    slots: list[str | None] = list(_SPECIAL_SLOTS) + [None] * (BLOCK - len(_SPECIAL_SLOTS))
    slot = slots[int(order[pos])]
    if slot in ("broken", "no_drums") and block % 2 == 1:  # these in every other block only (2.5 %)
        return None
    return slot


def plan_song(seed: int, index: int) -> SongPlan:
    """Decide everything about song ``index`` of the corpus with this ``seed``."""
    rng = np.random.default_rng([seed, index])
    block = index // BLOCK
    slot = _special_slot(seed, index)
    defects: list[str] = []
    features: list[str] = []
    meter = "4/4"
    if slot == "broken":
        defects.append(_BROKEN_KINDS[(block // 2) % len(_BROKEN_KINDS)])
    elif slot == "meter":
        kind = _METER_KINDS[(block + index) % len(_METER_KINDS)]
        defects.append(kind)
        meter = {"meter_3_4": "3/4", "meter_6_8": "6/8", "meter_12_8": "12/8"}[kind]
    elif slot == "meter_change":
        defects.append(_METER_CHANGE_KINDS[block % len(_METER_CHANGE_KINDS)])
    elif slot == "no_bass":
        defects.append(_NO_BASS_KINDS[(block + index) % 2])
    elif slot == "no_drums":
        defects.append(_NO_DRUM_KINDS[(block // 2) % 2])
    elif slot == "pickup_offset":
        defects.append("pickup_offset")

    names = list(GENRE_WEIGHTS)
    weights = np.array([GENRE_WEIGHTS[g] for g in names])
    genre = str(rng.choice(names, p=weights / weights.sum()))
    info = GENRES[genre]
    lo, hi = info["tempo"]
    tempo = float(round(rng.uniform(lo, hi)))
    if meter in ("6/8", "12/8"):
        tempo = float(round(rng.uniform(50, 80)))
    tpq = int(rng.choice([96, 220, 384, 480, 480, 480, 960]))
    key = int(rng.integers(0, 12))
    minor = bool(rng.random() < 0.4)

    form = list(_FORMS[int(rng.integers(len(_FORMS)))])
    fam4 = PROGRESSIONS["minor4" if minor else "major4"]
    fam8 = PROGRESSIONS["minor8" if minor else "major8"]
    style_default = str(rng.choice(info["bass"]))
    # How repetitive this song's harmony is: 4-bar cycles loop, 8-bar and blues forms mostly don't.
    harmony = rng.choice(["cycle4", "slow", "cycle8", "vamp"], p=[0.45, 0.2, 0.25, 0.10])
    if genre == "shuffle" and rng.random() < 0.6:
        harmony = "blues"
    progressions: dict[str, tuple[int, ...]] = {}
    for kind in ("intro", "verse", "prechorus", "chorus", "bridge", "solo", "outro"):
        if harmony == "blues":
            prog = PROGRESSIONS["blues"][int(rng.integers(2))]
        elif harmony == "vamp":
            prog = PROGRESSIONS["vamp"][int(rng.integers(3))]
        elif harmony == "slow":  # two bars per chord
            a, b, c, d = fam4[int(rng.integers(len(fam4)))]
            prog = (a, a, b, b) if rng.random() < 0.6 else (a, a, b, b, c, c, d, d)
        elif harmony == "cycle8" and kind in ("verse", "bridge", "solo") or rng.random() < 0.15:
            prog = fam8[int(rng.integers(len(fam8)))]
        else:
            prog = fam4[int(rng.integers(len(fam4)))]
        progressions[kind] = prog
    progressions["outro"] = progressions["chorus"]
    grooves = GROOVES[genre]
    groove_choice = {
        "verse": int(rng.integers(len(grooves["verse"]))),
        "chorus": int(rng.integers(len(grooves["chorus"]))),
    }
    bass_styles = {kind: style_default for kind in progressions}
    if rng.random() < 0.5:
        bass_styles["chorus"] = str(rng.choice(info["bass"]))
    bass_styles["bridge"] = str(rng.choice(["whole", "half", "quarters", style_default]))
    intro_has_bass = bool(rng.random() < 0.5)
    intro_has_drums = bool(rng.random() < 0.7)
    sections = []
    for name in form:
        if name == "intro":  # odd intro lengths shift the song against an 8-bar grid
            bars = int(rng.choice([1, 2, 4, 4, 6, 8]))
        elif name == "outro":
            bars = int(rng.choice([4, 4, 8]))
        elif name == "prechorus":
            bars = 4
        elif name in ("bridge", "solo"):
            bars = int(rng.choice([8, 8, 16]))
        else:
            bars = int(rng.choice([8, 16, 16]))
        prog = progressions[name]
        if len(prog) == 12:  # blues: sections are whole choruses of 12 bars
            bars = 12 if bars <= 8 else 24
        phrase = 4 if bars == 4 or rng.random() < 0.6 else 8
        sections.append(
            Section(
                name=name,
                bars=bars,
                phrase=phrase,
                progression=prog,
                groove=groove_choice["chorus" if name in ("chorus", "outro", "solo") else "verse"],
                bass_style=bass_styles[name],
                has_bass=intro_has_bass if name == "intro" else True,
                has_drums=intro_has_drums if name == "intro" else True,
            )
        )

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
        defects=defects,
        features=features,
        bass_program=int(rng.choice([33, 33, 33, 34, 34, 32, 35, 36, 37, 38, 39])),
    )
    # Human feel: most files are quantised, some are played in with a little timing spread.
    plan.timing_jitter = float(rng.choice([0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.1, 0.18, 0.25]))
    if plan.timing_jitter:
        features.append("humanised")
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
    if "pickup_offset" in defects:
        plan.pickup_steps = int(rng.choice([4, 8, 12, 2]))
    elif rng.random() < 0.1:
        plan.pickup_bar = True
        features.append("pickup_bar")
    if rng.random() < 0.1 and "no_bass" not in defects and "bass_as_piano" not in defects:
        plan.n_bass_tracks = 2
        features.append("multiple_bass_tracks")
    for name, chance in (("double_stops", 0.15), ("legato_overlap", 0.2), ("split_drum_tracks", 0.1)):
        if rng.random() < chance:
            features.append(name)
    if rng.random() < 0.15:
        features.append("tempo_changes")
        start = 0
        for s in sections:
            if s.name == "bridge":
                plan.tempo_changes.append((start, round(tempo * float(rng.uniform(0.85, 0.95)), 1)))
                plan.tempo_changes.append((start + s.bars, tempo))
            start += s.bars
        end = plan.n_bars
        for i, factor in enumerate((0.97, 0.93, 0.88, 0.8)):
            plan.tempo_changes.append((end - 4 + i, round(tempo * factor, 1)))
    pool = ["piano", "guitar", "strings", "lead", "organ", "pad"]
    k = int(rng.integers(1, 5))
    plan.instruments = [pool[i] for i in sorted(rng.choice(len(pool), size=k, replace=False))]
    return plan


# --- rendering ---------------------------------------------------------------------------------------


def _pattern_hits(pattern: str, bar_steps: int) -> list[tuple[float, float]]:
    """(position in steps, velocity factor) of each hit of a groove string spanning one bar."""
    scale = bar_steps / len(pattern)
    vel = {"x": 0.8, "X": 1.0, "g": 0.35}
    return [(i * scale, vel[c]) for i, c in enumerate(pattern) if c in vel]


class _Renderer:
    """Turns a plan into tracks of notes, in absolute sixteenth steps, then into ticks."""

    def __init__(self, plan: SongPlan, rng: np.random.Generator, seed: int):
        self.plan = plan
        self.rng = rng  # replaced bar by bar: repeated sections replay the same choices
        self.jitter_rng = rng
        self.seed = seed
        self.step_ticks = plan.ticks_per_quarter / 4
        num, den = (int(v) for v in plan.meter.split("/"))
        self.bar_steps = num * 16 // den
        self.notes: dict[str, list[tuple[float, float, int, float]]] = {}  # part -> (start, end, pitch, vel)
        self.odd_bar = 0.0  # start step of the 7/8 bar (odd_bar_7_8 songs)
        self.end_step = 0.0

    def tick(self, step: float) -> int:
        jitter = self.jitter_rng.normal(0.0, self.plan.timing_jitter) if self.plan.timing_jitter else 0.0
        return int(round((step + self.plan.pickup_steps + jitter) * self.step_ticks))

    def add(self, part: str, start: float, length: float, pitch: int, vel: float) -> None:
        self.notes.setdefault(part, []).append((start, start + length, pitch, vel))

    def remove(self, part: str, start: float, pitches: tuple[int, ...]) -> None:
        self.notes[part] = [n for n in self.notes.get(part, []) if not (n[0] == start and n[2] in pitches)]

    # drums
    def drum_bar(self, start: float, section: Section, bar_in_section: int, section_start: bool) -> None:
        plan, rng = self.plan, self.rng
        if plan.meter != "4/4":
            groove = ODD_GROOVES[plan.meter]
        else:
            kind = "chorus" if section.name in ("chorus", "outro", "solo") else "verse"
            grooves = GROOVES[plan.genre][kind]
            groove = grooves[section.groove % len(grooves)]
        bar = self.bar_steps
        phrase_pos = bar_in_section % section.phrase
        fill = phrase_pos == section.phrase - 1 and bar_in_section < section.bars
        fill_from = bar if not fill else float(rng.choice([12, 12, 8, 14])) * bar / 16
        last_section_bar = bar_in_section == section.bars - 1
        if fill and not last_section_bar and rng.random() < 0.5:
            fill = False  # not every phrase end gets a fill
            fill_from = bar
        for pitch, pattern in groove.items():
            for pos, v in _pattern_hits(pattern, bar):
                if pos >= fill_from:
                    continue
                if plan.open_hat_accent and pitch == HAT and pos == bar - 2:
                    pitch_here = OPEN_HAT
                else:
                    pitch_here = pitch
                if pitch == KICK and pos == 0 and plan.genre == "reggae" and not section_start:
                    continue
                self.add("drums", start + pos, 1, pitch_here, 100 * v)
        if fill:
            n = int(round(bar - fill_from))
            kind = {"snare": 0, "toms": 1, "mixed": 2}[plan.drum_fill]
            for i in range(n):
                pos = fill_from + i
                if kind == 0:
                    pitch = SNARE
                elif kind == 1:
                    pitch = TOMS[min(5, i * 6 // max(n, 1))]
                else:
                    pitch = SNARE if i < n - 2 else TOMS[3 + i % 2]
                self.add("drums", start + pos, 1, pitch, 90 + 6 * (i % 2))
            self.add("drums", start + bar - 1, 1, KICK, 90)
        crash_here = section_start or (phrase_pos == 0 and plan.crash_every_phrase)
        if crash_here and plan.crash_style == "with_kick":
            if plan.crash_replaces_hat:
                self.remove("drums", start, (HAT, OPEN_HAT, RIDE))
            self.add("drums", start, 1, CRASH if rng.random() < 0.85 else CRASH2, 110)
            self.add("drums", start, 1, KICK, 110)
        elif crash_here and plan.crash_style == "pushed" and start >= 1:  # anticipated by a sixteenth
            self.remove("drums", start, (KICK, KICK2))
            self.add("drums", start - 1, 1, CRASH, 110)
            self.add("drums", start - 1, 1, KICK, 110)
        elif crash_here:  # no crash: a splash or a ride bell on the downbeat (unmapped or not a crash)
            self.add("drums", start, 1, RIDE_BELL, 100)
        if plan.variation and rng.random() < plan.variation:  # an extra ghost or kick somewhere
            pos = float(rng.integers(1, bar))
            self.add("drums", start + pos, 1, KICK if rng.random() < 0.5 else SNARE, 50)

    # bass
    def bass_bar(self, start: float, root: int, next_root: int, style: str, fill: bool) -> None:
        plan, rng = self.plan, self.rng
        scale = MINOR if plan.minor else MAJOR
        fifth = root + 7
        octave = root + 12
        third = root + (3 if plan.minor else 4)
        bar = self.bar_steps
        notes: list[tuple[float, float, int]] = []  # (pos, length, pitch)
        if plan.meter != "4/4":
            notes = [(0, bar / 3, root), (bar / 3, bar / 3, fifth), (2 * bar / 3, bar / 3, fifth)]
        elif style == "eighths":
            notes = [(p, 2, root) for p in range(0, 16, 2)]
        elif style == "quarters":
            notes = [(p, 4, root) for p in range(0, 16, 4)]
        elif style == "rock_pump":
            notes = [(p, 2, root) for p in range(0, 12, 2)] + [(12, 2, fifth), (14, 2, octave)]
        elif style == "root_fifth":
            notes = [
                (0, 4, root),
                (4, 4, fifth - 12 if fifth - 12 >= 28 else fifth),
                (8, 4, root),
                (12, 4, fifth),
            ]
        elif style == "octaves":
            notes = [(p, 2, root if (p // 2) % 2 == 0 else octave) for p in range(0, 16, 2)]
        elif style == "walking":
            approach = next_root - 1 if next_root != root else fifth - 12 if fifth - 12 >= 28 else fifth
            notes = [(0, 4, root), (4, 4, third), (8, 4, fifth), (12, 4, approach)]
        elif style == "syncopated":
            notes = [(0, 3, root), (3, 3, root), (6, 2, fifth), (8, 3, root), (11, 3, octave), (14, 2, fifth)]
        elif style == "funk":
            notes = [
                (0, 2, root),
                (3, 1, octave),
                (6, 1, root),
                (7, 1, root + scale[6]),
                (10, 2, fifth),
                (12, 1, octave),
                (14, 1, root),
            ]
        elif style == "hiphop":
            notes = [(0, 6, root), (7, 3, root), (10, 4, fifth - 12 if fifth - 12 >= 28 else root)]
        elif style == "whole":
            notes = [(0, 16, root)]
        elif style == "half":
            notes = [(0, 8, root), (8, 8, fifth)]
        elif style == "reggae":
            notes = [(2, 2, root), (4, 3, root), (8, 2, fifth), (10, 2, third), (12, 4, root)]
        elif style == "bossa":
            notes = [(0, 6, root), (6, 2, fifth), (8, 6, fifth), (14, 2, root)]
        elif style == "shuffle":  # swung: beat + triplet off-beat
            notes = []
            for beat, p in enumerate((root, third + 0, fifth, octave - 2 if not plan.minor else fifth + 3)):
                notes += [(beat * 4, 8 / 3, p), (beat * 4 + 8 / 3, 4 / 3, p)]
        else:
            raise ValueError(f"unknown bass style {style!r}")
        if plan.bass_embellish and style in ("eighths", "quarters", "octaves", "hiphop"):
            step = 2 if style in ("eighths", "octaves") else 4
            notes = [n for n in notes if n[0] < 16 - 2 * step] + [
                (16 - 2 * step, step, fifth),
                (16 - step, step, root),
            ]
        if fill and plan.meter == "4/4" and rng.random() < plan.bass_fill_chance:
            notes = [n for n in notes if n[0] < 12]
            approach = next_root - 2 if rng.random() < 0.5 else next_root + 2
            notes += [(12, 2, fifth), (14, 2, approach)]
        if plan.variation and rng.random() < plan.variation and len(notes) > 1:
            i = int(rng.integers(1, len(notes)))
            pos, length, pitch = notes[i]
            if rng.random() < 0.3:  # now and then another pitch, mostly a rhythmic slip
                notes[i] = (pos, length, pitch + int(rng.choice([-12, 12, 7])))
            elif length > 1:
                notes[i] = (pos + 1, length - 1, pitch)
        legato = "legato_overlap" in plan.features
        articulation = min(
            plan.articulation, {"funk": 0.6, "reggae": 0.8, "syncopated": 0.85}.get(style, 1.0)
        )
        for pos, length, pitch in notes:
            dur = length * (1.15 if legato and rng.random() < 0.3 else articulation)
            self.add("bass", start + pos, dur, pitch, 96 if pos % 4 == 0 else 84)
        if "double_stops" in plan.features and rng.random() < 0.12:
            pos, length, pitch = notes[0]
            self.add("bass", start + pos, length * articulation, pitch + 7, 80)

    # harmony and melody
    def harmony_bar(
        self, start: float, root_pc: int, section: Section, motif: list[tuple[float, float, int]]
    ) -> None:
        plan = self.plan
        bar = self.bar_steps
        third = 3 if plan.minor and root_pc in (0, 5, 7) else 4
        if plan.minor and root_pc in (3, 8, 10):
            third = 4
        chord = [60 + (plan.key + root_pc) % 12, 0, 0]
        chord[1] = chord[0] + third
        chord[2] = chord[0] + 7
        for inst in plan.instruments:
            if inst == "piano":
                hits = (0, 6, 8, 14) if plan.genre in ("pop", "funk", "hiphop") else (0, 4, 8, 12)
                for pos in hits:
                    if pos < bar:
                        for p in chord:
                            self.add("piano", start + pos, 2 if pos % 4 else 3.5, p, 70)
            elif inst == "guitar":
                if plan.genre == "reggae":
                    hits = list(range(4, bar, 8))
                else:
                    hits = list(range(0, bar, 2))
                for pos in hits:
                    for p in (chord[0] - 12, chord[2] - 12, chord[0]):
                        self.add("guitar", start + pos, 1.5, p, 75)
            elif inst in ("strings", "pad", "organ"):
                if section.name in ("chorus", "bridge", "outro") or inst == "organ":
                    for p in chord:
                        self.add(inst, start, bar * 0.98, p + (12 if inst == "strings" else 0), 60)
            elif inst == "lead" and section.name in ("chorus", "solo", "verse"):
                for pos, length, degree in motif:
                    if pos < bar:
                        self.add("lead", start + pos, length, 72 + plan.key % 12 + degree, 90)

    def render(self) -> None:
        plan, rng = self.plan, self.rng
        scale = MINOR if plan.minor else MAJOR
        base = 28 + (plan.key - 4) % 12  # bass register: E1..D#2 for the tonic
        pos = 0.0
        if plan.pickup_bar:  # a lead-in bar: one beat of fill and a pickup bass note
            for i in range(4):
                self.add("drums", self.bar_steps - 4 + i, 1, SNARE, 80 + 5 * i)
            self.add("bass", self.bar_steps - 2, 2, base + 7, 80)
            pos += self.bar_steps
        n_bars = sum(s.bars for s in plan.sections)
        bar_index = 0
        kinds = sorted({s.name for s in plan.sections})
        seen: dict[str, int] = {}
        for si, section in enumerate(plan.sections):
            # A repeated section replays the choices of its first occurrence (copy-paste, as in most
            # sequenced songs) unless this song varies its repeats.
            occurrence = seen.get(section.name, 0)
            seen[section.name] = occurrence + 1
            variant = occurrence if occurrence and rng.random() < plan.repeat_variation else 0
            kind_id = kinds.index(section.name)
            motif_rng = np.random.default_rng([self.seed, plan.index, 3, kind_id])
            motif = [
                (float(p), float(motif_rng.choice([1, 2, 2, 3])), int(motif_rng.choice(scale)))
                for p in sorted(
                    motif_rng.choice(self.bar_steps, size=int(motif_rng.integers(3, 7)), replace=False)
                )
            ]
            for b in range(section.bars):
                # choices repeat with the phrase (copy-pasted phrases); the section's last bar is its own
                key = section.phrase + 1 if b == section.bars - 1 else b % section.phrase
                self.rng = np.random.default_rng([self.seed, plan.index, 2, kind_id, variant, key])
                prog = section.progression
                root_pc = prog[b % len(prog)]
                nxt = (
                    prog[(b + 1) % len(prog)]
                    if b + 1 < section.bars
                    else (plan.sections[si + 1].progression[0] if si + 1 < len(plan.sections) else 0)
                )
                root = base + root_pc
                next_root = base + nxt
                if root > base + 7:
                    root -= 12
                if next_root > base + 7:
                    next_root -= 12
                fill = b % section.phrase == section.phrase - 1
                if section.has_drums:
                    self.drum_bar(pos, section, b, b == 0)
                if section.has_bass:
                    self.bass_bar(pos, root, next_root, section.bass_style, fill)
                self.harmony_bar(pos, root_pc, section, motif)
                pos += self.bar_steps
                if "odd_bar_7_8" in plan.defects and bar_index == n_bars // 2:
                    self.odd_bar = pos  # a 7/8 bar (14 steps) of drums only after this bar
                    for i in range(0, 14, 2):
                        self.add("drums", pos + i, 1, HAT, 70)
                    pos += 14
                bar_index += 1
        # final hit
        self.add("drums", pos, 1, CRASH, 110)
        self.add("drums", pos, 1, KICK, 110)
        if plan.sections[-1].has_bass:
            self.add("bass", pos, 8, base, 100)
        self.end_step = pos + 16


PROGRAMS = {"piano": 0, "guitar": 27, "strings": 48, "lead": 81, "organ": 16, "pad": 89}


def render_song(plan: SongPlan, seed: int) -> bytes:
    """The MIDI file bytes of a planned song (broken files included)."""
    rng = np.random.default_rng([seed, plan.index, 1])
    r = _Renderer(plan, rng, seed)
    r.render()
    defects = set(plan.defects)
    conductor = Track(name=f"{plan.genre} song {plan.index}")
    num, den = (int(v) for v in plan.meter.split("/"))
    bpm = plan.tempo
    conductor.tempo(0, bpm)
    if "no_time_signature" not in defects:
        conductor.time_signature(0, num, den)
    sharps = KEY_SHARPS[(plan.key + (3 if plan.minor else 0)) % 12]
    conductor.key_signature(0, sharps, plan.minor)
    bar_ticks = r.bar_steps * r.step_ticks
    for bar, tempo in plan.tempo_changes:
        conductor.tempo(int(round(bar * bar_ticks)) + plan.pickup_steps * int(r.step_ticks), tempo)
    if "odd_bar_7_8" in defects:
        conductor.time_signature(int(round(r.odd_bar * r.step_ticks)), 7, 8)
        conductor.time_signature(int(round((r.odd_bar + 14) * r.step_ticks)), 4, 4)

    tracks = [conductor]
    jitter_vel = rng.normal

    def note_track(name: str, part: str, channel: int, program: int, notes: list | None = None) -> Track:
        t = Track(name=name)
        t.program(0, channel, program)
        for start, end, pitch, vel in notes if notes is not None else r.notes.get(part, []):
            a = r.tick(start)
            b = max(a + 1, r.tick(end))
            t.note(a, b, channel, int(pitch), int(vel + jitter_vel(0, 6)))
        return t

    drum_notes = r.notes.get("drums", [])
    if drum_notes and "no_drums" not in defects:
        channel = 0 if "drums_off_channel_10" in defects else DRUM_CHANNEL
        if "split_drum_tracks" in plan.features:
            cym = {HAT, OPEN_HAT, PEDAL_HAT, CRASH, CRASH2, RIDE, RIDE2, TAMBOURINE, COWBELL}
            tracks.append(note_track("Drums", "", channel, 0, [n for n in drum_notes if n[2] not in cym]))
            tracks.append(note_track("Cymbals", "", channel, 0, [n for n in drum_notes if n[2] in cym]))
        else:
            tracks.append(note_track("Drums", "drums", channel, 0))
        if "hidden_meter_3_4" in defects:  # a meter change hidden on a non-conductor track
            tracks[-1].time_signature(
                int(round(r.end_step * r.step_ticks / 2)) // int(bar_ticks) * int(bar_ticks), 3, 4
            )
    bass_notes = r.notes.get("bass", [])
    if bass_notes and "no_bass" not in defects:
        program = 0 if "bass_as_piano" in defects else plan.bass_program
        if plan.n_bass_tracks == 2:  # the chorus bass is a separate synth-bass track
            chorus_spans = []
            pos = r.bar_steps if plan.pickup_bar else 0
            for s in plan.sections:
                if s.name == "chorus":
                    chorus_spans.append((pos, pos + s.bars * r.bar_steps))
                pos += s.bars * r.bar_steps

            def in_chorus(n):
                return any(a <= n[0] < b for a, b in chorus_spans)

            tracks.append(note_track("Bass", "", 1, program, [n for n in bass_notes if not in_chorus(n)]))
            tracks.append(note_track("Synth Bass", "", 2, 38, [n for n in bass_notes if in_chorus(n)]))
        else:
            tracks.append(note_track("Bass", "bass", 1, program))
    for ch, inst in enumerate(plan.instruments, start=3):
        if inst in r.notes:
            tracks.append(note_track(inst.title(), inst, ch, PROGRAMS[inst]))
    data = encode_file(tracks, plan.ticks_per_quarter)
    if "broken_truncated" in defects:
        data = data[: int(len(data) * float(rng.uniform(0.3, 0.7)))]
    elif "broken_garbage" in defects:
        data = rng.integers(0, 256, size=int(rng.integers(500, 3000)), dtype=np.uint8).tobytes()
    elif "broken_zero_tracks" in defects:
        data = b"MThd" + struct.pack(">IHHH", 6, 1, 0, plan.ticks_per_quarter)
    return data
