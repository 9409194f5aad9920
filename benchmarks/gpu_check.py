"""A GPU check in minutes: every training of the paper profile for a few steps, then one JSON summary.

    bash benchmarks/gpu_check.sh                       # on the GPU: batch 2,048, 4 steps per epoch x 3 epochs
    bash benchmarks/gpu_check.sh --device cpu          # the same, small, on a CPU (a few minutes)

Needs torch and this checkout's ``lib/`` only: no numpy, pandas or any other package, no dataset, no network (a
bare GPU box with a CUDA build of torch runs it). Runs :func:`loopgen.run.rehearse.rehearsal_rows` for the paper
profile (the four autoencoders, the five other Table 2 VQ-VAE variants, the prior; each trains one epoch, stops,
resumes its checkpoint for a warm-up and a timed epoch, samples a batch on the device and computes a Table 3 metric
row there), on the device it is given, and prints per training the samples/s, peak memory, the projected hours of
the full 2,000-epoch run (with and without the profile's validations and checkpoints).

On a CUDA GPU it also runs, each beside the profile's precision (tf32):

* the trainings again in the precision ``"auto"`` picks there when that differs (bf16 from compute capability
  8.0: A100, H100, H200; fp16 with its gradient scaler on a T4 or V100);
* notebook 09's masked prior (training, resume, sampling on the device; ``--masked-prior`` adds it on a CPU);
* two-process DistributedDataParallel (NCCL) of the default VQ-VAE when two GPUs are visible (``--ddp`` forces
  it, with gloo on a CPU): a stop, a resume, and both ranks' weights equal at the end.

It always ends in one JSON object: the device, torch and CUDA versions, the precision used (resolved for this
device) and the one ``"auto"`` gives here, every training's row (its figures, or its ``error``), the totals, the
wall time, ``"problems"`` and ``"ok"``: every training resumed, gave finite numbers and ended on the device asked
for (a GPU check on a machine where torch sees no GPU, or a training that left the GPU, is not ok). Without
``--device`` the check expects CUDA. Exit status 0 when ok, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import traceback

CPU_DEFAULTS = {"batch_size": 8, "steps": 2, "samples": 8}  # "the same, small": minutes on a CPU
GPU_DEFAULTS = {"batch_size": None, "steps": 8, "samples": 256}  # None: the profile's batch (2,048)
DDP_TIMEOUT_S = 300  # the two-process check, start to finish
DDP_TRAINING = "vq_vae"  # BatchNorm (SyncBatchNorm on CUDA) and the codebook's all-reduce: the most DDP has to do


def also_run(device, precision: str) -> list[str]:
    """The precisions checked besides ``precision`` on a CUDA GPU: the one ``"auto"`` resolves to there (bf16 from
    compute capability 8.0, fp16 on 7.x), unless ``precision`` already means it. None elsewhere."""
    import torch

    from loopgen.runtime import device as device_mod

    device = torch.device(device)
    if device.type != "cuda":
        return []
    auto = device_mod.resolve_precision(device, "auto")
    if auto in ("fp32", "tf32") or device_mod.resolve_precision(device, precision) == auto:
        return []
    return [auto]


def _training_row(row: dict) -> dict:
    """One training's part of the JSON: its figures, or its error."""
    from loopgen.run import rehearse

    if "error" in row:
        return {"training": row["training"], "error": row["error"]}
    return {
        "training": row["training"],
        "batch": int(row["batch"]),
        "steps": int(row["steps"]),
        "samples_per_s": round(float(row["samples/s"]), 1),
        "peak_memory_mb": round(float(row["peak memory (MB)"]), 1),
        "projected_hours": round(float(row["projected full run (h)"]), 2),
        "projected_hours_with_validation_and_checkpoints": round(
            float(row["projected with validation and checkpoints (h)"]), 2),
        "resumed": bool(row["resumed"]),
        "device": str(row.get("device", "")),
        "loss": float(row["loss"]),
        "table3_row": {k: float(row[k]) for k in rehearse.METRIC_COLUMNS},
    }


def problems_of(rows: list[dict], expected_device: str) -> list[str]:
    """Why a run's rows are not ok (none: ok): an error, no resume, a number that is not finite, a training whose
    weights ended off the device asked for, or a GPU training that allocated nothing there."""
    found = []
    if not rows:
        found.append("no training ran")
    for r in rows:
        name = r["training"]
        if "error" in r:
            found.append(f"{name}: {r['error']}")
            continue
        if not r["resumed"]:
            found.append(f"{name}: did not resume its checkpoint")
        numbers = [r["loss"], r["samples_per_s"], *r["table3_row"].values()]
        if not all(math.isfinite(v) for v in numbers):
            found.append(f"{name}: a number that is not finite")
        if r["device"].split(":")[0] != expected_device:
            found.append(f"{name}: trained on {r['device'] or 'an unknown device'}, not on {expected_device}")
        elif expected_device == "cuda" and not r["peak_memory_mb"] > 0:
            found.append(f"{name}: allocated no GPU memory")
    return found


def summary(rows: list[dict], *, device, precision: str, seconds: float, batch: int | None,
            expected_device: str | None = None) -> dict:
    """The JSON summary of one run of the rehearsal (``rows``: :func:`loopgen.run.rehearse.rehearsal_rows`')."""
    import torch

    from loopgen import paper
    from loopgen.runtime import device as device_mod

    device = torch.device(device)
    trainings = [_training_row(r) for r in rows]
    done = [r for r in trainings if "error" not in r]
    problems = problems_of(trainings, expected_device or device.type)
    return {
        "device": device_mod.describe_device(device, precision),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "precision": device_mod.resolve_precision(device, precision),
        "auto_precision": device_mod.resolve_precision(device, "auto"),
        "sampling_precision": "fp32",  # loopgen.sample and the check's samples: float32 whatever the training's
        "batch": batch or "profile (2,048)",
        "trainings": trainings,
        "total_projected_hours": round(sum(r["projected_hours_with_validation_and_checkpoints"] for r in done), 1),
        "largest_peak_memory_mb": max((r["peak_memory_mb"] for r in done), default=0.0),
        "paper_hours_per_model_below": paper.TRAINING_HOURS_BELOW,
        "wall_seconds": round(seconds, 1),
        "problems": problems,
        "ok": not problems,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_check(device, *, batch: int | None, steps: int, precision: str) -> dict:
    """Two processes train the default VQ-VAE under DDP (NCCL on CUDA, gloo on a CPU): one epoch, a stop, a resume
    for the rest; ok when both finished, resumed and hold the same weights."""
    import torch

    device = torch.device(device)
    t0 = time.perf_counter()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="loopgen-ddp-check-") as folder:
        result_file = os.path.join(folder, "rank0.json")
        procs = []
        for rank in range(2):
            env = {**os.environ, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
            cmd = [sys.executable, os.path.abspath(__file__), "--ddp-worker", folder, "--device", device.type,
                   "--steps", str(steps), "--precision", precision]
            if batch is not None:
                cmd += ["--batch-size", str(batch)]
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        outputs = []
        for proc in procs:
            try:
                outputs.append(proc.communicate(timeout=max(1.0, DDP_TIMEOUT_S - (time.perf_counter() - t0)))[0])
            except subprocess.TimeoutExpired:
                for p in procs:
                    p.kill()
                outputs.append(proc.communicate()[0])
        codes = [p.returncode for p in procs]
        result = {"processes": 2, "backend": "nccl" if device.type == "cuda" else "gloo", "exit_codes": codes,
                  "wall_seconds": round(time.perf_counter() - t0, 1)}
        if os.path.exists(result_file):
            with open(result_file) as f:
                result.update(json.load(f))
        if any(codes):
            tails = [o.strip()[-1500:] for o, code in zip(outputs, codes, strict=True) if code]
            result.update(ok=False, error="a DDP process failed: " + " | ".join(tails))
        elif not result.get("ok"):
            result.update(ok=False, error="the ranks' weights differ, or the run did not resume (see the fields)")
        return result


def _ddp_worker(folder: str, args) -> int:
    """One rank of :func:`ddp_check` (started with torchrun's environment variables)."""
    import torch
    import torch.distributed as dist

    from loopgen import train
    from loopgen.run import profiles, rehearse
    from loopgen.runtime import distributed

    device = distributed.init_from_env("cpu" if args.device == "cpu" else None)
    settings = rehearse.rehearsal_settings(profiles.get("paper").train, args.batch_size, args.precision)
    batch = settings.recipe(DDP_TRAINING).batch_size
    loops = rehearse.synthetic_loops(batch * max(1, math.ceil(args.steps / 2)), seed=0)
    kwargs = train.vq_kwargs_from(*rehearse.VQ_DEFAULT)
    common = {"data_key": "ddp-check", "model_kwargs": kwargs, "checkpoint_dir": folder, "seed": 0,
              "device": device, "progress": False}
    t0 = time.perf_counter()
    first = train.train_model(DDP_TRAINING, loops, None, settings, max_epochs_this_call=1, **common)
    second = train.train_model(DDP_TRAINING, loops, None, settings, **common)
    losses = rehearse.history_column(second.history, "loss")
    # Each rank's digests (48 bits each), gathered as tensors (all_gather_object would need numpy): of the
    # parameters, and of the whole state (the buffers too). gloo has no SyncBatchNorm, so on a CPU the ranks'
    # BatchNorm statistics differ by design; on CUDA (SyncBatchNorm, the codebook's all-reduce) all must agree.
    mine = torch.tensor([_digest(second.model.named_parameters()), _digest(second.model.state_dict().items())],
                        dtype=torch.int64, device=device)
    digests = [torch.zeros_like(mine) for _ in range(2)]
    dist.all_gather(digests, mine)
    same_parameters, same_state = (bool(v) for v in (digests[0] == digests[1]).tolist())
    same = same_parameters and (same_state or device.type != "cuda")
    if distributed.rank() == 0:
        ok = (not first.finished and second.finished and second.epochs_this_call == rehearse.EPOCHS - 1
              and all(math.isfinite(v) for v in losses) and same)
        on = str(next(second.model.parameters()).device)
        with open(os.path.join(folder, "rank0.json"), "w") as f:
            json.dump({"training": DDP_TRAINING, "device": on, "resumed": second.epochs_this_call == rehearse.EPOCHS - 1,
                       "loss": float(losses[-1]), "same_parameters_on_both_ranks": same_parameters,
                       "same_buffers_on_both_ranks": same_state,
                       "seconds": round(time.perf_counter() - t0, 1), "ok": bool(ok) and on.startswith(device.type)}, f)
    dist.barrier()
    dist.destroy_process_group()
    return 0


def _digest(named_tensors) -> int:
    """48 bits of SHA-256 over (name, float32 bytes) of each tensor."""
    from loopgen.store.digest import ContentDigest, tensor_bytes

    digest = ContentDigest()
    for name, tensor in named_tensors:
        digest.text(name).bytes(tensor_bytes(tensor.detach().float() if tensor.is_floating_point() else tensor))
    return int(digest.hex(12), 16)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cuda (the default: a GPU check expects one), cpu or mps")
    parser.add_argument("--precision", default=None, choices=("auto", "bf16", "fp16", "tf32", "fp32"),
                        help="override the paper profile's (tf32); on a GPU the precision auto picks there is "
                        "checked after this one (bf16 on an A100/H100/H200, fp16 on a T4 or V100)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 2,048 on a GPU, 8 on a CPU")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimiser steps of the first two epochs together (>= 2; default 8 on a GPU, 2 on a CPU)")
    parser.add_argument("--samples", type=int, default=None, help="loops sampled for each Table 3 row")
    parser.add_argument("--only", nargs="*", help="only trainings whose label contains one of these")
    parser.add_argument("--masked-prior", action=argparse.BooleanOptionalAction, default=None,
                        help="also the masked prior of notebook 09 (default: on a GPU)")
    parser.add_argument("--ddp", action=argparse.BooleanOptionalAction, default=None,
                        help="also two-process DDP (default: when two GPUs are visible)")
    parser.add_argument("--ddp-worker", default=None, help=argparse.SUPPRESS)
    return parser


def _run(args, result: dict) -> None:
    """The check itself; fills ``result`` as it goes (so that an error anywhere still leaves what was found)."""
    import torch

    from loopgen.run import profiles, rehearse
    from loopgen.runtime import device as device_mod

    expected = args.device or "cuda"
    device = device_mod.pick_device(args.device)
    result.update(torch=torch.__version__, cuda=torch.version.cuda, python=platform.python_version(),
                  expected_device=torch.device(expected).type, gpus_visible=torch.cuda.device_count())
    if device.type != torch.device(expected).type:
        why = device_mod.warn_if_gpu_unused() or f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU"
        raise RuntimeError(f"a GPU check needs a CUDA GPU, and {why}; nothing was trained "
                           "(run with --device cpu for the small CPU check)")
    defaults = GPU_DEFAULTS if device.type == "cuda" else CPU_DEFAULTS
    batch = args.batch_size if args.batch_size is not None else defaults["batch_size"]
    steps = args.steps or defaults["steps"]
    samples = args.samples or defaults["samples"]
    precision = args.precision or profiles.get("paper").train.precision
    masked = args.masked_prior if args.masked_prior is not None else device.type == "cuda"
    print(f"gpu check on {device_mod.describe_device(device, precision)}; torch {torch.__version__} "
          f"(CUDA {torch.version.cuda}); batch {batch or 2048}, {steps} steps over the first two epochs",
          flush=True)
    for run_precision in [precision, *also_run(device, precision)]:
        t0 = time.perf_counter()
        rows = rehearse.rehearsal_rows("paper", steps=steps, device=device, batch_size=batch,
                                       precision=run_precision, only=args.only, n_samples=samples,
                                       masked_prior=masked, keep_going=True, log=lambda *a: print(*a, flush=True))
        checked = summary(rows, device=device, precision=run_precision, seconds=time.perf_counter() - t0,
                          batch=batch, expected_device=torch.device(expected).type)
        if "trainings" not in result:
            result.update(checked)
        else:  # the precision "auto" picks on this GPU, beside the profile's
            name = device_mod.resolve_precision(device, run_precision)
            result[name] = checked
            result["problems"] += [f"{name}: {p}" for p in checked["problems"]]
    ddp = args.ddp if args.ddp is not None else device.type == "cuda" and torch.cuda.device_count() >= 2
    if ddp:
        print("two-process DDP of the default VQ-VAE", flush=True)
        result["ddp"] = ddp_check(device, batch=batch, steps=steps, precision=precision)
        if not result["ddp"].get("ok"):
            result["problems"].append(f"ddp: {result['ddp'].get('error', 'not ok')}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.ddp_worker:
        return _ddp_worker(args.ddp_worker, args)
    started = time.perf_counter()
    result: dict = {"problems": []}
    try:
        _run(args, result)
    except Exception as err:  # noqa: BLE001 - whatever happens, the check ends in its one JSON
        traceback.print_exc()
        result["problems"].append(f"{type(err).__name__}: {err}")
        result["error"] = f"{type(err).__name__}: {err}"
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    result["numpy_installed"] = "numpy" in sys.modules or _importable("numpy")
    result["ok"] = not result["problems"]
    print(json.dumps(result, indent=1), flush=True)
    return 0 if result["ok"] else 1


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
