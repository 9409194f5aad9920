"""The library's layout: no import circle, each folder imports only what its docstring allows, a short top level."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "loopgen"

# The method stays at the top (the README's reading list), beside the constants, the errors and the registry.
TOP_LEVEL = {"__init__.py", "__main__.py", "errors.py", "loops.py", "metrics.py", "paper.py", "registry.py",
             "sample.py", "sample_masked.py"}
FOLDERS = {"book", "commands", "data", "models", "musician", "run", "runtime", "store", "train"}

# What each folder may import of loopgen (besides itself and the package's constants in loopgen/__init__.py),
# as each folder's __init__ docstring says.
ALLOWED = {
    "loopgen.errors": set(),
    "loopgen.registry": set(),
    "loopgen.paper": {"loopgen.registry"},
    "loopgen.runtime": {"loopgen.errors"},
    "loopgen.store": {"loopgen.errors", "loopgen.registry", "loopgen.data"},
    "loopgen.data": {"loopgen.errors", "loopgen.loops", "loopgen.store"},
    "loopgen.loops": {"loopgen.data", "loopgen.store"},
    "loopgen.models": {"loopgen.errors", "loopgen.registry", "loopgen.runtime"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str) -> set[str]:
    """Every loopgen module ``name`` imports, at the top or inside a function, and the packages above each."""
    path = MODULES[name]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in MODULES else stem for alias in node.names]
        else:
            continue
        for target in targets:
            if target.startswith("loopgen"):
                resolved = _resolve(target)
                while resolved:  # importing a.b.c runs a/__init__ and a/b/__init__ too
                    found.add(resolved)
                    resolved = resolved.rpartition(".")[0] if "." in resolved else None
    found.discard(name)
    found.discard("loopgen")  # the package's constants: a leaf every module may read
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_circle_through_a_function_level_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = "def f():\n    from loopgen.train import shipped\n"
    tree = ast.parse(source)
    assert any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))  # imports inside functions are walked


def test_no_import_circle():
    # Package __init__ files that only re-export their own modules would make every child "import" its parent;
    # an edge from a module to its own package's __init__ is the package itself, not a circle.
    graph = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in GRAPH.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_top_level_holds_the_method_and_folders_by_concern():
    files = {p.name for p in PACKAGE.glob("*.py")}
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert files == TOP_LEVEL, files ^ TOP_LEVEL
    assert folders == FOLDERS, folders ^ FOLDERS


@pytest.mark.parametrize("folder", sorted(FOLDERS))
def test_each_folder_says_what_lives_there_and_what_it_may_import(folder):
    doc = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text())) or ""
    assert len(doc.split()) >= 25, f"{folder}/__init__.py needs a paragraph on what lives there"
    assert "import" in doc, f"{folder}/__init__.py should say what the folder may import"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_lower_layers_import_only_what_they_may(layer):
    for name, targets in GRAPH.items():
        if name != layer and not name.startswith(layer + "."):
            continue
        outside = {t for t in targets if t != layer and not t.startswith(layer + ".")}
        allowed = ALLOWED[layer]
        bad = {t for t in outside if not any(t == a or t.startswith(a + ".") for a in allowed)}
        assert not bad, f"{name} imports {sorted(bad)}; {layer} may import only {sorted(allowed)}"


def test_nothing_in_the_library_imports_the_command_line():
    for name, targets in GRAPH.items():
        if name.startswith("loopgen.commands") or name == "loopgen.__main__":
            continue
        assert not any(t.startswith("loopgen.commands") for t in targets), f"{name} imports loopgen.commands"
