"""Git's clean filter for notebooks: a notebook is committed without outputs, whatever Jupyter saved.

``run_all.sh`` registers it (``filter.loopgen-notebook.clean``; ``.gitattributes`` routes ``*.ipynb`` to it), so a
student who runs and saves a notebook can still ``git add`` it: git stores the notebook with every code cell's
outputs and execution count cleared, and the tests, which check what is committed, stay green. Reads the notebook on
stdin, writes it on stdout; text that is not a notebook passes through unchanged.
"""

from __future__ import annotations

import json
import sys


def strip_outputs(text: str) -> str:
    """``text`` (a notebook's JSON) with every code cell's outputs and execution count cleared, written as Jupyter
    writes it (one-space indent, UTF-8, a final newline); anything else unchanged."""
    try:
        notebook = json.loads(text)
    except ValueError:
        return text
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        return text
    for cell in notebook["cells"]:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    """The filter: stdin -> stdout."""
    data = sys.stdin.buffer.read().decode("utf-8")
    sys.stdout.buffer.write(strip_outputs(data).encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
