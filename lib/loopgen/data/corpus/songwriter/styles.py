"""The songwriter's style data: drum grooves, genres, bass styles, chord progressions, forms, instruments.

Tables only (and the few pitch rules a bass pattern needs): :mod:`.plan` draws from them, :mod:`.render`
plays them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# --- General MIDI drum notes used by the grooves ---------------------------------------------------
KICK, KICK2, SNARE, RIM, CLAP = 36, 35, 38, 37, 39
HAT, PEDAL_HAT, OPEN_HAT = 42, 44, 46
CRASH, CRASH2 = 49, 57
RIDE, RIDE_BELL, RIDE2 = 51, 53, 59
TOMS = (50, 48, 47, 45, 43, 41)  # high to low
TAMBOURINE, COWBELL = 54, 56
CYMBALS = frozenset({HAT, OPEN_HAT, PEDAL_HAT, CRASH, CRASH2, RIDE, RIDE2, TAMBOURINE, COWBELL})

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


def groove_kind(section_name: str) -> str:
    """Which of a genre's groove lists a section plays: ``"chorus"`` or ``"verse"``."""
    return "chorus" if section_name in ("chorus", "outro", "solo") else "verse"


@dataclass(frozen=True)
class Genre:
    """How often a genre is drawn, its tempo range (bpm) and the bass styles it picks from."""

    weight: float
    tempo: tuple[int, int]
    bass_styles: tuple[str, ...]


GENRES: dict[str, Genre] = {
    "rock": Genre(0.2, (96, 150), ("eighths", "eighths", "rock_pump", "root_fifth", "octaves")),
    "pop": Genre(0.24, (88, 128), ("eighths", "syncopated", "quarters", "root_fifth", "octaves")),
    "funk": Genre(0.07, (92, 116), ("funk", "funk", "syncopated", "octaves")),
    "disco": Genre(0.05, (112, 128), ("octaves", "octaves", "eighths")),
    "hiphop": Genre(0.1, (80, 100), ("hiphop", "hiphop", "whole", "syncopated")),
    "halftime": Genre(0.05, (120, 150), ("whole", "half", "eighths")),
    "reggae": Genre(0.04, (70, 90), ("reggae", "reggae", "syncopated")),
    "country": Genre(0.11, (100, 140), ("root_fifth", "root_fifth", "walking", "quarters")),
    "ballad": Genre(0.06, (64, 84), ("whole", "half", "quarters")),
    "bossa": Genre(0.03, (120, 140), ("root_fifth", "bossa")),
    "shuffle": Genre(0.05, (90, 130), ("walking", "shuffle", "shuffle")),
}

# --- bass ----------------------------------------------------------------------------------------------
LOWEST_BASS_NOTE = 28  # E1, the open low string
BassNote = tuple[float, float, int]  # (position in sixteenth steps, length in steps, MIDI pitch)


@dataclass(frozen=True)
class BassChord:
    """The pitches a bass pattern draws on in one bar: this bar's chord tones and the next bar's root."""

    root: int
    third: int
    fifth: int
    seventh: int  # the scale's seventh degree (minor: the flat seventh)
    octave: int
    next_root: int

    @classmethod
    def over(cls, root: int, next_root: int, minor: bool) -> BassChord:
        """The chord on ``root`` in a major or minor key, moving on to ``next_root``."""
        third, seventh = (3, 10) if minor else (4, 11)
        return cls(root, root + third, root + 7, root + seventh, root + 12, next_root)

    def fifth_below(self, otherwise: int) -> int:
        """The fifth an octave down if that is still on the bass, else ``otherwise``."""
        return self.fifth - 12 if self.fifth - 12 >= LOWEST_BASS_NOTE else otherwise


@dataclass(frozen=True)
class BassStyle:
    """One bar of a 4/4 bass line over a chord, and how it is played.

    ``articulation`` caps the song's note length (a fraction of each note's slot); ``embellish_step``,
    for plain root patterns, is the note length of the fifth-root turn that ends the bar in songs
    that embellish (``None``: the style is never embellished).
    """

    notes: Callable[[BassChord], list[BassNote]]
    articulation: float = 1.0
    embellish_step: int | None = None


def _walking_approach(c: BassChord) -> int:
    """A walking line's last note: a semitone below the next root, or the low fifth if it stays."""
    return c.next_root - 1 if c.next_root != c.root else c.fifth_below(c.fifth)


BASS_STYLES: dict[str, BassStyle] = {
    "eighths": BassStyle(lambda c: [(p, 2, c.root) for p in range(0, 16, 2)], embellish_step=2),
    "quarters": BassStyle(lambda c: [(p, 4, c.root) for p in range(0, 16, 4)], embellish_step=4),
    "rock_pump": BassStyle(
        lambda c: [(p, 2, c.root) for p in range(0, 12, 2)] + [(12, 2, c.fifth), (14, 2, c.octave)]
    ),
    "root_fifth": BassStyle(
        lambda c: [(0, 4, c.root), (4, 4, c.fifth_below(c.fifth)), (8, 4, c.root), (12, 4, c.fifth)]
    ),
    "octaves": BassStyle(
        lambda c: [(p, 2, c.root if (p // 2) % 2 == 0 else c.octave) for p in range(0, 16, 2)],
        embellish_step=2,
    ),
    "walking": BassStyle(
        lambda c: [(0, 4, c.root), (4, 4, c.third), (8, 4, c.fifth), (12, 4, _walking_approach(c))]
    ),
    "syncopated": BassStyle(
        lambda c: [(0, 3, c.root), (3, 3, c.root), (6, 2, c.fifth), (8, 3, c.root), (11, 3, c.octave),
                   (14, 2, c.fifth)],
        articulation=0.85,
    ),
    "funk": BassStyle(
        lambda c: [(0, 2, c.root), (3, 1, c.octave), (6, 1, c.root), (7, 1, c.seventh), (10, 2, c.fifth),
                   (12, 1, c.octave), (14, 1, c.root)],
        articulation=0.6,
    ),
    "hiphop": BassStyle(
        lambda c: [(0, 6, c.root), (7, 3, c.root), (10, 4, c.fifth_below(c.root))], embellish_step=4
    ),
    "whole": BassStyle(lambda c: [(0, 16, c.root)]),
    "half": BassStyle(lambda c: [(0, 8, c.root), (8, 8, c.fifth)]),
    "reggae": BassStyle(
        lambda c: [(2, 2, c.root), (4, 3, c.root), (8, 2, c.fifth), (10, 2, c.third), (12, 4, c.root)],
        articulation=0.8,
    ),
    "bossa": BassStyle(lambda c: [(0, 6, c.root), (6, 2, c.fifth), (8, 6, c.fifth), (14, 2, c.root)]),
    # swung: each beat and its triplet off-beat, up the chord to the flat seventh
    "shuffle": BassStyle(
        lambda c: [
            (beat * 4 + offset, length, pitch)
            for beat, pitch in enumerate((c.root, c.third, c.fifth, c.octave - 2))
            for offset, length in ((0, 8 / 3), (8 / 3, 4 / 3))
        ]
    ),
}  # fmt: skip


def odd_meter_bass(chord: BassChord, bar_steps: int) -> list[BassNote]:
    """The bass of a bar in 3/4, 6/8 or 12/8, whatever the style: root, fifth, fifth."""
    third = bar_steps / 3
    return [(0, third, chord.root), (third, third, chord.fifth), (2 * third, third, chord.fifth)]


# --- harmony and form ------------------------------------------------------------------------------------
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

# The key signature of each major key by its tonic pitch class: sharps (> 0) or flats (< 0).
KEY_SHARPS = {0: 0, 7: 1, 2: 2, 9: 3, 4: 4, 11: 5, 5: -1, 10: -2, 3: -3, 8: -4, 1: -5, 6: 6}

# How repetitive a song's harmony is, and how often: 4-bar cycles loop, 8-bar forms mostly do not.
HARMONY_WEIGHTS = {"cycle4": 0.45, "slow": 0.2, "cycle8": 0.25, "vamp": 0.10}
SECTION_KINDS = ("intro", "verse", "prechorus", "chorus", "bridge", "solo", "outro")
FORMS = (
    ("intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"),
    ("intro", "verse", "prechorus", "chorus", "verse", "prechorus", "chorus", "chorus", "outro"),
    ("intro", "verse", "verse", "chorus", "verse", "chorus", "outro"),
    ("verse", "chorus", "verse", "chorus", "bridge", "chorus"),
    ("intro", "chorus", "verse", "chorus", "verse", "chorus", "outro"),
    ("intro", "verse", "chorus", "verse", "chorus", "solo", "chorus", "outro"),
)
# Section lengths in bars to draw from (odd intro lengths shift the song against an 8-bar grid); a
# pre-chorus is always 4 bars, any other section draws from VERSE_BARS.
SECTION_BARS = {"intro": (1, 2, 4, 4, 6, 8), "outro": (4, 4, 8), "bridge": (8, 8, 16), "solo": (8, 8, 16)}
VERSE_BARS = (8, 16, 16)
PRECHORUS_BARS = 4

# --- instruments ---------------------------------------------------------------------------------------
# The parts beside bass and drums, with their General MIDI programs.
INSTRUMENTS = {"piano": 0, "guitar": 27, "strings": 48, "lead": 81, "organ": 16, "pad": 89}
BASS_PROGRAMS = (33, 33, 33, 34, 34, 32, 35, 36, 37, 38, 39)  # drawn from: fingered and picked basses most
SYNTH_BASS_PROGRAM = 38
