"""Fuzz: mutated MIDI files (bytes flipped, cut short, bytes inserted; seeded) through both parsing backends.

No crash, every file accounted for, and the same verdict (loop count or rejection reason) from ``fast`` and
``reference``. Sources: a few real songs read in place from the shared dev folder (skipped when absent) and
procedural demo songs (always); the mutants are written to ``tmp_path`` only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loopgen.data.corpus import plan_song, render_song
from loopgen.data.extract import extract
from loopgen.store.paths import SHARED_DEV_MIDI

MUTANTS_PER_FILE = 6


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One seeded mutation (sometimes two) of ``data``."""
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 3))):
        kind = rng.integers(3)
        if kind == 0 and out:  # flip a few bytes
            for pos in rng.integers(0, len(out), size=int(rng.integers(1, 9))):
                out[pos] ^= int(rng.integers(1, 256))
        elif kind == 1 and len(out) > 1:  # cut short
            del out[int(rng.integers(1, len(out))) :]
        else:  # insert random bytes
            pos = int(rng.integers(0, len(out) + 1))
            out[pos:pos] = rng.integers(0, 256, size=int(rng.integers(1, 17)), dtype=np.uint8).tobytes()
    return bytes(out)


def sources() -> list[tuple[str, bytes]]:
    found = [(f"demo{i}", render_song(plan_song(0, i), 0)) for i in range(4)]
    if SHARED_DEV_MIDI.is_dir():
        real = sorted(SHARED_DEV_MIDI.rglob("*.mid"))
        real = [p for p in real if p.stat().st_size < 60_000][:: max(1, len(real) // 40)][:4]
        found += [(f"real{i}", p.read_bytes()) for i, p in enumerate(real)]
    return found


def test_mutated_files_give_the_same_verdicts_with_both_backends(tmp_path: Path):
    folder = tmp_path / "fuzz"
    folder.mkdir()
    rng = np.random.default_rng(2021)
    written = []
    for name, data in sources():
        for k in range(MUTANTS_PER_FILE):
            path = folder / f"{name}_m{k}.mid"
            path.write_bytes(mutate(data, rng))
            written.append(path.name)
        (folder / f"{name}_orig.mid").write_bytes(data)
        written.append(f"{name}_orig.mid")
    reports = {
        backend: extract(folder, tmp_path / backend, backend=backend, workers=1, progress=False)
        for backend in ("fast", "reference")
    }
    fast, reference = reports["fast"], reports["reference"]
    assert set(fast["files"]) == set(written)  # every file accounted for
    assert fast["files"] == reference["files"]  # identical verdicts
    assert fast["totals"] == reference["totals"]
    assert fast["totals"]["files_scanned"] == len(written)
    assert fast["totals"]["by_reason"]["error"] == 0  # no unexpected exception in either backend
    rejected = sum(1 for v in fast["files"].values() if "rejected" in v)
    assert 0 < rejected < len(written)  # the mutations do break some files, not all
