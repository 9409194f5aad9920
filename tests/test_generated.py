"""The generated-samples store round-trips loops and codes and names notebook 05 when a group is missing."""

from __future__ import annotations

import numpy as np
import pytest

from loopgen import registry
from loopgen.store import sample_groups as generated
from loopgen.store.paths import MissingInputError, Paths


def _made(n: int, **changes) -> generated.Provenance:
    fields = dict(model="vq_vae", checkpoint="vq_vae abc, prior def", data_key="d1", seed=0, n=n, sampling="argmax")
    return generated.Provenance(**{**fields, **changes})


def _loops(n: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n, 128, 93)) < 0.05).astype(np.uint8)


def test_round_trip_with_codes(tmp_path):
    paths = Paths(tmp_path)
    loops = _loops()
    codes = np.random.default_rng(1).integers(0, 512, size=(5, 32))
    path = generated.save_generated(paths, "smoke", "vq_vae_temp1", loops, codes, provenance=_made(5))
    assert path == tmp_path / "build" / "samples" / "smoke" / "vq_vae_temp1.npz"
    back, back_codes = generated.load_generated(paths, "smoke", "vq_vae_temp1")
    assert back.dtype == np.uint8 and np.array_equal(back, loops)
    assert np.array_equal(back_codes, codes)
    assert [p.name for p in path.parent.iterdir()] == ["vq_vae_temp1.npz"]  # no temp files left


def test_round_trip_without_codes_and_from_bool(tmp_path):
    paths = Paths(tmp_path)
    loops = _loops(3).astype(bool)
    generated.save_generated(paths, "smoke", "cnn_vae", loops, provenance=_made(3))
    back, codes = generated.load_generated(paths, "smoke", "cnn_vae")
    assert codes is None and np.array_equal(back, loops.astype(np.uint8))


def test_bit_packing_makes_the_file_small(tmp_path):
    loops = _loops(200)
    path = generated.save_generated(Paths(tmp_path), "smoke", "training_set", loops, provenance=_made(200))
    # 200 loops x 128 steps x 12 packed bytes = 307,200 bytes before compression (vs 2.4 MB unpacked)
    assert path.stat().st_size < 200 * 128 * 12


def test_missing_group_names_notebook_05(tmp_path):
    with pytest.raises(MissingInputError, match="05_musical_metrics.ipynb"):
        generated.load_generated(Paths(tmp_path), "demo", "vq_vae_argmax")


def test_bad_inputs_are_rejected(tmp_path):
    paths = Paths(tmp_path)
    with pytest.raises(ValueError, match="shape"):
        generated.save_generated(paths, "smoke", "cnn_vae", np.zeros((2, 64, 93)), provenance=_made(2))
    with pytest.raises(ValueError, match="binary"):
        generated.save_generated(paths, "smoke", "cnn_vae", np.full((1, 128, 93), 0.3), provenance=_made(1))
    with pytest.raises(ValueError, match="codes"):
        generated.save_generated(paths, "smoke", "vq_vae_argmax", _loops(2), codes=np.zeros((3, 32), int), provenance=_made(2))
    with pytest.raises(ValueError, match="plain file name"):
        generated.save_generated(paths, "smoke", "../escape", _loops(1), provenance=_made(1))


def test_group_names_and_stored_provenance(tmp_path):
    assert registry.temperature_group(None) == "vq_vae_argmax"
    assert registry.temperature_group(1.0) == "vq_vae_temp1"
    assert registry.temperature_group(1.5) == "vq_vae_temp1.5"
    assert registry.temperature_group(1.2) == "vq_vae_temp1.2"
    for t in (None, 1.0, 1.5, 2.0, 1.2):
        assert registry.temperature_group(t) in registry.sample_groups()
    paths = Paths(tmp_path)
    assert generated.stored_provenance(paths, "smoke", "vq_vae_temp2") is None
    generated.save_generated(paths, "smoke", "vq_vae_temp2", _loops(1), provenance=_made(1))
    assert generated.stored_provenance(paths, "smoke", "vq_vae_temp2") == _made(1)


def test_a_reader_gets_only_the_provenance_it_expects(tmp_path):
    paths = Paths(tmp_path)
    made = _made(4)
    generated.save_generated(paths, "smoke", "vq_vae_argmax", _loops(4), provenance=made)
    assert generated.stored_provenance(paths, "smoke", "vq_vae_argmax") == made
    assert generated.stored_provenance(paths, "smoke", "vq_vae_temp1") is None
    loops, _ = generated.load_generated(paths, "smoke", "vq_vae_argmax", made)
    assert len(loops) == 4
    retrained = _made(4, checkpoint="vq_vae 123, prior 456")
    with pytest.raises(MissingInputError, match="05_musical_metrics.ipynb") as err:
        generated.load_generated(paths, "smoke", "vq_vae_argmax", retrained)
    assert "checkpoint" in str(err.value) and "seed" not in str(err.value)
    with pytest.raises(MissingInputError, match="seed: 0 != 1"):
        generated.load_generated(paths, "smoke", "vq_vae_argmax", _made(4, seed=1))


def test_a_record_of_another_schema_reads_as_no_provenance(tmp_path):
    import json

    paths = Paths(tmp_path)
    target = generated.save_generated(paths, "smoke", "cnn_vae", _loops(2), provenance=_made(2))
    with np.load(target) as data:
        fields = {name: data[name] for name in data.files}
    fields["provenance"] = np.array(json.dumps({**json.loads(str(fields["provenance"])), "renamed_field": 1}))
    fields.pop("digest")  # written by a loopgen of another schema: no digest of this one's
    np.savez_compressed(target, **fields)
    assert generated.stored_provenance(paths, "smoke", "cnn_vae") is None
    with pytest.raises(MissingInputError, match="no provenance recorded"):
        generated.load_generated(paths, "smoke", "cnn_vae", _made(2))


def test_a_damaged_group_is_refused_naming_notebook_05(tmp_path):
    """Issue 22: a group read back is checked (digest, loop count, code shape) before any metric uses it."""
    import json

    paths = Paths(tmp_path)
    made = _made(3)
    codes = np.arange(3 * 32).reshape(3, 32) % 7
    target = generated.save_generated(paths, "smoke", "vq_vae_argmax", _loops(3), codes, provenance=made)
    with np.load(target) as data:
        fields = {name: data[name] for name in data.files}
    fields["packed"] = fields["packed"].copy()
    fields["packed"][1, 10] ^= 0xFF  # one byte of one loop changed (same shape: unpacking alone sees nothing)
    np.savez_compressed(target, **fields)
    with pytest.raises(MissingInputError, match="damaged .*digest.*05_musical_metrics"):
        generated.load_generated(paths, "smoke", "vq_vae_argmax", made)
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(MissingInputError, match="damaged"):
        generated.load_generated(paths, "smoke", "vq_vae_argmax", made)
    fields.pop("digest")  # no digest (an older file), but the codes of 2 loops beside 3 loops
    fields["packed"][1, 10] ^= 0xFF
    fields["codes"] = fields["codes"][:2]
    np.savez_compressed(target, **fields)
    with pytest.raises(MissingInputError, match="damaged"):
        generated.load_generated(paths, "smoke", "vq_vae_argmax", made)
    assert json.loads(str(fields["provenance"]))["n"] == 3
