"""The runner's web pages, status file, log and closing line, on small stand-in notebooks.

A root with its own ``notebooks/`` folder (``Paths.notebooks``) makes ``python -m loopgen run-notebooks`` run
stand-ins under the plan's names: a figure and a sound, a failure, a long sleep to interrupt. They run in a real
kernel, in a folder whose name holds a space and non-ASCII letters.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from loopgen.run import pages as notebook_pages
from loopgen.run import runner
from loopgen.run.pages import PageRecord

REPO = Path(__file__).resolve().parents[1]
PROFILE = "smoke"
FIGURE_CELL = (
    "import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots(figsize=(3, 2)); ax.plot([0, 1, 0]); ax.set_title('Größe <&>'); plt.show()"
)
AUDIO_CELL = (
    "import numpy as np\nfrom IPython.display import Audio, display\n"
    "display(Audio(np.sin(np.linspace(0, 440 * 2 * np.pi, 8000)), rate=8000))"
)


def _notebook(*sources: str) -> nbformat.NotebookNode:
    params = new_code_cell(f'PROFILE = "{PROFILE}"\nSEED = 0')
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell("# A stand-in notebook: Größe & friends"), params])
    nb.cells += [new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "loopgen", "display_name": "Python (loopgen)", "language": "python"}
    return nb


def _root(tmp_path: Path, notebooks: dict[str, nbformat.NotebookNode]) -> Path:
    root = tmp_path / "a root ü"
    (root / "notebooks").mkdir(parents=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, root / "notebooks" / name)
    return root


def _env(root: Path) -> dict:
    return {**os.environ, "LOOPGEN_ROOT": str(root), "PYTHONUNBUFFERED": "1"}


def _state(root: Path) -> dict:
    return json.loads((root / "build" / "executed" / PROFILE / runner.STATUS_FILE).read_text())


def _status(root: Path) -> dict[str, str]:
    return {r["output_name"]: r["status"] for r in _state(root)["runs"]}


# ----------------------------------------------------------------------------------------- pages, no kernel
def _executed_notebook(path: Path) -> Path:
    """A notebook as papermill leaves it, with a PNG output and an audio player, without running a kernel."""
    import base64
    import io

    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    from IPython.display import Audio

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 0])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    png = base64.b64encode(buffer.getvalue()).decode()
    player = Audio(np.sin(np.linspace(0, 440 * 2 * np.pi, 8000)), rate=8000)._repr_html_()
    nb = _notebook("plot()", "play()")
    nb.cells[2].outputs = [new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})]
    nb.cells[3].outputs = [new_output("display_data", data={"text/html": player, "text/plain": "<Audio>"})]
    nbformat.write(nb, path)
    return path


def test_a_page_embeds_its_figure_and_player_and_the_index_links_them(tmp_path):
    html_dir = tmp_path / "html"
    record = PageRecord("01 Größe & <b>.ipynb", "01_extract_loops.ipynb", {"PROFILE": "smoke", "X": "<i>"}, "ok", 1.25)
    notebook_pages.export_page(_executed_notebook(tmp_path / "run.ipynb"), html_dir, record)
    page = (html_dir / record.page).read_text(encoding="utf-8")
    assert record.page == "01 Größe & <b>.html"
    assert "data:image/png;base64," in page and "<audio" in page
    assert not re.search(r"<script[^>]+src=\"https?://", page), "a page must not fetch scripts from the internet"
    assert [Path(f).suffix for f in record.figures] == [".png"] and [Path(a).suffix for a in record.audio] == [".wav"]
    assert (html_dir / record.figures[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (html_dir / record.audio[0]).read_bytes()[:4] == b"RIFF"

    index = notebook_pages.write_index(html_dir, [record], profile="smoke").read_text(encoding="utf-8")
    assert "01 Größe &amp; &lt;b&gt;" in index and "<b>" not in index.replace("<body>", "")
    assert 'href="01%20Gr%C3%B6%C3%9Fe%20%26%20%3Cb%3E.html"' in index
    assert "X=&#x27;&lt;i&gt;&#x27;" in index and "1.2 s" in index


def test_a_run_that_was_never_made_is_listed_as_not_run(tmp_path):
    records = [PageRecord("a.ipynb", "a.ipynb"), PageRecord("b.ipynb", "b.ipynb", status="failed", seconds=2.0,
                                                             error="PapermillExecutionError: <boom>")]
    index = notebook_pages.write_index(tmp_path, records, profile="demo").read_text()
    assert index.count('data-status="not run"') == 1 and "FAILED" in index and "&lt;boom&gt;" in index
    with pytest.raises(ValueError, match="unknown status"):
        PageRecord("c.ipynb", "c.ipynb", status="fine")


def test_outcome_names_what_failed_and_the_log(tmp_path):
    paths = runner.Paths(tmp_path)
    out = paths.executed_dir("smoke")
    out.mkdir(parents=True)
    (out / runner.LOG_FILE).write_text("log")
    state = {
        "profile": "smoke",
        "this_run": {"names": ["01_extract_loops.ipynb", "03_train_prior.ipynb"]},
        "runs": [
            PageRecord("01_extract_loops.ipynb", "01_extract_loops.ipynb", status="ok", seconds=1).to_dict(),
            PageRecord("03_train_prior.ipynb", "03_train_prior.ipynb", status="failed", seconds=1).to_dict(),
        ],
    }
    (out / runner.STATUS_FILE).write_text(json.dumps(state))
    failed = runner.outcome("smoke", 1, 75, paths=paths)
    assert "FAILED after 1 min 15 s" in failed and "03_train_prior.ipynb" in failed and "run.log" in failed
    assert "01_extract_loops" not in failed and "tables and figures are in" not in failed
    state["runs"][1]["status"] = "interrupted"
    (out / runner.STATUS_FILE).write_text(json.dumps(state))
    stopped = runner.outcome("smoke", 130, 3, paths=paths)
    assert "interrupted after 3 s during 03_train_prior.ipynb (exit 130)" in stopped and "run.log" in stopped
    assert "1 of 2 notebook runs had finished" in stopped
    assert "tables and figures are in" in runner.outcome("smoke", 0, 3, paths=paths)


# ----------------------------------------------------------------------------------------- real kernels
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """``run-notebooks --only 01 03 04``: 01 draws a figure and plays a sound, 03 prints, 04 fails."""
    root = _root(
        tmp_path_factory.mktemp("pages"),
        {
            "01_extract_loops.ipynb": _notebook(FIGURE_CELL, AUDIO_CELL),
            "03_train_prior.ipynb": _notebook("print('the prior, <trained>')"),
            "04_reconstruction.ipynb": _notebook("raise RuntimeError('a <broken> notebook')"),
        },
    )
    proc = subprocess.run(
        [sys.executable, "-m", "loopgen", "run-notebooks", "--profile", PROFILE, "--only", "01_", "03_", "04_"],
        cwd=root, env=_env(root), capture_output=True, text=True, timeout=600,
    )
    return root, proc


@pytest.mark.slow
def test_a_run_is_quiet_and_says_what_failed(finished_run):
    root, proc = finished_run
    console = proc.stdout + proc.stderr
    assert proc.returncode == 1, console
    assert "without encryption" not in console and "[IPKernelApp]" not in console, console
    assert "Traceback" not in console, console
    assert _status(root)["01_extract_loops.ipynb"] == "ok" and _status(root)["04_reconstruction.ipynb"] == "failed"
    assert _status(root)["02_train_autoencoders-vq_vae.ipynb"] == "not run"
    last = console.strip().splitlines()[-1]
    assert "FAILED" in last and "04_reconstruction.ipynb" in last and "run.log" in last, last
    log = (root / "build" / "executed" / PROFILE / runner.LOG_FILE).read_text()
    assert "the prior, <trained>" in log, "the cells' printed output is in the log"


@pytest.mark.slow
def test_the_pages_of_a_run(finished_run):
    root, _ = finished_run
    html_dir = root / "build" / "executed" / PROFILE / runner.HTML_DIR
    index = (html_dir / "index.html").read_text(encoding="utf-8")
    assert index.count("<tr class=") == len(runner.plan(PROFILE))
    assert "RuntimeError" in index and "a &lt;broken&gt; notebook" in index
    first = (html_dir / "01_extract_loops.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in first and "<audio" in first and "Größe &lt;&amp;&gt;" not in index
    assert "a &lt;broken&gt; notebook" in (html_dir / "04_reconstruction.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_ctrl_c_stops_the_run_with_one_line(tmp_path):
    root = _root(tmp_path, {"01_extract_loops.ipynb": _notebook("print('sleeping', flush=True)", "import time\ntime.sleep(120)")})
    proc, console = _ctrl_c_once_sleeping(
        [sys.executable, "-m", "loopgen", "run-notebooks", "--profile", PROFILE, "--only", "01_"], root,
        cwd=root, env=_env(root),
    )
    assert proc.returncode == 130, console
    assert "Traceback" not in console and "ZMQ" not in console and "without encryption" not in console, console
    extra = [line for line in console.splitlines() if not line.startswith(("run-notebooks --profile", "[1/1]"))]
    assert len(extra) == 1 and "interrupted" in extra[0] and "01_extract_loops.ipynb" in extra[0], console
    assert _status(root)["01_extract_loops.ipynb"] == "interrupted"
    assert 'data-status="interrupted"' in (root / "build" / "executed" / PROFILE / runner.HTML_DIR / "index.html").read_text()


# ----------------------------------------------------------------------------------------- run_all.sh
def _run_all_checkout(tmp_path: Path) -> tuple[Path, dict]:
    """A copy of run_all.sh whose set-up finds everything in place, with this environment's Python behind it."""
    checkout = tmp_path / "a checkout ü"
    venv = checkout / ".venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("run_all.sh", "pyproject.toml", "constraints.txt"):
        shutil.copy(REPO / name, checkout / name)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    stamp = hashlib.sha1((checkout / "pyproject.toml").read_bytes() + (checkout / "constraints.txt").read_bytes())
    (venv / ".loopgen-install-stamp").write_text(stamp.hexdigest() + "\n")
    kernel = venv / "share" / "jupyter" / "kernels" / "loopgen"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text("{}")
    tools = tmp_path / "tools"
    tools.mkdir()
    ldconfig = tools / "ldconfig"  # the set-up asks ldconfig for fluidsynth; say it is there
    ldconfig.write_text("#!/bin/sh\necho 'libfluidsynth.so.3 (libc6,x86-64) => /usr/lib/libfluidsynth.so.3'\n")
    ldconfig.chmod(0o755)
    return checkout, {"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.slow
def test_run_all_sh_says_what_failed_and_where_the_log_is(tmp_path):
    checkout, env = _run_all_checkout(tmp_path)
    root = _root(tmp_path, {"03_train_prior.ipynb": _notebook("raise ValueError('no prior today')")})
    proc = subprocess.run(
        ["bash", str(checkout / "run_all.sh"), "--profile", PROFILE, "--only", "03_"],
        env={**_env(root), **env}, capture_output=True, text=True, timeout=300,
    )
    console = proc.stdout + proc.stderr
    assert proc.returncode == 1, console
    last = console.strip().splitlines()[-1]
    assert "FAILED" in last and "03_train_prior.ipynb" in last and "run.log" in last, last
    assert "tables and figures are in" not in console, console


@pytest.mark.slow
def test_run_all_sh_interrupted_says_so(tmp_path):
    checkout, env = _run_all_checkout(tmp_path)
    root = _root(tmp_path, {"03_train_prior.ipynb": _notebook("print('sleeping', flush=True)", "import time\ntime.sleep(120)")})
    proc, console = _ctrl_c_once_sleeping(
        ["bash", str(checkout / "run_all.sh"), "--profile", PROFILE, "--only", "03_"], root,
        env={**_env(root), **env},
    )
    assert proc.returncode == 130, console
    last = console.strip().splitlines()[-1]
    assert "interrupted" in last and "03_train_prior.ipynb" in last and "run.log" in last, last
    assert "tables and figures are in" not in console and "Traceback" not in console, console


def test_escaping_helpers():
    assert notebook_pages.page_name("02_x-vq_vae.ipynb") == "02_x-vq_vae.html"
    assert notebook_pages.page_name("a/b\\c.ipynb") == "a_b_c.html"
    assert notebook_pages.glob_escape("a[1]*?") == "a[[]1][*][?]"
    assert html.unescape(notebook_pages._href("a b/ü&.png")) == "a%20b/%C3%BC%26.png"


def test_remote_images_become_their_alt_text_so_pages_open_offline():
    html = ('<a href="https://colab.research.google.com/github/x"><img alt="Open In Colab" '
            'src="https://colab.research.google.com/assets/colab-badge.svg"/></a> <img src="figures/a.png" alt="a">'
            ' <img src="//cdn.example.org/b.png">')
    out = notebook_pages.offline_images(html)
    assert "colab-badge.svg" not in out and "cdn.example.org" not in out
    assert '<a href="https://colab.research.google.com/github/x">Open In Colab</a>' in out
    assert '<img src="figures/a.png" alt="a">' in out  # local figures stay


def _sigint_as_in_a_terminal() -> None:
    """In the child: Ctrl-C's default action, even when this suite was started in the background (a shell then
    starts its jobs with SIGINT ignored, and a child would inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ctrl_c_once_sleeping(command: list[str], root, sleepers: int = 1, **popen) -> tuple[subprocess.Popen, str]:
    """Start ``command`` in its own process group, wait until ``sleepers`` stand-in notebooks log "sleeping" (a
    kernel still starting would die of the Ctrl-C with a line of its own), press Ctrl-C as a terminal does (SIGINT
    to the whole foreground group) and return the process and its console output."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=_sigint_as_in_a_terminal, **popen)
    log = root / "build" / "executed" / PROFILE / runner.LOG_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (log.exists() and log.read_text().count("sleeping") >= sleepers):
        time.sleep(0.5)
    assert log.exists() and "sleeping" in log.read_text(), "the stand-in notebook never started"
    os.killpg(proc.pid, signal.SIGINT)
    console, _ = proc.communicate(timeout=120)
    return proc, console


# ----------------------------------------------------------------------------------------- side by side
def test_every_run_waits_only_for_runs_before_it_in_the_plan():
    for profile in ("smoke", "demo"):
        runs = runner.plan(profile)
        names = [r.output_name for r in runs]
        waits = {r.output_name: runner.waits_for(r, runs) for r in runs}
        for name, before in waits.items():
            assert all(names.index(b) < names.index(name) for b in before), (name, before)
        assert waits["01_extract_loops.ipynb"] == []
        assert waits["03_train_prior.ipynb"] == ["01_extract_loops.ipynb", "02_train_autoencoders-vq_vae.ipynb"]
        assert waits["08_sensitivity.ipynb"] == ["01_extract_loops.ipynb"]
        assert waits["09_beyond_the_paper.ipynb"] == ["02_train_autoencoders-vq_vae.ipynb", "03_train_prior.ipynb"]
        assert set(waits["05_musical_metrics.ipynb"]) == {n for n in names if n[:2] in ("01", "02", "03")}
    assert runner.default_workers("paper") == runner.default_workers("colab") == 1


def _timed(name: str, seconds: float) -> nbformat.NotebookNode:
    """A stand-in that notes when it starts and ends, and its kernel's thread setting, in ``times.txt``."""
    note = ("import os, time\nwith open(os.path.join(os.environ['LOOPGEN_ROOT'], 'times.txt'), 'a') as f:\n"
            "    f.write(f'{EVENT} " + name + " {time.time()} {os.environ.get(\"OMP_NUM_THREADS\")}\\n')")
    return _notebook(note.replace("{EVENT}", "start"), f"print('sleeping', flush=True)\ntime.sleep({seconds})",
                     note.replace("{EVENT}", "end"))


@pytest.mark.slow
def test_notebooks_side_by_side_wait_for_the_notebooks_they_read(tmp_path):
    """01, then the VQ-VAE's 02 and 08 together (08 reads only 01's dataset), then 03 (it reads the VQ-VAE)."""
    root = _root(tmp_path, {nb: _timed(nb[:2], 3) for nb in (
        "01_extract_loops.ipynb", "02_train_autoencoders.ipynb", "03_train_prior.ipynb", "08_sensitivity.ipynb")})
    proc = subprocess.run(
        [sys.executable, "-m", "loopgen", "run-notebooks", "--profile", PROFILE, "--workers", "2",
         "--only", "01_", "02_train_autoencoders-vq_vae.ipynb", "03_", "08_"],
        cwd=root, env=_env(root), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    times = {}
    for line in (root / "times.txt").read_text().splitlines():
        event, name, at, threads = line.split()
        times[event, name] = float(at)
        assert threads == str(max(1, (os.cpu_count() or 1) // 2)), line
    assert times["end", "01"] < min(times["start", "02"], times["start", "08"])
    assert times["end", "02"] < times["start", "03"]
    assert times["start", "08"] < times["end", "02"] and times["start", "02"] < times["end", "08"], "side by side"
    assert set(_status(root).values()) >= {"ok"} and list(_status(root).values()).count("ok") == 4
    summary = proc.stdout[proc.stdout.index("notebook  "):]  # the closing table: plan order
    assert summary.index("01_extract") < summary.index("02_train") < summary.index("03_train") < summary.index("08_")


@pytest.mark.slow
def test_ctrl_c_stops_notebooks_running_side_by_side(tmp_path):
    root = _root(tmp_path, {nb: _timed(nb[:2], 120) for nb in ("02_train_autoencoders.ipynb", "08_sensitivity.ipynb")})
    proc, console = _ctrl_c_once_sleeping(
        [sys.executable, "-m", "loopgen", "run-notebooks", "--profile", PROFILE, "--workers", "2",
         "--only", "02_train_autoencoders-vq_vae.ipynb", "08_"], root, sleepers=2, cwd=root, env=_env(root),
    )
    assert proc.returncode == 130, console
    assert "Traceback" not in console and "ZMQ" not in console, console
    expected = ("run-notebooks --profile", "[1/2]", "[2/2]", "Passed unknown parameter")  # the stand-in lacks MODEL...
    extra = [line for line in console.splitlines() if not line.startswith(expected)]
    assert len(extra) == 1 and "interrupted" in extra[0], console
    status = _status(root)
    assert status["02_train_autoencoders-vq_vae.ipynb"] == status["08_sensitivity.ipynb"] == "interrupted"
    assert "end" not in (root / "times.txt").read_text(), "the kernels were stopped, not left to finish"
