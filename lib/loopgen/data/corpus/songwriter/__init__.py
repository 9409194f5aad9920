"""The procedural songwriter: a seeded stand-in for the Lakh MIDI Dataset.

Each song is planned first (genre, tempo, key, form, grooves, bass style, defects), then rendered to
Standard MIDI bytes. Songs are built from sections (intro / verse / pre-chorus / chorus / bridge /
outro) made of 4- and 8-bar phrases; drums play a genre groove with fills at phrase ends and crashes
at section starts; the bass follows a chord progression in one of several styles; piano, guitar,
strings and a lead line fill out the arrangement. A share of the songs carries the defects real
collections have (other meters, no bass, no drums, misaligned pickups, broken files, ...), and every
defect is recorded in the song's plan so that tests can check the extractor's verdict.

* :mod:`.styles`: the style data (grooves, genres, bass styles, progressions, forms, instruments);
* :mod:`.plan`: :func:`plan_song`, everything about one song decided up front, as a :class:`SongPlan`;
* :mod:`.render`: :func:`render_song`, a plan played into MIDI bytes.

Everything random comes from ``numpy.random.default_rng([seed, song_index, ...])``: song ``i`` is the
same whatever the corpus size, and the bytes are the same on every run.
"""

from loopgen.data.corpus.songwriter.plan import EXPECTED_REJECTION, Section, SongPlan, plan_song
from loopgen.data.corpus.songwriter.render import render_song

__all__ = ["EXPECTED_REJECTION", "Section", "SongPlan", "plan_song", "render_song"]
