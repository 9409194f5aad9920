"""Do variations of real songs loop? ``vary --keep-bars K`` on a few songs of a MIDI folder, measured (issue 27).

    LOOPGEN_ROOT=/tmp/root .venv/bin/python benchmarks/real_variations.py SONGS_DIR --from NAME \\
        [--songs 5] [--n 8] [--keep-bars 4] [--prior masked] [--temperature 1.0 0.5] [--steps 12] \\
        [--copy-through off bar code] [--seed 0]

Chooses ``--songs`` songs of SONGS_DIR (a seeded random order of its MIDI files, searched recursively; the first
ones that give an 8-bar loop by the extraction rules, read as ``vary`` reads them: their first loop), makes ``--n``
variations of each with the model registered as NAME (``fit``) and the chosen prior (the masked prior is trained
on first use, as ``vary`` does, and timed), regenerating bars K+1..8, for every combination of ``--temperature``,
``--steps`` and ``--copy-through`` mode (:mod:`loopgen.musician.variation`; "off" is vary before issue 27).
Prints one row per combination:

* loopability: the mean loopability (:func:`loopgen.metrics.loopability`) of the variations, beside the songs'
  own loops';
* kept exact: the share of variations whose kept bars are the song's, bit for bit;
* novelty, so that copying is not passed off as variation: of the regenerated bars, the share that differ from
  the song's own bar at that place ("new bars"), the share that are an exact copy of one of the song's kept bars
  ("copies of kept bars"), the mean distance of a regenerated bar to the song's bar at that place (differing
  cells / cells active in either bar, loopability's bar distance; and differing cells / 1,488, the paper's HD);
  and the share of distinct variations among the ``--n`` of a song.

Reads only the folder it is given and the models under the project root (``LOOPGEN_ROOT``); writes nothing but
the masked prior's checkpoint when it is trained. Asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from loopgen import BAR_CELLS, BARS_PER_LOOP, N_COLUMNS, STEPS_PER_BAR, metrics
from loopgen.errors import UserError
from loopgen.musician import loopfile, trained, variation
from loopgen.run import profiles
from loopgen.store.paths import Paths, root_outside_checkout

MIDI_SUFFIXES = (".mid", ".midi")


def choose_songs(folder: Path, count: int, seed: int) -> list[tuple[Path, np.ndarray]]:
    """(path, first loop) of the first ``count`` files in a seeded random order of ``folder``'s MIDI files that
    give a loop (as ``vary`` reads them)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    chosen = []
    for i in np.random.default_rng(seed).permutation(len(files)):
        try:
            chosen.append((files[i], loopfile.read_loop(files[i]).loop))
        except UserError:
            continue
        if len(chosen) == count:
            break
    return chosen


def bars_of(loops: np.ndarray) -> np.ndarray:
    """(..., 8, 16, 93) view of loops (..., 128, 93)."""
    return loops.reshape(*loops.shape[:-2], BARS_PER_LOOP, STEPS_PER_BAR, N_COLUMNS)


def measure(song: np.ndarray, varied: np.ndarray, keep_bars: int) -> dict[str, float]:
    """The figures of one song's variations (see the module docstring)."""
    new, own = bars_of(varied)[:, keep_bars:], bars_of(song)[keep_bars:]  # (n, R, 16, 93), (R, 16, 93)
    kept = bars_of(song)[:keep_bars]
    differ = (new != own[None]).reshape(*new.shape[:2], -1)
    either = (new | own[None]).reshape(*new.shape[:2], -1)
    n_differ, n_either = differ.sum(-1), either.sum(-1)
    distance = np.where(n_either > 0, n_differ / np.maximum(n_either, 1), 0.0)
    copies = (new[:, :, None] == kept[None, None]).all(axis=(-1, -2)).any(axis=-1)
    return {
        "loopability": float(metrics.loopability(varied).mean()),
        "song loopability": float(metrics.loopability(song[None])[0]),
        "kept exact": float((varied[:, : keep_bars * STEPS_PER_BAR] == song[: keep_bars * STEPS_PER_BAR]).all(axis=(1, 2)).mean()),
        "new bars": float((n_differ > 0).mean()),
        "copies of kept bars": float(copies.mean()),
        "bar distance": float(distance.mean()),
        "HD": float((n_differ / BAR_CELLS).mean()),
        "distinct": len({v.tobytes() for v in varied}) / len(varied),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("songs_dir", type=Path)
    parser.add_argument("--from", dest="name", required=True, help="a model registered by fit")
    parser.add_argument("--songs", type=int, default=5)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--keep-bars", type=int, default=4)
    parser.add_argument("--prior", choices=sorted(trained.PRIORS), default="masked")
    parser.add_argument("--temperature", type=float, nargs="+", default=[1.0], help="0 means argmax")
    parser.add_argument("--steps", type=int, nargs="+", default=[12])
    parser.add_argument("--copy-through", nargs="+", choices=variation.COPY_MODES, default=["off", "bar", "code"])
    parser.add_argument("--seed", type=int, default=0, help="chooses the songs; song i's variations use seed + i")
    parser.add_argument("--per-song", action="store_true", help="also print each song's figures")
    args = parser.parse_args()
    root_outside_checkout()
    songs = choose_songs(args.songs_dir, args.songs, args.seed)
    print(f"{len(songs)} songs of {args.songs_dir}: " + ", ".join(str(p.relative_to(args.songs_dir)) for p, _ in songs))
    started = time.perf_counter()
    model = trained.load_vq(Paths(), profiles.get("demo"), args.name, prior=args.prior)
    print(f"model {args.name} ({args.prior} prior, {model.prior_key}) loaded in {time.perf_counter() - started:.0f} s")
    bars = (args.keep_bars + 1, BARS_PER_LOOP)
    rows = []
    for temperature, steps, copy_through in itertools.product(args.temperature, args.steps, args.copy_through):
        figures = []
        for i, (path, loop) in enumerate(songs):
            v = variation.vary(loop, model, args.n, bars=bars, temperature=temperature or None, seed=args.seed + i,
                               steps=steps, copy_through=copy_through)
            figures.append(measure(loop, v.loops, args.keep_bars))
            if args.per_song:
                print(f"  T={temperature:g} steps={steps} copy={copy_through} {path.name}: "
                      + ", ".join(f"{k} {x:.3f}" for k, x in figures[-1].items()))
        mean = {k: float(np.mean([f[k] for f in figures])) for k in figures[0]}
        rows.append({"temperature": temperature or "argmax", "steps": steps, "copy-through": copy_through, **mean})
    header = list(rows[0])
    print("  ".join(header))
    for row in rows:
        print("  ".join(f"{row[h]:.3f}" if isinstance(row[h], float) else str(row[h]) for h in header))


if __name__ == "__main__":
    main()
