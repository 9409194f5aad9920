"""Loops for musicians: ``python -m loopgen generate --model vq_vae --n 16 --temperature 1.2 --out DIR``.

Samples any trained model of a profile and writes each loop as ``.mid`` and ``.wav`` (when FluidSynth is
installed) plus one PNG contact sheet of their pianorolls. Models are trained by notebooks 02-03 (or
``python -m loopgen train``); when one is missing, the message names the notebook to run first.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from loopgen import audio, plots, sample
from loopgen.dataset import dataset_dir, load_loops
from loopgen.paths import MissingInputError, Paths, require
from loopgen.profiles import Profile
from loopgen.train import checkpoint_key, load_trained

MODELS = ("ar_lstm_vae", "nonar_lstm_vae", "cnn_vae", "vq_vae")


def generate_loops(
    model_name: str,
    n: int,
    *,
    profile: Profile,
    paths: Paths,
    temperature: float | None = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """``n`` loops (uint8, (n, 128, 93)) from a trained model of ``profile``.

    Continuous VAEs decode z ~ N(0, I); the VQ-VAE decodes code sequences from its LSTM prior, the first
    code drawn from the training set's first codes, then argmax (``temperature=None``) or softmax sampling.
    """
    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; choose one of {MODELS}")
    if n < 1:
        raise ValueError("n must be at least 1")
    data = load_loops(require(dataset_dir(paths, profile.corpus.name), made_by="01_extract_loops.ipynb"))
    settings = profile.train
    model, _ = load_trained(model_name, settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints, seed=0)
    if model_name != "vq_vae":
        return sample.sample_vae(model, n, seed=seed)
    vq_key = checkpoint_key("vq_vae", settings, data_key=data.data_key, seed=0)
    prior, _ = load_trained("prior", settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints,
                            seed=0, vq_key=vq_key)
    train_codes = sample.encode_codes(model, data.loops[data.split == "train"])
    first = sample.first_code_distribution(train_codes, model.num_codes)
    codes = sample.sample_codes(prior, n, first, temperature=temperature, seed=seed)
    return sample.decode_codes(model, codes)


def export_loops(
    loops: np.ndarray,
    out_dir: Path | str,
    *,
    prefix: str = "loop",
    tempo: float = 120.0,
    repeats: int = 2,
    wav: bool = True,
) -> dict[str, list[Path]]:
    """Write each loop as ``<prefix>_NNN.mid`` (and ``.wav``) plus ``<prefix>_contact_sheet.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {"mid": [], "wav": [], "png": []}
    for i, loop in enumerate(loops):
        written["mid"].append(audio.write_midi(loop, out / f"{prefix}_{i:03d}.mid", tempo=tempo, repeats=repeats))
        if wav:
            path = audio.write_wav(loop, out / f"{prefix}_{i:03d}.wav", tempo=tempo, repeats=repeats)
            if path is not None:
                written["wav"].append(path)
    sheet = plots.contact_sheet(loops, titles=[f"{prefix}_{i:03d}" for i in range(len(loops))])
    written["png"].append(plots.save_fig(sheet, f"{prefix}_contact_sheet.png", folder=out))
    return written


def cli_main(argv: list[str]) -> int:
    from loopgen import cli, profiles

    parser = cli.parser("generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vq_vae", choices=MODELS)
    parser.add_argument("--n", type=cli.int_in(1, 10000), default=16, help="how many loops (1-10000)")
    parser.add_argument("--temperature", type=cli.float_in(0.0, 100.0, low_open=True), default=1.2,
                        help="VQ-VAE prior temperature, > 0 (paper: 1.2)")
    parser.add_argument("--argmax", action="store_true", help="VQ-VAE prior: argmax instead of sampling")
    parser.add_argument("--profile", default="demo", choices=sorted(profiles.PROFILES))
    parser.add_argument("--seed", type=cli.seed_int, default=0)
    parser.add_argument("--tempo", type=cli.float_in(20.0, 400.0), default=120.0, help="BPM, 20-400")
    parser.add_argument("--repeats", type=cli.int_in(1, 64), default=2, help="times each loop is repeated (1-64)")
    parser.add_argument("--no-wav", action="store_true", help="MIDI and PNG only")
    parser.add_argument("--out", required=True, type=cli.output_dir, help="output folder")
    args = parser.parse_args(argv)
    try:
        loops = generate_loops(
            args.model, args.n, profile=profiles.get(args.profile), paths=Paths(),
            temperature=None if args.argmax else args.temperature, seed=args.seed,
        )
    except MissingInputError as exc:
        print(f"error: cannot generate yet: {exc}", file=sys.stderr)
        return 1
    written = export_loops(loops, args.out, prefix=args.model, tempo=args.tempo, repeats=args.repeats,
                           wav=not args.no_wav)
    print(f"{len(written['mid'])} MIDI, {len(written['wav'])} WAV files and {written['png'][0]} in {args.out}")
    if not args.no_wav and not written["wav"]:
        print("No WAV files: FluidSynth is not installed (apt-get install libfluidsynth3).")
    return 0
