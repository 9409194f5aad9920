"""Issue 27 item 4: ``python -m loopgen score MIDI_DIR --from NAME [--json]``.

One module-scoped tmp root holds smoke-profile models of a tiny demo corpus: a VQ-VAE and prior fitted as NAME, and,
on the same loops as the smoke profile's own dataset, the CNN-VAE and both LSTM-VAEs (the VQ-VAE is shared: a
checkpoint is keyed by its dataset and settings). The scored folder is a few other demo songs, a broken file and a
song without bass.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from loopgen import __main__ as entry
from loopgen import metrics, registry
from loopgen.data.corpus import write_demo_corpus
from loopgen.data.dataset import dataset_dir, load_loops
from loopgen.data.extract import extract_file
from loopgen.musician import fit, score
from loopgen.run import profiles
from loopgen.store.paths import Paths
from loopgen.train import checkpoint_path, read_checkpoint, train_model
from midi_build import write_song

NAME = "tiny"
SMOKE = profiles.get("smoke")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A tmp project root with NAME fitted and every smoke-profile autoencoder trained, on 24 demo songs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("score_root")
    paths = Paths(root)
    corpus = write_demo_corpus(paths.corpus_dir(SMOKE.corpus.name), n_songs=24, seed=0, progress=False)
    fit.fit(corpus, NAME, profile=SMOKE, paths=paths, progress=False)
    own = dataset_dir(paths, SMOKE.corpus.name)
    own.parent.mkdir(parents=True, exist_ok=True)
    own.symlink_to(paths.user_loops_dir(NAME), target_is_directory=True)
    data = load_loops(own)
    for model in registry.autoencoders():
        train_model(model, data.loops[data.split == "train"], data.loops[data.split == "val"], SMOKE.train,
                    data_key=data.data_key, checkpoint_dir=paths.checkpoints, progress=False)
    torch.set_num_threads(threads)
    return root


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    """The folder to score: 6 demo songs the models never saw, a broken file and a song without bass."""
    folder = write_demo_corpus(tmp_path_factory.mktemp("songs") / "mine", n_songs=6, seed=7, progress=False)
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06 not really a song")
    bar = 4 * 480
    write_song(folder / "drums_only.mid", drums=[(k * bar + q * 480, 36) for k in range(12) for q in range(4)])
    return folder


@pytest.fixture
def project(root, monkeypatch) -> Paths:
    monkeypatch.setenv("LOOPGEN_ROOT", str(root))
    return Paths(root)


def _snapshot(folder: Path) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def _score_json(capsys, *argv: str) -> dict:
    assert entry.main(["score", *argv, "--json", "--quiet", "--workers", "1"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _kept_validation(paths: Paths, model: str, data_key: str, settings=SMOKE.train) -> tuple[float, int]:
    """The validation error of the epoch a checkpoint kept, read straight from the file."""
    ckpt = read_checkpoint(checkpoint_path(model, settings, data_key=data_key, checkpoint_dir=paths.checkpoints))
    epoch = ckpt.get("best_epoch") or ckpt["epoch"]
    return ckpt["history"]["val_recon_error"][epoch - 1], epoch


def test_the_validation_error_is_the_kept_epochs():
    import pandas as pd

    history = pd.DataFrame({"epoch": [1.0, 2.0, 3.0, 4.0], "val_recon_error": [0.5, 0.2, np.nan, 0.3]})
    history.attrs["kept_epoch"] = 2  # keep_best: the best validated epoch's weights
    assert score.kept_validation(history) == (0.2, 2)
    history.attrs["kept_epoch"] = 3  # an epoch without validation: the last validated one, named
    assert score.kept_validation(history) == (0.3, 4)
    assert score.kept_validation(history.drop(columns="val_recon_error")) == (None, None)


# ---------------------------------------------------------------------------------------------- profile
def test_a_profile_scores_every_autoencoder_beside_its_own_validation_error(project, songs, capsys):
    before = _snapshot(songs)
    out = _score_json(capsys, str(songs), "--from", "smoke")
    assert _snapshot(songs) == before  # MIDI_DIR is only read

    assert [m["model"] for m in out["models"]] == list(registry.autoencoders()) and out["missing"] == []
    assert (out["name"], out["profile"], out["models_of"]) == ("smoke", "smoke", "profile smoke")
    loops_dir = Path(out["loops_dir"])
    assert loops_dir.parent == project.scores
    # the loops found: every file accounted for, as extract_file reads each one
    files = sorted(p for p in songs.iterdir() if p.suffix == ".mid")
    results = {p.name: extract_file(p) for p in files}
    totals = out["extraction"]
    assert totals["files_scanned"] == len(files) and totals["files_rejected"] + totals["files_with_loops"] == len(files)
    assert out["loops"] == totals["loops"] == sum(len(r.start_bars) for r in results.values()) > 0
    assert totals["by_reason"]["unreadable"] >= 1 and totals["by_reason"]["no_bass"] >= 1
    loops = load_loops(loops_dir).loops
    assert out["loopability"] == pytest.approx(metrics.loopability(loops).mean())

    data_key = load_loops(dataset_dir(project, SMOKE.corpus.name)).data_key
    for row in out["models"]:
        validation, epoch = _kept_validation(project, row["model"], data_key)
        assert (row["validation_error"], row["validation_epoch"]) == (pytest.approx(validation), epoch)
        assert 0 < row["reconstruction_error"] < 1 and 0 <= row["loopability"] <= 1
        assert row["ratio"] == pytest.approx(row["reconstruction_error"] / validation)
        assert row["title"] == registry.get(row["model"]).title and row["weights"] == "trained here"


def test_the_table_shows_the_files_by_reason_and_one_row_per_model(project, songs, capsys):
    assert entry.main(["score", str(songs), "--from", "smoke", "--quiet", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "files scanned" in text and "unreadable" in text and "no_bass" in text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert "validation error" in lines[header] and "loopability" in lines[header]
    rows = lines[header + 1 : header + 1 + len(registry.autoencoders())]
    assert [row.split("  ")[0] for row in rows] == [registry.get(m).title for m in registry.autoencoders()]
    assert all("x  " in row and "(epoch " in row and " -> " in row for row in rows)


def test_the_loops_are_extracted_once_per_content_and_never_beside_the_songs(project, songs, tmp_path, capsys):
    first = _score_json(capsys, str(songs), "--from", "smoke")
    manifest = Path(first["loops_dir"]) / "manifest.json"
    written = manifest.stat().st_mtime_ns
    again = _score_json(capsys, str(songs), "--from", "smoke")
    assert again["loops_dir"] == first["loops_dir"] and manifest.stat().st_mtime_ns == written  # reused

    elsewhere = shutil.copytree(songs, tmp_path / "copy")  # the same files in another folder: the same key
    assert score.folder_key(elsewhere) == score.folder_key(songs)
    moved = _score_json(capsys, str(elsewhere), "--from", "smoke")
    assert moved["loops_dir"] == first["loops_dir"] and moved["loops"] == first["loops"]
    assert moved["midi_dir"] == str(elsewhere.resolve())

    song = sorted(elsewhere.glob("song_*.mid"))[0]
    song.write_bytes(song.read_bytes() + b"\x00")  # other bytes: another key, another extraction
    assert score.folder_key(elsewhere) != score.folder_key(songs)

    cache = tmp_path / "cache"
    out = _score_json(capsys, str(songs), "--from", "smoke", "--cache", str(cache))
    assert Path(out["loops_dir"]).parent == cache and out["loops"] == first["loops"]


# -------------------------------------------------------------------------------------------- fitted
def test_a_fitted_model_scores_its_vq_vae(project, songs, capsys):
    out = _score_json(capsys, str(songs), "--from", NAME)
    assert (out["models_of"], out["profile"]) == (f"fit {NAME}", "smoke")
    assert [m["model"] for m in out["models"]] == ["vq_vae"] and out["missing"] == []
    data_key = load_loops(project.user_loops_dir(NAME)).data_key
    validation, epoch = _kept_validation(project, "vq_vae", data_key)
    row = out["models"][0]
    assert (row["validation_error"], row["validation_epoch"]) == (pytest.approx(validation), epoch)


# ------------------------------------------------------------------------------------ what is missing
def _root_with(tmp_path: Path, root: Path, models: tuple[str, ...]) -> Path:
    """Another root with the smoke dataset and only the checkpoints of ``models``."""
    paths, source = Paths(tmp_path / "other"), Paths(root)
    own = dataset_dir(paths, SMOKE.corpus.name)
    own.parent.mkdir(parents=True)
    own.symlink_to(dataset_dir(source, SMOKE.corpus.name).resolve(), target_is_directory=True)
    paths.checkpoints.mkdir(parents=True)
    for model in models:
        for ckpt in source.checkpoints.glob(f"{model}-*.pt"):
            shutil.copy2(ckpt, paths.checkpoints / ckpt.name)
    return paths.root


def test_missing_models_are_listed_with_what_to_run(root, songs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOOPGEN_ROOT", str(_root_with(tmp_path, root, ("vq_vae", "cnn_vae"))))
    out = _score_json(capsys, str(songs), "--from", "smoke")
    assert [m["model"] for m in out["models"]] == ["cnn_vae", "vq_vae"]
    assert [m["model"] for m in out["missing"]] == ["ar_lstm_vae", "nonar_lstm_vae"]
    for missing in out["missing"]:
        assert "02_train_autoencoders.ipynb" in missing["error"] and "-p PROFILE smoke" in missing["error"]
        assert f"python -m loopgen train --model {missing['model']} --profile smoke" in missing["error"]
    assert entry.main(["score", str(songs), "--from", "smoke", "--quiet", "--workers", "1"]) == 0
    assert "missing AR LSTM-VAE: no trained ar_lstm_vae" in capsys.readouterr().out


def test_no_model_at_all_is_one_line_naming_what_to_run(root, songs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOOPGEN_ROOT", str(_root_with(tmp_path, root, ())))
    assert entry.main(["score", str(songs), "--from", "smoke", "--quiet", "--workers", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "02_train_autoencoders.ipynb" in err and "Traceback" not in err
    assert not (tmp_path / "other" / "data" / "scores").exists()  # the models are looked for first

    monkeypatch.setenv("LOOPGEN_ROOT", str(tmp_path / "empty"))
    assert entry.main(["score", str(songs), "--from", "demo", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "./run_all.sh --profile demo" in err
    assert not (tmp_path / "empty" / "data" / "scores").exists()  # refused before any extraction


def test_an_unknown_name_is_refused_before_any_work(project, songs, capsys):
    assert entry.main(["score", str(songs), "--from", "nobody"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "neither a fitted model" in err and NAME in err and "fit" in err
    assert entry.main(["score", str(songs)]) == 2  # --from is required
    assert "--from" in capsys.readouterr().err


def test_a_folder_without_loops_says_why_each_file_gave_none(project, tmp_path, capsys):
    (tmp_path / "broken.mid").write_bytes(b"not midi")
    write_song(tmp_path / "no_drums.mid", bass=[(k * 1920, k * 1920 + 240, 40) for k in range(12)])
    assert entry.main(["score", str(tmp_path), "--from", NAME, "--quiet", "--workers", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no loops in" in err and "unreadable 1" in err and "no_drums 1" in err


# -------------------------------------------------------------------------------------------- real songs
@pytest.mark.realmidi
def test_real_songs_are_scored_in_place(project, dev_midi_dir, tmp_path, capsys):
    """A handful of real songs (links to the shared folder, never copies): 6 that give loops, 2 that do not."""
    picked = {True: [], False: []}
    for path in sorted(dev_midi_dir.rglob("*.mid")):
        gives = bool(len(extract_file(path).start_bars))
        if len(picked[gives]) < (6 if gives else 2):
            picked[gives].append(path)
        if len(picked[True]) == 6 and len(picked[False]) == 2:
            break
    folder = tmp_path / "real"
    folder.mkdir()
    for i, path in enumerate(picked[True] + picked[False]):
        (folder / f"{i:02d}_{path.name}").symlink_to(path)
    out = _score_json(capsys, str(folder), "--from", NAME)
    assert out["extraction"]["files_scanned"] == 8 and out["extraction"]["files_with_loops"] == 6
    assert out["extraction"]["files_rejected"] == 2 and out["loops"] > 0
    row = out["models"][0]
    assert np.isfinite(row["reconstruction_error"]) and 0 < row["reconstruction_error"] < 1
    assert row["ratio"] > 0 and 0 <= out["loopability"] <= 1 and 0 <= row["loopability"] <= 1
    assert all(p.is_symlink() for p in folder.iterdir())  # nothing written beside the songs
