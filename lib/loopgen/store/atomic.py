"""Atomic file writes: write a temporary file beside the target, then rename it over the target.

A reader never sees half a file, and a killed run leaves either the old file or the new one. Every module
that writes data, tables, figures or audio goes through here. :func:`exclusive_lock` is the one lock every
writer of a shared output takes (checkpoints, extraction folders, musician output folders, the model
registry); it comes from ``filelock``, so it works on Linux, macOS and Windows alike.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

from loopgen.errors import UserError, quoted, shown_name


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


def _lock_holder(path: Path) -> str:
    """`` (process N)`` when the lock file names the process that holds it, else empty."""
    try:
        text = path.read_bytes()[:64].decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (process {text})" if text.isdigit() else ""


def _write_holder(path: Path, text: str) -> None:
    """Write ``text`` into the lock file (for the message another run shows); best effort: a platform whose
    lock forbids writing to the locked file keeps it empty."""
    try:
        with open(path, "r+b") as fh:
            fh.truncate(0)
            fh.write(text.encode("ascii"))
    except OSError:
        pass


@contextlib.contextmanager
def exclusive_lock(lock_path: Path | str, *, what: str, wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on ``lock_path`` for the ``with`` block (:class:`filelock.FileLock`: ``flock``
    on Linux and macOS, ``msvcrt`` on Windows).

    ``wait=False`` raises :class:`LockedError` at once, in one line, when another process (or another lock
    object of this one) holds it; ``wait=True`` blocks until it is free. The lock goes with the process (a
    killed run never leaves a stale lock); the file stays, empty once released.
    """
    path = Path(lock_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = _lock_holder(path)  # read first: some filelock versions truncate the file when they try
    lock = filelock.FileLock(str(path), timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockedError(
            f"{what} is in use by another run{holder or _lock_holder(path)}; wait for it to finish "
            f"(lock file {shlex.quote(str(path))})"
        ) from None
    try:
        _write_holder(path, f"{os.getpid()}\n")
        try:
            yield path
        finally:
            _write_holder(path, "")  # released: an empty file, so finished outputs are byte-identical
    finally:
        lock.release()  # the file stays: removing it would let two runs lock two files


def is_locked(lock_path: Path | str) -> bool:
    """True when a live process holds the lock on ``lock_path`` (tried for an instant, then let go)."""
    path = Path(lock_path)
    if not path.is_file():
        return False
    lock = filelock.FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        return True
    lock.release()
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


OWN_LOCK_FILE = ".loopgen.lock"


def _refuse_dead_link(folder: Path, what: str) -> None:
    """One line for an output path that is a link leading nowhere (a loop of links, or a missing target):
    ``mkdir`` would only say "File exists"."""
    if folder.is_symlink() and not folder.exists():
        raise UserError(
            f"{quoted(folder)} is a link that leads nowhere (a loop of links, or its target is gone): "
            f"choose a folder for the {what}"
        )


def make_output_folder(path: Path | str, *, what: str) -> Path:
    """Create the output folder ``path`` (and its parents) when missing; return it. A file, or a link that
    leads nowhere, is refused in one line (:class:`UserError`)."""
    folder = Path(path)
    _refuse_dead_link(folder, what)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{quoted(folder)} is a file, not a folder: choose a folder for the {what}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def folder_lock(folder: Path | str, *, what: str) -> contextlib.AbstractContextManager[Path]:
    """The lock of output folder ``folder`` (its :data:`OWN_LOCK_FILE`): a second writer waits for the first,
    saying so once on stderr."""
    lock = Path(folder) / OWN_LOCK_FILE
    if is_locked(lock):
        print(f"waiting for another run writing into the {what} {quoted(folder)} to finish", file=sys.stderr)
    return exclusive_lock(lock, what=f"the {what} {quoted(folder)}", wait=True)


def check_output_folder(
    path: Path | str, *, made_by_us: Callable[[Path], bool], what: str, force: bool = False
) -> Path:
    """Refuse to write into a folder that holds files this program did not write; return the path.

    Accepted: a path that does not exist, an empty folder (our own lock file aside), a folder
    ``made_by_us(path)`` recognises (its manifest says so), or anything with ``force``. A file is refused even
    with ``force``. Raises :class:`UserError`; nothing is created.
    """
    folder = Path(path)
    _refuse_dead_link(folder, what)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{quoted(folder)} is a file, not a folder: choose a folder for the {what}")
    if not folder.exists() or force:
        return folder
    entries = sorted(os.fsdecode(name) for name in os.listdir(folder) if name != OWN_LOCK_FILE)
    if not entries or made_by_us(folder):
        return folder
    shown = ", ".join(shown_name(name) for name in entries[:3]) + (", ..." if len(entries) > 3 else "")
    raise UserError(
        f"{quoted(folder)} is not empty ({len(entries)} entries: {shown}) and is not a {what} made by loopgen: "
        "choose an empty or new folder, or pass --force to write into it (loopgen deletes only files it wrote)"
    )
