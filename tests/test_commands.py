"""One dispatcher for every command: each entry of ``loopgen.commands.COMMANDS`` is a module with ``main(argv)``,
``python -m loopgen --help`` lists them all, and nothing in the library imports ``loopgen.commands``."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopgen.commands import COMMANDS

LIB = Path(__file__).resolve().parents[1] / "lib"
PACKAGE = LIB / "loopgen"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_a_module_with_main(name):
    module_name, help_line = COMMANDS[name]
    assert module_name.startswith("loopgen.commands."), module_name
    assert help_line.strip() and "\n" not in help_line
    module = importlib.import_module(module_name)
    assert callable(getattr(module, "main", None)), f"{module_name} has no main(argv)"
    assert list(inspect.signature(module.main).parameters) == ["argv"]
    assert not hasattr(module, "cli_main"), f"{module_name}: main(argv) is the one entry point"


@pytest.mark.slow
def test_python_m_loopgen_help_lists_every_command():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(LIB), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-m", "loopgen", "--help"], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")]
    assert listed == list(COMMANDS)
    for name, (_, help_line) in COMMANDS.items():
        assert f"  {name:<14} {help_line}" in done.stdout


def test_the_dispatcher_uses_the_one_table(capsys):
    from loopgen import __main__ as entry

    assert entry.COMMANDS is COMMANDS
    assert entry.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in COMMANDS)


def _package_of(path: Path) -> str:
    """The dotted package a module file belongs to (a package's ``__init__.py``: that package)."""
    return ".".join(path.parent.relative_to(LIB).parts)


def imported_modules(tree: ast.AST, package: str) -> set[str]:
    """Every module ``tree`` imports, at any depth (inside functions too), relative imports made absolute;
    ``from a import b`` counts as ``a`` and as ``a.b``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            prefix = ".".join(parts + ([node.module] if node.module else []))
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def test_no_library_module_imports_the_commands():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__main__.py" or PACKAGE / "commands" in path.parents:
            continue
        imported = imported_modules(ast.parse(path.read_text(encoding="utf-8")), _package_of(path))
        bad = sorted(m for m in imported if m == "loopgen.commands" or m.startswith("loopgen.commands."))
        if bad:
            offenders.append(f"{path.relative_to(LIB)}: {', '.join(bad)}")
    assert not offenders, "library modules import loopgen.commands:\n" + "\n".join(offenders)


def test_the_import_check_sees_imports_inside_functions_and_relative_ones():
    source = "def f():\n    from loopgen.commands import common\n    import loopgen.commands.train\n"
    assert {"loopgen.commands", "loopgen.commands.common", "loopgen.commands.train"} <= imported_modules(
        ast.parse(source), "loopgen.book"
    )
    assert "loopgen.commands.common" in imported_modules(ast.parse("from ..commands import common\n"), "loopgen.book")
    assert "loopgen.commands" in imported_modules(ast.parse("from .. import commands\n"), "loopgen.run")
    assert "loopgen.book.listening.analysis" in imported_modules(
        ast.parse("from .analysis import analyse\n"), "loopgen.book.listening"
    )
