"""Every command line of ``python -m loopgen``: one module per command, each a parser and a ``main(argv)``
that calls the library, and :mod:`~loopgen.commands.common` (one-line errors, exit codes, argument checks).
``loopgen.__main__`` is the one dispatcher.

Commands may import anything; nothing in the library imports them.
"""

from __future__ import annotations

# command name -> (the module whose ``main(argv)`` runs it, the line ``python -m loopgen --help`` shows)
COMMANDS: dict[str, tuple[str, str]] = {
    "corpus": ("loopgen.commands.corpus", "write the procedural demo corpus, or download LMD-full"),
    "extract": ("loopgen.commands.extract", "MIDI folder -> 8-bar bass+drum loops (shards, manifest, report)"),
    "train": ("loopgen.commands.train", "train one model (ar_lstm_vae, nonar_lstm_vae, cnn_vae, vq_vae, prior)"),
    "generate": ("loopgen.commands.generate", "write generated loops as .mid/.wav plus a pianoroll contact sheet"),
    "vary": ("loopgen.commands.vary", "variations of your own loop: keep some bars, regenerate the others"),
    "fit": ("loopgen.commands.fit", "your MIDI folder -> loops -> a trained VQ-VAE + prior, registered by name"),
    "score": ("loopgen.commands.score", "how well a fitted model or a profile's models know a MIDI folder's loops"),
    "study": ("loopgen.commands.study", "build a listening-test study folder (static web page)"),
    "ship": ("loopgen.commands.ship", "write a finished demo-long checkpoint as shipped half-precision weights"),
    "rehearse": ("loopgen.commands.rehearse", "run every training of a profile for a few steps: speed, memory, resume"),
    "run-notebooks": ("loopgen.commands.run_notebooks", "run every notebook headless with papermill"),
    "compare-corpora": (
        "loopgen.commands.compare_corpora", "finished runs side by side: Tables 0, 1, 3, 7 and the paper's claims"
    ),
    "expected-ranges": (
        "loopgen.commands.expected_ranges", "the notebooks' expected ranges per profile, from reference runs"
    ),
}
