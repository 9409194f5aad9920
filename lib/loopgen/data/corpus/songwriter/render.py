"""Song rendering: a :class:`SongPlan` played into notes (in sixteenth steps), then into MIDI bytes.

A song draws from ``numpy.random.default_rng([seed, index, 1])`` (repeat variants, timing and velocity
jitter, broken bytes); each bar from its own ``[seed, index, 2, section kind, variant, bar key]``
generator, so that a repeated phrase replays its choices; each section kind's lead motif from
``[seed, index, 3, section kind]``.
"""

from __future__ import annotations

import struct

import numpy as np

from loopgen import DRUM_CHANNEL
from loopgen.data.corpus.smf import Track, encode_file
from loopgen.data.corpus.songwriter.plan import Section, SongPlan
from loopgen.data.corpus.songwriter.styles import (
    BASS_STYLES,
    CRASH,
    CRASH2,
    CYMBALS,
    GROOVES,
    HAT,
    INSTRUMENTS,
    KEY_SHARPS,
    KICK,
    KICK2,
    MAJOR,
    MINOR,
    ODD_GROOVES,
    OPEN_HAT,
    RIDE,
    RIDE_BELL,
    SNARE,
    SYNTH_BASS_PROGRAM,
    TOMS,
    BassChord,
    BassNote,
    groove_kind,
    odd_meter_bass,
)

Note = tuple[float, float, int, float]  # (start step, end step, pitch, velocity)


def _pattern_hits(pattern: str, bar_steps: int) -> list[tuple[float, float]]:
    """(position in steps, velocity factor) of each hit of a groove string spanning one bar."""
    scale = bar_steps / len(pattern)
    vel = {"x": 0.8, "X": 1.0, "g": 0.35}
    return [(i * scale, vel[c]) for i, c in enumerate(pattern) if c in vel]


class _Renderer:
    """Turns a plan into parts of notes, in absolute sixteenth steps, then into ticks."""

    def __init__(self, plan: SongPlan, song_rng: np.random.Generator, seed: int):
        self.plan = plan
        self.seed = seed
        self.song_rng = song_rng
        self.bar_rng = song_rng  # replaced bar by bar: repeated sections replay the same choices
        self.step_ticks = plan.ticks_per_quarter / 4
        num, den = (int(v) for v in plan.meter.split("/"))
        self.bar_steps = num * 16 // den
        self.notes: dict[str, list[Note]] = {}  # part -> notes
        self.odd_bar = 0.0  # start step of the 7/8 bar (odd_bar_7_8 songs)
        self.end_step = 0.0

    def tick(self, step: float) -> int:
        plan = self.plan
        jitter = self.song_rng.normal(0.0, plan.timing_jitter) if plan.timing_jitter else 0.0
        return int(round((step + plan.pickup_steps + jitter) * self.step_ticks))

    def add(self, part: str, start: float, length: float, pitch: int, vel: float) -> None:
        self.notes.setdefault(part, []).append((start, start + length, pitch, vel))

    def remove(self, part: str, start: float, pitches: tuple[int, ...]) -> None:
        self.notes[part] = [n for n in self.notes.get(part, []) if not (n[0] == start and n[2] in pitches)]

    # drums
    def drum_bar(self, start: float, section: Section, bar_in_section: int) -> None:
        """One bar of the section's groove, a fill at a phrase end, a crash on a phrase start."""
        plan, rng, bar = self.plan, self.bar_rng, self.bar_steps
        phrase_pos = bar_in_section % section.phrase
        fill = phrase_pos == section.phrase - 1 and bar_in_section < section.bars
        fill_from = bar if not fill else float(rng.choice([12, 12, 8, 14])) * bar / 16
        last_section_bar = bar_in_section == section.bars - 1
        if fill and not last_section_bar and rng.random() < 0.5:
            fill = False  # not every phrase end gets a fill
            fill_from = bar
        self._groove(start, section, fill_from, section_start=bar_in_section == 0)
        if fill:
            self._fill(start, fill_from)
        if bar_in_section == 0 or (phrase_pos == 0 and plan.crash_every_phrase):
            self._crash(start)
        if plan.variation and rng.random() < plan.variation:  # an extra ghost or kick somewhere
            pos = float(rng.integers(1, bar))
            self.add("drums", start + pos, 1, KICK if rng.random() < 0.5 else SNARE, 50)

    def _groove(self, start: float, section: Section, until: float, section_start: bool) -> None:
        plan, bar = self.plan, self.bar_steps
        if plan.meter != "4/4":
            groove = ODD_GROOVES[plan.meter]
        else:
            grooves = GROOVES[plan.genre][groove_kind(section.name)]
            groove = grooves[section.groove % len(grooves)]
        for pitch, pattern in groove.items():
            for pos, v in _pattern_hits(pattern, bar):
                if pos >= until:
                    continue
                if pitch == KICK and pos == 0 and plan.genre == "reggae" and not section_start:
                    continue
                opens = plan.open_hat_accent and pitch == HAT and pos == bar - 2
                self.add("drums", start + pos, 1, OPEN_HAT if opens else pitch, 100 * v)

    def _fill(self, start: float, fill_from: float) -> None:
        n = int(round(self.bar_steps - fill_from))
        for i in range(n):
            if self.plan.drum_fill == "snare":
                pitch = SNARE
            elif self.plan.drum_fill == "toms":
                pitch = TOMS[min(5, i * 6 // max(n, 1))]
            else:  # "mixed": snare, then two toms
                pitch = SNARE if i < n - 2 else TOMS[3 + i % 2]
            self.add("drums", start + (fill_from + i), 1, pitch, 90 + 6 * (i % 2))
        self.add("drums", start + self.bar_steps - 1, 1, KICK, 90)

    def _crash(self, start: float) -> None:
        plan = self.plan
        if plan.crash_style == "with_kick":
            if plan.crash_replaces_hat:
                self.remove("drums", start, (HAT, OPEN_HAT, RIDE))
            self.add("drums", start, 1, CRASH if self.bar_rng.random() < 0.85 else CRASH2, 110)
            self.add("drums", start, 1, KICK, 110)
        elif plan.crash_style == "pushed" and start >= 1:  # anticipated by a sixteenth
            self.remove("drums", start, (KICK, KICK2))
            self.add("drums", start - 1, 1, CRASH, 110)
            self.add("drums", start - 1, 1, KICK, 110)
        else:  # no crash (nor a pushed one on the first step): a ride bell on the downbeat
            self.add("drums", start, 1, RIDE_BELL, 100)

    # bass
    def bass_bar(self, start: float, chord: BassChord, style_name: str, fill: bool) -> None:
        """One bar of the bass style over ``chord``: embellished, with a run into the next phrase, slipped."""
        plan, rng = self.plan, self.bar_rng
        style = BASS_STYLES[style_name]
        notes: list[BassNote]
        if plan.meter != "4/4":
            notes = odd_meter_bass(chord, self.bar_steps)
        else:
            notes = style.notes(chord)
        if plan.bass_embellish and style.embellish_step:
            step = style.embellish_step
            notes = [n for n in notes if n[0] < 16 - 2 * step]
            notes += [(16 - 2 * step, step, chord.fifth), (16 - step, step, chord.root)]
        if fill and plan.meter == "4/4" and rng.random() < plan.bass_fill_chance:
            notes = [n for n in notes if n[0] < 12]
            approach = chord.next_root - 2 if rng.random() < 0.5 else chord.next_root + 2
            notes += [(12, 2, chord.fifth), (14, 2, approach)]
        if plan.variation and rng.random() < plan.variation and len(notes) > 1:
            i = int(rng.integers(1, len(notes)))
            pos, length, pitch = notes[i]
            if rng.random() < 0.3:  # now and then another pitch, mostly a rhythmic slip
                notes[i] = (pos, length, pitch + int(rng.choice([-12, 12, 7])))
            elif length > 1:
                notes[i] = (pos + 1, length - 1, pitch)
        legato = "legato_overlap" in plan.features
        articulation = min(plan.articulation, style.articulation)
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
        third = 3 if plan.minor and root_pc in (0, 5, 7) else 4  # minor i, iv, v; major chords elsewhere
        root = 60 + (plan.key + root_pc) % 12
        chord = [root, root + third, root + 7]
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

    def _motif(self, kind_id: int) -> list[tuple[float, float, int]]:
        """A section kind's lead motif: 3 to 6 notes of the scale, (position, length, degree)."""
        plan = self.plan
        scale = MINOR if plan.minor else MAJOR
        motif_rng = np.random.default_rng([self.seed, plan.index, 3, kind_id])
        positions = motif_rng.choice(self.bar_steps, size=int(motif_rng.integers(3, 7)), replace=False)
        return [
            (float(p), float(motif_rng.choice([1, 2, 2, 3])), int(motif_rng.choice(scale)))
            for p in sorted(positions)
        ]

    def render(self) -> None:
        """Play every section bar by bar, with the lead-in bar, the 7/8 bar and the final hit if any."""
        plan = self.plan
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
            variant = occurrence if occurrence and self.song_rng.random() < plan.repeat_variation else 0
            kind_id = kinds.index(section.name)
            motif = self._motif(kind_id)
            prog = section.progression
            following = plan.sections[si + 1].progression[0] if si + 1 < len(plan.sections) else 0
            for b in range(section.bars):
                # choices repeat with the phrase (copy-pasted phrases); the section's last bar is its own
                key = section.phrase + 1 if b == section.bars - 1 else b % section.phrase
                self.bar_rng = np.random.default_rng([self.seed, plan.index, 2, kind_id, variant, key])
                root_pc = prog[b % len(prog)]
                next_pc = prog[(b + 1) % len(prog)] if b + 1 < section.bars else following
                if section.has_drums:
                    self.drum_bar(pos, section, b)
                if section.has_bass:
                    root, next_root = _in_register(base, root_pc), _in_register(base, next_pc)
                    chord = BassChord.over(root, next_root, plan.minor)
                    self.bass_bar(pos, chord, section.bass_style, b % section.phrase == section.phrase - 1)
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

    def note_track(self, name: str, channel: int, program: int, notes: list[Note]) -> Track:
        """A MIDI track of ``notes``, in ticks, with the song's timing and velocity jitter."""
        track = Track(name=name)
        track.program(0, channel, program)
        for start, end, pitch, vel in notes:
            a = self.tick(start)
            b = max(a + 1, self.tick(end))
            track.note(a, b, channel, int(pitch), int(vel + self.song_rng.normal(0, 6)))
        return track


def _in_register(base: int, pitch_class: int) -> int:
    """A chord root in the bass register: at most a fifth above the tonic ``base``."""
    root = base + pitch_class
    return root - 12 if root > base + 7 else root


def _conductor(plan: SongPlan, r: _Renderer) -> Track:
    """Tempo, time and key signatures (none, or a 7/8 bar, for the meter defects)."""
    conductor = Track(name=f"{plan.genre} song {plan.index}")
    num, den = (int(v) for v in plan.meter.split("/"))
    conductor.tempo(0, plan.tempo)
    if "no_time_signature" not in plan.defects:
        conductor.time_signature(0, num, den)
    sharps = KEY_SHARPS[(plan.key + (3 if plan.minor else 0)) % 12]
    conductor.key_signature(0, sharps, plan.minor)
    bar_ticks = r.bar_steps * r.step_ticks
    for bar, tempo in plan.tempo_changes:
        conductor.tempo(int(round(bar * bar_ticks)) + plan.pickup_steps * int(r.step_ticks), tempo)
    if "odd_bar_7_8" in plan.defects:
        conductor.time_signature(int(round(r.odd_bar * r.step_ticks)), 7, 8)
        conductor.time_signature(int(round((r.odd_bar + 14) * r.step_ticks)), 4, 4)
    return conductor


def _drum_tracks(plan: SongPlan, r: _Renderer) -> list[Track]:
    """One drum track (or drums and cymbals apart); none, or on channel 1, for the no-drums defects."""
    drum_notes = r.notes.get("drums", [])
    if not drum_notes or "no_drums" in plan.defects:
        return []
    channel = 0 if "drums_off_channel_10" in plan.defects else DRUM_CHANNEL
    if "split_drum_tracks" in plan.features:
        tracks = [
            r.note_track("Drums", channel, 0, [n for n in drum_notes if n[2] not in CYMBALS]),
            r.note_track("Cymbals", channel, 0, [n for n in drum_notes if n[2] in CYMBALS]),
        ]
    else:
        tracks = [r.note_track("Drums", channel, 0, drum_notes)]
    if "hidden_meter_3_4" in plan.defects:  # a meter change hidden on a non-conductor track
        bar_ticks = int(r.bar_steps * r.step_ticks)
        tracks[-1].time_signature(int(round(r.end_step * r.step_ticks / 2)) // bar_ticks * bar_ticks, 3, 4)
    return tracks


def _bass_tracks(plan: SongPlan, r: _Renderer) -> list[Track]:
    """One bass track (or the chorus bass on a synth-bass track of its own); none for ``no_bass``."""
    bass_notes = r.notes.get("bass", [])
    if not bass_notes or "no_bass" in plan.defects:
        return []
    program = 0 if "bass_as_piano" in plan.defects else plan.bass_program
    if plan.n_bass_tracks != 2:
        return [r.note_track("Bass", 1, program, bass_notes)]
    chorus_spans = []
    pos = r.bar_steps if plan.pickup_bar else 0
    for s in plan.sections:
        if s.name == "chorus":
            chorus_spans.append((pos, pos + s.bars * r.bar_steps))
        pos += s.bars * r.bar_steps

    def in_chorus(note: Note) -> bool:
        return any(a <= note[0] < b for a, b in chorus_spans)

    return [
        r.note_track("Bass", 1, program, [n for n in bass_notes if not in_chorus(n)]),
        r.note_track("Synth Bass", 2, SYNTH_BASS_PROGRAM, [n for n in bass_notes if in_chorus(n)]),
    ]


def _break(data: bytes, plan: SongPlan, rng: np.random.Generator) -> bytes:
    """The file as the broken-file defects leave it: truncated, garbage, or a header with no tracks."""
    if "broken_truncated" in plan.defects:
        return data[: int(len(data) * float(rng.uniform(0.3, 0.7)))]
    if "broken_garbage" in plan.defects:
        return rng.integers(0, 256, size=int(rng.integers(500, 3000)), dtype=np.uint8).tobytes()
    if "broken_zero_tracks" in plan.defects:
        return b"MThd" + struct.pack(">IHHH", 6, 1, 0, plan.ticks_per_quarter)
    return data


def render_song(plan: SongPlan, seed: int) -> bytes:
    """The MIDI file bytes of a planned song (broken files included)."""
    rng = np.random.default_rng([seed, plan.index, 1])
    r = _Renderer(plan, rng, seed)
    r.render()
    tracks = [_conductor(plan, r), *_drum_tracks(plan, r), *_bass_tracks(plan, r)]
    for channel, inst in enumerate(plan.instruments, start=3):
        if inst in r.notes:
            tracks.append(r.note_track(inst.title(), channel, INSTRUMENTS[inst], r.notes[inst]))
    return _break(encode_file(tracks, plan.ticks_per_quarter), plan, rng)
