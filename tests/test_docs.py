"""References to the rules and to other documents resolve inside the repository.

Code, notebooks and docs cite the loop and metric rules as ``docs/rules.md §N`` or ``§N.M``; every cited section
must exist there, every ``docs/*.md`` named anywhere must exist, and nothing may cite a document outside the
repository (the old "spec section N" of a file that is not shipped) or a Markdown link that leads nowhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "docs" / "rules.md"
SCANNED = ("lib", "tests", "benchmarks", "notebooks", "docs", "figures/README.md", "README.md", "environment.yml")
SUFFIXES = {".py", ".md", ".ipynb", ".yml", ".yaml", ".txt", ".sh", ".html", ".js", ".toml"}

# "docs/rules.md §2.3", "docs/rules.md §2-4", "docs/rules.md §2 and §5", and bare "§3.1" inside docs/rules.md
CITATION = re.compile(r"rules\.md\s*§\s*(\d+(?:\.\d+)?)(?:\s*-\s*(\d+))?((?:\s*(?:,|and)\s*§\s*\d+(?:\.\d+)?)*)")
SECTION_LIST = re.compile(r"§\s*(\d+(?:\.\d+)?)")
# A citation of a document that is not in the repository: "spec section 6", "spec 3 rule 1", "the spec", ...
OUTSIDE = re.compile(
    r"(?i)(?<![\w.])spec(?:'s)?\s+(?:sections?|§|\d|rule|defaults)|\b(?:of|in|by|see) the spec\b|\bthe spec's\b"
    r"|shared/(?:spec|paper|design)|loops-and-metrics\.md|loop-vqvae-2021|\bdesign\.md"
)
DOC_PATH = re.compile(r"\bdocs/([\w.-]+\.md)")
MD_LINK = re.compile(r"\]\(([^)#\s]+\.md)(#[^)\s]*)?\)")


def _files() -> list[Path]:
    out = []
    for name in SCANNED:
        path = REPO / name
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out.extend(
                p for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts and p.name != Path(__file__).name
            )
    return out


def rules_sections(text: str | None = None) -> set[str]:
    """Section numbers docs/rules.md defines: headings ``## N.`` and numbered rules ``N.M.`` at a line start."""
    text = RULES.read_text(encoding="utf-8") if text is None else text
    sections = set(re.findall(r"^## (\d+)\. ", text, flags=re.MULTILINE))
    sections |= set(re.findall(r"^(\d+\.\d+)\. ", text, flags=re.MULTILINE))
    return sections


def cited_sections(text: str) -> list[str]:
    """Every section number ``text`` cites in docs/rules.md (ranges expanded)."""
    cited = []
    for match in CITATION.finditer(text):
        first, last, more = match.groups()
        cited.append(first)
        if last:
            cited.extend(str(n) for n in range(int(first.split(".")[0]) + 1, int(last) + 1))
        cited.extend(SECTION_LIST.findall(more or ""))
    return cited


def dangling(path: Path, text: str, sections: set[str]) -> list[str]:
    """What in ``text`` (the contents of ``path``) points at nothing."""
    problems = []
    rel = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    for number in cited_sections(text):
        if number not in sections:
            problems.append(f"{rel}: cites docs/rules.md §{number}, which docs/rules.md does not have")
    if path == RULES:  # inside the rules, a bare "§N" / "rule N.M" is a citation too
        for number in SECTION_LIST.findall(text):
            if number not in sections:
                problems.append(f"{rel}: cites §{number}, which it does not have")
    for match in OUTSIDE.finditer(text):
        line = text[: match.start()].count("\n") + 1
        problems.append(f"{rel}:{line}: cites a document outside the repository: {match.group(0)!r}")
    for name in DOC_PATH.findall(text):
        if not (REPO / "docs" / name).is_file():
            problems.append(f"{rel}: names docs/{name}, which does not exist")
    if path.suffix == ".md":
        for target, _ in MD_LINK.findall(text):
            if "://" not in target and not (path.parent / target).resolve().is_file():
                problems.append(f"{rel}: links to {target}, which does not exist")
    return problems


def test_rules_have_the_sections_the_code_cites():
    sections = rules_sections()
    assert {str(n) for n in range(1, 9)} <= sections, sorted(sections)
    assert {f"2.{n}" for n in range(7)} <= sections, "section 2 has rules 2.0-2.6"
    assert {f"3.{n}" for n in range(1, 5)} <= sections, "section 3 has rules 3.1-3.4"


def test_no_reference_dangles():
    sections = rules_sections()
    problems = []
    for path in _files():
        problems += dangling(path, path.read_text(encoding="utf-8", errors="replace"), sections)
    assert not problems, "\n".join(problems)


def test_library_cites_the_rules():
    """The modules that implement the rules say which ones (a check that the citations were not just deleted)."""
    for module in ("loops.py", "data/extract.py", "metrics.py", "data/midi/notes.py", "data/validate.py"):
        assert cited_sections((REPO / "lib" / "loopgen" / module).read_text()), module


@pytest.mark.parametrize(
    "text, problem",
    [
        ("see docs/rules.md §9", "§9"),
        ("see docs/rules.md §2.9", "§2.9"),
        ("(docs/rules.md §2-9)", "§9"),
        ("(docs/rules.md §2 and §12)", "§12"),
        ('"""Spec section 5: every file"""', "outside the repository"),
        ("# spec 3 rule 1 and the HD metric", "outside the repository"),
        ("every (param) of the spec, with its default", "outside the repository"),
        ("the contract is `shared/spec/loops-and-metrics.md`", "outside the repository"),
        ("details in docs/nothing.md", "docs/nothing.md"),
    ],
)
def test_the_checker_catches(text, problem):
    found = dangling(REPO / "lib" / "loopgen" / "example.py", text, rules_sections())
    assert any(problem in p for p in found), found


@pytest.mark.parametrize(
    "text",
    [
        "docs/rules.md §2.3 and docs/rules.md §2-4 and (docs/rules.md §2 and §5)",
        "spec = registry.get(name)",
        "importlib.util.find_spec('x')",
        "class ModelSpec:",
        "the kernel spec is installed",
        "The spec of model ``name``",
    ],
)
def test_the_checker_accepts(text):
    assert dangling(REPO / "lib" / "loopgen" / "example.py", text, rules_sections()) == []


def test_markdown_links_resolve(tmp_path):
    page = tmp_path / "page.md"
    assert any("missing.md" in p for p in dangling(page, "[x](missing.md)", rules_sections()))
    (tmp_path / "there.md").write_text("x")
    assert dangling(page, "[x](there.md#a)", rules_sections()) == []
