"""Command line: ``python -m loopgen {corpus,extract,train,rehearse,generate,vary,fit,study,ship,run-notebooks,expected-ranges} ...``.

Each subcommand lives in its own module as ``cli_main(argv)``; this file only dispatches.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "corpus": ("loopgen.data.corpus", "write the procedural demo corpus, or download LMD-full"),
    "extract": ("loopgen.data.extract", "MIDI folder -> 8-bar bass+drum loops (shards, manifest, report)"),
    "train": ("loopgen.commands.train", "train one model (ar_lstm_vae, nonar_lstm_vae, cnn_vae, vq_vae, prior)"),
    "generate": ("loopgen.musician.generate", "write generated loops as .mid/.wav plus a pianoroll contact sheet"),
    "vary": ("loopgen.musician.variation", "variations of your own loop: keep some bars, regenerate the others"),
    "fit": ("loopgen.musician.fit", "your MIDI folder -> loops -> a trained VQ-VAE + prior, registered by name"),
    "study": ("loopgen.book.listening", "build a listening-test study folder (static web page)"),
    "ship": ("loopgen.commands.ship", "write a finished demo-long checkpoint as shipped half-precision weights"),
    "rehearse": ("loopgen.run.rehearse", "run every training of a profile for a few steps: speed, memory, resume"),
    "run-notebooks": ("loopgen.run.runner", "run every notebook headless with papermill"),
    "expected-ranges": ("loopgen.book.expectations", "the notebooks' expected ranges per profile, from reference runs"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in COMMANDS:
        print("usage: python -m loopgen COMMAND [options]   (python -m loopgen COMMAND --help: its options)\n\ncommands:")
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:<14} {text}")
        if argv and argv[0] in {"-h", "--help"}:
            return 0
        what = f"unknown command {argv[0]!r}" if argv else "no command given"
        print(f"error: {what}: choose one of {', '.join(COMMANDS)} (see python -m loopgen --help)", file=sys.stderr)
        return 2
    from loopgen.commands import common

    module = importlib.import_module(COMMANDS[argv[0]][0])
    return common.run(module.cli_main, argv[1:])


if __name__ == "__main__":
    sys.exit(main())
