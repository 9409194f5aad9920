"""Opening the notebooks in Google Colab: the badge under each notebook's title and its first code cell.

The repository's address is ``[project.urls] Repository`` in ``pyproject.toml`` (:func:`repository_url`); the
badge and the install cell of every notebook are made from it by :func:`sync_notebooks`, and a test keeps them
equal. On Colab the cell installs the project from that repository with pip; anywhere else it does nothing.
After changing the address: ``python -c "from loopgen import colab; colab.sync_notebooks()"``.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

from loopgen.store.paths import SOURCE_ROOT

CELL_MARKER = "# Google Colab only"
BADGE_MARKER = "colab-badge.svg"


def repository_url() -> str:
    """The project's repository (https, no trailing ``.git``): pyproject's ``Repository`` URL, else the installed
    package's metadata."""
    pyproject = SOURCE_ROOT / "pyproject.toml"
    if pyproject.exists():
        section = pyproject.read_text(encoding="utf-8").partition("[project.urls]")[2].split("\n[", 1)[0]
        match = re.search(r'^Repository\s*=\s*"([^"]+)"', section, re.MULTILINE)
        if match:
            return match.group(1).rstrip("/")
    for entry in metadata.metadata("loopgen").get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip() == "Repository":
            return url.strip().rstrip("/")
    raise LookupError("no Repository URL in pyproject.toml's [project.urls]")


def _github_path(url: str) -> str:
    match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)(\.git)?", url)
    if not match:
        raise ValueError(f"Colab opens notebooks from GitHub only; the repository URL is {url!r}")
    return match.group(1)


def badge_markdown(notebook: str, url: str | None = None, branch: str = "main") -> str:
    """The 'Open in Colab' badge linking to ``notebooks/<notebook>`` on GitHub."""
    path = _github_path(url or repository_url())
    link = f"https://colab.research.google.com/github/{path}/blob/{branch}/notebooks/{notebook}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/{BADGE_MARKER})]({link})"


def install_cell_source(url: str | None = None) -> str:
    """The first code cell: on Colab, pip-installs the project from its repository; elsewhere, nothing."""
    url = url or repository_url()
    return (
        f"{CELL_MARKER}: install loopgen from its repository (does nothing anywhere else).\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "loopgen @ git+{url}.git"], check=True)'
    )


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + [parts[-1]]


def sync_notebook(path: Path, url: str | None = None) -> bool:
    """Put the badge under the title (cell 0) and the install cell (cell 1) into one notebook; True if changed."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    changed = False
    title = "".join(cells[0]["source"])
    badge = badge_markdown(path.name, url)
    kept = [line for line in title.split("\n") if BADGE_MARKER not in line]
    first, rest = kept[0], kept[1:]
    while rest and not rest[0].strip():
        rest = rest[1:]
    new_title = "\n".join([first, "", badge, "", *rest])
    if new_title != title:
        cells[0]["source"] = _lines(new_title)
        changed = True
    source = install_cell_source(url)
    cell = {"cell_type": "code", "execution_count": None, "id": "colab-install", "metadata": {}, "outputs": [],
            "source": _lines(source)}
    if len(cells) > 1 and "".join(cells[1]["source"]).startswith(CELL_MARKER):
        if "".join(cells[1]["source"]) != source:
            cells[1]["source"] = cell["source"]
            changed = True
    else:
        cells.insert(1, cell)
        changed = True
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


def sync_notebooks(folder: Path | None = None, url: str | None = None) -> list[Path]:
    """:func:`sync_notebook` for every numbered notebook in ``folder`` (the checkout's ``notebooks/``)."""
    folder = folder or SOURCE_ROOT / "notebooks"
    return [p for p in sorted(folder.glob("[0-9][0-9]_*.ipynb")) if sync_notebook(p, url)]
