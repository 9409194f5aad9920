"""Run every notebook headless with papermill, in order, into ``build/executed/``.

``python -m loopgen run-notebooks --profile smoke`` (:mod:`loopgen.commands.run_notebooks`) is what
``run_all.sh`` calls after setting up the environment. Every notebook runs even after one fails; the summary
names the failures and the exit code is non-zero when any failed.

Cell time limits (:data:`CELL_TIMEOUTS`): an hour per cell for smoke and demo, none for the paper profile, whose
training cells run for hours. Cell output (the training's tqdm progress) is streamed to the console as well as
kept in the executed notebook. A killed run started again resumes: extraction reuses its finished chunks and
every training resumes from its last checkpoint (each epoch, and every ``checkpoint_minutes`` inside one).

What a run leaves in ``build/executed/<profile>/`` besides the executed notebooks:

* ``html/index.html`` and a page per notebook (:mod:`loopgen.run.pages`), updated after every notebook;
* ``runs.json``: each notebook's status (ok, failed, interrupted, running), time and error, which the index and
  ``run_all.sh``'s closing line (:func:`outcome`) read;
* ``run.log``: the latest run's console story, the cells' printed output and the kernels' own messages (which
  stay off the console: a kernel's start-up warning and its shutdown noise after Ctrl-C land here).

Ctrl-C stops the run with one line naming the notebook it stopped and exit status 130.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from loopgen.book.extraction import run_paths
from loopgen.errors import UserError
from loopgen.run import profiles
from loopgen.run.pages import PageRecord, export_page, write_index
from loopgen.store import atomic
from loopgen.store.outputs import AUTOENCODERS, TABLE2_SETTINGS, VQ_DEFAULT, vq_variant_name
from loopgen.store.paths import Paths

KERNEL_NAME = "loopgen"
STATUS_FILE = "runs.json"
LOG_FILE = "run.log"
HTML_DIR = "html"
CELL_TIMEOUTS: dict[str, int | None] = {"smoke": 3600, "demo": 3600, "colab": None, "paper": None}  # seconds; None: no limit


def cell_timeout_for(profile: str, requested: int | None = None) -> int | None:
    """Papermill's per-cell limit: ``requested`` (0 = none) or the profile's default (an hour; none for paper)."""
    if requested is not None:
        return requested or None
    return CELL_TIMEOUTS.get(profile, 3600)


@dataclass(frozen=True)
class NotebookRun:
    """One papermill execution: a source notebook, the executed copy's name and its parameters."""

    notebook: str
    output_name: str
    parameters: dict = field(default_factory=dict)


# profiles for the commands only: the notebooks reproduce the paper's models (a t = 32 VQ-VAE as the main one)
NOT_FOR_NOTEBOOKS = {
    "songs": "is for `fit`, `score` and `vary` on a folder of real songs (a t = 64 VQ-VAE); run the notebooks with "
             "--profile demo (with --midi-dir PATH for your songs) or lmd-sample",
}


def plan(profile: str, seed: int = 0, midi_dir: str = "") -> list[NotebookRun]:
    """The ordered list of notebook executions for a profile (02 once per model and per Table 2 variant);
    ``midi_dir``: every notebook runs on that MIDI folder (parameter ``MIDI_DIR``)."""
    if profile in NOT_FOR_NOTEBOOKS:
        raise UserError(f"the {profile} profile {NOT_FOR_NOTEBOOKS[profile]}")
    base = {"PROFILE": profile, "SEED": seed, **({"MIDI_DIR": str(midi_dir)} if midi_dir else {})}
    runs = [NotebookRun("01_extract_loops.ipynb", "01_extract_loops.ipynb", base)]
    for model in AUTOENCODERS:
        params = dict(base, MODEL=model)
        if model == "vq_vae":
            params.update(VQ_T=VQ_DEFAULT[0], VQ_L=VQ_DEFAULT[1], VQ_K=VQ_DEFAULT[2])
        runs.append(NotebookRun("02_train_autoencoders.ipynb", f"02_train_autoencoders-{model}.ipynb", params))
    from loopgen.run.profiles import get

    retrain_default = get(profile).table2_retrains_default
    for t, L, K in TABLE2_SETTINGS:  # noqa: N806 - the paper's symbols
        if (t, L, K) == VQ_DEFAULT and not retrain_default:
            continue
        name = vq_variant_name(t, L, K, table2=True)
        params = dict(base, MODEL="vq_vae", VQ_T=t, VQ_L=L, VQ_K=K, TABLE2=True)
        runs.append(NotebookRun("02_train_autoencoders.ipynb", f"02_train_autoencoders-{name}.ipynb", params))
    from loopgen.registry import NOTEBOOKS

    for nb in NOTEBOOKS[2:]:  # 01 and 02 are planned above
        runs.append(NotebookRun(nb, nb, base))
    return runs


def _use_own_kernel() -> None:
    """Make the ``loopgen`` kernel of *this* environment the one papermill finds.

    Jupyter looks in ``JUPYTER_PATH`` before the user's folder, so a kernel of the same name registered by
    another checkout cannot shadow ours. The kernel spec is installed into ``sys.prefix`` when missing.
    """
    share = Path(sys.prefix) / "share" / "jupyter"
    if not (share / "kernels" / KERNEL_NAME / "kernel.json").exists():
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix, kernel_name=KERNEL_NAME, display_name="Python (loopgen)")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(share), os.environ.get("JUPYTER_PATH")]))


def html_dir(paths: Paths, profile: str) -> Path:
    """``build/executed/<profile>/html``: the executed notebooks as web pages, ``index.html`` first."""
    return paths.executed_dir(profile) / HTML_DIR


def log_path(paths: Paths, profile: str) -> Path:
    """``build/executed/<profile>/run.log``: the latest run's log."""
    return paths.executed_dir(profile) / LOG_FILE


def load_records(out_dir: Path) -> dict[str, PageRecord]:
    """The status of every notebook run recorded in ``out_dir/runs.json`` (empty when none or unreadable)."""
    return _load_state(out_dir)[1]


def _load_state(out_dir: Path) -> tuple[dict, dict[str, PageRecord]]:
    """(``this_run``, records) of ``out_dir/runs.json``; empty when there is none or it cannot be read."""
    try:
        raw = json.loads((out_dir / STATUS_FILE).read_text(encoding="utf-8"))
        return dict(raw.get("this_run") or {}), {r["output_name"]: PageRecord.from_dict(r) for r in raw["runs"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}, {}


def _save_records(
    out_dir: Path, profile: str, records: dict[str, PageRecord], seed: int, this_run: dict | None = None,
    midi_dir: str = "",
) -> None:
    """``runs.json`` and ``html/index.html`` for the plan, with what ``records`` knows of each run.

    ``this_run`` (``started``, ``names``) says which runs the latest invocation made (:func:`outcome` reads it).
    """
    ordered = []
    for nb_run in plan(profile, seed, midi_dir):
        record = records.get(nb_run.output_name) or PageRecord(nb_run.output_name, nb_run.notebook, nb_run.parameters)
        ordered.append(record)
    extra = [r for name, r in records.items() if name not in {o.output_name for o in ordered}]
    ordered += extra
    state = {"profile": profile, "this_run": this_run or {}, "runs": [r.to_dict() for r in ordered]}
    atomic.write_text(out_dir / STATUS_FILE, json.dumps(state, indent=1))
    html = out_dir / HTML_DIR
    html.mkdir(parents=True, exist_ok=True)
    write_index(html, ordered, profile=profile)


def _kernel_manager_class(log: TextIO, threads: int | None = None):
    """A kernel manager whose kernel writes its own messages into ``log``, not onto the console, and (``threads``)
    computes with that many CPU threads.

    The kernel's cell output still reaches the notebook (ipykernel captures it); what stays off the console is the
    kernel's logging: "Kernel is running over TCP without encryption" at every start, and the ZMQ traceback a
    kernel prints when it is shut down in the middle of a cell (Ctrl-C). Every manager is kept in ``started`` so
    that Ctrl-C can stop kernels that run side by side.
    """
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        started: list = []

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            kw["stdout"] = kw["stderr"] = log
            if threads is not None:
                env = dict(kw.get("env") or os.environ)
                env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
                kw["env"] = env
            LoggedKernelManager.started.append(self)
            return await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggedKernelManager


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[-1] if text else ''}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class _Session:
    """One ``run``: where it writes, what it knows of every notebook run, and its log."""

    profile: str
    seed: int
    paths: Paths
    log: TextIO
    records: dict[str, PageRecord]
    this_run: dict
    midi_dir: str = ""

    @property
    def out_dir(self) -> Path:
        return self.paths.executed_dir(self.profile)

    def say(self, line: str) -> None:
        """A line on the console and in the log."""
        print(line, flush=True)
        self.log.write(line + "\n")
        self.log.flush()

    def save(self) -> None:
        _save_records(self.out_dir, self.profile, self.records, self.seed, self.this_run, self.midi_dir)

    def export(self, record: PageRecord) -> None:
        """The notebook's web page, if papermill wrote an executed copy; a failure is logged, never raised."""
        executed = self.out_dir / record.output_name
        record.page, record.figures, record.audio = None, [], []
        if not executed.exists():
            return
        try:
            export_page(executed, self.out_dir / HTML_DIR, record)
        except Exception as exc:  # noqa: BLE001 - a page that cannot be made must not stop the run
            self.log.write(f"no web page for {record.output_name}: {_last_line(exc)}\n")
            record.error = (record.error + "; " if record.error else "") + f"no web page: {_last_line(exc)}"


# What each notebook reads that another notebook of the plan writes (by source notebook): the runs a run waits
# for when notebooks run side by side. 02 runs once per model and per Table 2 setting; "02 vq_vae" is the main
# VQ-VAE (not a Table 2 variant). 08 trains its own short models on 01's dataset; 09 reads the VQ-VAE and the prior.
NEEDS: dict[str, tuple[str, ...]] = {
    "01_extract_loops.ipynb": (),
    "02_train_autoencoders.ipynb": ("01",),
    "03_train_prior.ipynb": ("01", "02 vq_vae"),
    "04_reconstruction.ipynb": ("01", "02"),
    "05_musical_metrics.ipynb": ("01", "02", "03"),
    "06_latent_space.ipynb": ("05",),
    "07_listening_test.ipynb": ("05",),
    "08_sensitivity.ipynb": ("01",),
    "09_beyond_the_paper.ipynb": ("02 vq_vae", "03"),
}
# Which runs start first when several could: the longest chain of waits first (02 vq_vae -> 03 -> 09, the longest
# notebooks after 01), the long independent 08 beside it, then the rest in plan order.
FIRST = ("02_train_autoencoders-vq_vae.ipynb", "08_sensitivity.ipynb", "03_train_prior.ipynb",
         "09_beyond_the_paper.ipynb")


def _is(nb_run: NotebookRun, need: str) -> bool:
    """Whether ``nb_run`` is what ``need`` names: "01" (the notebook 01 run), "02" (every 02 run), "02 vq_vae"."""
    number, _, model = need.partition(" ")
    if not nb_run.notebook.startswith(number + "_"):
        return False
    return not model or (nb_run.parameters.get("MODEL") == model and not nb_run.parameters.get("TABLE2"))


def next_ready(pending: list[NotebookRun], waiting: dict[str, set[str]], finished: set[str]) -> NotebookRun | None:
    """The first of ``pending`` whose inputs (``waiting[name]``) have all ``finished``, taken out of ``pending``;
    None when every pending run still waits."""
    ready = next((r for r in pending if waiting[r.output_name] <= finished), None)
    if ready is not None:
        pending.remove(ready)
    return ready


def waits_for(nb_run: NotebookRun, runs: list[NotebookRun]) -> list[str]:
    """The runs among ``runs`` that ``nb_run`` waits for (their executed names); a notebook not in ``runs``
    (``--only``) is taken as done."""
    needs = NEEDS.get(nb_run.notebook, ("01", "02", "03", "04", "05", "06", "07", "08"))  # unknown: after all
    return [r.output_name for r in runs if r is not nb_run and any(_is(r, need) for need in needs)]


def default_workers(profile: str) -> int:
    """Notebooks run side by side: two on a machine with two or more CPU cores (one core's trainings of these
    small models leave the other mostly idle), one on a GPU profile (a single GPU) or a one-core machine."""
    if profile in ("paper", "colab"):
        return 1
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def run(
    profile: str = "demo",
    *,
    only: list[str] | None = None,
    paths: Paths | None = None,
    cell_timeout: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    midi_dir: str | Path = "",
) -> list[tuple[NotebookRun, float, str | None]]:
    """Execute the plan; return (run, seconds, error or None) per notebook, in plan order. Never stops at a failure.

    ``cell_timeout``: seconds per cell, 0 for no limit, None for the profile's default (:func:`cell_timeout_for`).
    ``workers``: notebooks run side by side (None: :func:`default_workers`), each waiting for the notebooks whose
    files it reads (:data:`NEEDS`, finished whether ok or failed: a notebook whose input is missing says which
    notebook to run first). With more than one, each kernel gets an equal share of the CPU cores as its thread
    count (``OMP_NUM_THREADS``), so the same run gives the same numbers on every machine with as many workers.
    After each notebook its web page and the index are written (an export failure is recorded, never fatal).
    ``midi_dir``: run every notebook on that MIDI folder (``paths`` then says where its outputs go:
    :func:`loopgen.book.extraction.run_paths`). Ctrl-C (KeyboardInterrupt) marks the running notebooks "interrupted" in ``runs.json`` and the index, stops
    their kernels, then propagates.
    """
    paths = paths or Paths()
    paths.ensure()
    paths.executed_dir(profile).mkdir(parents=True, exist_ok=True)
    _use_own_kernel()
    runs = [r for r in plan(profile, seed, midi_dir) if not only or any(key in r.output_name for key in only)]
    workers = max(1, min(workers or default_workers(profile), len(runs) or 1))
    records = load_records(paths.executed_dir(profile))
    for record in records.values():  # a run killed hard (kill -9) left its notebook "running"
        if record.status == "running":
            record.status = "interrupted"
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
    with open(log_path(paths, profile), "w", encoding="utf-8") as log:
        this_run = {"started": _now(), "names": [r.output_name for r in runs]}
        session = _Session(profile, seed, paths, log, records, this_run, str(midi_dir or ""))
        side = f"; {workers} side by side, {threads} thread{'' if threads == 1 else 's'} each" if threads else ""
        session.say(f"run-notebooks --profile {profile} started {this_run['started']}; "
                    f"{len(runs)} notebook run{'' if len(runs) == 1 else 's'}{side}")
        kernel_manager = _kernel_manager_class(log, threads)
        execute = functools.partial(_execute, session, kernel_manager, cell_timeout_for(profile, cell_timeout))
        if workers == 1:
            done = _run_in_order(session, runs, execute)
        else:
            done = _run_side_by_side(session, runs, execute, workers, kernel_manager)
    order = {r.output_name: i for i, r in enumerate(runs)}
    return sorted(done, key=lambda item: order[item[0].output_name])


def _execute(session: _Session, kernel_manager, timeout: int | None, nb_run: NotebookRun) -> str | None:
    """Run one notebook with papermill into the session's folder; the error's last line, or None."""
    import papermill as pm

    try:
        pm.execute_notebook(
            str(session.paths.notebooks / nb_run.notebook),
            str(session.out_dir / nb_run.output_name),
            parameters=nb_run.parameters,
            kernel_name=KERNEL_NAME,
            log_output=True,
            stdout_file=session.log,
            stderr_file=session.log,
            progress_bar=False,
            execution_timeout=timeout,
            cwd=str(session.paths.notebooks),
            kernel_manager_class=kernel_manager,
        )
    except Exception as exc:  # noqa: BLE001 - every notebook runs even after one fails
        return _last_line(exc)
    return None


def _started(session: _Session, i: int, total: int, nb_run: NotebookRun) -> PageRecord:
    session.say(f"[{i}/{total}] {nb_run.output_name}  {nb_run.parameters}")
    record = PageRecord(nb_run.output_name, nb_run.notebook, nb_run.parameters, status="running")
    session.records[nb_run.output_name] = record
    session.save()
    return record


def _finished(session: _Session, record: PageRecord, seconds: float, error: str | None) -> None:
    record.status, record.seconds, record.error, record.finished = (
        "ok" if error is None else "failed", seconds, error, _now()
    )
    session.export(record)
    session.save()
    session.say(f"    {record.output_name}: {seconds:.1f} s {'ok' if error is None else f'FAILED ({error})'}")


def _interrupted(session: _Session, running: list[PageRecord]) -> None:
    """Ctrl-C: the running notebooks are marked "interrupted" (their pages show what they had done)."""
    for record in running:
        if record.status == "running":
            record.status, record.error, record.finished = "interrupted", "stopped by Ctrl-C", _now()
            session.log.write(f"interrupted during {record.output_name}\n")
            session.export(record)
    session.save()


def _run_in_order(session: _Session, runs: list[NotebookRun], execute) -> list:
    """One notebook after another, in plan order."""
    results = []
    current: PageRecord | None = None
    try:
        for i, nb_run in enumerate(runs, 1):
            current = _started(session, i, len(runs), nb_run)
            start = time.perf_counter()
            try:
                error = execute(nb_run)
            except KeyboardInterrupt:
                current.seconds = time.perf_counter() - start
                raise
            _finished(session, current, time.perf_counter() - start, error)
            results.append((nb_run, current.seconds, error))
    except KeyboardInterrupt:
        _interrupted(session, [current] if current is not None else [])
        raise
    return results


def _run_side_by_side(session: _Session, runs: list[NotebookRun], execute, workers: int, kernel_manager) -> list:
    """Up to ``workers`` notebooks at once, each started once every run it waits for has finished; the main
    thread schedules, records and exports (one writer of ``runs.json``), worker threads only execute."""
    import queue
    import threading

    waiting = {r.output_name: set(waits_for(r, runs)) for r in runs}
    first = {name: i for i, name in enumerate(FIRST)}
    pending = sorted(runs, key=lambda r: first.get(r.output_name, len(first)))  # stable: plan order after FIRST
    finished: set[str] = set()
    running: dict[str, tuple[NotebookRun, PageRecord, float]] = {}
    done_queue: queue.Queue = queue.Queue()
    results = []

    def work(nb_run: NotebookRun) -> None:
        try:
            error = execute(nb_run)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread, which decides
            error = _last_line(exc)
        done_queue.put((nb_run.output_name, error))

    started = 0
    try:
        while pending or running:
            while len(running) < workers:
                ready = next_ready(pending, waiting, finished)
                if ready is None:
                    break
                started += 1
                record = _started(session, started, len(runs), ready)
                running[ready.output_name] = (ready, record, time.perf_counter())
                threading.Thread(target=work, args=(ready,), name=ready.output_name, daemon=True).start()
            if not running:  # nothing can start: a cycle in NEEDS (a bug); run the rest anyway, in order
                waiting.update({r.output_name: set() for r in pending})
                continue
            name, error = done_queue.get()
            nb_run, record, start = running.pop(name)
            _finished(session, record, time.perf_counter() - start, error)
            finished.add(name)
            results.append((nb_run, record.seconds, error))
    except KeyboardInterrupt:
        for _, record, start in running.values():
            record.seconds = time.perf_counter() - start
        _stop_kernels(kernel_manager)
        _interrupted(session, [record for _, record, _ in running.values()])
        raise
    return results


def _stop_kernels(kernel_manager) -> None:
    """Kill the kernels still running (Ctrl-C while notebooks run side by side: their threads then end)."""
    for manager in list(getattr(kernel_manager, "started", [])):
        process = getattr(getattr(manager, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            process.kill()


def summary(results: list[tuple[NotebookRun, float, str | None]]) -> str:
    """A plain-text table of every run's time and status."""
    width = max((len(r.output_name) for r, _, _ in results), default=10)
    lines = [f"{'notebook':<{width}}  {'seconds':>8}  status", "-" * (width + 20)]
    for r, seconds, error in results:
        lines.append(f"{r.output_name:<{width}}  {seconds:8.1f}  {'ok' if error is None else 'FAILED'}")
    total = sum(s for _, s, _ in results)
    lines.append(f"{'total':<{width}}  {total:8.1f}")
    return "\n".join(lines)


def shown_path(path: Path) -> str:
    """A path as a shell can take it back: relative to the current folder when below it, quoted when needed."""
    path = Path(path)
    try:
        path = path.resolve().relative_to(Path.cwd().resolve())
    except (ValueError, OSError):
        pass
    return shlex.quote(str(path))


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def outcome(profile: str, exit_code: int, seconds: float | None = None, *, paths: Paths | None = None) -> str:
    """One line on how the latest ``run-notebooks`` of ``profile`` ended: what failed or stopped, and where to look.

    ``run_all.sh`` prints it last; it reads ``runs.json`` and names the log and the web pages.
    """
    paths = paths or Paths()
    out_dir = paths.executed_dir(profile)
    this_run, records = _load_state(out_dir)
    mine = [records[n] for n in this_run.get("names", []) if n in records]
    took = "" if seconds is None else f" after {_duration(seconds)}"
    log = log_path(paths, profile)
    index = html_dir(paths, profile) / "index.html"
    where = f"log: {shown_path(log)}" if log.exists() else "no log was written"
    if index.exists():
        where += f"; the run as web pages: {shown_path(index)}"
    if exit_code == 0:
        return f"notebooks finished{took}: tables and figures are in {shown_path(paths.figures)}; {where}"
    if exit_code == 130:
        stopped = [r.output_name for r in mine if r.status == "interrupted"]
        done = sum(r.status == "ok" for r in mine)
        during = f" during {', '.join(stopped)}" if stopped else ""
        return (
            f"notebooks interrupted{took}{during} (exit 130): {done} of {len(mine)} notebook runs had finished (their "
            f"results are kept); the same command resumes, trainings from their last checkpoint; {where}"
        )
    if exit_code == 2:
        return "run-notebooks refused its arguments (exit 2): see the error line above"
    failed = [r.output_name for r in mine if r.status == "failed"]
    if failed:
        return (
            f"notebooks FAILED{took} (exit {exit_code}): {len(failed)} of {len(mine)} failed: {', '.join(failed)}; "
            f"each one's page (and its executed .ipynb in {shown_path(out_dir)}) shows the traceback; {where}"
        )
    return f"run-notebooks stopped with an error{took} (exit {exit_code}): see the error line above; {where}"


def outcome_on(profile: str, exit_code: str, seconds: str, midi_dir: str = "") -> str:
    """:func:`outcome` for ``run_all.sh``, whose arguments are strings; ``midi_dir``: the run's MIDI folder, if any."""
    _, paths = run_paths(profiles.get(profile), Paths(), midi_dir)
    return outcome(profile, int(exit_code), float(seconds), paths=paths)
