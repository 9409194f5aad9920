"""Issue 22: no silent damage. One lock for every writer (``filelock``), checkpoints that prove themselves (a
digest of their contents, finite weights), and every artefact read back checked before use."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from loopgen import train
from loopgen.run import profiles
from loopgen.store import atomic
from loopgen.train import CheckpointError, read_checkpoint, shipped
from loopgen.train.checkpoint import save_checkpoint


# ------------------------------------------------------------------------------------------------ the lock
def test_the_lock_needs_no_fcntl_of_its_own(tmp_path, monkeypatch):
    """On Windows there is no ``fcntl``: the lock comes from filelock, so it imports and locks there too."""
    import filelock  # noqa: F401 - imported before fcntl disappears, as it would be on Windows

    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` now raises ImportError
    lock = tmp_path / "out" / ".loopgen.lock"
    with atomic.exclusive_lock(lock, what="the output folder"):
        assert lock.read_text().strip() == str(os.getpid())
        with pytest.raises(atomic.LockedError, match="in use by another run"):
            with atomic.exclusive_lock(lock, what="the output folder"):
                pass
    assert lock.read_bytes() == b""


@pytest.mark.slow
def test_a_lock_held_by_another_process_through_filelock_is_refused_in_one_line_or_waited_for(tmp_path):
    lock = tmp_path / "checkpoints dir" / "vq_vae-abc.pt.lock"
    lock.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, filelock; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); "
         "open(sys.argv[1], 'w').write('4242'); print('held', flush=True); sys.stdin.readline(); lock.release()",
         str(lock)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert atomic.is_locked(lock)
        with pytest.raises(atomic.LockedError) as info:
            with atomic.exclusive_lock(lock, what="checkpoint vq_vae-abc.pt"):
                pass
        message = str(info.value)
        assert len(message.splitlines()) == 1 and "(process 4242)" in message
        assert f"'{lock}'" in message  # the path quoted: it holds a space
    finally:
        holder.communicate("\n", timeout=60)
    with atomic.exclusive_lock(lock, what="checkpoint", wait=True):
        assert lock.read_text().strip() == str(os.getpid())
    assert not atomic.is_locked(lock) and lock.read_bytes() == b""


def test_registering_a_model_takes_the_lock(tmp_path, monkeypatch):
    """Two ``fit`` runs writing ``data/models.json`` at once: the writer holds the one lock."""
    from loopgen.musician import trained
    from loopgen.store.paths import Paths

    monkeypatch.setenv("LOOPGEN_ROOT", str(tmp_path))
    paths = Paths()
    seen = []
    real = atomic.exclusive_lock

    def spy(lock_path, **kw):
        seen.append(str(lock_path))
        return real(lock_path, **kw)

    monkeypatch.setattr(trained, "exclusive_lock", spy)
    trained.register(paths, "mine", dataset=tmp_path, profile="smoke", report_totals={}, out_dir=tmp_path)
    assert seen and seen[0].endswith(".lock")
    assert "mine" in trained.read_registry(paths)


# ------------------------------------------------------------------------------------------- checkpoints
def _state() -> dict:
    weights = torch.full((64,), 0.063)
    return {"format": 1, "name": "toy", "epoch": 1, "finished": True, "model": {"w": weights, "b": torch.zeros(3)},
            "history": {"loss": [1.0, float("nan")]}, "rng": {"python": [3, [1, 2], None]},
            "optimizer": {"state": {0: {"step": torch.tensor(4.0)}}, "param_groups": [{"lr": 1e-3, "params": [0]}]}}


def _flip_a_weight_byte(path, tensor: torch.Tensor) -> None:
    data = bytearray(path.read_bytes())
    at = bytes(data).find(tensor.numpy().tobytes())
    assert at > 0
    data[at + 3] ^= 0x3F  # the exponent byte of the first float32: 0.063 becomes a huge finite number
    path.write_bytes(bytes(data))


def test_a_checkpoint_with_one_flipped_weight_byte_is_refused_naming_the_file(tmp_path):
    """The issue's case: one byte inside the tensor data made a weight 2e37, and vary/generate ran on."""
    path = tmp_path / "my checkpoints" / "vq_vae-abc.pt"
    save_checkpoint(_state(), path)
    assert read_checkpoint(path)["epoch"] == 1
    _flip_a_weight_byte(path, _state()["model"]["w"])
    assert torch.isfinite(torch.load(path, weights_only=True)["model"]["w"]).all()  # torch itself sees nothing
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "damaged" in message and "digest" in message
    assert f"'{path}'" in message and "--force" in message


def test_the_digest_covers_every_entry_not_only_the_weights(tmp_path):
    path = tmp_path / "c.pt"
    state = _state()
    save_checkpoint(state, path)
    sealed = torch.load(path, weights_only=True)
    assert sealed["digest"] == train.checkpoint.contents_digest(state)
    sealed["epoch"] = 2  # e.g. a history or epoch count edited by hand
    torch.save(sealed, path)
    with pytest.raises(CheckpointError, match="digest"):
        read_checkpoint(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_with_or_without_a_digest(tmp_path, value):
    state = _state()
    state["model"]["w"][5] = value
    for name, write in (("sealed.pt", save_checkpoint), ("old.pt", lambda s, p: torch.save(s, p))):
        with pytest.raises(CheckpointError, match="non-finite weights") as info:
            write(state, tmp_path / name)
            read_checkpoint(tmp_path / name)
        assert name in str(info.value) and "infinity in w)" in str(info.value)


def test_a_checkpoint_from_before_the_digest_still_loads(tmp_path):
    path = tmp_path / "old.pt"
    torch.save(_state(), path)
    assert "digest" not in read_checkpoint(path)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this should never print",))


def test_a_pickle_payload_is_named_for_what_it_is(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": _RunsCode()}, path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert "not a loopgen checkpoint (it asks to run code on load); refused" in message
    assert len(message.splitlines()) == 1 and "evil.pt" in message
    assert "never print" not in capsys.readouterr().out


def test_a_training_resumes_only_from_an_intact_checkpoint(tmp_path):
    """End to end: a finished prior's checkpoint with a flipped byte is refused on its next use."""
    settings = dataclasses.replace(profiles.get("smoke").train, prior_epochs=1, batch_size=8, max_train_loops=None)
    codes = np.random.default_rng(0).integers(0, 16, size=(32, 8))

    def run():
        return train.train_prior(codes, settings, data_key="d", vq_key="v", checkpoint_dir=tmp_path, num_codes=16,
                                 model_kwargs={"embed_dim": 8, "hidden": 16}, device="cpu", progress=False)

    first = run()
    assert run().reused
    weight = next(v for v in first.model.state_dict().values() if v.is_floating_point() and v.numel() >= 8)
    _flip_a_weight_byte(first.checkpoint, weight.contiguous())
    with pytest.raises(CheckpointError, match="damaged"):
        run()


# ------------------------------------------------------------------------------------------ shipped weights
def test_the_shipped_weights_still_load_and_install_as_checkpoints(tmp_path):
    index = shipped.read_index()
    assert index
    for file_name, entry in index.items():
        payload = shipped.load(entry["name"], entry["key"])
        assert payload is not None and "digest" not in payload  # made before the digest: checked by SHA-256
        path = tmp_path / file_name
        save_checkpoint({"model": payload["model"], "finished": True}, path)
        assert read_checkpoint(path)["finished"]


def test_shipped_weights_that_do_not_match_the_index_say_what_to_do(tmp_path, monkeypatch):
    folder = tmp_path / "shipped"
    folder.mkdir()
    (folder / "prior-abc.pt").write_bytes(b"not the shipped bytes")
    (folder / shipped.INDEX_FILE).write_text(json.dumps({"prior-abc.pt": {"sha256": "0" * 64}}))
    with pytest.raises(shipped.ShippedWeightsError) as info:
        shipped.load("prior", "abc", folder)
    message = str(info.value)
    assert isinstance(info.value, ValueError) and len(message.splitlines()) == 1
    assert "re-install the package" in message and "delete that file" in message


# ------------------------------------------------------------------------------------ datasets and registry
def test_a_dataset_shard_changed_on_disk_is_refused_before_use(tmp_path):
    from loopgen.data.corpus import write_demo_corpus
    from loopgen.data.dataset import DamagedDatasetError, load_loops
    from loopgen.data.extract import extract

    songs = write_demo_corpus(tmp_path / "songs", n_songs=6, progress=False)
    out = tmp_path / "loops"
    extract(songs, out, workers=1, progress=False)
    whole = load_loops(out)
    assert len(whole) > 0
    shard = out / "shard_00000.npy"
    packed = np.load(shard)
    packed[0, 7] ^= 0x10  # one cell of one loop flipped: same shape, same count
    np.save(shard, packed)
    with pytest.raises(DamagedDatasetError) as info:
        load_loops(out, split="train")
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "content hash" in message and "extract it again" in message
    np.save(shard, packed[:-1])  # a loop short of what the manifest says
    with pytest.raises(DamagedDatasetError, match="the manifest says"):
        load_loops(out)


def test_a_damaged_model_registry_is_named_in_one_line(tmp_path, monkeypatch):
    from loopgen.musician import trained
    from loopgen.store.paths import Paths

    monkeypatch.setenv("LOOPGEN_ROOT", str(tmp_path))
    paths = Paths()
    paths.model_registry.parent.mkdir(parents=True)
    paths.model_registry.write_text('{"mine": {"dataset": ')  # cut short
    with pytest.raises(trained.DamagedRegistryError, match="models.json"):
        trained.read_registry(paths)
    paths.model_registry.write_text(json.dumps({"mine": {"dataset": str(tmp_path), "profile": "nosuch"}}))
    with pytest.raises(trained.DamagedRegistryError, match="profile 'nosuch'"):
        trained.resolve(paths, profiles.get("smoke"), "mine")
