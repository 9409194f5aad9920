"""Atomic writes leave the old file or the new one, never half of one, and normal permissions."""

from __future__ import annotations

import os
import stat

import pytest

from loopgen.store import atomic


def test_write_replaces_and_sets_umask_permissions(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic.write_text(target, "one")
    atomic.write_text(target, "two")
    assert target.read_text() == "two"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"], "no temporary file left behind"


def test_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.bin"
    atomic.write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_suffix_is_kept_for_format_sniffing(tmp_path):
    with atomic.atomic_path(tmp_path / "fig.png", suffix=".png") as tmp:
        assert tmp.suffix == ".png"
        tmp.write_bytes(b"x")
    assert (tmp_path / "fig.png").read_bytes() == b"x"


def test_a_temporary_named_with_the_pid_tells_a_live_writer_from_a_killed_one(tmp_path):
    target = tmp_path / "model.pt"
    with atomic.atomic_path(target, with_pid=True) as tmp:
        assert tmp.name.startswith(".model.pt.") and tmp.name.endswith(f".{os.getpid()}.tmp")
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    dead = tmp_path / ".model.pt.abc.999999999.tmp"  # no such process
    alive = tmp_path / f".model.pt.abc.{os.getppid()}.tmp"  # a live writer's (this test's parent)
    for path in (dead, alive):
        path.write_bytes(b"half")
    assert atomic.remove_stale_temporaries(tmp_path, ".*.pt.*.tmp", pid_group=-2) == [dead]
    assert alive.exists()
