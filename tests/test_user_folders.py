"""Issue 15: nothing lost, nothing revealed, on the folders a real user's machine holds.

Each row of the issue's table runs through the real entry point (``python -m loopgen`` in a subprocess, or
``loopgen.__main__.main`` where a fault has to be injected). Real songs are *linked* from the shared dev
folder (read in place, never copied).

Tests run as root, where permissions never stop a read: the unreadable sub-folder is simulated by making
``os.scandir`` fail for it (monkeypatch, in-process), and an unreadable entry by a symbolic-link loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from loopgen.__main__ import main

pytestmark = pytest.mark.slow  # every test here starts other processes (commands, trainings, kernels)

REPO = Path(__file__).resolve().parents[1]
LATIN1_NAME = b"caf\xe9.mid"  # 'café.mid' as an old Windows collection spells it


def env_for(root: Path) -> dict[str, str]:
    env = dict(os.environ, LOOPGEN_ROOT=str(root), OMP_NUM_THREADS="1", LOOPGEN_DEBUG="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "lib"), env.get("PYTHONPATH")]))
    return env


def loopgen(*argv: str, root: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "loopgen", *argv], env=env_for(root), capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def odd_folder(dev_midi_dir, tmp_path) -> Path:
    """Links to 6 real songs plus every odd entry of the issue's table."""
    songs = tmp_path / "songs"
    (songs / "sub").mkdir(parents=True)
    real = sorted(dev_midi_dir.rglob("*.mid"))[:6]
    for n, song in enumerate(real):
        (songs / ("sub" if n % 2 else ".") / f"real_{n}.mid").symlink_to(song)
    (songs / "gone.mid").symlink_to(tmp_path / "deleted_long_ago.mid")  # dangling
    os.mkfifo(songs / "pipe.mid")  # opening it would block forever
    os.symlink(os.fsencode(real[0]), os.path.join(os.fsencode(songs), LATIN1_NAME))  # Latin-1 name
    (songs / "loop.mid").symlink_to(songs / "loop.mid")  # a link loop: cannot be examined
    (songs / "elsewhere").symlink_to(dev_midi_dir, target_is_directory=True)  # a link out of the tree
    (songs / "readme.txt").write_text("not MIDI: not an entry to account for")
    return songs


def test_every_odd_entry_is_accounted_for_and_the_songs_extracted(odd_folder, tmp_path):
    done = loopgen("extract", str(odd_folder), str(tmp_path / "out"), "--workers", "1", "--quiet", root=tmp_path,
                   timeout=600)  # generous: a FIFO that is opened would hang here
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    files = report["files"]
    latin1 = os.fsdecode(LATIN1_NAME)
    real = {f"real_{n}.mid" if n % 2 == 0 else f"sub/real_{n}.mid" for n in range(6)}
    assert set(files) == real | {"gone.mid", "pipe.mid", "loop.mid", latin1}
    for odd in ("gone.mid", "pipe.mid", "loop.mid"):
        assert files[odd] == {"rejected": "unreadable"}, odd
    assert "leads nowhere" in report["details"]["gone.mid"]
    assert "FIFO" in report["details"]["pipe.mid"] and "never opened" in report["details"]["pipe.mid"]
    assert files[latin1] == files["real_0.mid"]  # the same song under a Latin-1 name: read like any file
    assert report["walk"]["links_not_followed"] == ["elsewhere"]
    totals = report["totals"]
    assert totals["files_scanned"] == 10 == totals["files_with_loops"] + totals["files_rejected"]
    assert "10 files scanned" in done.stdout and "unreadable" in done.stdout
    # the Latin-1 name is stored escaped in JSON and round-trips to the name on disk
    assert "caf\\udce9.mid" in (tmp_path / "out" / "report.json").read_text()
    index = np.load(tmp_path / "out" / "index.npz")
    if files[latin1].get("loops"):
        assert latin1 in set(index["source"].tolist())
        assert os.path.exists(os.path.join(os.fsencode(odd_folder), os.fsencode(latin1)))


def test_unreadable_sub_folder_is_recorded_and_counted(dev_midi_dir, tmp_path, monkeypatch, capsys):
    songs = tmp_path / "songs"
    (songs / "locked").mkdir(parents=True)
    real = sorted(dev_midi_dir.rglob("*.mid"))[:2]
    (songs / "a.mid").symlink_to(real[0])
    (songs / "locked" / "b.mid").symlink_to(real[1])
    real_scandir = os.scandir

    def scandir(path="."):  # what a folder without read permission does for a non-root user
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setenv("LOOPGEN_ROOT", str(tmp_path))
    assert main(["extract", str(songs), str(tmp_path / "out"), "--workers", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["walk"]["errors"] == [
        {"path": "locked", "error": f"Permission denied: {songs / 'locked'}: check the permissions of this path, "
                                     "or choose another folder"}
    ]
    assert report["totals"]["walk_errors"] == 1 and set(report["files"]) == {"a.mid"}
    assert "1 sub-folder(s) could not be read" in printed


def test_a_users_folder_is_refused_and_never_deleted_from(tmp_path):
    from loopgen.data.corpus import write_demo_corpus

    songs = write_demo_corpus(tmp_path / "songs", n_songs=6, progress=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    (mine / "shard_000.npy").write_bytes(b"my own array")
    (mine / "shard_00000.npy").write_bytes(b"named like ours, but mine")
    users = {p.name: p.read_bytes() for p in mine.iterdir()}

    refused = loopgen("extract", str(songs), str(mine), "--workers", "1", "--quiet", root=tmp_path)
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    assert "not empty" in refused.stderr and "--force" in refused.stderr
    assert {p.name: p.read_bytes() for p in mine.iterdir()} == users  # nothing added, nothing deleted

    forced = loopgen("extract", str(songs), str(mine), "--workers", "1", "--quiet", "--force", root=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert (mine / "notes.txt").read_bytes() == b"my notes" and (mine / "shard_000.npy").read_bytes() == b"my own array"
    manifest = json.loads((mine / "manifest.json").read_text())
    assert manifest["written_by"] == "loopgen.data.extract"

    # a dataset of ours in the same folder: rerun with other settings replaces only what our manifest lists
    again = loopgen("extract", str(songs), str(mine), "--workers", "1", "--quiet", "--stride-bars", "2", root=tmp_path)
    assert again.returncode == 1 and "other parameters" in again.stderr
    replaced = loopgen("extract", str(songs), str(mine), "--workers", "1", "--quiet", "--stride-bars", "2",
                       "--force", root=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads((mine / "manifest.json").read_text())["params"]["stride_bars"] == 2
    assert (mine / "notes.txt").read_bytes() == b"my notes" and (mine / "shard_000.npy").read_bytes() == b"my own array"

    # a folder extract made itself is reused without --force
    reused = loopgen("extract", str(songs), str(mine), "--workers", "1", "--quiet", "--stride-bars", "2", root=tmp_path)
    assert reused.returncode == 0, reused.stderr


def test_corpus_and_study_refuse_a_users_folder(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    for argv in (["corpus", "demo", str(mine), "--n-songs", "2", "--quiet"],
                 ["study", "--profile", "smoke", "--out", str(mine)]):
        done = loopgen(*argv, root=tmp_path)
        assert done.returncode == 1 and "not empty" in done.stderr and len(done.stderr.splitlines()) == 1
        assert [p.name for p in mine.iterdir()] == ["notes.txt"]


@pytest.fixture(scope="module")
def trained_study_root(tmp_path_factory) -> Path:
    """A project root as notebooks 01-05 leave it for the smoke profile, in miniature: a dataset manifest, the
    smoke models trained one epoch on 12 random loops, and every listening-test group stored with its provenance."""
    from loopgen import registry, sample
    from loopgen.book.evaluation import Evaluation
    from loopgen.book.listening import GROUPS
    from loopgen.data import dataset
    from loopgen.run import profiles
    from loopgen.store.paths import Paths
    from loopgen.store.sample_groups import save_generated
    from loopgen.train import train_model, train_prior

    root = tmp_path_factory.mktemp("study_root")
    paths = Paths(root)
    profile = profiles.get("smoke")
    data_dir = dataset.dataset_dir(paths, profile.corpus.name)
    data_dir.mkdir(parents=True)
    (data_dir / "manifest.json").write_text(json.dumps({"data_key": "synthetic", "counts": {"train": 12}}))
    rng = np.random.default_rng(3)
    loops = (rng.random((12, 128, 93)) < 0.03).astype(np.uint8)
    common = {"data_key": "synthetic", "checkpoint_dir": paths.checkpoints, "progress": False}
    trained = {name: train_model(name, loops, loops[:4], profile.train, **common) for name in registry.autoencoders()}
    vq = trained["vq_vae"]
    train_prior(sample.encode_codes(vq.model, loops), profile.train, vq_key=vq.key, num_codes=vq.model.num_codes,
                **common)
    run = Evaluation("smoke", 0, paths)
    for group in GROUPS:
        made = run.provenance(group)
        save_generated(paths, "smoke", group, rng.random((made.n, 128, 93)) < 0.03, provenance=made)
    return root


@pytest.fixture
def study_root(trained_study_root, tmp_path) -> Path:
    """A fresh copy of :func:`trained_study_root` for one test."""
    import shutil

    return Path(shutil.copytree(trained_study_root, tmp_path / "root"))


def _site_text(study: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((study / "site").rglob("*")) if p.is_file())


def test_default_studies_are_blind_and_keep_their_key_private(study_root):
    studies = []
    for name in ("one", "two"):
        out = study_root / name
        done = loopgen("study", "--profile", "smoke", "--out", str(out), "--no-audio", root=study_root)
        assert done.returncode == 0, done.stderr
        studies.append(out)
    keys = [(s / "key.csv").read_text() for s in studies]
    private = [json.loads((s / "key.json").read_text()) for s in studies]
    assert keys[0] != keys[1]  # a fresh secret selection each time
    assert private[0]["selection_seed"] != private[1]["selection_seed"] and not private[0]["seed_was_given"]
    for study, secret in zip(studies, private, strict=True):
        page = json.loads((study / "site" / "stimuli.json").read_text())
        assert page["seed"] == secret["site_seed"] and page["seed"] != secret["selection_seed"]
        site = _site_text(study)
        assert str(secret["selection_seed"]) not in site
        assert not list((study / "site").rglob("key*"))
        for group in ("training_set", "ar_lstm_vae", "vq_vae_temp1.2"):
            assert group not in site
        readme = (study / "README.md").read_text()
        assert "key.json" in readme and "key.csv" in readme and "Keep private" in readme


def test_an_explicit_seed_is_reproducible_and_says_so(study_root):
    outs = [study_root / "a", study_root / "b"]
    for out in outs:
        done = loopgen("study", "--profile", "smoke", "--out", str(out), "--no-audio", "--seed", "7", root=study_root)
        assert done.returncode == 0 and "NOT blind" in done.stdout
    assert (outs[0] / "key.csv").read_text() == (outs[1] / "key.csv").read_text()
    assert json.loads((outs[0] / "key.json").read_text())["seed_was_given"]
    assert "not blind" in (outs[0] / "README.md").read_text()
    assert json.loads((outs[0] / "site" / "stimuli.json").read_text())["seed"] != 7


def test_the_serve_hint_is_a_command_a_shell_can_run(study_root):
    """Issue 22: in a checkout at a path with spaces, ``cd …/site && python -m http.server 8000`` broke when
    pasted; every printed path is quoted."""
    import shlex

    out = study_root / "my studies, café" / "s"
    done = loopgen("study", "--profile", "smoke", "--out", str(out), "--no-audio", root=study_root)
    assert done.returncode == 0, done.stderr
    hint = next(line for line in done.stdout.splitlines() if "serve it:" in line)
    words = shlex.split(hint.split("serve it:", 1)[1].split("(then open", 1)[0])
    assert words[:2] == ["cd", str(out / "site")]
    # issue 31: the server listens on this machine only (http.server alone listens on every interface)
    assert words[2:] == ["&&", "python", "-m", "http.server", "8000", "--bind", "127.0.0.1"]
    written = next(line for line in done.stdout.splitlines() if line.startswith("study written to "))
    assert shlex.split(written[len("study written to "):]) == [str(out)]
    readme = (out / "README.md").read_text()
    assert f"cd {shlex.quote(str(out / 'site'))}" in readme
    assert "python -m http.server 8000 --bind 127.0.0.1" in readme and "<http://127.0.0.1:8000/>" in readme


def test_temporaries_of_a_killed_extract_are_removed_on_the_next_run(tmp_path):
    from loopgen.data.corpus import write_demo_corpus

    songs = write_demo_corpus(tmp_path / "songs", n_songs=3, progress=False)
    out = tmp_path / "out"
    (out / ".partial").mkdir(parents=True)
    (out / ".partial" / "run.json").write_text('{"params": {}, "inputs": {}}')  # a killed run of ours ...
    (out / ".partial" / ".chunk_000000.npz.k3j2.tmp").write_bytes(b"half a chunk")  # ... and its temporaries
    (out / ".shard_00000.npy.x81a.tmp").write_bytes(b"half a shard")
    done = loopgen("extract", str(songs), str(out), "--workers", "1", "--quiet", "--force", root=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not list(out.rglob("*.tmp")) and not (out / ".partial").exists()
    assert json.loads((out / "report.json").read_text())["totals"]["files_scanned"] == 3


def test_study_refuses_samples_of_another_run(study_root):
    from dataclasses import replace

    from loopgen.store.paths import Paths
    from loopgen.store.sample_groups import load_generated, save_generated, stored_provenance

    paths = Paths(study_root)
    loops, _ = load_generated(paths, "smoke", "cnn_vae")
    older = replace(stored_provenance(paths, "smoke", "cnn_vae"), checkpoint="cnn_vae an-older-checkpoint")
    save_generated(paths, "smoke", "cnn_vae", loops, provenance=older)
    done = loopgen("study", "--profile", "smoke", "--out", str(study_root / "s"), "--no-audio", root=study_root)
    assert done.returncode == 1 and "05_musical_metrics" in done.stderr and "an-older-checkpoint" in done.stderr
    assert not (study_root / "s").exists()
