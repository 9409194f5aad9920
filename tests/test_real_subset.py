"""A small real subset through notebooks 01-05 at the smoke profile: the companion on real songs, in CI wherever
the shared real-world MIDI folder is present (skipped elsewhere; its files are read in place, never copied)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.realmidi]

EVERY = 12  # every 12th of the 1,200 shared songs: 100 files


def test_notebooks_01_to_05_run_on_a_hundred_real_songs(dev_midi_dir, tmp_path):
    subset = tmp_path / "real100"
    subset.mkdir()
    songs = sorted(p for p in dev_midi_dir.rglob("*") if p.suffix.lower() in {".mid", ".midi"})[::EVERY]
    for i, song in enumerate(songs):
        (subset / f"{i:03d}_{song.name}").symlink_to(song)  # a link, not a copy
    root = tmp_path / "root"
    root.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "loopgen", "run-notebooks", "--profile", "smoke", "--midi-dir", str(subset),
         "--only", "01", "02", "03", "04", "05"],
        cwd=root, env={**os.environ, "LOOPGEN_ROOT": str(root)}, capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    corpus = next((root / "figures").iterdir())
    assert corpus.name.startswith("real100-"), "the folder's outputs go to figures/<corpus>/"
    for table in ("table0_dataset", "table1_reconstruction", "table2_latent_size", "table3_musical_metrics"):
        text = (corpus / f"{table}.md").read_text()
        if table != "table0_dataset":
            assert f"Corpus: {corpus.name}" in text, table
    assert not any(p.suffix == ".md" for p in (root / "figures").iterdir() if p.is_file()), "figures/ itself untouched"
