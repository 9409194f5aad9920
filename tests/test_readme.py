"""The README's layout section lists exactly the package's modules and sub-packages."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "lib" / "loopgen"


def _layout_entries() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    inside = block.split("lib/loopgen/", 1)[1]
    return re.findall(r"^  (\S+?\.py|\S+?/)\s", inside, flags=re.MULTILINE)


def _package_entries() -> set[str]:
    modules = {p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    packages = {f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    data = {f"{p.name}/" for p in PACKAGE.iterdir()
            if p.is_dir() and p.name != "__pycache__" and not any(p.rglob("*.py"))}  # shipped/: weights, not code
    return modules | packages | data


def test_readme_layout_lists_every_module_once():
    listed = _layout_entries()
    assert len(listed) == len(set(listed)), sorted(x for x in listed if listed.count(x) > 1)
    assert set(listed) == _package_entries(), {
        "in README only": sorted(set(listed) - _package_entries()),
        "in lib/loopgen only": sorted(_package_entries() - set(listed)),
    }
