"""Issue 21: the masked code prior (a bidirectional transformer over the codes, MaskGIT-style), its sampling, exact
infill, seam repair, its keyed and resumable checkpoint, and ``generate``/``vary --prior masked``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from loopgen import __main__ as entry
from loopgen import registry, sample, train
from loopgen import sample_masked as masked
from loopgen.data.corpus import write_demo_corpus
from loopgen.data.dataset import load_loops
from loopgen.data.midi.write import write_loop_midi
from loopgen.models import build
from loopgen.models.masked_prior import MaskedCodePrior, circular_offsets, random_mask
from loopgen.musician import fit, trained, variation
from loopgen.run import profiles
from loopgen.run.profiles import TrainSettings
from loopgen.store.paths import Paths

pytestmark = pytest.mark.usefixtures("one_torch_thread")
K, T = 16, 32
TINY = {"num_codes": K, "seq_len": T, "dim": 32, "layers": 2, "heads": 4, "dropout": 0.0}
NAME = "tiny_masked"


def _tiny(seed: int = 0, **kwargs) -> MaskedCodePrior:
    torch.manual_seed(seed)
    return MaskedCodePrior(**{**TINY, **kwargs})


def _looping_codes(n: int, seed: int = 0) -> np.ndarray:
    """Code sequences whose second half repeats the first (bars 5-8 = bars 1-4), like the demo's loops."""
    half = np.random.default_rng(seed).integers(0, K, size=(n, T // 2))
    return np.concatenate([half, half], axis=1)


# ------------------------------------------------------------------------------------------------ the model
def test_registered_as_a_prior_and_built_by_name():
    spec = registry.get("masked_prior")
    assert spec.kind == registry.PRIOR and spec.family == "prior" and "masked_prior" not in registry.autoencoders()
    model = build("masked_prior", **TINY)
    assert isinstance(model, MaskedCodePrior) and model.config["num_codes"] == K


def test_forward_gives_logits_for_every_position_and_refuses_another_length():
    model = _tiny()
    codes = model.example_input(3)
    assert model(codes).shape == (3, T, K)
    hidden = codes.clone()
    hidden[:, 5] = model.mask_id  # the [MASK] token is one past the codebook
    assert model(hidden).shape == (3, T, K)
    with pytest.raises(ValueError, match="reads 32 codes"):
        model(codes[:, :16])


def test_the_position_bias_is_one_learned_number_per_circular_offset():
    model = _tiny()
    with torch.no_grad():
        model.relative_bias.copy_(torch.randn_like(model.relative_bias))
    bias = model.attention_bias()
    assert bias.shape == (4, T, T)
    offsets = circular_offsets(T)
    assert offsets[3, 19] == 16 and offsets[19, 3] == 16 and offsets[31, 0] == 1  # the wrap is one step
    i, j = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    expected = model.relative_bias.detach()[:, (j - i) % T]
    torch.testing.assert_close(bias.detach(), expected)
    # a circulant matrix: the same relation for every pair at the same circular offset
    torch.testing.assert_close(bias.detach(), torch.roll(bias.detach(), shifts=(1, 1), dims=(1, 2)))


def test_cosine_masking_schedule_masks_between_one_and_all_and_two_thirds_on_average():
    generator = torch.Generator().manual_seed(0)
    mask = random_mask(20000, T, generator=generator)
    counts = mask.sum(dim=1)
    assert counts.min() >= 1 and counts.max() <= T
    # E[ceil(cos(pi r / 2) t)] / t ~ 2 / pi (+ half a code of rounding up)
    assert float(counts.float().mean()) / T == pytest.approx(2 / math.pi + 0.5 / T, abs=0.01)
    again = random_mask(20000, T, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)


def test_masked_loss_is_the_cross_entropy_of_the_hidden_codes_only():
    model = _tiny().eval()
    codes = torch.from_numpy(_looping_codes(4))
    mask = torch.zeros(4, T, dtype=torch.bool)
    mask[:, 7] = True
    loss, _ = model.masked_loss(codes, mask)
    logits = model(codes.masked_fill(mask, model.mask_id))[:, 7]
    expected = torch.nn.functional.cross_entropy(logits, codes[:, 7])
    torch.testing.assert_close(loss, expected)


def test_bf16_autocast_only_while_training_on_a_supporting_cpu(monkeypatch):
    from loopgen.models import masked_prior

    model = _tiny()
    codes = model.example_input(2)
    monkeypatch.setattr(masked_prior, "cpu_bf16_supported", lambda: True)
    model.train()
    with model._precision(codes):
        assert torch.is_autocast_enabled("cpu")
    model.eval()
    with model._precision(codes):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(masked_prior, "cpu_bf16_supported", lambda: False)
    model.train()
    with model._precision(codes):
        assert not torch.is_autocast_enabled("cpu")


# --------------------------------------------------------------------------------------------- sampling
def test_infill_keeps_every_fixed_code_bit_for_bit():
    model = _tiny()
    rng = np.random.default_rng(1)
    codes = rng.integers(0, K, size=(40, T))
    regenerate = rng.random((40, T)) < 0.4
    out = masked.infill(model, codes, regenerate, steps=5, temperature=1.0, seed=3)
    np.testing.assert_array_equal(out[~regenerate], codes[~regenerate])
    assert out.dtype == np.int64 and out.min() >= 0 and out.max() < K
    assert (out[regenerate] != codes[regenerate]).any()  # something was drawn anew
    np.testing.assert_array_equal(out, masked.infill(model, codes, regenerate, steps=5, temperature=1.0, seed=3))


def test_decoding_takes_the_stated_number_of_rounds_and_seeds_differ():
    model = _tiny()
    calls = []
    hook = model.register_forward_hook(lambda *args: calls.append(1))
    first = masked.sample_masked(model, 6, steps=7, seed=0)
    hook.remove()
    assert len(calls) == 7 and first.shape == (6, T)
    assert not np.array_equal(first, masked.sample_masked(model, 6, steps=7, seed=1))
    argmax = masked.sample_masked(model, 2, steps=3, temperature=None, mask_noise=0.0)
    np.testing.assert_array_equal(argmax[0], argmax[1])  # no randomness left: the same loop twice
    with pytest.raises(ValueError, match="steps"):
        masked.sample_masked(model, 2, steps=0)
    with pytest.raises(ValueError, match="temperature"):
        masked.sample_masked(model, 2, temperature=0.0)
    with pytest.raises(TypeError, match="masked code prior"):
        masked.sample_masked(build("prior", num_codes=K, seq_len=T), 2)


def test_seam_positions_and_seam_repair_changes_only_them():
    assert np.flatnonzero(masked.seam_positions(32)).tolist() == [0, 15, 16, 31]
    assert np.flatnonzero(masked.seam_positions(32, width=2)).tolist() == [0, 1, 14, 15, 16, 17, 30, 31]
    assert np.flatnonzero(masked.seam_positions(32, seams=((8, 1),))).tolist() == [0, 31]
    with pytest.raises(ValueError, match="seam joins a bar to the next"):
        masked.seam_positions(32, seams=((3, 5),))
    model = _tiny()
    codes = np.random.default_rng(2).integers(0, K, size=(30, T))
    repaired = masked.repair_seams(model, codes, seed=4)
    where = masked.seam_positions(T)
    np.testing.assert_array_equal(repaired[:, ~where], codes[:, ~where])
    assert (repaired[:, where] != codes[:, where]).any()


def test_bar_positions_cover_four_codes_per_bar():
    assert np.flatnonzero(masked.bar_positions((5, 8), 32)).tolist() == list(range(16, 32))
    assert np.flatnonzero(masked.bar_positions((3, 3), 32)).tolist() == [8, 9, 10, 11]
    with pytest.raises(ValueError, match="bars must satisfy"):
        masked.bar_positions((0, 2), 32)


def test_lag_agreement_counts_codes_equal_to_the_code_16_steps_later():
    codes = _looping_codes(5)
    assert masked.lag_agreement(codes) == 1.0
    codes[:, 16:20] = (codes[:, :4] + 1) % K  # bar 5 differs from bar 1: 8 of 32 positions disagree
    assert masked.lag_agreement(codes) == pytest.approx(24 / 32)


# ------------------------------------------------------------------------- training through the one loop
def test_trained_through_the_training_loop_keyed_by_its_vq_vae_and_resumable(tmp_path):
    codes = _looping_codes(64)
    settings = TrainSettings(prior_epochs=3, batch_size=16, lr_max=3e-3, warmup_steps=2, grad_clip=1.0)
    common = {"data_key": "toy", "vq_key": "vq123", "num_codes": K, "val_codes": _looping_codes(16, seed=9),
              "model_kwargs": {k: v for k, v in TINY.items() if k != "num_codes"}, "progress": False,
              "name": "masked_prior"}
    whole = train.train_prior(codes, settings, checkpoint_dir=tmp_path / "a", **common)
    assert whole.finished and whole.checkpoint.name.startswith("masked_prior-K16-")
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(whole.history.columns)
    kwargs = common["model_kwargs"] | {"num_codes": K}
    lstm_key = train.checkpoint_key("prior", settings, data_key="toy", vq_key="vq123")
    other_vq = train.checkpoint_key("masked_prior", settings, data_key="toy", vq_key="vq999", model_kwargs=kwargs)
    assert len({whole.key, lstm_key, other_vq}) == 3
    # interrupted after 2 epochs and resumed: the same weights as the uninterrupted run
    part = train.train_prior(codes, settings, checkpoint_dir=tmp_path / "b", max_epochs_this_call=2, **common)
    assert not part.finished and part.epochs_this_call == 2
    rest = train.train_prior(codes, settings, checkpoint_dir=tmp_path / "b", **common)
    assert rest.finished and rest.epochs_this_call == 1
    for (name, a), (_, b) in zip(whole.model.state_dict().items(), rest.model.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=name)
    assert train.train_prior(codes, settings, checkpoint_dir=tmp_path / "a", **common).reused
    loaded, history = train.load_trained("masked_prior", settings, data_key="toy", vq_key="vq123",
                                         model_kwargs=kwargs, checkpoint_dir=tmp_path / "a")
    assert len(history) == 3 and isinstance(loaded, MaskedCodePrior)
    with pytest.raises(Exception, match="09_beyond_the_paper"):  # a missing one names the notebook that trains it
        train.load_trained("masked_prior", settings, data_key="other", vq_key="vq123", model_kwargs=kwargs,
                           checkpoint_dir=tmp_path / "a")


def test_it_learns_the_copy_16_codes_away_and_infills_bars_5_to_8_from_bars_1_to_4(tmp_path):
    settings = TrainSettings(prior_epochs=30, batch_size=32, lr_max=3e-3, lr_min=3e-3, weight_decay=0.0)
    one_layer = {"seq_len": T, "dim": 32, "layers": 1, "heads": 2, "dropout": 0.0}  # finds the copy in ~300 steps
    result = train.train_prior(
        _looping_codes(480), settings, data_key="toy", vq_key="vq123", num_codes=K, checkpoint_dir=tmp_path,
        model_kwargs=one_layer, progress=False, name="masked_prior",
    )
    held_out = _looping_codes(64, seed=5)
    filled = masked.infill(result.model, held_out, masked.bar_positions((5, 8), T), steps=8, temperature=None)
    assert (filled[:, 16:] == held_out[:, :16]).mean() > 0.9
    assert masked.continuation_cross_entropy(result.model, held_out, start=16) < 0.5 * math.log(K)


def test_continuation_cross_entropy_of_the_lstm_prior_is_its_chain_rule():
    torch.manual_seed(0)
    prior = build("prior", num_codes=K, seq_len=T, embed_dim=8, hidden=16)
    codes = _looping_codes(10)
    expected = -sample.code_log_likelihood(prior, codes, start=16).sum() / (10 * 16)
    assert masked.continuation_cross_entropy(prior, codes, start=16) == pytest.approx(expected)


# ------------------------------------------------------------------------------------ generate and vary
@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A tmp project root with a 24-song demo corpus fitted as NAME at the smoke profile."""
    root = tmp_path_factory.mktemp("masked_root")
    paths = Paths(root)
    profile = profiles.get("smoke")
    corpus = write_demo_corpus(paths.corpus_dir(profile.corpus.name), n_songs=24, seed=0, progress=False)
    fit.fit(corpus, NAME, profile=profile, paths=paths, progress=False)
    return root


@pytest.fixture
def project(root, monkeypatch) -> Paths:
    monkeypatch.setenv("LOOPGEN_ROOT", str(root))
    return Paths(root)


def _a_loop(root: Path) -> np.ndarray:
    data = load_loops(Paths(root).user_loops_dir(NAME))
    return data.loops[0]


def test_generate_with_the_masked_prior_trains_it_once_and_records_it(project, tmp_path, capsys):
    out = tmp_path / "gen"
    args = ["generate", "--from", NAME, "--prior", "masked", "--steps", "6", "--n", "3", "--seed", "2",
            "--out", str(out), "--no-wav"]
    assert entry.main(args) == 0
    assert "masked_prior: no finished checkpoint" in capsys.readouterr().err  # trained on first use
    entries = json.loads((out / "loops.json").read_text())["loops"]
    assert len(entries) == 3 and {e["prior"] for e in entries} == {"masked"} and entries[0]["steps"] == 6
    model = trained.load_vq(project, profiles.get("smoke"), NAME, prior="masked")
    assert isinstance(model.prior, MaskedCodePrior) and entries[0]["prior_key"] == model.prior_key
    assert entries[0]["prior_key"] != trained.load_vq(project, profiles.get("smoke"), NAME).prior_key
    assert entry.main(args[:-3] + ["--out", str(tmp_path / "again"), "--no-wav"]) == 0
    assert "no finished checkpoint" not in capsys.readouterr().err  # the checkpoint is reused
    assert entry.main(["generate", "--model", "cnn_vae", "--prior", "masked", "--out", str(tmp_path / "x")]) == 2


def test_vary_with_the_masked_prior_keeps_bars_1_to_4_and_conditions_a_middle_span_exactly(project, tmp_path):
    loop = _a_loop(project.root)
    song = write_loop_midi(loop, tmp_path / "mine.mid")
    out = tmp_path / "vary"
    assert entry.main(["vary", str(song), "--from", NAME, "--prior", "masked", "--regenerate-bars", "5-8",
                       "--n", "3", "--seed", "1", "--out", str(out), "--no-wav"]) == 0
    entries = json.loads((out / "loops.json").read_text())["loops"][1:]
    assert len(entries) == 3 and all(e["prior"] == "masked" and e["regenerate_bars"] == [5, 8] for e in entries)
    model = trained.load_vq(project, profiles.get("smoke"), NAME, prior="masked")
    result = variation.vary(loop, model, 4, bars=(5, 8), seed=1)
    np.testing.assert_array_equal(result.loops[:, :64], np.broadcast_to(loop[:64], (4, 64, 93)))
    assert (result.codes[:, :16] == result.original_codes[:16]).all()
    middle = variation.vary(loop, model, 4, bars=(3, 4), seed=2)
    outside = ~masked.bar_positions((3, 4), 32)
    assert (middle.codes[:, outside] == middle.original_codes[outside]).all()  # both sides held exactly
    keep = variation.kept_steps((3, 4))
    np.testing.assert_array_equal(middle.loops[:, keep], np.broadcast_to(loop[keep], (4, 96, 93)))
