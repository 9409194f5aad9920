"""loopgen: the executable companion to *Symbolic Music Loop Generation with VQ-VAE* (2021).

Data flows one way: MIDI files -> note tables -> song rolls -> loops (shards) -> models
(checkpoints) -> samples -> metrics / tables / figures / audio.
"""

__version__ = "0.1.0"

# The loop array, docs/rules.md §1: 8 bars x 16 steps, 9 drum columns + 84 bass pitches.
STEPS_PER_BAR = 16
BARS_PER_LOOP = 8
LOOP_STEPS = STEPS_PER_BAR * BARS_PER_LOOP  # 128
N_DRUM = 9
N_BASS = 84
N_COLUMNS = N_DRUM + N_BASS  # 93
BAR_CELLS = STEPS_PER_BAR * N_COLUMNS  # 1488: HD and the bar-1/bar-5 rule divide by this
LOOP_CELLS = LOOP_STEPS * N_COLUMNS  # 11904 cells a loop (1,488 bytes packed)
BASS_LOWEST_PITCH = 24  # C1
BASS_HIGHEST_PITCH = 107  # B7
BASS_PITCH_OFFSET = BASS_LOWEST_PITCH - N_DRUM  # 15: bass column c <-> MIDI pitch c + 15
DRUM_CHANNEL = 9  # MIDI channel 10 (0-based 9): the General MIDI drum channel
DRUM_NAMES = (
    "kick",
    "snare",
    "closed hi-hat",
    "low tom",
    "open hi-hat",
    "mid tom",
    "crash",
    "high tom",
    "ride",
)
KICK, CRASH = 0, 6
