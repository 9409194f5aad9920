"""Notebook 01 in a real JupyterLab, driven by headless Chromium as a student would use it.

The test starts ``jupyter lab`` (from the project's virtual environment, kernel "loopgen") on a free localhost port
with an isolated ``LOOPGEN_ROOT`` and isolated Jupyter config/data/runtime folders, opens a copy of
``notebooks/01_extract_loops.ipynb`` whose parameters cell says ``PROFILE = "smoke"``, runs every cell through
Lab's own "Run > Run All Cells" menu, and checks what the student sees: every cell ran, no output shows a
traceback, Figure 1 is an inline image and the loop has an audio player (or, without FluidSynth, the notebook's
Markdown note saying there is no audio).

Same harness as ``test_browser.py``: Debian's /usr/bin/chromium and the playwright package; skips without them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import browser_harness
from loopgen.book.audio import fluidsynth_available

pytestmark = [pytest.mark.browser, pytest.mark.slow]
browser_harness.require()

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "01_extract_loops.ipynb"
KERNEL = "loopgen"
SERVER_START_S = 90  # until Lab answers over HTTP
KERNEL_READY_S = 120  # until the notebook's kernel is idle after opening
RUN_ALL_S = 240  # until every cell of notebook 01 has run at the smoke profile
NO_AUDIO_NOTE = "No audio here: FluidSynth is not available"


def _jupyter() -> Path:
    """The ``jupyter`` of the environment running the tests (the project's .venv), else the checkout's .venv."""
    here = Path(sys.executable).parent / "jupyter"
    return here if here.exists() else REPO / ".venv" / "bin" / "jupyter"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _smoke_copy(target: Path) -> dict:
    """Write notebook 01 to ``target`` with ``PROFILE = "smoke"`` and no outputs; returns the notebook JSON."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "notebook 01 should have exactly one cell tagged 'parameters'"
    source = "".join(params[0]["source"])
    smoke, n = re.subn(r'^PROFILE\s*=.*$', 'PROFILE = "smoke"', source, flags=re.M)
    assert n == 1, f"no PROFILE line in the parameters cell: {source!r}"
    params[0]["source"] = smoke.splitlines(keepends=True)
    for cell in nb["cells"]:  # a clean copy: nothing on the page can come from a committed output
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    assert nb["metadata"]["kernelspec"]["name"] == KERNEL
    target.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return nb


def _lab_settings(config_dir: Path) -> None:
    """User settings of the throw-away Lab: every cell attached to the page, no news or update checks."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for name, value in settings.items():
        path = config_dir / "lab" / "user-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")


def _cell_index(nb: dict, needle: str) -> int:
    hits = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and needle in "".join(c["source"])]
    assert len(hits) == 1, f"expected one code cell of notebook 01 containing {needle!r}, found {len(hits)}"
    return hits[0]


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A running JupyterLab serving a smoke copy of notebook 01; stopped (with its kernels) afterwards.

    Yields (base URL, notebook JSON, LOOPGEN_ROOT of the run, server log)."""
    listed = subprocess.run([str(_jupyter()), "kernelspec", "list", "--json"], capture_output=True, text=True,
                            timeout=60)
    if listed.returncode != 0 or KERNEL not in json.loads(listed.stdout or "{}").get("kernelspecs", {}):
        pytest.fail(f"no Jupyter kernel {KERNEL!r} in {_jupyter()} (the set-up registers it): {listed.stderr}")

    base = tmp_path_factory.mktemp("lab")
    root, served, home = base / "loopgen_root", base / "served", base / "jupyter"
    for folder in (root, served, home / "config", home / "data", home / "runtime", home / "ipython"):
        folder.mkdir(parents=True)
    nb = _smoke_copy(served / NOTEBOOK.name)
    _lab_settings(home / "config")

    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the kernel's own inline backend, as for a student
    env.update(
        LOOPGEN_ROOT=str(root),  # the kernel inherits it: nothing reaches the checkout's data/, build/, figures/
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log_path = base / "lab.log"
    cmd = [
        str(_jupyter()), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={served}", "--allow-root",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=served, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                with urllib.request.urlopen(url + "api/status", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer on {url} within {SERVER_START_S} s:\n{_tail(log_path)}")
            time.sleep(0.5)
        yield url, nb, root, log_path
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # Lab shuts its kernels down on SIGTERM
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever is left of the process group this fixture started (a kernel that did not stop)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with browser_harness.chromium() as b:
        yield b


# Everything the wait needs from the page: the kernel's status and every code cell's prompt ("[ ]:", "[*]:", "[3]:").
_STATE_JS = """() => {
  const panel = document.querySelector('.jp-NotebookPanel');
  if (!panel) return null;
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  const prompts = [...panel.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
    .map(p => p.textContent.trim());
  const kernel = panel.querySelector('.jp-Toolbar-kernelName');
  return {kernel: kernel ? kernel.textContent.trim() : null, status: indicator ? indicator.dataset.status : null,
          prompts};
}"""

_KERNEL_READY_JS = """kernel => {
  const state = (""" + _STATE_JS + """)();
  return !!state && !!state.kernel && state.kernel.toLowerCase().includes(kernel) && state.status === 'idle';
}"""

_FINISHED_JS = """() => {
  const state = (""" + _STATE_JS + """)();
  return !!state && state.status === 'idle' && state.prompts.length > 0
    && /^\\[\\d+\\]:$/.test(state.prompts[0]) && !state.prompts.some(p => p.includes('*'));
}"""


def test_notebook_01_runs_in_lab_and_shows_its_figure_and_audio(lab, browser) -> None:
    url, nb, root, log_path = lab
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda err: page_errors.append(str(err)))
    try:
        page.goto(f"{url}lab/tree/{NOTEBOOK.name}", timeout=60_000)
        cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
        cells.first.wait_for(timeout=60_000)
        try:  # the notebook's own kernel started and idle
            page.wait_for_function(_KERNEL_READY_JS, arg=KERNEL, timeout=KERNEL_READY_S * 1000, polling=500)
        except Exception as err:  # playwright's TimeoutError: say what the page shows
            pytest.fail(f"the {KERNEL!r} kernel was not idle within {KERNEL_READY_S} s ({err}); page: "
                        f"{page.evaluate(_STATE_JS)}; page errors: {page_errors}; server log:\n{_tail(log_path)}")
        page.wait_for_function(  # every cell attached (the settings turn Lab's windowing off)
            "n => document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell').length === n",
            arg=len(nb["cells"]), timeout=60_000)

        # Run > Run All Cells, through Lab's menu bar as a student does it
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-item:visible", has_text=re.compile(r"^Run All Cells")).first.click()

        started = time.monotonic()
        try:
            page.wait_for_function(_FINISHED_JS, timeout=RUN_ALL_S * 1000, polling=1000)
            time.sleep(2)  # still finished a moment later: not a gap between two cells
            page.wait_for_function(_FINISHED_JS, timeout=RUN_ALL_S * 1000, polling=1000)
        except Exception as err:  # playwright's TimeoutError: say where the run was
            pytest.fail(f"notebook 01 did not finish within {RUN_ALL_S} s ({err}); page: "
                        f"{page.evaluate(_STATE_JS)}; page errors: {page_errors}; server log:\n{_tail(log_path)}")
        run_s = time.monotonic() - started
        state = page.evaluate(_STATE_JS)
        not_run = [p for p in state["prompts"] if not re.fullmatch(r"\[\d+\]:", p)]
        outputs = page.locator(".jp-NotebookPanel .jp-OutputArea-output").all_inner_texts()
        tracebacks = [t[:1500] for t in outputs if "Traceback" in t]
        assert not tracebacks, "an output area shows an error traceback:\n" + "\n---\n".join(tracebacks)
        assert not not_run, f"not every code cell ran (prompts {state['prompts']}) in {run_s:.0f} s"

        # Figure 1: an inline image in the output of the cell that draws the pianoroll, loaded by the browser
        figure_cell = cells.nth(_cell_index(nb, "plots.pianoroll("))
        images = figure_cell.locator(".jp-OutputArea-output img")
        assert images.count() >= 1, "no <img> in the outputs of Figure 1's cell"
        images.first.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=images.first.element_handle(),
                               timeout=10_000)
        assert images.first.get_attribute("src").startswith("data:image/png")

        # The loop's audio player (or the notebook's note that FluidSynth is missing)
        audio_cell = cells.nth(_cell_index(nb, "audio.play("))
        if fluidsynth_available():
            players = audio_cell.locator(".jp-OutputArea-output audio")
            assert players.count() == 1, "no <audio> player in the outputs of the audio cell"
            assert players.first.get_attribute("controls") is not None
            source = players.first.locator("source")
            src = source.first.get_attribute("src") if source.count() else players.first.get_attribute("src")
            assert src and src.startswith("data:audio/wav;base64,") and len(src) > 10_000
        else:  # the kernel shares this environment: it has no FluidSynth either
            assert NO_AUDIO_NOTE in "\n".join(audio_cell.locator(".jp-OutputArea-output").all_inner_texts())
    finally:
        context.close()

    # the run wrote into the isolated root, not the checkout
    assert list(root.rglob("fig1_loop_pianoroll.png")), f"Figure 1 was not saved under LOOPGEN_ROOT={root}"
