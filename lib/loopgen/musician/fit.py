"""Your own corpus in one command: ``python -m loopgen fit MIDI_DIR [--profile demo] --name NAME``.

Extracts the loops of every MIDI file below MIDI_DIR (the paper's rules, :mod:`loopgen.extract`), prints how
many files gave loops and why the others did not, trains the VQ-VAE and its LSTM prior with the profile's
settings, and registers the pair as NAME (``data/models.json``), so that ``generate --from NAME`` and
``vary --from NAME`` use it. A few loops of the new model go into the output folder with ``index.html``.
"""

from __future__ import annotations

from pathlib import Path

from loopgen import cli, profiles, sample
from loopgen.dataset import load_loops
from loopgen.extract import DatasetMismatchError, extract
from loopgen.midi import REASONS
from loopgen.musician import draws, page, trained
from loopgen.musician.variation import say_audio
from loopgen.paths import Paths
from loopgen.profiles import Profile
from loopgen.train import train_model, train_prior

PREVIEW_LOOPS = 8


def report_summary(totals: dict) -> str:
    """'12 files: 9 gave 57 loops; 3 without: no_bass 2, time_signature 1'."""
    reasons = ", ".join(f"{r} {totals['by_reason'][r]}" for r in REASONS if totals["by_reason"].get(r))
    text = (f"{totals['files_scanned']} files: {totals['files_with_loops']} gave {totals['loops']} loops; "
            f"{totals['files_rejected']} without")
    return text + (f": {reasons}" if reasons else "")


def fit(
    midi_dir: Path | str, name: str, *, profile: Profile, paths: Paths, progress: bool = True
) -> dict:
    """Extract, train the VQ-VAE and the prior, register as ``name``; return the registry entry.

    Raises :class:`loopgen.cli.UserError` when no file gives a loop.
    """
    trained.check_name(name)
    folder = paths.user_loops_dir(name)
    try:
        report = extract(midi_dir, folder, workers=profile.extract.workers, progress=progress)
    except DatasetMismatchError:
        raise cli.UserError(
            f"a model called {name!r} was fitted on other MIDI files: choose another --name"
        ) from None
    totals = report["totals"]
    print(report_summary(totals))
    if totals["loops"] == 0:
        raise cli.UserError(f"no loops in {midi_dir}: nothing to train on ({report_summary(totals)})")
    data = load_loops(folder)
    train, val = data.loops[data.split == "train"], data.loops[data.split == "val"]
    settings = profile.train
    vq = train_model("vq_vae", train, val, settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints,
                     progress=progress)
    codes, val_codes = (sample.encode_codes(vq.model, x) for x in (train, val if len(val) else train))
    train_prior(codes, settings, data_key=data.data_key, vq_key=vq.key, checkpoint_dir=paths.checkpoints,
                num_codes=vq.model.num_codes, val_codes=val_codes, progress=progress)
    return trained.register(paths, name, dataset=folder, profile=profile.name, report_totals=totals,
                            out_dir=paths.user_model_dir(name))


def cli_main(argv: list[str]) -> int:
    parser = cli.parser("fit", __doc__.split("\n\n")[0])
    parser.add_argument("midi_dir", type=cli.existing_dir, help="a folder of MIDI songs (searched recursively)")
    parser.add_argument("--name", type=_name, required=True, help="the name to use with --from NAME")
    parser.add_argument("--profile", default="demo", choices=sorted(profiles.PROFILES),
                        help="training settings (smoke: seconds, demo: minutes)")
    parser.add_argument("--out", type=cli.output_dir, default=None,
                        help="folder for a preview of the new model's loops (default data/models/NAME)")
    parser.add_argument("--seed", type=cli.int_at_least(0), default=None,
                        help="seed of the preview loops (default: a fresh random one, printed)")
    parser.add_argument("--no-wav", action="store_true", help="preview as MIDI and PNG only")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    paths = Paths()
    profile = profiles.get(args.profile)
    entry = fit(args.midi_dir, args.name, profile=profile, paths=paths, progress=not args.quiet)
    out = Path(args.out) if args.out is not None else Path(entry["out_dir"])
    model = trained.load_vq(paths, profile, args.name)
    seed = draws.fresh_seed() if args.seed is None else args.seed
    codes = sample.sample_codes(model.prior, PREVIEW_LOOPS, model.first_probs, temperature=1.0, seed=seed)
    record = {"command": "fit", "model": "vq_vae", "source": model.label, "checkpoint_key": model.vq_key,
              "prior_key": model.prior_key, "temperature": 1.0, "seed": seed, "batch": PREVIEW_LOOPS}
    page.add_loops(out, sample.decode_codes(model.vq, codes),
                   [{**record, "index": i} for i in range(PREVIEW_LOOPS)], prefix=args.name,
                   run={"argv": list(argv), "seed": seed}, wav=not args.no_wav,
                   title=f"Model {args.name}: loops at temperature 1")
    print(f"registered {args.name!r} (profile {profile.name}): python -m loopgen generate --from {args.name} "
          f"--out DIR; preview -> {out / page.INDEX_HTML}")
    say_audio(args)
    return 0


def _name(text: str) -> str:
    import argparse

    try:
        return trained.check_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
