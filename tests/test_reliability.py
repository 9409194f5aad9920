"""Issue 31: nothing silently wrong, round four. Two writers into one output folder, a checkpoint that is not the
one asked for, ``extract --force`` that deleted the old dataset first, and the rough edges found beside them."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from loopgen.errors import UserError
from loopgen.musician import page

# ------------------------------------------------------------------------------ two writers, one --out folder
_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from loopgen.musician import page

    out, seed, go = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    loops = (np.random.default_rng(seed).random((6, 128, 93)) < 0.05).astype(np.uint8)
    while not go.exists():
        time.sleep(0.005)
    page.add_loops(out, loops, [{"seed": seed, "index": k} for k in range(6)], prefix="vq_vae",
                   run={"seed": seed}, wav=False)
    """
)


def _writer_loops(seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((6, 128, 93)) < 0.05).astype(np.uint8)


@pytest.mark.slow
def test_two_runs_into_one_folder_keep_every_loop_and_every_entry_true(tmp_path):
    """The issue's reproduction at the level of the page: two runs started together into one folder gave 7-9
    files, one run in loops.json and entries naming loops the files did not hold."""
    out, go = tmp_path / "out", tmp_path / "go"
    runs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(out), str(seed), str(go)], stderr=subprocess.PIPE,
                             text=True) for seed in (11, 22)]
    go.touch()
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    assert len(list(out.glob("*.mid"))) == 12
    index = json.loads((out / page.LOOPS_JSON).read_text())
    assert sorted(r["seed"] for r in index["runs"]) == [11, 22] and len(index["loops"]) == 12
    assert len({e["file"] for e in index["loops"]}) == 12
    seed_of_run = {r["run"]: r["seed"] for r in index["runs"]}
    for entry in index["loops"]:  # each entry names the loop its file holds
        assert entry["seed"] == seed_of_run[entry["run"]]
        expected = page.write_loop_midi(_writer_loops(entry["seed"])[entry["index"]], tmp_path / "expected.mid")
        assert (out / entry["file"]).read_bytes() == expected.read_bytes(), entry
    assert (out / page.INDEX_HTML).read_text().count('<figure class="loop"') == 12


def _loops(n: int) -> np.ndarray:
    return (np.random.default_rng(5).random((n, 128, 93)) < 0.05).astype(np.uint8)


def test_an_interrupted_run_leaves_a_page_of_the_loops_it_finished(tmp_path, monkeypatch):
    """Ctrl-C (or a full disk) on the fourth loop: the three finished ones are in loops.json and index.html."""
    real = page.loopfile.write_loop_npz
    calls = []

    def stopped_on_the_fourth(loop, path, **kwargs):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(loop, path, **kwargs)

    monkeypatch.setattr(page.loopfile, "write_loop_npz", stopped_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        page.add_loops(tmp_path, _loops(6), [{"seed": 1, "index": k} for k in range(6)], prefix="loop", run={},
                       wav=False)
    index = page.read_loops_json(tmp_path)
    assert [e["file"] for e in index["loops"]] == ["loop_000.mid", "loop_001.mid", "loop_002.mid"]
    assert (tmp_path / page.INDEX_HTML).read_text().count('<figure class="loop"') == 3


def test_the_index_is_kept_current_while_loops_are_written(tmp_path, monkeypatch):
    """A run killed with -9 cannot write its index at the end: it is rewritten as loops are written."""
    monkeypatch.setattr(page, "FLUSH_SECONDS", 0.0, raising=False)
    real = page.write_loop_midi
    listed = []

    def spy(loop, path, **kwargs):
        listed.append(len(page.read_loops_json(tmp_path)["loops"]))
        return real(loop, path, **kwargs)

    monkeypatch.setattr(page, "write_loop_midi", spy)
    page.add_loops(tmp_path, _loops(4), [{"seed": 1, "index": k} for k in range(4)], prefix="loop", run={}, wav=False)
    assert listed == [0, 1, 2, 3]


def test_a_link_loop_as_output_folder_is_named_as_such(tmp_path):
    """It was reported as "File exists"."""
    out = tmp_path / "out"
    out.symlink_to(out)
    with pytest.raises(UserError) as info:
        page.add_loops(out, _loops(1), [{"seed": 1}], prefix="loop", run={}, wav=False)
    message = str(info.value)
    assert "link that leads nowhere" in message and str(out) in message and len(message.splitlines()) == 1


# ------------------------------------------------------------------------------------- the checkpoint asked for
def _smoke_settings(**changes):
    from loopgen.run import profiles
    from loopgen.train.checkpoint import settings_on

    return dataclasses.replace(settings_on(profiles.get("smoke").train, "cpu"), **changes)


def _install(name: str, settings, folder: Path, data_key: str = "d" * 16, **changes) -> Path:
    """A finished checkpoint of ``name`` as the training loop writes it (random weights), at its keyed path."""
    import torch

    from loopgen.models import build
    from loopgen.train.checkpoint import (
        CHECKPOINT_FORMAT,
        checkpoint_key,
        checkpoint_path,
        resolved_kwargs,
        save_checkpoint,
    )

    torch.manual_seed(0)
    model = build(name, **resolved_kwargs(name, settings))
    ckpt = {
        "format": CHECKPOINT_FORMAT, "key": checkpoint_key(name, settings, data_key=data_key), "name": name,
        "config": dict(model.config), "settings": dataclasses.asdict(settings.recipe(name)),
        "meta": {"data_key": data_key, "n_train": 8, "n_val": 2}, "seed": 0, "epoch": 1, "total_epochs": 1,
        "finished": True, "best_epoch": None, "best": None, "model": model.state_dict(), "history": {"loss": [1.0]},
        **changes,
    }
    path = checkpoint_path(name, settings, data_key=data_key, checkpoint_dir=folder)
    save_checkpoint(ckpt, path)
    return path


def _load(name: str, settings, folder: Path, data_key: str = "d" * 16):
    from loopgen.train import load_trained

    return load_trained(name, settings, data_key=data_key, checkpoint_dir=folder)


def _refusal(info) -> str:
    message = str(info.value)
    assert len(message.splitlines()) == 1 and len(message) < 600, message
    return message


def test_a_vq_vae_checkpoint_copied_over_another_of_the_same_architecture_is_refused(tmp_path):
    """The issue's case: ``cp vq_vae-t32-L16-K512-<other>.pt vq_vae-t32-L16-K512-<expected>.pt`` loaded silently,
    and the VQ-VAE was paired with a prior trained on another VQ-VAE's codes."""
    import shutil

    from loopgen.train import CheckpointError

    wanted, other = _smoke_settings(), _smoke_settings(lr_max=3e-3)
    expected = _install("vq_vae", wanted, tmp_path)
    assert _load("vq_vae", wanted, tmp_path)[0].num_codes == 512  # the right file loads
    elsewhere = _install("vq_vae", other, tmp_path)
    assert elsewhere.name.split("-")[:4] == expected.name.split("-")[:4] and elsewhere != expected
    shutil.copyfile(elsewhere, expected)
    with pytest.raises(CheckpointError) as info:
        _load("vq_vae", wanted, tmp_path)
    message = _refusal(info)
    assert f"'{expected}'" in message or str(expected) in message
    other_key, wanted_key = elsewhere.stem.rsplit("-", 1)[1], expected.stem.rsplit("-", 1)[1]
    assert f"holds vq_vae (t32 L16 K512), key {other_key}" in message and f"not vq_vae (t32 L16 K512), key {wanted_key}" in message


def test_a_stored_config_or_dataset_that_disagrees_with_the_file_name_is_refused(tmp_path):
    from loopgen.train import CheckpointError

    settings = _smoke_settings()
    _install("vq_vae", settings, tmp_path, config={**_load_config("vq_vae", settings), "beta": 0.5})
    with pytest.raises(CheckpointError) as info:
        _load("vq_vae", settings, tmp_path)
    assert "its configuration differs: beta 0.5 (asked 0.25)" in _refusal(info)
    _install("vq_vae", settings, tmp_path, meta={"data_key": "e" * 16})
    with pytest.raises(CheckpointError) as info:
        _load("vq_vae", settings, tmp_path)
    assert f"trained on dataset {'e' * 16}, not" in _refusal(info)


def _load_config(name: str, settings) -> dict:
    from loopgen.train.checkpoint import model_config, resolved_kwargs

    return model_config(name, resolved_kwargs(name, settings))


def test_another_models_checkpoint_renamed_into_place_is_one_line_not_pytorchs_key_lists(tmp_path):
    import shutil

    from loopgen.train import CheckpointError

    settings = _smoke_settings()
    expected = _install("vq_vae", settings, tmp_path)
    shutil.copyfile(_install("cnn_vae", settings, tmp_path), expected)
    with pytest.raises(CheckpointError) as info:
        _load("vq_vae", settings, tmp_path)
    message = _refusal(info)
    assert "holds cnn_vae, key" in message and "Missing key" not in message and "state_dict" not in message


def test_a_checkpoint_whose_digest_was_removed_is_refused_but_an_older_one_loads(tmp_path):
    import torch

    from loopgen.train import CheckpointError, read_checkpoint

    settings = _smoke_settings()
    path = _install("vq_vae", settings, tmp_path)
    stripped = torch.load(path, weights_only=True)
    del stripped["digest"]
    torch.save(stripped, path)
    with pytest.raises(CheckpointError) as info:
        _load("vq_vae", settings, tmp_path)
    assert "has no digest" in _refusal(info) and path.name in str(info.value)
    # the format written before the digest: no digest, and settings without the fields that came with it
    for field in ("validate_every", "checkpoint_every"):
        del stripped["settings"][field]
    torch.save(stripped, path)
    assert "digest" not in read_checkpoint(path)
    assert _load("vq_vae", settings, tmp_path)[0].num_codes == 512


def test_a_fitted_models_unusable_checkpoint_says_fit_again(tmp_path):
    from loopgen.musician import trained
    from loopgen.run import profiles
    from loopgen.store.paths import MissingInputError, Paths
    from loopgen.train import CheckpointError
    from loopgen.train.checkpoint import RETRAIN_HINT

    paths, profile = Paths(tmp_path), profiles.get("smoke")
    data = type("Data", (), {"manifest": {"inputs": {"midi_dir": "/songs of mine"}}})()
    damaged = trained.not_ready(CheckpointError(f"checkpoint 'x.pt' is not the one asked for; {RETRAIN_HINT}"),
                                paths, profile, "mine", data)
    assert isinstance(damaged, CheckpointError)
    assert str(damaged).endswith("fit model 'mine' again: python -m loopgen fit '/songs of mine' --name mine "
                                 "--profile smoke --force")
    missing = trained.not_ready(MissingInputError("no trained vq_vae at x.pt: run notebook 02_train_autoencoders."
                                                  "ipynb with -p PROFILE smoke"), paths, profile, "mine", data)
    assert "notebook" not in str(missing) and "python -m loopgen fit '/songs of mine' --name mine" in str(missing)


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_keeps_the_last_good_one(tmp_path, monkeypatch):
    """It ended with ``RuntimeError: [enforce fail at inline_container.cc:672]``."""
    import torch

    from loopgen.train import CheckpointError, checkpoint, read_checkpoint

    settings = _smoke_settings()
    path = _install("vq_vae", settings, tmp_path)

    def full_disk(obj, file, *args, **kwargs):
        Path(file).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4736 vs 4624")

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda _: type("Usage", (), {"free": 0})())
    with pytest.raises(CheckpointError) as info:
        checkpoint.save_checkpoint({**read_checkpoint(path), "epoch": 2}, path)
    message = _refusal(info)
    assert message.startswith(f"No space left on device: {path}: free some disk space")
    assert "the last good checkpoint is" in message and "resumes from it" in message
    monkeypatch.undo()
    assert read_checkpoint(path)["epoch"] == 1 and not list(tmp_path.glob(".*.tmp"))
    assert torch.load(path, weights_only=True)["epoch"] == 1


# ------------------------------------------------------------------------------------------- extract --force
def test_extract_force_keeps_the_old_dataset_whole_until_the_new_one_is_complete(tmp_path, monkeypatch):
    """The issue's case: a full disk during ``extract --stride-bars 2 --force`` deleted manifest.json, index.npz
    and report.json of the good dataset before the new one existed."""
    import errno
    import os

    from loopgen.data import extract as extract_module
    from loopgen.data.corpus import write_demo_corpus
    from loopgen.data.dataset import load_loops
    from loopgen.loops import LoopParams

    songs = write_demo_corpus(tmp_path / "songs", n_songs=6, progress=False)
    out = tmp_path / "out"
    extract_module.extract(songs, out, workers=1, progress=False)
    good = {name: (out / name).read_bytes() for name in os.listdir(out) if not name.startswith(".")}
    before = load_loops(out)
    real = extract_module._atomic_write

    def full_disk(path, write):
        if path.name == "index.npz":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, write)

    monkeypatch.setattr(extract_module, "_atomic_write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        extract_module.extract(songs, out, LoopParams(stride_bars=2), workers=1, progress=False, force=True)
    assert {name: (out / name).read_bytes() for name in good} == good  # every file of the old dataset, unchanged
    assert load_loops(out).data_key == before.data_key
    monkeypatch.setattr(extract_module, "_atomic_write", real)  # space freed: the next run finishes the job
    report = extract_module.extract(songs, out, LoopParams(stride_bars=2), workers=1, progress=False, force=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["stride_bars"] == 2 and report["totals"]["files_scanned"] == 6
    assert len(load_loops(out).loops) == manifest["counts"]["loops"]
    listed = {shard["file"] for shard in manifest["shards"]} | {"index.npz", "report.json", "manifest.json"}
    assert {name for name in os.listdir(out) if not name.startswith(".")} == listed
    assert not (out / ".partial").exists() and not list(out.glob(".*.tmp"))


def test_a_swap_killed_half_way_is_finished_by_the_next_run(tmp_path, monkeypatch):
    from loopgen.data import extract as extract_module
    from loopgen.data.corpus import write_demo_corpus
    from loopgen.data.dataset import load_loops
    from loopgen.loops import LoopParams

    songs = write_demo_corpus(tmp_path / "songs", n_songs=6, progress=False)
    out = tmp_path / "out"
    extract_module.extract(songs, out, workers=1, progress=False)
    real = extract_module._listed_files

    def killed_after_the_new_files_moved(manifest_path, folder):
        raise KeyboardInterrupt  # (called once the new files are in place, before the old ones go)

    monkeypatch.setattr(extract_module, "_listed_files", killed_after_the_new_files_moved)
    monkeypatch.setattr(extract_module, "_our_files", lambda folder: real(folder / "manifest.json", folder))
    with pytest.raises(KeyboardInterrupt):
        extract_module.extract(songs, out, LoopParams(stride_bars=2), workers=1, progress=False, force=True)
    assert not (out / "manifest.json").exists()  # half swapped: the folder claims no finished dataset
    monkeypatch.undo()
    report = extract_module.extract(songs, out, LoopParams(stride_bars=2), workers=1, progress=False, force=True)
    assert report["totals"]["files_scanned"] == 6 and not (out / ".partial").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["stride_bars"] == 2 and len(load_loops(out).loops) == manifest["counts"]["loops"]


# ------------------------------------------------------------------------------------------------ rough edges
def test_generate_from_a_fitted_model_without_its_checkpoint_points_at_fit(tmp_path):
    """``generate --from NAME`` with a missing checkpoint named notebook 02; fit is what makes that model."""
    from loopgen.data import extract as extract_module
    from loopgen.data.corpus import write_demo_corpus
    from loopgen.musician import generate, trained
    from loopgen.run import profiles
    from loopgen.store.paths import MissingInputError, Paths

    paths = Paths(tmp_path / "root")
    songs = write_demo_corpus(tmp_path / "my songs", n_songs=4, progress=False)
    extract_module.extract(songs, paths.user_loops_dir("mine"), workers=1, progress=False)
    trained.register(paths, "mine", dataset=paths.user_loops_dir("mine"), profile="smoke", report_totals={},
                     out_dir=paths.user_model_dir("mine"))
    profile, folder, _ = trained.resolve(paths, profiles.get("demo"), "mine")
    with pytest.raises(MissingInputError) as info:
        generate.make_sampler("vq_vae", profile=profile, paths=paths, dataset=folder)
    message = str(info.value)
    assert "model 'mine' is not ready" in message and "notebook" not in message
    assert f"python -m loopgen fit '{songs}' --name mine --profile smoke again" in message
    trained.unregister(paths, "mine")  # loops nobody fitted (a notebook's): the hint stays the notebook's
    with pytest.raises(MissingInputError, match="02_train_autoencoders"):
        generate.make_sampler("vq_vae", profile=profile, paths=paths, dataset=folder)


def test_fit_waits_for_a_checkpoint_another_run_is_training(monkeypatch):
    """A second ``fit`` of the same loops under another name failed with "checkpoint in use"."""
    from loopgen.musician import fit

    waits = {}

    def spy(name):
        def train(*args, **kwargs):
            waits[name] = kwargs.get("wait")
            model = type("Model", (), {"num_codes": 4})()
            return type("Result", (), {"model": model, "key": "k"})()
        return train

    monkeypatch.setattr(fit, "train_model", spy("vq_vae"))
    monkeypatch.setattr(fit, "train_prior", spy("prior"))
    monkeypatch.setattr(fit.sample, "encode_codes", lambda model, loops: np.zeros((len(loops), 8), np.int64))
    data = type("Data", (), {"loops": _loops(4), "split": np.array(["train", "train", "val", "val"]),
                             "data_key": "d"})()
    from loopgen.run import profiles
    from loopgen.store.paths import Paths

    fit._train(data, profile=profiles.get("smoke"), paths=Paths("/nowhere"), progress=False, force=False)
    assert waits == {"vq_vae": True, "prior": True}


@pytest.mark.parametrize("text", ["[1, 2]", "42", '"index"', '{"prior-abc.pt": ["not", "a record"]}'])
def test_a_shipped_index_of_the_wrong_json_type_says_what_to_do(tmp_path, text):
    """It gave an AttributeError."""
    from loopgen.train import shipped

    folder = tmp_path / "shipped"
    folder.mkdir()
    (folder / "prior-abc.pt").write_bytes(b"weights")
    (folder / shipped.INDEX_FILE).write_text(text)
    with pytest.raises(shipped.ShippedWeightsError) as info:
        shipped.load("prior", "abc", folder)
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "re-install the package" in message


def test_listener_ids_holding_script_or_formula_text_are_rejected(tmp_path):
    """They were accepted unchanged: the page escapes them, a spreadsheet opening a CSV of them would not."""
    import pandas as pd

    from loopgen.book import listening

    key = pd.DataFrame({"stimulus_id": ["s1", "s2"], "role": ["stimulus", "stimulus"], "group": ["a", "b"],
                        "source_index": [0, 1]})
    rows = ["listener_id,stimulus_id,rating", "ann,s1,4", "=HYPERLINK(\"http://x\"),s1,3", "+cmd|' /C calc'!A0,s2,2",
            "<script>alert(1)</script>,s2,5", "@SUM(1),s1,1", "Tester_1,s2,5"]
    (tmp_path / "ratings_mixed.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(RuntimeWarning, match="rejected"):
        ratings = listening.load_ratings(tmp_path, key)
    assert sorted(ratings["listener_id"]) == ["Tester_1", "ann"]
    reasons = ratings.attrs["rejected"]["reason"].tolist()
    assert len(reasons) == 4 and all("never writes" in reason for reason in reasons)


def test_extract_into_a_link_loop_is_named_as_such(tmp_path):
    from loopgen.data import extract as extract_module
    from loopgen.data.corpus import write_demo_corpus

    songs = write_demo_corpus(tmp_path / "songs", n_songs=2, progress=False)
    out = tmp_path / "out"
    out.symlink_to(out)
    with pytest.raises(UserError, match="link that leads nowhere"):
        extract_module.extract(songs, out, workers=1, progress=False)


@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("file_format, says", [(2, "format 2"), (7, "format 7 does not exist")])
def test_midi_formats_2_and_7_are_refused_in_words_by_both_readers(tmp_path, backend, file_format, says):
    from loopgen.data.midi import MidiRejected, read_notes
    from midi_build import write_song

    song = write_song(tmp_path / "song.mid", bass=[(0, 480, 40)], drums=[(0, 36)])
    data = bytearray(song.read_bytes())
    data[8:10] = file_format.to_bytes(2, "big")
    song.write_bytes(bytes(data))
    with pytest.raises(MidiRejected) as refused:
        read_notes(song, backend=backend)
    assert refused.value.reason == "unreadable" and says in refused.value.detail
    data[8:10] = (1).to_bytes(2, "big")
    song.write_bytes(bytes(data))
    assert read_notes(song, backend=backend) is not None  # the same file as format 1 reads


def test_a_staging_folder_just_made_by_a_running_extract_is_not_a_strangers_folder(tmp_path):
    """A second extract into the folder sees the first one's fresh ``.partial`` (before its run.json): the folder is
    ours, so the second run goes on to the lock and is told the folder is in use, not that it is someone else's."""
    from loopgen.data.extract import PARTIAL, made_by_extract

    out = tmp_path / "out"
    (out / PARTIAL).mkdir(parents=True)
    assert made_by_extract(out)
    (out / PARTIAL / "somebody_elses.txt").write_text("x")
    assert not made_by_extract(out)
