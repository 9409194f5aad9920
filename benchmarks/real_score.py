"""Does a model fitted on real songs know other real songs? ``fit`` then ``score``, per profile (issue 27).

    LOOPGEN_ROOT=/tmp/root .venv/bin/python benchmarks/real_score.py FIT_DIR HELDOUT_DIR [--profiles demo songs]

For each profile: ``fit FIT_DIR --profile P --name real-P`` (extraction, the VQ-VAE and the LSTM prior, timed;
a model fitted before is reused, and its time is then not a fit's), then ``score HELDOUT_DIR --from real-P``.
Prints one row per profile: the VQ-VAE's validation error (its kept epoch's), its reconstruction error on the
held-out songs' loops, their ratio, and the fit's minutes. Issue 27's goal: held-out error at or below 8e-3 and
within 1.3x the validation error.

Our protocol (docs/commands.md): there are no other real songs, so some are held out: FIT_DIR and HELDOUT_DIR
hold links to two disjoint sets of files (a seeded random 200 of the pop songs held out, the other songs fitted).
Reads only the folders it is given; writes only under the project root (``LOOPGEN_ROOT``). Asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from loopgen.musician import fit, score
from loopgen.run import profiles
from loopgen.store.paths import Paths, root_outside_checkout

GOAL_ERROR, GOAL_RATIO = 8e-3, 1.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fit_dir", type=Path)
    parser.add_argument("heldout_dir", type=Path)
    parser.add_argument("--profiles", nargs="+", default=["demo", "songs"], choices=sorted(profiles.PROFILES))
    parser.add_argument("--prefix", default="real-", help="models are registered as PREFIX + profile")
    args = parser.parse_args()
    root_outside_checkout()
    paths = Paths().ensure()
    rows = []
    for name in args.profiles:
        model = f"{args.prefix}{name}"
        started = time.perf_counter()
        fit.fit(args.fit_dir, model, profile=profiles.get(name), paths=paths, progress=False)
        minutes = (time.perf_counter() - started) / 60
        report = score.score(args.heldout_dir, model, paths=paths, progress=False)
        vq = next(s for s in report.models if s.model == "vq_vae")
        rows.append((name, vq.validation_error, vq.reconstruction_error, vq.ratio, minutes, report.loops))
    print(f"{'profile':10s} {'validation':>10s} {'held-out':>10s} {'ratio':>6s} {'fit min':>8s}  held-out loops")
    for name, val, held, ratio, minutes, loops in rows:
        met = held <= GOAL_ERROR and ratio is not None and ratio <= GOAL_RATIO
        print(f"{name:10s} {val:10.2e} {held:10.2e} {ratio:6.2f} {minutes:8.1f}  {loops}"
              f"  {'goal met' if met else 'goal missed'}")


if __name__ == "__main__":
    main()
