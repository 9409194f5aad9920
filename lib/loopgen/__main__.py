"""Command line: ``python -m loopgen COMMAND [options]``, one dispatcher for every command.

The commands and their one-line help are :data:`loopgen.commands.COMMANDS`; each command's module has
``main(argv)``, run through :func:`loopgen.commands.common.run` (one-line errors, exit codes).
"""

from __future__ import annotations

import importlib
import sys

from loopgen.commands import COMMANDS, common

__all__ = ["COMMANDS", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m loopgen`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in COMMANDS:
        print("usage: python -m loopgen COMMAND [options]   (python -m loopgen COMMAND --help: its options)\n\ncommands:")
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:<14} {text}")
        if argv and argv[0] in {"-h", "--help"}:
            return 0
        what = f"unknown command {argv[0]!r}" if argv else "no command given"
        print(f"error: {what}: choose one of {', '.join(COMMANDS)} (see python -m loopgen --help)", file=sys.stderr)
        return common.EXIT_USAGE
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return common.run(module.main, argv[1:])


if __name__ == "__main__":
    sys.exit(main())
