"""Atomic writes leave the old file or the new one, never half of one, and normal permissions."""

from __future__ import annotations

import os
import stat

import pytest

from loopgen import atomic


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
