"""Committed notebooks carry no outputs and follow the parameters-cell convention."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

from loopgen.run import colab
from loopgen.run.runner import plan

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NOTEBOOKS = CHAPTERS + sorted((NOTEBOOK_DIR / "solutions").glob("*.ipynb"))  # worked solutions follow the same rules


def committed_text(nb_path: Path) -> str:
    """The notebook as git stores it (the index, after the output-stripping clean filter), else the file itself:
    a student's saved outputs in the working tree are not what is committed."""
    repo = NOTEBOOK_DIR.parent
    shown = subprocess.run(["git", "show", f":{nb_path.relative_to(repo).as_posix()}"], cwd=repo,
                           capture_output=True, check=False)
    return shown.stdout.decode("utf-8") if shown.returncode == 0 else nb_path.read_text(encoding="utf-8")


def _cells(nb_path: Path) -> list[dict]:
    return json.loads(committed_text(nb_path))["cells"]


def test_there_are_notebooks():
    assert len(CHAPTERS) >= 7, [p.name for p in CHAPTERS]


def test_the_clean_filter_strips_outputs_and_keeps_everything_else():
    from loopgen.run.notebook_filter import strip_outputs

    text = (NOTEBOOK_DIR / "04_reconstruction.ipynb").read_text(encoding="utf-8")
    notebook = json.loads(text)
    code = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["saved by a student"]}]
    code["execution_count"] = 7
    stripped = strip_outputs(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    assert json.loads(stripped) == json.loads(text)
    assert strip_outputs("not a notebook") == "not a notebook"
    attributes = (NOTEBOOK_DIR.parent / ".gitattributes").read_text()
    assert "*.ipynb" in attributes and "filter=loopgen-notebook" in attributes


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(nb_path: Path):
    for i, cell in enumerate(_cells(nb_path)):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{nb_path.name} cell {i} has outputs: strip them"
            assert cell.get("execution_count") is None, f"{nb_path.name} cell {i} has an execution count"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_of_literals(nb_path: Path):
    cells = _cells(nb_path)
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{nb_path.name}: {len(tagged)} cells tagged 'parameters'"
    assert cells[0]["cell_type"] == "markdown", "the first cell says which part of the paper this is"
    tree = ast.parse("".join(tagged[0]["source"]))
    values = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign), f"{nb_path.name}: only assignments in the parameters cell"
        assert isinstance(node.value, ast.Constant), f"{nb_path.name}: parameters are literals only"
        values.update({t.id: node.value.value for t in node.targets})
    assert {"PROFILE", "SEED"} <= set(values)
    assert values["PROFILE"] == "demo", "the default profile is demo; run_all.sh injects the others"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_run_magic_or_copied_helpers(nb_path: Path):
    for cell in _cells(nb_path):
        src = "".join(cell["source"])
        if cell["cell_type"] == "code":
            assert "%run" not in src, f"{nb_path.name}: use the library, not %run"
            assert "def " not in src, f"{nb_path.name}: functions belong in lib/loopgen (with a test)"


def test_plan_parameters_exist_in_notebooks():
    """Every parameter the runner injects is declared in the notebook's parameters cell."""
    for nb_run in plan("smoke"):
        cells = _cells(Path(__file__).resolve().parents[1] / "notebooks" / nb_run.notebook)
        tagged = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
        declared = {t.id for n in ast.parse("".join(tagged["source"])).body for t in n.targets}
        missing = set(nb_run.parameters) - declared
        assert not missing, f"{nb_run.notebook} does not declare {missing}"


def test_no_code_cell_copied_between_notebooks():
    """Short teaching cells are welcome, but a cell of three or more lines used twice belongs in the library."""
    seen: dict[str, str] = {}
    for nb_path in NOTEBOOKS:
        for cell in _cells(nb_path):
            lines = [line.strip() for line in "".join(cell["source"]).splitlines() if line.strip()]
            if cell["cell_type"] != "code" or len(lines) < 3 or lines[0].startswith(colab.CELL_MARKER):
                continue  # the Colab install cell is made by loopgen.run.colab (tests/test_colab.py)
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                continue  # the parameters cells are alike by design (test_plan_parameters_exist_in_notebooks)
            text = "\n".join(lines)
            assert text not in seen or seen[text] == nb_path.name, (
                f"the same cell is in {seen.get(text)} and {nb_path.name}: move it into lib/loopgen\n{text}"
            )
            seen.setdefault(text, nb_path.name)
