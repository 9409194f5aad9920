"""The errors loopgen raises for its users, and how a path or an error reads on one line.

Every module may import this one; it imports nothing of loopgen's. :mod:`loopgen.commands` turns a
:class:`UserError` into one line on stderr and exit status 1, a :class:`UsageError` into exit status 2.
"""

from __future__ import annotations

import errno
import os
import shlex


class UsageError(ValueError):
    """A bad command-line argument (exit status 2)."""


class UserError(RuntimeError):
    """A failure the user can act on, with a message that says how (exit status 1)."""


def shown_name(name: str) -> str:
    """A file name fit for a terminal or log: bytes that are not UTF-8 shown as ``\\xNN``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def quoted(path: str | os.PathLike) -> str:
    """``path`` as a shell reads it back (``shlex.quote``: quoted when it holds spaces or other special
    characters), for every message and hint that shows a path or a command a user may paste."""
    return shlex.quote(shown_name(os.fsdecode(path)))


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line, with its type where the message alone would not say much."""
    text = " ".join(str(err).split())
    if isinstance(err, (UsageError, UserError, FileNotFoundError)) and text and not (
        isinstance(err, FileNotFoundError) and err.strerror
    ):
        return text
    if isinstance(err, OSError) and err.strerror:
        where = f": {shown_name(os.fsdecode(err.filename))}" if err.filename else ""
        return f"{err.strerror}{where}{_OS_HINTS.get(err.errno, '')}"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


_OS_HINTS = {
    errno.ENOSPC: ": free some disk space and run the command again (finished parts are kept)",
    errno.EDQUOT: ": free some disk space and run the command again (finished parts are kept)",
    errno.EROFS: ": choose an output folder on a writable disk",
    errno.EACCES: ": check the permissions of this path, or choose another folder",
    errno.EPERM: ": check the permissions of this path, or choose another folder",
}
