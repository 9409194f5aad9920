"""``python -m loopgen rehearse --profile paper [--steps N] [--device D] [--batch-size B] ...``: every training of
a profile for a few steps: speed, memory, resume and the projected time of a full run
(:mod:`loopgen.run.rehearse`); for a CPU profile (smoke, demo, demo-long, lmd-sample) also the projected time of
its whole ``run_all.sh`` run, extraction and evaluation included."""

from __future__ import annotations

import os
import sys

import torch

from loopgen import paper
from loopgen.commands import common
from loopgen.run import profiles, rehearse
from loopgen.runtime import device as device_mod


def build_parser() -> common.OneLineParser:
    """The parser of ``python -m loopgen rehearse``."""
    parser = common.parser("rehearse", description=rehearse.__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="paper", choices=sorted(profiles.PROFILES),
                        help="whose trainings to rehearse")
    parser.add_argument("--steps", type=common.int_at_least(2), default=None,
                        help=f"optimiser steps per training (>= 2; default: 4, {rehearse.CPU_STEPS} for a CPU profile)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--batch-size", type=common.positive_int, default=None,
                        help="override the profile's batch (default: the profile's)")
    parser.add_argument(
        "--precision", default=None, choices=device_mod.PRECISIONS,
        help="override the profile's precision (default: the profile's)",
    )
    parser.add_argument("--only", nargs="*",
                        help="rehearse only trainings whose label contains one of these (default: all)")
    parser.add_argument("--samples", type=common.positive_int, default=64, help="loops sampled for the metric row")
    parser.add_argument("--midi-dir", type=common.existing_dir, default=None,
                        help="an LMD profile's MIDI folder, to time its extraction (default: data/lmd/lmd_full if there)")
    return parser


def main(argv: list[str]) -> int:
    """Rehearse the profile's trainings and print the table; exit 1 when one did not resume its checkpoint."""
    args = build_parser().parse_args(argv)
    # a CPU profile's whole run is projected too: every training (notebook 09's masked prior included) at the threads
    # the runner gives each of its notebooks, unless --only, --batch-size or another device make it another question
    whole_run = (args.profile not in device_mod.GPU_PROFILES and not args.only and args.batch_size is None
                 and device_mod.pick_device(args.device, warn=False).type == "cpu")
    threads = None
    if whole_run:
        from loopgen.run import runner

        workers = runner.default_workers(args.profile)
        threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
    table = rehearse.rehearse(
        args.profile,
        steps=args.steps or (rehearse.CPU_STEPS if args.profile not in device_mod.GPU_PROFILES else 4),
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        only=args.only,
        n_samples=args.samples,
        masked_prior=whole_run,
        threads=threads,
    )
    shown = table.copy()
    for col, fmt in (("samples/s", "{:.1f}"), (rehearse.QUIET_RATE, "{:.1f}"), ("peak memory (MB)", "{:.0f}"),
                     ("projected full run (h)", "{:.1f}"),
                     ("validation (s)", "{:.2f}"), ("checkpoint (s)", "{:.2f}"),
                     ("projected with validation and checkpoints (h)", "{:.1f}"),
                     (f"projected {args.profile} run (h)", "{:.2f}")):
        shown[col] = shown[col].map(fmt.format)
    print()
    print(shown.drop(columns=["wall (s)"]).to_markdown())
    total = table["projected with validation and checkpoints (h)"].sum()
    print(
        f"\nAll {len(table)} trainings one after another: {total:,.1f} h on this device "
        f"(the paper: each model in under {paper.TRAINING_HOURS_BELOW} h on one {paper.TRAINING_GPU})."
    )
    if args.profile != "paper":
        own = table[f"projected {args.profile} run (h)"]
        print(f"The {args.profile} profile's own run ({profiles.TRAIN_LOOPS_ESTIMATE.get(args.profile, '?')} training "
              f"loops expected): {own.max():,.2f} h for the longest training, {own.sum():,.2f} h for all of them.")
    if whole_run:
        rows = table.reset_index().to_dict("records")
        projection = rehearse.project_run(args.profile, rows, workers=workers, midi_dir=args.midi_dir)
        as_timed = rehearse.project_run(args.profile, rows, workers=workers, extraction=(
            projection.extraction_seconds, projection.extraction_note), quiet=False)
        print("\n" + "\n".join(projection.lines()))
        print(f"  (trainings at their speed on a quiet core: timed at {threads or torch.get_num_threads()} thread(s), "
              f"as each of the {workers} notebook(s) side by side gets, scaled by wall / CPU time; at the speeds as "
              f"timed here, with this machine's present load: {as_timed.wall_seconds / 60:.1f} min)")
    if not table["resumed"].all():
        print("error: some trainings did not resume their checkpoint", file=sys.stderr)
        return 1
    return 0
