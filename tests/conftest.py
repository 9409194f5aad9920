"""Shared fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from loopgen.store.paths import SHARED_DEV_MIDI

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


@dataclass(frozen=True)
class SmokeRun:
    """Every notebook run once at the smoke profile in an isolated root (``LOOPGEN_ROOT``)."""

    root: Path
    returncode: int
    log_tail: str
    started: float  # time.time() just before the run
    user_figures: dict  # the checkout's figures/ (path -> mtime) before the run


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, repo_root) -> SmokeRun:
    """The smoke notebook run, made once per session and shared by the notebook, solution and expected-range
    tests: a user's figures/, data/ and build/ are never touched.

    ``LOOPGEN_TEST_SMOKE_ROOT=DIR`` reuses the root of a finished ``run-notebooks --profile smoke`` instead (quick
    local iterations on the solution and range tests; the outputs' freshness is then not checked)."""
    reused = os.environ.get("LOOPGEN_TEST_SMOKE_ROOT")
    if reused:
        return SmokeRun(Path(reused), 0, "(reused a finished smoke run)", 0.0,
                        {p: p.stat().st_mtime for p in (repo_root / "figures").glob("*")})
    root = tmp_path_factory.mktemp("smoke-root")
    started = time.time() - 1
    user_figures = {p: p.stat().st_mtime for p in (repo_root / "figures").glob("*")}
    proc = subprocess.run(
        [sys.executable, "-m", "loopgen", "run-notebooks", "--profile", "smoke", "--cell-timeout", "900"],
        cwd=root,
        env={**os.environ, "LOOPGEN_ROOT": str(root)},
        capture_output=True,
        text=True,
        timeout=1500,
    )
    return SmokeRun(root, proc.returncode, (proc.stdout + proc.stderr)[-6000:], started, user_figures)


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    """fp16 let onto the CPU (torch's CPU float16 autocast and ``GradScaler("cpu")`` stand in for a T4), with a
    scaler that starts low and grows after every clean step, so that a six-step run both grows its scale and
    skips a step on an overflow (the default one would skip its first dozen)."""
    import torch

    from loopgen.runtime import device as device_mod

    monkeypatch.setattr(device_mod, "_FP16_DEVICES", ("cuda", "cpu"))
    real = device_mod.grad_scaler

    def scaler(device, precision="auto"):
        plain = real(device, precision)
        return torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=1) if plain.is_enabled() else plain

    monkeypatch.setattr(device_mod, "grad_scaler", scaler)


# ------------------------------------------------------------------------------------------ the two tiers
# `./run_all.sh --tests --fast` runs `-m "not (notebooks or browser or realmidi or slow)"` with LOOPGEN_FAST_TIER=1:
# every test but the ones that start other processes (trainings, commands, Jupyter kernels, torchrun: marker
# `slow`), drive a browser, run the notebooks or read the real-world songs. `./run_all.sh --tests` runs them all.
FAST_TIER = os.environ.get("LOOPGEN_FAST_TIER") == "1"
ALLOWED_IN_FAST_TIER = {"git", "ldconfig", "gcc", "cc", "ld", "objdump", "uname"}  # git show; ctypes.util, platform


def pytest_collection_modifyitems(config, items):
    """A test that reads the real-world songs is a real-MIDI test, whether or not it says so."""
    for item in items:
        if "dev_midi_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realmidi)


@pytest.fixture(autouse=True)
def _fast_tier_starts_no_process(monkeypatch, request):
    """In the fast tier a test that starts another process (other than git) fails, naming the marker it lacks: the
    tiers stay what they say as tests are added."""
    if not FAST_TIER or request.node.get_closest_marker("slow"):
        yield
        return
    real_init = subprocess.Popen.__init__

    def refuse(self, args, *rest, **kwargs):
        program = Path(str(args[0] if isinstance(args, (list, tuple)) else str(args).split()[0])).name
        if program not in ALLOWED_IN_FAST_TIER:
            raise AssertionError(f"{request.node.nodeid} starts a process ({program}): mark it @pytest.mark.slow")
        real_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    yield
