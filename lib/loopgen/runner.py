"""Run every notebook headless with papermill, in order, into ``build/executed/``.

``python -m loopgen run-notebooks --profile smoke`` is what ``run_all.sh`` calls after setting up the
environment. Every notebook runs even after one fails; the summary names the failures and the exit code is
non-zero when any failed.

Cell time limits (:data:`CELL_TIMEOUTS`): an hour per cell for smoke and demo, none for the paper profile, whose
training cells run for hours. Cell output (the training's tqdm progress) is streamed to the console as well as
kept in the executed notebook. A killed run started again resumes: extraction reuses its finished chunks and
every training resumes from its last checkpoint (each epoch, and every ``checkpoint_minutes`` inside one).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from loopgen.outputs import AUTOENCODERS, TABLE2_SETTINGS, VQ_DEFAULT, vq_variant_name
from loopgen.paths import Paths
from loopgen.profiles import PROFILES

KERNEL_NAME = "loopgen"
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


def plan(profile: str, seed: int = 0) -> list[NotebookRun]:
    """The ordered list of notebook executions for a profile (02 once per model and per Table 2 variant)."""
    base = {"PROFILE": profile, "SEED": seed}
    runs = [NotebookRun("01_extract_loops.ipynb", "01_extract_loops.ipynb", base)]
    for model in AUTOENCODERS:
        params = dict(base, MODEL=model)
        if model == "vq_vae":
            params.update(VQ_T=VQ_DEFAULT[0], VQ_L=VQ_DEFAULT[1], VQ_K=VQ_DEFAULT[2])
        runs.append(NotebookRun("02_train_autoencoders.ipynb", f"02_train_autoencoders-{model}.ipynb", params))
    from loopgen.profiles import get

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


def run(
    profile: str = "demo",
    *,
    only: list[str] | None = None,
    paths: Paths | None = None,
    cell_timeout: int | None = None,
    seed: int = 0,
) -> list[tuple[NotebookRun, float, str | None]]:
    """Execute the plan; return (run, seconds, error or None) per notebook. Never stops at a failure.

    ``cell_timeout``: seconds per cell, 0 for no limit, None for the profile's default (:func:`cell_timeout_for`).
    """
    import papermill as pm

    paths = paths or Paths()
    paths.ensure()
    out_dir = paths.executed_dir(profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    _use_own_kernel()
    results = []
    runs = [r for r in plan(profile, seed) if not only or any(key in r.output_name for key in only)]
    for i, nb_run in enumerate(runs, 1):
        print(f"[{i}/{len(runs)}] {nb_run.output_name}  {nb_run.parameters}", flush=True)
        start = time.perf_counter()
        error = None
        try:
            pm.execute_notebook(
                str(paths.notebooks / nb_run.notebook),
                str(out_dir / nb_run.output_name),
                parameters=nb_run.parameters,
                kernel_name=KERNEL_NAME,
                log_output=True,
                progress_bar=False,
                execution_timeout=cell_timeout_for(profile, cell_timeout),
                cwd=str(paths.notebooks),
            )
        except Exception as exc:  # noqa: BLE001 - every notebook runs even after one fails
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
        seconds = time.perf_counter() - start
        status = "ok" if error is None else f"FAILED ({error})"
        print(f"    {nb_run.output_name}: {seconds:.1f} s {status}", flush=True)
        results.append((nb_run, seconds, error))
    return results


def summary(results: list[tuple[NotebookRun, float, str | None]]) -> str:
    """A plain-text table of every run's time and status."""
    width = max((len(r.output_name) for r, _, _ in results), default=10)
    lines = [f"{'notebook':<{width}}  {'seconds':>8}  status", "-" * (width + 20)]
    for r, seconds, error in results:
        lines.append(f"{r.output_name:<{width}}  {seconds:8.1f}  {'ok' if error is None else 'FAILED'}")
    total = sum(s for _, s, _ in results)
    lines.append(f"{'total':<{width}}  {total:8.1f}")
    return "\n".join(lines)


def cli_main(argv: list[str]) -> int:
    from loopgen import cli

    parser = cli.parser("run-notebooks", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo", choices=sorted(PROFILES))
    parser.add_argument(
        "--only", nargs="+", type=cli.non_empty, help="run only notebooks whose executed name contains one of these"
    )
    parser.add_argument(
        "--cell-timeout",
        type=cli.int_in(0, 7 * 24 * 3600),
        default=None,
        help="seconds per cell (papermill); 0 = no limit; default: 3600, none for the paper profile",
    )
    parser.add_argument("--seed", type=cli.seed_int, default=0)
    args = parser.parse_args(argv)
    if args.only:
        names = [r.output_name for r in plan(args.profile, args.seed)]
        unknown = [key for key in args.only if not any(key in name for name in names)]
        if unknown:
            raise cli.UsageError(
                f"--only {' '.join(unknown)} matches no notebook; choose parts of: {', '.join(names)}"
            )
    results = run(args.profile, only=args.only, cell_timeout=args.cell_timeout, seed=args.seed)
    print("\n" + summary(results))
    failed = [r.output_name for r, _, e in results if e is not None]
    if failed:
        print(f"\nFAILED notebooks ({len(failed)}): {', '.join(failed)}; executed copies with the traceback are in "
              f"{Paths().executed_dir(args.profile)}")
        return 1
    print(f"\nAll {len(results)} notebook runs succeeded; outputs in {Paths().figures}")
    return 0
