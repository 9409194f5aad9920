"""Atomic file writes: write a temporary file beside the target, then rename it over the target.

A reader never sees half a file, and a killed run leaves either the old file or the new one. Every module
that writes data, tables, figures or audio goes through here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .cli import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path | str, suffix: str = ".tmp", *, with_pid: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (mode 0666 less the umask).

    ``suffix`` lets writers that pick a format from the file name (``savefig``, ``np.save``) see the right one.
    ``with_pid`` puts this process's id just before the suffix (``.<name>.<random>.<pid><suffix>``), so that
    :func:`remove_stale_temporaries` (``pid_group=-2``) can tell a live writer's temporary from a killed one's.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if with_pid:
        suffix = f".{os.getpid()}{suffix}"
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


# ------------------------------------------------------------------------------------------------ locks
class LockedError(UserError):
    """Another live run holds the lock on the same output (a one-line message that says what to do)."""


def _lock_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (process {text})" if text.isdigit() else ""


@contextlib.contextmanager
def exclusive_lock(lock_path: Path | str, *, what: str, wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive ``fcntl.flock`` on ``lock_path`` for the ``with`` block.

    ``wait=False`` raises :class:`LockedError` at once when another process holds it; ``wait=True`` blocks
    until it is free. The lock goes with the process (a killed run never leaves a stale lock); the file stays.
    """
    import fcntl

    path = Path(lock_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LockedError(
                f"{what} is in use by another run{_lock_holder(fd)}; wait for it to finish "
                f"(lock file {path})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # for the message another run shows
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # released: an empty file, so finished outputs are byte-identical
    finally:
        os.close(fd)  # releases the lock (the file stays: removing it would let two runs lock two files)


def is_locked(lock_path: Path | str) -> bool:
    """True when a live process holds the ``flock`` on ``lock_path``."""
    import fcntl

    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: Path | str, pattern: str = ".*.tmp", *, pid_group: int | None = None) -> list[Path]:
    """Delete this program's temporary files in ``folder`` left by runs that are no longer alive.

    Only names matching ``pattern`` (the writers' ``.<target>.<...>.tmp`` form) are considered. When the
    name carries a process id (``pid_group``: its index counted from the end in the ``.``-split name), a file
    whose process is still alive is kept. Returns the removed paths.
    """
    removed = []
    for tmp in sorted(Path(folder).glob(pattern)):
        if not tmp.is_file() or tmp.is_symlink():
            continue
        if pid_group is not None:
            parts = tmp.name.split(".")
            try:
                pid = int(parts[pid_group])
            except (IndexError, ValueError):
                continue
            if pid != os.getpid() and _pid_alive(pid):
                continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
