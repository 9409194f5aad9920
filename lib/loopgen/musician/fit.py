"""Your own corpus in one command: ``python -m loopgen fit MIDI_DIR [--profile songs] --name NAME``.

Extracts the loops of every MIDI file below MIDI_DIR (the paper's rules, :mod:`loopgen.data.extract`), prints how
many files gave loops and why the others did not, trains the VQ-VAE and its LSTM prior with the profile's
settings (by default the ``songs`` profile's, tuned for real songs: :data:`DEFAULT_PROFILE`), and registers the
pair as NAME (``data/models.json``), so that ``generate --from NAME`` and
``vary --from NAME`` use it. A few loops of the new model go into the output folder with ``index.html``.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import numpy as np

from loopgen import errors, sample
from loopgen.data.dataset import load_loops
from loopgen.data.extract import DatasetMismatchError, extract
from loopgen.data.midi import REASONS
from loopgen.musician import trained
from loopgen.run.profiles import Profile
from loopgen.store.atomic import exclusive_lock
from loopgen.store.paths import Paths
from loopgen.train import train_model, train_prior

PREVIEW_LOOPS = 8
DEFAULT_PROFILE = "songs"  # fit's profile: on 200 held-out real songs its VQ-VAE's error is a third of demo's
MIN_LOOPS = 8  # our choice (the paper has no such case): fewer different loops teach a VQ-VAE nothing to vary


def plural(n: int, word: str) -> str:
    """'1 loop', '2 loops', '1,200 files'."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def report_summary(totals: dict) -> str:
    """'12 files: 9 gave 57 loops; 3 without: no_bass 2, time_signature 1'."""
    reasons = ", ".join(f"{r} {totals['by_reason'][r]}" for r in REASONS if totals["by_reason"].get(r))
    text = (f"{plural(totals['files_scanned'], 'file')}: {totals['files_with_loops']:,} gave "
            f"{plural(totals['loops'], 'loop')}; {totals['files_rejected']:,} without")
    return text + (f": {reasons}" if reasons else "")


def split_without_copies(loops: np.ndarray, split: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(training loops, validation loops, validation loops dropped as copies of a training loop, different
    loops in all): the same bars in two files (copies of a song, a repeated pattern) would let validation
    measure memory, so a validation loop equal to a training loop is kept out of validation."""
    train, val = loops[split == "train"], loops[split == "val"]
    seen = {row.tobytes() for row in train}
    fresh = np.array([row.tobytes() not in seen for row in val], dtype=bool)
    distinct = len({row.tobytes() for row in loops})
    return train, val[fresh], int((~fresh).sum()), distinct


def _too_few(midi_dir: Path | str, distinct: int, copies: int, n_val: int, totals: dict) -> str | None:
    """Why these loops cannot train a model (None when they can)."""
    where = shlex.quote(str(midi_dir))
    if distinct < MIN_LOOPS:
        same = f" ({plural(totals['loops'], 'loop')} in all)" if distinct != totals["loops"] else ""
        return (f"{where} gives {plural(distinct, 'different loop')}{same}; fit needs at least {MIN_LOOPS} different "
                f"loops, some of them from songs of their own for validation: add more songs ({report_summary(totals)})")
    if n_val == 0:
        why = (f"all {plural(copies, 'validation loop')} are copies of training loops" if copies
               else "no song was left for the validation split")
        return (f"{where} gives no validation loop ({why}): add songs with loops of their own "
                f"(fit needs at least {MIN_LOOPS} different loops, some from songs of their own)")
    return None


def fit(
    midi_dir: Path | str, name: str, *, profile: Profile, paths: Paths, progress: bool = True, force: bool = False
) -> dict:
    """Extract, train the VQ-VAE and the prior, register as ``name``; return the registry entry.

    Raises :class:`loopgen.errors.UserError` when the folder gives fewer than :data:`MIN_LOOPS` different loops or
    no validation loop, and when ``name`` is a model fitted on other files (unless ``force``, which replaces
    it and trains again). A replacement is extracted and trained beside the old model, which stays usable until
    the new one is registered; a fit that fails leaves nothing behind that would block the next one (a dataset
    no registry entry names is a failed fit's leftover, replaced without asking). One fit of a name at a time
    (the name's lock); the registry entry is written under the registry's lock.
    """
    trained.check_name(name)
    folder = paths.user_loops_dir(name)
    with exclusive_lock(folder.with_name(folder.name + ".lock"), what=f"the model {name!r} (another fit of it)"):
        registered = name in trained.read_registry(paths)
        replace = folder.exists() and (force or not registered)
        target = folder.with_name(folder.name + ".new") if replace else folder
        if replace:
            shutil.rmtree(target, ignore_errors=True)  # a replacement a killed fit left half made
        made_here = not target.exists()
        try:
            data, totals = _extract_checked(midi_dir, name, target, profile=profile, progress=progress)
            _train(data, profile=profile, paths=paths, progress=progress, force=force)
            if replace:
                shutil.rmtree(folder)
                target.rename(folder)
        except BaseException:
            if made_here:
                shutil.rmtree(target, ignore_errors=True)
            raise
        return trained.register(paths, name, dataset=folder, profile=profile.name, report_totals=totals,
                                out_dir=paths.user_model_dir(name), data_key=data.data_key)


def _extract_checked(midi_dir: Path | str, name: str, folder: Path, *, profile: Profile, progress: bool):
    """The loops of ``midi_dir`` in ``folder``, with copies kept out of validation; refused when too few."""
    try:
        report = extract(midi_dir, folder, workers=profile.extract.workers, progress=progress)
    except DatasetMismatchError:
        raise errors.UserError(
            f"a model called {name!r} was fitted on other MIDI files: choose another --name, or pass --force to "
            "replace it"
        ) from None
    totals = report["totals"]
    print(report_summary(totals))
    if totals["loops"] == 0:
        raise errors.UserError(f"no loops in {shlex.quote(str(midi_dir))}: nothing to train on ({report_summary(totals)})")
    data = load_loops(folder)
    train, val, copies, distinct = split_without_copies(data.loops, data.split)
    if copies:
        print(f"{plural(copies, 'validation loop')} {'is a copy' if copies == 1 else 'are copies'} of training "
              "loops (the same bars in another file): kept out of validation")
    problem = _too_few(midi_dir, distinct, copies, len(val), totals)
    if problem:
        raise errors.UserError(problem)
    return data, totals


def _train(data, *, profile: Profile, paths: Paths, progress: bool, force: bool) -> None:
    """Train the VQ-VAE and its prior on the training split, validated on the validation loops that are no
    copies of training loops. A checkpoint another run is training (another fit of the same loops under another
    name, a notebook) is waited for, then reused."""
    train, val, _, _ = split_without_copies(data.loops, data.split)
    settings = profile.train
    vq = train_model("vq_vae", train, val, settings, data_key=data.data_key, checkpoint_dir=paths.checkpoints,
                     progress=progress, force=force, wait=True)
    codes = trained.prior_training_codes(vq.model, train, settings, "prior")
    val_codes = sample.encode_codes(vq.model, val)
    train_prior(codes, settings, data_key=data.data_key, vq_key=vq.key, checkpoint_dir=paths.checkpoints,
                num_codes=vq.model.num_codes, val_codes=val_codes, progress=progress, force=force, wait=True)
