"""Issue 30, N1: the GPU check's path runs on a box with only torch (no numpy, pandas, scipy, matplotlib, tqdm, ...),
while every default path keeps its results: the torch-only routes are taken only where numpy is missing, and each
gives what the numpy route gives."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from loopgen import metrics, paper
from loopgen.data import validate
from loopgen.run import rehearse
from loopgen.run.profiles import TrainSettings
from loopgen.runtime import seed as seed_mod
from loopgen.store import digest
from loopgen.train import checkpoint, data

LIB = Path(__file__).resolve().parents[1] / "lib"
# Not installed on a box with only torch (filelock is: torch itself requires it, and the training lock uses it).
HIDDEN = ("numpy", "pandas", "scipy", "matplotlib", "seaborn", "tqdm", "pretty_midi", "mido", "numba", "IPython",
          "papermill", "nbformat", "requests", "tabulate", "pypianoroll", "fluidsynth", "ipywidgets")
# What the GPU check imports of loopgen (benchmarks/gpu_check.py imports them inside main).
CHECK_ENTRIES = ("loopgen.run.rehearse", "loopgen.runtime.device", "loopgen.runtime.distributed", "loopgen.paper",
                 "loopgen.sample_masked", "loopgen.store.digest", "loopgen.train")

BLOCKER = f'''
"""Hides {HIDDEN} from every import, as on a box where they are not installed."""
import sys

HIDDEN = {set(HIDDEN)!r}


class _Hiding:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attr):
        return getattr(self.finder, attr)


sys.meta_path[:] = [_Hiding(f) for f in sys.meta_path]
'''


# ------------------------------------------------------------------------------- the import path, read
def _module_path(name: str) -> Path | None:
    base = LIB / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported (not those inside functions or under ``if TYPE_CHECKING``, nor
    those imported in a ``try`` that handles their absence)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def offenders_on_the_check_path() -> dict[str, set[str]]:
    """loopgen modules the GPU check imports (transitively, at module level) -> the hidden packages they import."""
    seen, todo, bad = set(), list(CHECK_ENTRIES), {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) not in seen]
        path = _module_path(name)
        if path is None:
            continue
        imports = _top_level_imports(path)
        hidden = {i.partition(".")[0] for i in imports} & set(HIDDEN)
        if hidden:
            bad[name] = hidden
        todo += [i for i in imports if i.startswith("loopgen") and _module_path(i) is not None]
    return bad


def test_nothing_on_the_gpu_checks_path_imports_numpy_pandas_or_the_like_at_the_top():
    bad = offenders_on_the_check_path()
    assert not bad, f"imported with the GPU check, these need packages a bare GPU box lacks: {bad}"


# ------------------------------------------------------------------------------- the check, run without them
@pytest.mark.slow
def test_the_gpu_check_runs_where_only_torch_is_installed(repo_root, tmp_path):
    """benchmarks/gpu_check.sh with numpy, pandas, scipy, ... hidden from every import: trainings, resume,
    sampling on the device and the metric row, ending in its JSON."""
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(BLOCKER))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(repo_root / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--batch-size", "4",
         "--steps", "2", "--samples", "4", "--only", "cnn_vae", "prior", "--masked-prior"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    out = proc.stdout
    result = json.loads(out[("\n" + out).rindex("\n{\n"):])
    assert proc.returncode == 0 and result["ok"], (result.get("problems"), proc.stderr[-3000:])
    assert result["numpy_installed"] is False
    assert [r["training"] for r in result["trainings"]] == ["cnn_vae", "vq_vae", "prior", "masked_prior"]
    assert all(r["resumed"] and r["device"] == "cpu" for r in result["trainings"])


# ------------------------------------------------------------------------------- the pieces, without numpy
def test_the_checks_take_tensors_where_numpy_is_missing(monkeypatch):
    monkeypatch.setattr(validate, "np", None)
    loops = torch.zeros(3, 128, 93, dtype=torch.float32)
    checked = validate.check_loops(loops, name="loops")
    assert checked.dtype == torch.uint8 and checked.shape == (3, 128, 93)
    assert validate.check_loops(torch.zeros(128, 93, dtype=torch.bool), single_as_batch=True).shape == (1, 128, 93)
    with pytest.raises(ValueError, match=r"loops must have shape \(N, 128, 93\)"):
        validate.check_loops(torch.zeros(3, 128, 92), name="loops")
    with pytest.raises(ValueError, match="binary"):
        validate.check_loops(torch.full((1, 128, 93), 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="must be a torch tensor here"):
        validate.check_loops([[0]])
    codes = validate.check_codes(torch.tensor([[1, 2], [3, 4]], dtype=torch.int32), num_codes=5, min_steps=2)
    assert codes.dtype == torch.int64
    with pytest.raises(ValueError, match="outside 0..4"):
        validate.check_codes(torch.tensor([[1, 7]]), num_codes=5)
    with pytest.raises(ValueError, match="integer code indices"):
        validate.check_codes(torch.tensor([[1.0, 2.0]]))


def test_the_tensor_checks_say_what_the_numpy_checks_say(monkeypatch):
    cases = [np.zeros((2, 128, 92)), np.zeros((0, 128, 93)), np.full((1, 128, 93), 0.5, dtype=np.float32),
             np.full((1, 128, 93), 3, dtype=np.uint8)]
    numpy_errors = []
    for case in cases:
        with pytest.raises(ValueError) as err:
            validate.check_loops(case, name="x")
        numpy_errors.append(str(err.value))
    monkeypatch.setattr(validate, "np", None)
    for case, expected in zip(cases, numpy_errors, strict=True):
        with pytest.raises(ValueError) as err:
            validate.check_loops(torch.from_numpy(case), name="x")
        assert str(err.value).replace("torch.Size", "") == expected.replace("torch.Size", "")


def test_training_data_from_tensors_without_numpy(monkeypatch):
    monkeypatch.setattr(validate, "np", None)
    monkeypatch.setattr(data, "np", None)
    loops = torch.zeros(6, 128, 93, dtype=torch.uint8)
    settings = TrainSettings(max_train_loops=None, max_val_loops=None)
    train_data, val_data = data.prepare(loops, loops[:2], settings, check=lambda a, w: validate.check_loops(a, name=w),
                                        names=("train", "val"), seed=0, device=torch.device("cpu"))
    assert torch.equal(train_data, loops) and val_data.shape == (2, 128, 93)
    with pytest.raises(ModuleNotFoundError, match="needs numpy"):
        data.prepare(loops, None, TrainSettings(max_train_loops=3), check=lambda a, w: a,
                     names=("train", "val"), seed=0, device=torch.device("cpu"))


def test_tensor_bytes_are_numpys_bytes():
    for tensor in (torch.arange(12, dtype=torch.float32).reshape(3, 4), torch.tensor([True, False, True]),
                   torch.arange(10, dtype=torch.int64)[::2], torch.randn(5).to(torch.bfloat16), torch.zeros(0)):
        assert digest.tensor_bytes(tensor) == tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def test_seeding_and_rng_states_without_numpy(monkeypatch):
    monkeypatch.setattr(seed_mod, "np", None)
    assert seed_mod.seed_everything(3) is None
    monkeypatch.setattr(checkpoint, "np", None)
    state = checkpoint.rng_state(torch.device("cpu"))
    assert "numpy" not in state
    checkpoint.set_rng_state(state, torch.device("cpu"))
    monkeypatch.undo()
    with_numpy = checkpoint.rng_state(torch.device("cpu"))
    assert list(with_numpy) == ["torch", "python", "numpy"], "the checkpoints' RNG entries keep their order"
    checkpoint.set_rng_state(state, torch.device("cpu"))  # saved without numpy, resumed where numpy is


def test_the_papers_tables_are_made_when_first_read():
    assert paper.TABLE3 is paper.TABLE3 and paper.TABLE3.loc["AR LSTM-VAE", "FNB"] == 0.44
    assert paper.nan != paper.nan and "TABLE9" not in dir(paper)
    with pytest.raises(AttributeError):
        paper.TABLE9  # noqa: B018


def test_the_rehearsals_metric_row_is_metric_rows():
    loops = (torch.rand(40, 128, 93, generator=torch.Generator().manual_seed(0)) < 0.04).to(torch.uint8)
    loops[::3, 64:80] = loops[::3, :16]  # some bar 5s repeat their bar 1
    expected = metrics.metric_row(loops.numpy())
    assert rehearse.table3_row(loops) == {k: expected[k] for k in rehearse.METRIC_COLUMNS}
