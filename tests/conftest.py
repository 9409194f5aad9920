"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopgen.paths import SHARED_DEV_MIDI

REPO = Path(__file__).resolve().parents[1]


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
