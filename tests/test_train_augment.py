"""Issue 27: training augmentations that keep a loop a loop (4-bar rotation, bass transposition), off by default."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from loopgen import N_DRUM, metrics
from loopgen.run import profiles
from loopgen.run.profiles import TrainSettings
from loopgen.train import checkpoint_key, train_model
from loopgen.train import data as train_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def loops() -> torch.Tensor:
    """Random loops with bass notes between columns 20 and 79 (room to move) and a few without bass."""
    rng = np.random.default_rng(0)
    x = (rng.random((40, 128, 93)) < 0.03).astype(np.uint8)
    x[:, :, N_DRUM : N_DRUM + 11] = 0
    x[:, :, 80:] = 0
    x[:3, :, N_DRUM:] = 0  # no bass at all
    x[3, :, N_DRUM:] = 0
    x[3, 5, N_DRUM] = x[3, 9, 92] = 1  # the whole range used: only a shift of 0 keeps both notes
    x[4, 16:32] = x[4, :16]  # bar 2 repeats bar 1, bars 5-8 repeat 1-4: a perfect loop
    x[4, 64:] = x[4, :64]
    return torch.from_numpy(x)


def draws(n: int, epoch: int = 0) -> torch.Tensor:
    return train_data.augmentation_draws(n, seed=0, epoch=epoch)


def test_defaults_leave_the_loops_untouched(loops):
    settings = TrainSettings()
    assert not train_data.augments(settings)
    assert train_data.augment(loops, draws(len(loops))) is loops
    assert not train_data.augments(profiles.get("demo").train.recipe("vq_vae"))


def test_rotation_by_4_bars_keeps_the_loop_rules_pairs_and_loopability(loops):
    out = train_data.augment(loops, draws(len(loops)), rotate_bars=4)
    rotated = [i for i in range(len(loops)) if not torch.equal(out[i], loops[i])]
    assert rotated and len(rotated) < len(loops)  # about half start at bar 5
    for i in rotated:
        assert torch.equal(out[i], torch.roll(loops[i], -64, dims=0))  # bar 5 is the new bar 1
    np.testing.assert_allclose(metrics.loopability(out.numpy()), metrics.loopability(loops.numpy()))
    bars = out.numpy().reshape(len(out), 8, 16, 93)
    original = loops.numpy().reshape(len(loops), 8, 16, 93)
    for a, b in ((0, 4), (3, 7)):  # the pairs the loop rules and loopability compare, as sets
        np.testing.assert_array_equal(np.abs(bars[:, a].astype(int) - bars[:, b]),
                                      np.abs(original[:, a].astype(int) - original[:, b]))


def test_rotation_by_1_bar_reaches_every_start():
    loop = torch.arange(128, dtype=torch.int64)[None, :, None].expand(64, 128, 93)
    out = train_data.augment(loop, torch.rand(64, 2, generator=torch.Generator().manual_seed(1)), rotate_bars=1)
    assert {int(x) for x in out[:, 0, 0]} == {16 * k for k in range(8)}


def test_transposition_keeps_every_note_in_range_and_leaves_the_drums(loops):
    out = train_data.augment(loops, draws(len(loops), epoch=3), transpose=7)
    assert out.dtype == loops.dtype and out.shape == loops.shape
    torch.testing.assert_close(out[:, :, :N_DRUM], loops[:, :, :N_DRUM])
    torch.testing.assert_close(out.sum(dim=(1, 2)), loops.sum(dim=(1, 2)))  # no note dropped
    shifts = set()
    for i in range(len(loops)):
        bass, moved = loops[i, :, N_DRUM:], out[i, :, N_DRUM:]
        if not bass.any():
            assert torch.equal(moved, bass)
            continue
        shift = [s for s in range(-7, 8) if torch.equal(torch.roll(bass, s, dims=1), moved)]
        assert shift, f"loop {i} is not a transposition within 7 semitones"
        shifts.add(shift[0])
    assert len(shifts) > 3  # the shifts vary
    assert torch.equal(out[3], loops[3])  # bass from the lowest to the highest pitch: it cannot move


def test_draws_are_seeded_by_seed_and_epoch_only():
    torch.manual_seed(0)
    a = train_data.augmentation_draws(10, 0, 2)
    torch.manual_seed(1)
    assert torch.equal(a, train_data.augmentation_draws(10, 0, 2))
    assert not torch.equal(a, train_data.augmentation_draws(10, 0, 3))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="augment_rotate_bars"):
        train_data.check_augmentation(TrainSettings(augment_rotate_bars=3))
    with pytest.raises(ValueError, match="augment_transpose"):
        train_data.check_augmentation(TrainSettings(augment_transpose=84))
    train_data.check_augmentation(TrainSettings(augment_rotate_bars=4, augment_transpose=12))


def test_augmentation_enters_the_keys_only_when_used():
    plain = TrainSettings()
    keys = {name: checkpoint_key(name, plain, data_key="d", vq_key="v") for name in ("vq_vae", "cnn_vae", "prior")}
    explicit = replace(plain, augment_rotate_bars=0, augment_transpose=0)
    assert keys == {name: checkpoint_key(name, explicit, data_key="d", vq_key="v") for name in keys}
    used = replace(plain, augment_rotate_bars=4, augment_transpose=5)
    for name in keys:  # a prior's codes are then those of the augmented copies (musician.trained)
        assert checkpoint_key(name, used, data_key="d", vq_key="v") != keys[name]
    vq_only = replace(plain, per_model={"vq_vae": {"augment_transpose": 5}})
    assert checkpoint_key("prior", vq_only, data_key="d", vq_key="v") == keys["prior"]
    assert checkpoint_key("vq_vae", vq_only, data_key="d") != keys["vq_vae"]


def test_augmented_copies_list_every_rotation_and_every_shift_in_range(loops):
    x = loops.numpy()
    same = train_data.augmented_copies(x)
    assert same is x
    out = train_data.augmented_copies(x, rotate_bars=4, transpose=2)
    np.testing.assert_array_equal(out[: len(x)], x)
    with_bass = [i for i in range(len(x)) if x[i, :, N_DRUM:].any() and i != 3]  # loop 3 cannot move
    assert len(out) == 2 * len(x) + 2 * 4 * len(with_bass)  # 2 starts x (itself + 4 shifts of those that can move)
    first = len(x) + 4 * len(with_bass) + 2 * len(with_bass)  # after start 0's shifts, start 4's -2 and -1
    np.testing.assert_array_equal(out[first : first + len(x)], np.roll(x, -64, axis=1))  # bar 5 first, unshifted
    assert (out.reshape(len(out), -1).sum(1) > 0).all()
    counts = {int(c) for c in out.reshape(len(out), -1).sum(1)}
    assert counts <= {int(c) for c in x.reshape(len(x), -1).sum(1)}  # no note dropped


def test_a_training_with_augmentation_runs_and_is_repeatable(loops, tmp_path):
    settings = TrainSettings(epochs=1, batch_size=16, precision="fp32", augment_rotate_bars=4, augment_transpose=5)
    first = train_model("vq_vae", loops.numpy(), None, settings, data_key="aug", checkpoint_dir=tmp_path / "a",
                        progress=False)
    again = train_model("vq_vae", loops.numpy(), None, settings, data_key="aug", checkpoint_dir=tmp_path / "b",
                        progress=False)
    plain = train_model("vq_vae", loops.numpy(), None, replace(settings, augment_rotate_bars=0, augment_transpose=0),
                        data_key="aug", checkpoint_dir=tmp_path / "c", progress=False)
    assert first.key == again.key != plain.key
    weights = [torch.cat([p.detach().flatten() for p in r.model.parameters()]) for r in (first, again, plain)]
    torch.testing.assert_close(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])
