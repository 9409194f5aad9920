"""The notebook plan, the output registry and the profile/paths helpers."""

from __future__ import annotations

import pytest

from loopgen.run import profiles
from loopgen.run.runner import NotebookRun, plan, summary
from loopgen.store.outputs import OUTPUTS, TABLE2_SETTINGS, VQ_DEFAULT, vq_variant_name
from loopgen.store.paths import MissingInputError, Paths, require


def test_plan_order_and_names():
    runs = plan("smoke")
    names = [r.output_name for r in runs]
    assert len(names) == len(set(names)), "executed copies must not overwrite each other"
    assert names[0] == "01_extract_loops.ipynb" and names[-1] == "09_beyond_the_paper.ipynb"
    # 02 runs once per model (4) and once per Table 2 setting (6: smoke trains Table 2 with a recipe of its
    # own, the default setting included); the paper profile reuses the main VQ-VAE for the default setting
    assert sum(r.notebook == "02_train_autoencoders.ipynb" for r in runs) == 4 + len(TABLE2_SETTINGS)
    paper_runs = plan("paper")
    assert sum(r.notebook == "02_train_autoencoders.ipynb" for r in paper_runs) == 4 + len(TABLE2_SETTINGS) - 1
    assert all(r.parameters.get("TABLE2") for r in runs if "vq_vae_t" in r.output_name)
    assert all(r.parameters["PROFILE"] == "smoke" for r in runs)
    vq = [r for r in runs if r.parameters.get("MODEL") == "vq_vae"]
    assert {(r.parameters["VQ_T"], r.parameters["VQ_L"], r.parameters["VQ_K"]) for r in vq} == set(TABLE2_SETTINGS)


def test_variant_names():
    assert vq_variant_name(*VQ_DEFAULT) == "vq_vae"
    assert vq_variant_name(*VQ_DEFAULT, table2=True) == "vq_vae_t32_L16_K512"
    assert vq_variant_name(64, 16, 256) == "vq_vae_t64_L16_K256"


def test_outputs_registry_is_unique_and_points_at_notebooks(repo_root):
    files = [o.filename for o in OUTPUTS]
    assert len(files) == len(set(files))
    for o in OUTPUTS:
        assert (repo_root / "notebooks" / o.notebook).exists(), o


def test_figures_readme_lists_every_output(repo_root):
    text = (repo_root / "figures" / "README.md").read_text()
    for o in OUTPUTS:
        assert o.filename in text, f"figures/README.md does not mention {o.filename}"


def test_summary_marks_failures():
    r = NotebookRun("a.ipynb", "a.ipynb", {})
    text = summary([(r, 1.5, None), (NotebookRun("b.ipynb", "b.ipynb", {}), 2.0, "boom")])
    assert "FAILED" in text and "3.5" in text


def test_profiles():
    assert profiles.get("paper").train.epochs == 2000
    assert profiles.get("paper").train.batch_size == 2048
    assert profiles.get("smoke").corpus.n_songs < profiles.get("demo").corpus.n_songs
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.get("nope")


def test_require_names_the_notebook(tmp_path):
    paths = Paths(tmp_path)
    assert paths.figure("x.png") == tmp_path / "figures" / "x.png"
    with pytest.raises(MissingInputError, match="01_extract_loops.ipynb"):
        require(tmp_path / "missing", made_by="01_extract_loops.ipynb")


def test_paper_profile_cells_have_no_time_limit():
    from loopgen.run.runner import cell_timeout_for

    assert cell_timeout_for("paper") is None, "a 2,000-epoch training cell must not be cut off"
    assert cell_timeout_for("demo") == cell_timeout_for("smoke") == 3600
    assert cell_timeout_for("paper", 900) == 900 and cell_timeout_for("demo", 0) is None


def test_a_profile_for_the_commands_only_is_refused_by_the_notebook_runner():
    from loopgen.errors import UserError

    with pytest.raises(UserError, match="the songs profile is for `fit`, `score` and `vary`"):
        plan("songs")
