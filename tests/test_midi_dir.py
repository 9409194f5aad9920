"""Every notebook on any MIDI folder: a run on MIDI_DIR keeps its own dataset, models and outputs."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pandas as pd
import pytest

from loopgen.book import extraction, tables
from loopgen.errors import UserError
from loopgen.run import profiles, runner
from loopgen.store.paths import Paths


def _folder(tmp_path, name: str, songs: dict[str, bytes]):
    folder = tmp_path / name
    folder.mkdir()
    for file, data in songs.items():
        (folder / file).write_bytes(data)
    return folder


def test_a_folder_is_filed_under_its_name_and_its_contents(tmp_path):
    smoke = profiles.get("smoke")
    paths = Paths(tmp_path / "root")
    mine = _folder(tmp_path, "my songs!", {"a.mid": b"MThd-one", "b.mid": b"MThd-two"})
    source, mine_paths = extraction.run_paths(smoke, paths, mine)
    assert source.corpus_name.startswith("my_songs-") and len(source.corpus_name) == len("my_songs-") + 8
    assert mine_paths.figures == paths.root / "figures" / source.corpus_name
    assert mine_paths.build == paths.root / "build" / source.corpus_name
    assert mine_paths.executed_dir("smoke").is_relative_to(paths.root / "build" / source.corpus_name)
    assert mine_paths.data == paths.data, "datasets and checkpoints share data/: they are keyed by content"
    copy = tmp_path / "elsewhere"
    shutil.copytree(mine, copy)
    assert extraction.run_paths(smoke, paths, copy)[0].corpus_name.split("-")[-1] == source.corpus_name.split("-")[-1]
    (copy / "b.mid").write_bytes(b"MThd-changed")
    assert extraction.run_paths(smoke, paths, copy)[0].corpus_name.split("-")[-1] != source.corpus_name.split("-")[-1]


def test_without_a_folder_and_for_lmd_the_default_outputs_stay(tmp_path):
    paths = Paths(tmp_path / "root")
    assert extraction.run_paths(profiles.get("demo"), paths, "") == (None, paths)
    lmd = _folder(tmp_path, "lmd_full", {"x.mid": b"MThd"})
    source, lmd_paths = extraction.run_paths(profiles.get("paper"), paths, lmd)
    assert source.corpus_name == profiles.get("paper").corpus.name and lmd_paths.figures == paths.root / "figures"
    with pytest.raises(FileNotFoundError, match="not a folder"):
        extraction.run_paths(profiles.get("demo"), paths, tmp_path / "missing")


def test_every_notebook_gets_the_folder_and_the_default_plan_is_unchanged(tmp_path):
    assert all("MIDI_DIR" not in run.parameters for run in runner.plan("smoke"))
    runs = runner.plan("smoke", 0, str(tmp_path))
    assert [run.output_name for run in runs] == [run.output_name for run in runner.plan("smoke")]
    assert {run.notebook[:2] for run in runs} == {f"0{i}" for i in range(1, 10)}, "notebooks 01-09, every one"
    assert all(run.parameters["MIDI_DIR"] == str(tmp_path) for run in runs)


def test_too_few_loops_are_refused_saying_how_many_and_how_many_are_needed():
    demo = profiles.get("demo")
    with pytest.raises(UserError, match=r"gave 120 training loops; the demo profile needs at least 1000"):
        extraction.require_enough_loops(120, demo, "mine-0123abcd")
    extraction.require_enough_loops(demo.extract.min_train_loops, demo, "mine-0123abcd")


def test_the_tables_of_another_folder_name_their_corpus(tmp_path):
    paths = Paths(tmp_path, "mine-0123abcd")
    _, md = tables.write_table(pd.DataFrame({"x": [1.0]}, index=["a"]), "table1_reconstruction", paths=paths,
                               notes=["a note"])
    assert md == tmp_path / "figures" / "mine-0123abcd" / "table1_reconstruction.md"
    assert "Corpus: mine-0123abcd" in md.read_text()
    _, plain = tables.write_table(pd.DataFrame({"x": [1.0]}, index=["a"]), "table1_reconstruction",
                                  paths=Paths(tmp_path), notes=["a note"])
    assert "Corpus:" not in plain.read_text()


# Lookups that find a profile's own dataset and seed-0 checkpoints, whatever MIDI_DIR and SEED say: a notebook
# that used one ran on the demo corpus's models in a run on another folder (notebook 06 did, until a run on
# ../shared/midi/dev and a seed-1 reference run both failed there).
PROFILE_ONLY_LOOKUPS = ("load_vq(", "trained.resolve(", "loops_of(", "Paths()")


@pytest.mark.parametrize("folder", ["notebooks", "notebooks/solutions"])
def test_notebooks_reach_models_only_through_the_runs_evaluation(repo_root, folder):
    for path in sorted((repo_root / folder).glob("0[2-9]_*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                         if c["cell_type"] == "code")
        assert "Evaluation(PROFILE, SEED, midi_dir=MIDI_DIR)" in code, path.name
        used = [call for call in PROFILE_ONLY_LOOKUPS if call in code]
        assert not used, f"{path.name} calls {used}: use the run's Evaluation (ev.trained_vq, ev.model, ev.paths)"


def test_the_runs_trained_vq_has_the_runs_seed_and_dataset(monkeypatch):
    from loopgen.book import evaluation

    asked = {}

    def keys(name, settings, *, data_key, seed, prior_name):
        asked.update(name=name, data_key=data_key, seed=seed, prior_name=prior_name)
        return {"checkpoint_key": "vq-key", "prior_key": "prior-key"}

    monkeypatch.setattr(evaluation.generate, "checkpoint_keys", keys)
    ev = evaluation.Evaluation.__new__(evaluation.Evaluation)
    ev.profile, ev.seed = profiles.get("smoke"), 3
    monkeypatch.setattr(evaluation.Evaluation, "data_key", "folder-data-key")
    ev._models = {"vq_vae": "the run's vq", "prior": "the run's prior"}
    monkeypatch.setattr(evaluation.Evaluation, "sampler", lambda self, name: SimpleNamespace(first_codes="first"))
    monkeypatch.setattr(evaluation.Evaluation, "train", SimpleNamespace(loops="train loops"), raising=False)
    model = ev.trained_vq("prior")
    assert (model.vq, model.prior, model.vq_key) == ("the run's vq", "the run's prior", "vq-key")
    assert asked == {"name": "vq_vae", "data_key": "folder-data-key", "seed": 3, "prior_name": "prior"}


def test_runs_on_songs_of_unknown_licence_keep_their_root_outside_the_checkout(tmp_path):
    from loopgen.store.paths import SOURCE_ROOT, root_outside_checkout

    assert root_outside_checkout(Paths(tmp_path)) == tmp_path.resolve()
    for inside in (SOURCE_ROOT, SOURCE_ROOT / "build" / "real"):
        with pytest.raises(SystemExit, match="set LOOPGEN_ROOT to a folder outside"):
            root_outside_checkout(Paths(inside))
