"""Issue 13: every command fails cleanly (one line on stderr, exit 2 for bad arguments, nothing written).

The table runs each command through its real dispatcher (``loopgen.__main__.main``, what ``python -m loopgen``
calls); a few rows also run as a real ``python -m loopgen`` subprocess. Fault tests: a truncated checkpoint,
two runs into one output (lock files), and pool workers that must not outlive a killed ``extract``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loopgen.__main__ import main
from loopgen.store.atomic import OWN_LOCK_FILE, exclusive_lock

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "lib"


def snapshot(root: Path) -> dict[str, int]:
    """Every path below ``root`` with its size (folders: -1)."""
    return {
        str(p.relative_to(root)): (-1 if p.is_dir() and not p.is_symlink() else p.lstat().st_size)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def demo_songs(tmp_path_factory) -> Path:
    """Two demo songs, written once for the module; every `place` holds a copy, so no test can change them."""
    from loopgen.data.corpus import write_demo_corpus

    return write_demo_corpus(tmp_path_factory.mktemp("demo_songs") / "songs", n_songs=2, progress=False)


@pytest.fixture
def place(tmp_path, monkeypatch, demo_songs):
    """A project root (LOOPGEN_ROOT) with an empty folder, a file, a folder of songs and a user's folder."""
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file.txt").write_text("I am a file")
    shutil.copytree(demo_songs, tmp_path / "songs")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's notes")
    monkeypatch.setenv("LOOPGEN_ROOT", str(root))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def env_for(root: Path) -> dict[str, str]:
    env = dict(os.environ, LOOPGEN_ROOT=str(root), OMP_NUM_THREADS="1", LOOPGEN_DEBUG="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(LIB), env.get("PYTHONPATH")]))
    return env


# (argv, exit status, text the one-line message must contain). Paths are relative to the `place` folder.
BAD_ARGUMENTS = [
    # the dispatcher (issue 22: an unknown command gets the same one-line error as every bad argument)
    (["nosuch"], 2, "unknown command 'nosuch'"),
    ([], 2, "no command given"),
    # extract
    (["extract", "empty", "out", "--workers", "0"], 2, "--workers"),
    (["extract", "empty", "out"], 2, "no MIDI files"),
    (["extract", "songs", "out", "--workers", "-1"], 2, "--workers"),
    (["extract", "songs", "out", "--workers", "two"], 2, "--workers"),
    (["extract", "songs", "out", "--limit", "-5"], 2, "--limit"),
    (["extract", "songs", "out", "--limit", "0"], 2, "--limit"),
    (["extract", "songs", "out", "--limit", "nan"], 2, "--limit"),
    (["extract", "songs", "out", "--stride-bars", "0"], 2, "--stride-bars"),
    (["extract", "songs", "out", "--backend", "slow"], 2, "--backend"),
    (["extract", "songs", "out", "--drum-map", ""], 2, "--drum-map"),
    (["extract", "", "out"], 2, "empty"),
    (["extract", "missing", "out"], 2, "does not exist"),
    (["extract", "a_file.txt", "out"], 2, "not a folder"),
    (["extract", "songs", "a_file.txt"], 2, "is a file"),
    (["extract", "songs", ""], 2, "empty"),
    (["extract", "songs"], 2, "required"),
    (["extract", "songs", "mine"], 1, "not empty"),
    # generate
    (["generate", "--model", "vq_vae", "--n", "0", "--out", "g"], 2, "--n"),
    (["generate", "--n", "-3", "--out", "g"], 2, "--n"),
    (["generate", "--n", "1.5", "--out", "g"], 2, "--n"),
    (["generate", "--temperature", "-1", "--out", "g"], 2, "--temperature"),
    (["generate", "--temperature", "0", "--out", "g"], 2, "--temperature"),
    (["generate", "--temperature", "nan", "--out", "g"], 2, "--temperature"),
    (["generate", "--temperature", "inf", "--out", "g"], 2, "--temperature"),
    (["generate", "--tempo", "0", "--out", "g"], 2, "--tempo"),
    (["generate", "--repeats", "0", "--out", "g"], 2, "--repeats"),
    (["generate", "--seed", "-1", "--out", "g"], 2, "--seed"),
    (["generate", "--model", "gan", "--out", "g"], 2, "--model"),
    (["generate", "--profile", "huge", "--out", "g"], 2, "--profile"),
    (["generate", "--out", ""], 2, "--out"),
    (["generate", "--out", "a_file.txt"], 2, "--out"),
    (["generate"], 2, "--out"),
    (["generate", "--profile", "smoke", "--out", "g"], 1, "01_extract_loops"),
    # train
    (["train"], 2, "--model"),
    (["train", "--model", "bogus"], 2, "--model"),
    (["train", "--model", "vq_vae", "--profile", "nope"], 2, "--profile"),
    (["train", "--model", "vq_vae", "--t", "33"], 2, "--t"),
    (["train", "--model", "vq_vae", "--L", "0"], 2, "--L"),
    (["train", "--model", "vq_vae", "--K", "1"], 2, "--K"),
    (["train", "--model", "vq_vae", "--seed", "-1"], 2, "--seed"),
    (["train", "--model", "vq_vae", "--device", "tpu"], 2, "--device"),
    (["train", "--model", "cnn_vae", "--t", "32"], 2, "--t"),
    (["train", "--model", "cnn_vae", "--profile", "smoke"], 1, "01_extract_loops"),
    # study
    (["study", "--per-group", "0"], 2, "--per-group"),
    (["study", "--familiarisation", "-1"], 2, "--familiarisation"),
    (["study", "--tempo", "nan"], 2, "--tempo"),
    (["study", "--repeats", "0"], 2, "--repeats"),
    (["study", "--seed", "x"], 2, "--seed"),
    (["study", "--profile", "nope"], 2, "--profile"),
    (["study", "--out", "a_file.txt"], 2, "--out"),
    (["study", "--out", ""], 2, "--out"),
    (["study", "--profile", "smoke", "--out", "mine"], 1, "not empty"),
    (["study", "--profile", "smoke", "--out", "s"], 1, "01_extract_loops"),  # nothing made yet: the first notebook
    # corpus
    (["corpus"], 2, "required"),
    (["corpus", "demo"], 2, "required"),
    (["corpus", "demo", "c", "--n-songs", "0"], 2, "--n-songs"),
    (["corpus", "demo", "c", "--n-songs", "-1"], 2, "--n-songs"),
    (["corpus", "demo", "c", "--seed", "inf"], 2, "--seed"),
    (["corpus", "demo", "a_file.txt"], 2, "is a file"),
    (["corpus", "demo", ""], 2, "empty"),
    (["corpus", "demo", "mine"], 1, "not empty"),
    (["corpus", "download-lmd", "lmd"], 2, "--md5"),
    (["corpus", "download-lmd", "lmd", "--md5", "xyz"], 2, "--md5"),
    (["corpus", "download-lmd", "lmd", "--md5", "0" * 32, "--url", "ftp://x/y.tar.gz"], 2, "--url"),
    # run-notebooks
    (["run-notebooks", "--profile", "x"], 2, "--profile"),
    (["run-notebooks", "--cell-timeout", "-1"], 2, "--cell-timeout"),  # 0 means no limit (paper profile)
    (["run-notebooks", "--only", "zz"], 2, "--only"),
    (["run-notebooks", "--only"], 2, "--only"),
    (["run-notebooks", "--seed", "-1"], 2, "--seed"),
]


@pytest.mark.parametrize("argv,status,text", BAD_ARGUMENTS, ids=[" ".join(a) or "-" for a, _, _ in BAD_ARGUMENTS])
def test_bad_arguments_fail_cleanly(place, capsys, argv, status, text):
    before = snapshot(place)
    assert main(argv) == status
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert text in err
    assert "Traceback" not in err
    assert snapshot(place) == before  # nothing written, not even an empty output folder


@pytest.mark.slow
def test_real_entry_point_gives_one_line_and_exit_2(place):
    """`python -m loopgen` itself (a subprocess), for the issue's own examples."""
    for argv, status in (
        (["extract", "empty", "out", "--workers", "0"], 2),
        (["generate", "--temperature", "nan", "--out", "g"], 2),
    ):
        before = snapshot(place)
        done = subprocess.run(
            [sys.executable, "-m", "loopgen", *argv], cwd=place, env=env_for(place / "root"),
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == status, done.stderr
        assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: ")
        assert snapshot(place) == before


RUN_ALL_BAD = [
    (["--profile"], "--profile needs a value"),
    (["--profile", "bogus"], "--profile must be one of"),
    (["--profile="], "--profile must be one of"),
    (["--profile", "--tests"], "--profile needs a value"),
    (["--only"], "--only needs"),
    (["--only", ""], "--only takes"),
    (["--bogus"], "unknown option"),
]


@pytest.mark.slow
@pytest.mark.parametrize("argv,text", RUN_ALL_BAD, ids=[" ".join(a) for a, _ in RUN_ALL_BAD])
def test_run_all_sh_refuses_bad_options_before_set_up(argv, text, tmp_path):
    done = subprocess.run(
        ["bash", str(REPO / "run_all.sh"), *argv], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and text in done.stderr


def test_run_all_sh_knows_every_profile():
    from loopgen.run.profiles import PROFILES

    line = next(x for x in (REPO / "run_all.sh").read_text().splitlines() if x.startswith("PROFILES="))
    assert sorted(line.split('"')[1].split()) == sorted(PROFILES)


def test_debug_shows_the_traceback(place, capsys, monkeypatch):
    assert main(["study", "--profile", "smoke", "--out", "mine"]) == 1
    assert "--debug" in capsys.readouterr().err
    from loopgen.errors import UserError

    with pytest.raises(UserError):
        main(["study", "--profile", "smoke", "--out", "mine", "--debug"])
    monkeypatch.setenv("LOOPGEN_DEBUG", "1")
    with pytest.raises(UserError):
        main(["study", "--profile", "smoke", "--out", "mine"])


def test_os_errors_say_what_to_do():
    import errno

    from loopgen.errors import one_line

    full = OSError(errno.ENOSPC, "No space left on device", "/data/x.npy")
    assert one_line(full) == (
        "No space left on device: /data/x.npy: free some disk space and run the command again "
        "(finished parts are kept)"
    )
    assert "writable disk" in one_line(OSError(errno.EROFS, "Read-only file system", "/ro/out"))
    assert one_line(FileNotFoundError(errno.ENOENT, "No such file or directory", b"caf\xe9.mid")).endswith(
        "caf\\xe9.mid"
    )


# ------------------------------------------------------------------------------------- checkpoint faults
@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory):
    """A project root holding the smoke profile's extracted dataset (no trained model)."""
    from loopgen.data import dataset
    from loopgen.data.corpus import write_demo_corpus
    from loopgen.data.extract import extract
    from loopgen.run import profiles
    from loopgen.store.paths import Paths

    root = tmp_path_factory.mktemp("smoke_root")
    paths = Paths(root)
    profile = profiles.get("smoke")
    corpus = write_demo_corpus(paths.corpus_dir(profile.corpus.name), profile.corpus.n_songs, progress=False)
    extract(corpus, dataset.dataset_dir(paths, profile.corpus.name), workers=1, progress=False)
    return root


def _cnn_checkpoint(root: Path) -> Path:
    from loopgen.data import dataset
    from loopgen.run import profiles
    from loopgen.store.paths import Paths
    from loopgen.train import checkpoint_path

    paths = Paths(root)
    profile = profiles.get("smoke")
    data = dataset.load_loops(dataset.dataset_dir(paths, profile.corpus.name))
    return checkpoint_path(
        "cnn_vae", profile.train, data_key=data.data_key, checkpoint_dir=paths.checkpoints, seed=0
    )


@pytest.mark.slow
def test_truncated_checkpoint_names_the_file_and_cleans_dead_temporaries(smoke_root):
    target = _cnn_checkpoint(smoke_root)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"PK\x03\x04" + b"\x00" * 100)  # the start of a zip, cut short
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        dead = target.parent / f".{target.name}.999999999.tmp"  # no such process
        alive = target.parent / f".{target.name}.{sleeper.pid}.tmp"  # a live run's temporary: kept
        users = target.parent / "notes.tmp"  # not the program's naming pattern: kept
        for path in (dead, alive, users):
            path.write_bytes(b"partial")
        done = subprocess.run(
            [sys.executable, "-m", "loopgen", "train", "--model", "cnn_vae", "--profile", "smoke"],
            env=env_for(smoke_root), capture_output=True, text=True, timeout=300,
        )
    finally:
        sleeper.kill()
        sleeper.wait()
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert str(target) in errors[0] and "--force" in errors[0] and "damaged or incomplete" in errors[0]
    assert not dead.exists() and alive.exists() and users.exists()
    assert f"removed {dead.name}" in done.stderr


def test_read_checkpoint_turns_damage_into_a_user_error(tmp_path):
    import torch

    from loopgen.errors import UserError
    from loopgen.train import CheckpointError, read_checkpoint

    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.zeros(3)}, "epoch": 1}, good)
    assert read_checkpoint(good)["epoch"] == 1
    data = good.read_bytes()
    for name, content in (("cut.pt", data[: len(data) // 2]), ("empty.pt", b""), ("text.pt", b"hello")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match="damaged or incomplete") as info:
            read_checkpoint(tmp_path / name)
        assert isinstance(info.value, UserError) and name in str(info.value)
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "missing.pt")


@pytest.mark.slow
def test_second_training_of_the_same_checkpoint_is_refused(smoke_root):
    from loopgen.train import training_lock

    target = _cnn_checkpoint(smoke_root)
    target.unlink(missing_ok=True)
    with training_lock(target):
        done = subprocess.run(
            [sys.executable, "-m", "loopgen", "train", "--model", "cnn_vae", "--profile", "smoke"],
            env=env_for(smoke_root), capture_output=True, text=True, timeout=300,
        )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "in use by another run" in errors[0] and target.name in errors[0]
    assert not target.exists()


# ------------------------------------------------------------------------------------------ extract faults
@pytest.mark.slow
def test_second_extract_into_the_same_folder_is_refused(place):
    out = place / "out"
    with exclusive_lock(out / OWN_LOCK_FILE, what="test"):
        before = snapshot(place)
        done = subprocess.run(
            [sys.executable, "-m", "loopgen", "extract", "songs", "out", "--workers", "1", "--quiet"],
            cwd=place, env=env_for(place / "root"), capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 1
        assert len(done.stderr.splitlines()) == 1 and "in use by another run" in done.stderr
        assert snapshot(place) == before


@pytest.mark.slow
def test_two_extracts_at_once_never_corrupt_the_dataset(tmp_path):
    """Two real runs into one folder: each finishes or is refused; the folder ends as one clean dataset."""
    from loopgen.data.corpus import write_demo_corpus
    from loopgen.data.dataset import load_loops

    songs = write_demo_corpus(tmp_path / "songs", n_songs=40, progress=False)
    args = [sys.executable, "-m", "loopgen", "extract", str(songs), str(tmp_path / "out"), "--workers", "1", "--quiet"]
    env = env_for(tmp_path / "root")
    runs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    for run in runs:
        run.stdout.close()
        run.stderr.close()
    assert any(code == 0 for code, _ in results)
    for code, err in results:
        assert code == 0 or (code == 1 and "in use by another run" in err), err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"]["files_scanned"] == 40
    assert len(load_loops(tmp_path / "out").loops) == manifest["counts"]["loops"]
    assert not (tmp_path / "out" / ".partial").exists() and not list((tmp_path / "out").glob(".*.tmp"))


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _cmdline(process) -> str:
    import psutil

    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


@pytest.mark.slow
def test_killed_extract_leaves_no_orphan_workers(dev_midi_dir, tmp_path):
    import psutil

    run = subprocess.Popen(
        [sys.executable, "-m", "loopgen", "extract", str(dev_midi_dir), str(tmp_path / "out"), "--workers", "2",
         "--quiet"],
        env=env_for(tmp_path / "root"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    everything: list = []
    try:
        workers: list = []
        deadline = time.monotonic() + 120  # generous: only to avoid a hang
        while time.monotonic() < deadline and run.poll() is None and len(workers) < 2:
            workers = [p for p in _descendants(run.pid) if "resource_tracker" not in _cmdline(p)]
            time.sleep(0.2)
        assert run.poll() is None and len(workers) >= 2, "the pool did not start"
        everything = _descendants(run.pid)
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        gone, alive = psutil.wait_procs(everything, timeout=30)
        assert not alive, f"orphans left: {[p.pid for p in alive]}"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for process in everything:  # never leave our own processes behind, even when the test fails
            try:
                process.kill()
            except psutil.Error:
                pass


@pytest.mark.parametrize("code,hint", [(28, "free some disk space"), (30, "writable disk")])
def test_full_disk_or_read_only_output_is_one_line_and_resumable(place, capsys, monkeypatch, code, hint):
    import errno

    import loopgen.data.extract as extract_module

    assert code in (errno.ENOSPC, errno.EROFS)
    real = extract_module._finalize

    def fails(out_dir, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(out_dir / "shard_00000.npy"))

    monkeypatch.setattr(extract_module, "_finalize", fails)
    assert main(["extract", "songs", "out", "--workers", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and hint in err and "shard_00000.npy" in err
    monkeypatch.setattr(extract_module, "_finalize", real)  # space freed: the next run finishes the job
    assert main(["extract", "songs", "out", "--workers", "1", "--quiet"]) == 0
    assert (place / "out" / "manifest.json").exists()


@pytest.mark.slow
def test_lock_is_refused_while_held_and_free_after(tmp_path):
    from loopgen.store.atomic import LockedError, is_locked

    lock = tmp_path / "out" / OWN_LOCK_FILE
    lock.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, fcntl; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('held', flush=True); sys.stdin.readline()", str(lock)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert is_locked(lock)
        with pytest.raises(LockedError, match="in use by another run"):
            with exclusive_lock(lock, what="the output folder"):
                pass
    finally:
        holder.communicate("\n", timeout=60)
    assert not is_locked(lock)
    with exclusive_lock(lock, what="the output folder"):
        assert lock.read_text().strip() == str(os.getpid())
    assert lock.read_bytes() == b""  # released: empty, so finished outputs stay byte-identical


# ------------------------------------------------------------------------------------------ issue 22: --help
def _parsers_of(command: str, monkeypatch) -> list:
    """Every parser ``python -m loopgen COMMAND`` builds (sub-commands' too), caught as it parses."""
    import argparse

    from loopgen.commands import common as cli

    caught = []

    def catch(self, args=None, namespace=None):
        caught.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(cli.OneLineParser, "parse_args", catch)
    assert main([command, "--help"]) == 0
    parsers = list(caught)
    for parser in caught:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
    return parsers


@pytest.mark.parametrize("command", ["corpus", "extract", "train", "generate", "vary", "fit", "score", "study",
                                     "ship", "rehearse", "run-notebooks"])
def test_every_option_of_every_command_is_explained_with_its_default(command, monkeypatch):
    """Issue 22: ``--help`` of extract and vary left --backend, --stride-bars, --bass-tracks, --drum-map,
    --keep-bars, --temperature, --start-bar, --candidates without a word or a default."""
    import argparse

    from loopgen.commands import COMMANDS

    assert command in COMMANDS
    missing = []
    for parser in _parsers_of(command, monkeypatch):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            name = action.option_strings[-1]
            if not (action.help or "").strip():
                missing.append(f"{parser.prog} {name}: no help")
                continue
            shown = formatter._expand_help(action) if action.help else ""
            needs_default = not (action.required or isinstance(action, (argparse._StoreTrueAction,
                                                                         argparse._StoreFalseAction)))
            if needs_default and "(default" not in shown.lower() and "default:" not in shown.lower():
                missing.append(f"{parser.prog} {name}: no default in {shown!r}")
    assert not missing, "\n".join(missing)


def test_help_shows_the_value_of_a_default(capsys):
    assert main(["extract", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--stride-bars", "(default: 1)", "--backend", "(default: fast)", "--drum-map", "(default: default)"):
        assert text in out
    assert main(["vary", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--candidates", "(default: 16)", "--temperature", "(default: 1 with --prior lstm, 0.5 with --prior masked)", "--start-bar", "--keep-bars"):
        assert text in out


# ------------------------------------------------------------------------------ issue 22: Python 3.10-3.13
def test_readme_pyproject_and_set_up_agree_on_the_python_versions():
    """Issue 22: the README promised "3.10+", but constraints.txt pins numpy 2.4, pandas 3.1, IPython 9 and
    networkx 3.6 (all 3.11+), so set-up on Python 3.10 failed with pip's ResolutionImpossible."""
    import re

    script = (REPO / "run_all.sh").read_text()
    supported = re.search(r'^SUPPORTED_PYTHONS="3\.(\d+) to 3\.(\d+)"', script, re.MULTILINE)
    assert supported, "run_all.sh states the supported versions"
    low, high = int(supported.group(1)), int(supported.group(2))
    assert (low, high) == (10, 13)
    assert f"Python 3.{low} to 3.{high}" in " ".join((REPO / "README.md").read_text().split())
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'requires-python = ">=3.{low}"' in pyproject
    listed = sorted(int(v) for v in re.findall(r'"Programming Language :: Python :: 3\.(\d+)"', pyproject))
    assert listed == list(range(low, high + 1))
    # every supported Python has pins it can install: constraints.txt for 3.11+, constraints-py3.10.txt for 3.10
    pins = dict(line.split("==") for line in (REPO / "constraints-py3.10.txt").read_text().split())
    assert int(pins["numpy"].split(".")[1]) < 3 and int(pins["pandas"].split(".")[0]) < 3  # 3.10 wheels exist
    assert int(pins["ipython"].split(".")[0]) < 9 and pins["filelock"]
    main_pins = dict(line.split("==") for line in (REPO / "constraints.txt").read_text().split())
    def canonical(names):
        return {name.lower().replace("_", "-") for name in names}

    assert canonical(main_pins) - canonical(pins) <= {
        "ipython-pygments-lexers", "pysmartdl", "symusic"}  # what 3.10's older IPython does not use


@pytest.mark.slow
def test_set_up_picks_the_pins_of_its_python(tmp_path):
    script = (REPO / "run_all.sh").read_text()
    function = script[script.index("constraints_for() {"):]
    function = function[: function.index("\n}\n") + 3]
    for version, expected in (("3.10", "constraints-py3.10.txt"), ("3.11", "constraints.txt"),
                              ("3.13", "constraints.txt")):
        fake = tmp_path / f"python{version}"
        fake.write_text(f"#!/bin/sh\necho {version}\n")
        fake.chmod(0o755)
        done = subprocess.run(["bash", "-c", f"cd {REPO} && {function}\nconstraints_for {fake}"],
                              capture_output=True, text=True, timeout=30)
        assert done.stdout.strip() == expected, done.stderr
