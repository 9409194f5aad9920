"""What every command-line entry point shares: one-line errors, exit codes and argument checks.

* Bad arguments are refused *before any work starts*: ``error: --n must be at least 1 (got 0)`` on one line of
  stderr, exit status 2, nothing written. Use :func:`parser` (an ``argparse`` parser whose errors are one line)
  and the ``type=`` checkers below.
* Errors raised deeper down (:class:`UserError`, a missing input, a bad file, a full disk) reach the user as
  one line that says what to do, exit status 1. ``--debug`` (anywhere on the command line) or the environment
  variable ``LOOPGEN_DEBUG=1`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from loopgen.errors import UsageError, one_line

EXIT_USAGE = 2
EXIT_FAILURE = 1
DEBUG_ENV = "LOOPGEN_DEBUG"


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are a single line on stderr and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        message = " ".join(str(message).split())
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


_SAYS_DEFAULT = re.compile(r"\(default|default:", re.IGNORECASE)


class DefaultsShown(argparse.HelpFormatter):
    """``--help`` that states every option's default: appended as ``(default: X)`` unless the help text
    already says it (options whose default is "not given" or off state none)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            _SAYS_DEFAULT.search(text)
            or not action.option_strings
            or action.required
            or default is None
            or default is False
            or default is argparse.SUPPRESS
        ):
            return text
        return f"{text} (default: %(default)s)"


def parser(prog: str, description: str | None = None) -> OneLineParser:
    """A one-line-error argument parser for ``python -m loopgen <prog>``; its ``--help`` states every default."""
    return OneLineParser(prog=f"python -m loopgen {prog}", description=description, formatter_class=DefaultsShown)


# ------------------------------------------------------------------------------------ argument checkers
def _number(text: str, kind: Callable[[str], float]) -> float:
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None


def int_at_least(minimum: int) -> Callable[[str], int]:
    """``type=`` for an integer >= ``minimum``."""

    def check(text: str) -> int:
        value = int(_number(text, int))
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} (got {value})")
        return value

    check.__name__ = f"integer >= {minimum}"
    return check


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)


def int_in(low: int, high: int) -> Callable[[str], int]:
    """``type=`` for an integer in ``[low, high]``."""

    def check(text: str) -> int:
        value = int(_number(text, int))
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high} (got {value})")
        return value

    check.__name__ = f"integer in [{low}, {high}]"
    return check


seed_int = int_in(0, 2**63 - 1)


def float_in(
    low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """``type=`` for a finite float in the given range (nan and inf are always refused)."""

    def check(text: str) -> float:
        value = float(_number(text, float))
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number (got {text})")
        if low is not None and (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low:g} (got {value:g})")
        if high is not None and (value >= high if high_open else value > high):
            raise argparse.ArgumentTypeError(f"must be {'<' if high_open else '<='} {high:g} (got {value:g})")
        return value

    check.__name__ = "number"
    return check


positive_float = float_in(0.0, low_open=True)


def non_empty(text: str) -> str:
    """``type=`` for a non-blank string."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _existing(text: str, *, is_kind, kind: str) -> Path:
    path = Path(non_empty(text))
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if not is_kind(path):
        raise argparse.ArgumentTypeError(f"{text} is not a {kind}")
    return path


def existing_dir(text: str) -> Path:
    """``type=`` for a folder that exists (not a file)."""
    return _existing(text, is_kind=Path.is_dir, kind="folder")


def existing_file(text: str) -> Path:
    """``type=`` for a regular file that exists (not a folder)."""
    return _existing(text, is_kind=Path.is_file, kind="file")


def output_dir(text: str) -> Path:
    """``type=`` for an output folder: a folder or a path that does not exist yet, never a file."""
    path = Path(non_empty(text))
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    return path


# ------------------------------------------------------------------------------------------- running
def debug_requested(argv: Sequence[str]) -> bool:
    """``--debug`` on the command line or ``LOOPGEN_DEBUG`` set to a true value."""
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "").lower() in {"1", "true", "yes"}


def run(main: Callable[[list[str]], int | None], argv: Sequence[str]) -> int:
    """Run a command's ``main(argv)``; turn exceptions into one line on stderr and an exit status."""
    argv = list(argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a != "--debug"]
    try:
        return int(main(argv) or 0)
    except SystemExit as stop:  # argparse: --help (0) or a usage error it already printed (2)
        return int(stop.code or 0) if isinstance(stop.code, int) else EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UsageError as err:
        if debug:
            raise
        print(f"error: {one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:  # noqa: BLE001 - the one place that turns any failure into one line
        if debug:
            raise
        print(f"error: {one_line(err)} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILURE
