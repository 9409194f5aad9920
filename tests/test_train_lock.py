"""One writer per checkpoint, whoever starts it, and Ctrl-C that keeps the work (issue 22), with real processes.

A training started in one process (slowed down so that it is still running) holds its checkpoint's lock; the
smoke notebook 02 for the same model, run through papermill in a second process, is refused in one line. A
training interrupted with SIGINT (Ctrl-C) inside an epoch writes a checkpoint there, exits 130, and a second
call resumes it and ends where the uninterrupted run ends.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from loopgen import train
from loopgen.run import profiles

pytestmark = pytest.mark.slow  # every test here starts other processes (commands, trainings, kernels)

SMOKE = profiles.get("smoke")

SLOW_STEPS = """
import os, sys, time
from loopgen.train import loop
real_step = loop.optimiser_step
def slow_step(*args, **kwargs):
    out = real_step(*args, **kwargs)
    print("step", flush=True)
    started = time.time()
    while time.time() - started < {pause} and not os.path.exists({release!r}):
        time.sleep(0.05)
    return out
loop.optimiser_step = slow_step
"""


def _start(script: str, root) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)], env={**os.environ, "LOOPGEN_ROOT": str(root)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # Ctrl-C's default even in a background job
    )


def _wait_for_steps(proc: subprocess.Popen, n: int) -> None:
    seen = 0
    while seen < n:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the training process ended early: {proc.stderr.read()[-3000:]}")
        seen += line.strip() == "step"


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory):
    from loopgen.data.corpus import write_demo_corpus
    from loopgen.data.dataset import dataset_dir
    from loopgen.data.extract import extract
    from loopgen.store.paths import Paths

    root = tmp_path_factory.mktemp("lock_root")
    paths = Paths(root)
    corpus = write_demo_corpus(paths.corpus_dir(SMOKE.corpus.name), n_songs=24, seed=0, progress=False)
    extract(corpus, dataset_dir(paths, SMOKE.corpus.name), workers=1, progress=False)
    return root


def test_a_notebook_is_refused_while_another_process_trains_the_same_checkpoint(smoke_root):
    release = smoke_root / "release"  # the first training waits after its first step until this exists
    trainer = _start(SLOW_STEPS.format(pause=600, release=str(release)) + """
from loopgen import train
from loopgen.data import dataset
from loopgen.run import profiles
from loopgen.store.paths import Paths
P, paths = profiles.get("smoke"), Paths()
data = dataset.load_loops(dataset.dataset_dir(paths, P.corpus.name))
train.train_model("cnn_vae", data.loops[data.split == "train"], data.loops[data.split == "val"], P.train,
                  data_key=data.data_key, checkpoint_dir=paths.checkpoints, seed=0, device="cpu", progress=False)
""", smoke_root)
    try:
        _wait_for_steps(trainer, 1)  # it holds the lock now
        notebook = subprocess.run(
            [sys.executable, "-m", "loopgen", "run-notebooks", "--profile", "smoke", "--only", "autoencoders-cnn_vae"],
            cwd=smoke_root, env={**os.environ, "LOOPGEN_ROOT": str(smoke_root)}, capture_output=True, text=True,
            timeout=600,
        )
        out = notebook.stdout + notebook.stderr
        assert notebook.returncode != 0 and "LockedError: checkpoint" in out, out[-3000:]
        assert "is in use by another run" in out
        assert trainer.poll() is None, "the first training carries on"
        release.touch()
        assert trainer.wait(timeout=300) == 0, trainer.stderr.read()[-3000:]
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait()


def _loops(n: int = 48) -> np.ndarray:
    return (np.random.default_rng(0).random((n, 128, 93)) < 0.03).astype(np.uint8)


def _settings() -> train.TrainSettings:
    return dataclasses.replace(SMOKE.train, epochs=2, batch_size=8, max_train_loops=None, max_val_loops=None)


def test_ctrl_c_inside_an_epoch_writes_a_checkpoint_that_resumes_there(tmp_path):
    np.save(tmp_path / "loops.npy", _loops())
    interrupted = _start(SLOW_STEPS.format(pause=0.3, release=str(tmp_path / "never")) + f"""
import dataclasses, numpy as np
from loopgen import train
from loopgen.commands import common
from loopgen.run import profiles
settings = dataclasses.replace(profiles.get("smoke").train, epochs=2, batch_size=8, max_train_loops=None,
                               max_val_loops=None)
loops = np.load({str(tmp_path / "loops.npy")!r})
def main(argv):
    train.train_model("cnn_vae", loops, loops[:8], settings, data_key="d", checkpoint_dir={str(tmp_path / "run")!r},
                      device="cpu", progress=False)
sys.exit(common.run(main, []))
""", tmp_path)
    _wait_for_steps(interrupted, 3)
    interrupted.send_signal(signal.SIGINT)
    rc = interrupted.wait(timeout=120)
    err = interrupted.stderr.read()
    assert rc == 130, err[-3000:]
    assert "interrupted; checkpoint" in err and "the same call again resumes there" in err
    ckpt = train.read_checkpoint(next((tmp_path / "run").glob("cnn_vae-*.pt")))
    assert ckpt["epoch"] == 0 and ckpt["partial"]["step_in_epoch"] >= 3, "the interrupt kept the steps done"

    # the resumed run and the uninterrupted reference each run in a fresh process, as the interrupted one did, so
    # that nothing an earlier test left in this process (threads, backends) can tell them apart
    finish = """
import dataclasses, sys, numpy as np, torch
from loopgen import train
from loopgen.run import profiles
settings = dataclasses.replace(profiles.get("smoke").train, epochs=2, batch_size=8, max_train_loops=None,
                               max_val_loops=None)
loops = np.load({loops!r})
result = train.train_model("cnn_vae", loops, loops[:8], settings, data_key="d", checkpoint_dir={run!r},
                           device="cpu", progress=False)
torch.save({{"finished": result.finished, "reused": result.reused, "epochs_this_call": result.epochs_this_call,
            "model": result.model.state_dict(), "loss": result.history["loss"].tolist()}}, {out!r})
"""
    outcomes = {}
    for which in ("run", "ref"):
        out = tmp_path / f"{which}-outcome.pt"
        proc = _start(finish.format(loops=str(tmp_path / "loops.npy"), run=str(tmp_path / which), out=str(out)),
                      tmp_path)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        outcomes[which] = torch.load(out, weights_only=True)
    resumed, reference = outcomes["run"], outcomes["ref"]
    assert resumed["finished"] and not resumed["reused"] and resumed["epochs_this_call"] == 2
    for name, value in reference["model"].items():
        torch.testing.assert_close(resumed["model"][name], value, rtol=0, atol=0)
    assert resumed["loss"] == pytest.approx(reference["loss"])
