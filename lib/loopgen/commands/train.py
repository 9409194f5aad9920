"""``python -m loopgen train``: train one model on the extracted loops of a profile (also under ``torchrun``)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

import torch

from loopgen import errors
from loopgen.commands import common as cli
from loopgen.models import MODELS
from loopgen.run import profiles
from loopgen.runtime import device as device_mod
from loopgen.runtime import distributed
from loopgen.store.paths import MissingInputError, Paths
from loopgen.train.calls import train_model, train_prior
from loopgen.train.checkpoint import checkpoint_key, settings_on, vq_kwargs_from
from loopgen.train.load import load_trained
from loopgen.train.schedule import is_prior


def main(argv: list[str]) -> int:
    """``python -m loopgen train --model NAME --profile P [--t T --L L --K K] [--seed S] [--force]``.

    Also under ``torchrun --nproc-per-node N -m loopgen train ...`` (DistributedDataParallel, one process per
    GPU; see :mod:`loopgen.runtime.distributed`)."""
    try:
        return _train(argv)
    except MissingInputError as err:  # the usual first-run case: one line naming the notebook to run
        print(f"error: {err}", file=sys.stderr)
        return 1


def _vq_latent_steps(text: str) -> int:
    value = int(text) if text.strip().lstrip("-").isdigit() else None
    if value not in (8, 16, 32, 64, 128):
        raise argparse.ArgumentTypeError(f"must be one of 8, 16, 32, 64, 128 (got {text!r})")
    return value


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = cli.parser("train", description="train one model on the extracted loops")
    parser.add_argument("--model", required=True, choices=sorted(MODELS), help="the model to train")
    parser.add_argument("--profile", default="demo", choices=sorted(profiles.PROFILES),
                        help="training settings and dataset (lib/loopgen/run/profiles.py)")
    parser.add_argument("--t", type=_vq_latent_steps, default=None, help="VQ-VAE latent time steps (32 or 64; default: the profile's, 32)")
    parser.add_argument("--L", type=cli.int_in(1, 1024), default=None, help="VQ-VAE latent dimension (16 or 32; default: the profile's, 16)")
    parser.add_argument("--K", type=cli.int_in(2, 65536), default=None, help="VQ-VAE codebook size (256 or 512; default: the profile's, 512)")
    parser.add_argument("--seed", type=cli.seed_int, default=0, help="training seed (a new seed trains a new checkpoint)")
    parser.add_argument(
        "--force", action="store_true",
        help="retrain from scratch even if a finished checkpoint exists; a model with shipped weights (the demo's "
        "LSTM-VAEs) trains the profile's own recipe here instead of installing them",
    )
    parser.add_argument(
        "--device", default=None, choices=("cpu", "cuda", "mps"), help="default: the best available"
    )
    parser.add_argument(
        "--precision", default=None, choices=device_mod.PRECISIONS,
        help="numeric precision (default: the profile's; auto = bf16 where the CPU or GPU has bf16 units, fp16 "
        "with a gradient scaler on a T4 or V100, else float32; fp16 is for CUDA GPUs only); the checkpoint is "
        "keyed by it",
    )
    parser.add_argument(
        "--wait", action="store_true",
        help="when another run is training this checkpoint, wait for it instead of refusing",
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise errors.UsageError("--device cuda: no CUDA device is available here (use cpu)")
    if args.device == "mps" and not torch.backends.mps.is_available():
        raise errors.UsageError("--device mps: no Apple GPU is available here (use cpu)")
    if args.model != "vq_vae" and not is_prior(args.model) and (args.t or args.L or args.K):
        raise errors.UsageError(f"--t, --L and --K are VQ-VAE settings; --model {args.model} takes none")
    return args


def _train(argv: list[str]) -> int:
    from loopgen.data import dataset

    args = _parse(argv)
    profile = profiles.get(args.profile)
    if args.precision is not None:
        profile = dataclasses.replace(profile, train=dataclasses.replace(profile.train, precision=args.precision))
    paths = Paths()
    data = dataset.load_loops(dataset.dataset_dir(paths, profile.corpus.name))  # or: which notebook to run first
    paths.ensure()
    train = data.loops[data.split == "train"]
    val = data.loops[data.split == "val"]
    # under torchrun: join the process group, one GPU per process (see loopgen.runtime.distributed)
    device = distributed.init_from_env(args.device) or device_mod.pick_device(args.device)
    if distributed.is_main():
        device_mod.warn_if_gpu_profile_on_cpu(args.profile, device)
        ranks = f" x {distributed.world_size()} processes (DDP)" if distributed.active() else ""
        print(
            f"{args.model}: {len(train)} training / {len(val)} validation loops, "
            f"device {device_mod.describe_device(device, args.precision or profile.train.precision)}{ranks}"
        )
    settings = settings_on(profile.train, device)  # precision "auto" resolved for this device
    common = {"data_key": data.data_key, "checkpoint_dir": paths.checkpoints, "seed": args.seed}
    vq_kwargs = vq_kwargs_from(args.t, args.L, args.K)
    if is_prior(args.model):  # the LSTM prior or the masked prior, on the VQ-VAE's codes
        from loopgen import sample

        vq, _ = load_trained("vq_vae", settings, model_kwargs=vq_kwargs, device=device, **common)
        vq_key = checkpoint_key("vq_vae", settings, data_key=data.data_key, model_kwargs=vq_kwargs, seed=args.seed)
        result = train_prior(
            sample.encode_codes(vq, train),
            settings,
            vq_key=vq_key,
            num_codes=vq.num_codes,
            val_codes=sample.encode_codes(vq, val) if len(val) else None,
            device=device,
            force=args.force,
            wait=args.wait,
            name=args.model,
            **common,
        )
    else:  # the training takes the checkpoint's lock itself (rank 0 under torchrun)
        model_kwargs = vq_kwargs if args.model == "vq_vae" else None
        result = train_model(
            args.model, train, val, settings, model_kwargs=model_kwargs, device=device, force=args.force,
            wait=args.wait, **common,
        )
    if not distributed.is_main():
        return 0
    last = result.history.iloc[-1].to_dict() if len(result.history) else {}
    state = (
        "reused"
        if result.reused
        else f"trained {result.epochs_this_call} epochs in {result.seconds_this_call:.1f} s"
    )
    print(f"{result.checkpoint} ({state}); last epoch: " + ", ".join(f"{k}={v:.4g}" for k, v in last.items()))
    return 0
