"""Features for people who make music, beyond the paper: usable loops as MIDI and WAV files for a DAW.

* :mod:`~loopgen.musician.variation` — ``vary``: variations of a user's own loop (keep bars, regenerate others);
* :mod:`~loopgen.musician.loopfile` — read a loop or song from MIDI, write DAW-ready MIDI and WAV stems;
* :mod:`~loopgen.musician.fit` — ``fit``: a user's MIDI folder -> loops -> VQ-VAE + prior, registered by name;
* :mod:`~loopgen.musician.trained` — the model registry and loading a VQ-VAE with its prior;
* :mod:`~loopgen.musician.score` — ``score``: how well a fitted model or a profile's models know a MIDI folder;
* :mod:`~loopgen.musician.page` — output folders: numbered files, ``loops.json``, ``index.html``;
* :mod:`~loopgen.musician.draws` — fresh seeds, rounds of draws, the ``--min-loopability`` filter;
* :mod:`~loopgen.musician.generate` — ``generate``: one sampler for every model, loops as .mid/.wav and a contact sheet.

Loopability itself is a metric: :func:`loopgen.metrics.loopability`. May import the method, data, models, train,
store, runtime, run.profiles and, for sound and pictures, ``book.audio`` and ``book.plots``; never the command line.
"""
