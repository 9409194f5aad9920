"""loopgen.run.colab: every notebook opens in Colab and installs the project there, and only there."""

from __future__ import annotations

import json
import sys

import pytest

from loopgen.run import colab
from loopgen.store.paths import SOURCE_ROOT

NOTEBOOKS = sorted((SOURCE_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_repository_url_comes_from_pyproject():
    assert colab.repository_url().startswith("https://github.com/")
    assert colab.repository_url() in (SOURCE_ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_badge_and_install_cell_match_the_repository(nb_path):
    cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
    assert colab.badge_markdown(nb_path.name) in "".join(cells[0]["source"]), "run colab.sync_notebooks()"
    assert "".join(cells[1]["source"]) == colab.install_cell_source(), "run colab.sync_notebooks()"
    assert "parameters" not in cells[1].get("metadata", {}).get("tags", [])


def test_install_cell_does_nothing_outside_colab(monkeypatch):
    calls = []
    monkeypatch.setattr("subprocess.run", lambda *a, **k: calls.append(a))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(colab.install_cell_source(), {})
    assert calls == []
    monkeypatch.setitem(sys.modules, "google.colab", object())
    exec(colab.install_cell_source(), {})
    assert calls and "loopgen @ git+https://github.com/" in calls[0][0][-1]


def test_sync_is_idempotent(tmp_path):
    for nb in NOTEBOOKS[:2]:
        copy = tmp_path / nb.name
        copy.write_text(nb.read_text(encoding="utf-8"), encoding="utf-8")
        assert not colab.sync_notebook(copy)
        assert colab.sync_notebook(copy, url="https://github.com/someone/fork")
        assert "someone/fork" in copy.read_text()
        assert colab.sync_notebook(copy) and copy.read_text() == nb.read_text(encoding="utf-8")


def test_only_github_urls():
    with pytest.raises(ValueError, match="GitHub"):
        colab.badge_markdown("01_extract_loops.ipynb", url="https://example.org/loopgen")
