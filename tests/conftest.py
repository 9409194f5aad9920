"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loopgen.paths import SHARED_DEV_MIDI

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def isolated_root(tmp_path_factory) -> Path:
    """Every test runs with ``LOOPGEN_ROOT`` in a temporary folder, so nothing a test does can reach a user's
    data/, build/ or figures/; the real-world songs stay where they are (``LOOPGEN_SHARED_MIDI``)."""
    root = tmp_path_factory.mktemp("loopgen_root")
    saved = {name: os.environ.get(name) for name in ("LOOPGEN_ROOT", "LOOPGEN_SHARED_MIDI")}
    os.environ["LOOPGEN_ROOT"] = str(root)
    os.environ["LOOPGEN_SHARED_MIDI"] = str(SHARED_DEV_MIDI)
    yield root
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread, then restore the previous setting."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def dev_midi_dir() -> Path:
    """The real-world MIDI folder (../shared/midi/dev); tests using it skip when it is absent."""
    if not SHARED_DEV_MIDI.is_dir():
        pytest.skip(f"real MIDI folder {SHARED_DEV_MIDI} is not present")
    return SHARED_DEV_MIDI
