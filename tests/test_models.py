"""The four autoencoders and the prior: shapes against the paper's appendix tables, learning, the EMA codebook."""

from __future__ import annotations

import ast
import math

import pytest
import torch

from loopgen.models import (
    ARLSTMVAE,
    AUTOENCODERS,
    VectorQuantiserEMA,
    build,
    count_parameters,
    describe,
    perplexity,
    teacher_forcing_prob,
)

# one torch thread per test: small batches are overhead-bound, and it is fair to other jobs
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _loops(batch: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 128, 93, generator=g) < 0.05).float()


def _shapes(model) -> dict[str, tuple]:
    table = describe(model)
    return {
        layer.strip(): ast.literal_eval(shape) if shape else ()
        for layer, shape in zip(table["layer"], table["output shape"], strict=True)
    }


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_every_autoencoder_maps_loops_to_logits_of_the_same_shape(name):
    torch.manual_seed(0)
    model = build(name)
    x = _loops(3)
    assert model(x).shape == (3, 128, 93)
    model.eval()
    assert model.reconstruct_logits(x).shape == (3, 128, 93)


def test_cnn_vae_intermediate_shapes_follow_table_c():
    shapes = _shapes(build("cnn_vae"))
    # encoder: conv(32,3,1,1) -> (128,32); conv(32,3,1,2)+res -> (64,32); conv(32,3,1,2)+res -> (32,32)
    assert shapes["encoder.0"] == (128, 32)
    assert shapes["encoder.1"] == shapes["encoder.2"] == (64, 32)
    assert shapes["encoder.3"] == shapes["encoder.4"] == (32, 32)
    assert shapes["head"] == (512,)
    # decoder: Linear -> 512; up+res -> (32,32); up+res -> (64,32); up -> (128,32); conv(93,7,3,1) -> (128,93)
    assert shapes["project"] == (512,)
    assert shapes["decoder.1"] == (32, 32)
    assert shapes["decoder.3"] == (64, 32)
    assert shapes["decoder.4"] == (128, 32)
    assert shapes["decoder.5"] == (128, 93)


def test_vq_vae_default_intermediate_shapes_follow_table_d():
    shapes = _shapes(build("vq_vae"))
    assert shapes["encoder.1"] == (128, 32)  # two kernel-1 convs 93 -> 64 -> 32
    assert shapes["encoder.0"] == (128, 64)
    assert shapes["encoder.3"] == (64, 32)
    assert shapes["encoder.5"] == (32, 32)
    assert shapes["encoder.7"] == (32, 16)  # t = 32, L = 16
    assert shapes["quantiser"] == (32, 16)
    assert shapes["decoder.0"] == (32, 32)
    assert shapes["decoder.2"] == (64, 32)
    assert shapes["decoder.4"] == (128, 32)
    assert shapes["decoder.5"] == (128, 64)
    assert shapes["decoder.6"] == (128, 93)


@pytest.mark.parametrize("t,L,K", [(32, 16, 256), (32, 32, 512), (64, 16, 256), (64, 32, 512)])
def test_vq_vae_variants_have_t_by_L_latents(t, L, K):  # noqa: N803
    model = build("vq_vae", latent_steps=t, latent_dim=L, num_codes=K)
    assert _shapes(model)["quantiser"] == (t, L)
    assert model.quantiser.codebook.shape == (K, L)
    x = _loops(2)
    model.eval()
    codes = model.encode_codes(x)
    assert codes.shape == (2, t) and int(codes.max()) < K
    assert model.decode_codes(codes).shape == (2, 128, 93)


def test_vq_vae_rejects_a_latent_length_that_does_not_divide_the_loop():
    with pytest.raises(ValueError, match="latent_steps"):
        build("vq_vae", latent_steps=48)


def test_lstm_vae_shapes_follow_tables_a_and_b():
    ar = _shapes(build("ar_lstm_vae"))
    assert ar["encoder"] == (512,)  # bi-LSTM, 256 per direction, concatenated
    assert ar["head"] == (128,)
    assert ar["output"] == (128, 93)  # Linear(128 -> 93) at every step, applied once to all 128 hidden states
    table = describe(build("ar_lstm_vae"))
    calls = dict(zip(table.layer.str.strip(), table["calls"], strict=True))
    assert calls["recurrence"] == 1  # the 128 steps in one call, on the decoder LSTM's own weights
    assert calls["decoder"] == 0 and ar["recurrence"] == (128, 128)  # h_1 .. h_128
    nonar = _shapes(build("nonar_lstm_vae"))
    assert nonar["decoder"] == (128, 256)
    assert nonar["output"] == (128, 93)


def test_describe_total_is_the_parameter_count():
    model = build("cnn_vae")
    table = describe(model)
    assert table.iloc[-1]["parameters"] == count_parameters(model) > 1_000_000


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model"):
        build("gan")


@pytest.mark.parametrize("name", [*AUTOENCODERS, "prior"])
def test_a_few_training_steps_lower_the_loss_on_a_fixed_batch(name):
    torch.manual_seed(0)
    model = build(name)
    x = model.example_input(8) if name == "prior" else _loops(8)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def loss_value() -> float:
        torch.manual_seed(123)  # same reparameterisation noise and scheduled-sampling coins each time
        with torch.no_grad():
            return float(model.training_loss(x, kl_beta=0.1, epoch=0)[0])

    before = loss_value()
    for _ in range(3):
        torch.manual_seed(1)
        loss, _ = model.training_loss(x, kl_beta=0.1, epoch=0)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss_value() < before


def test_he_initialisation_scales_conv_weights_by_fan_in():
    torch.manual_seed(0)
    model = build("cnn_vae")
    w = model.encoder[0].conv.weight  # 32 x 93 x 3, fan-in 279
    expected = math.sqrt(2.0 / (1 + 0.2**2) / (93 * 3))
    assert float(w.detach().std()) == pytest.approx(expected, rel=0.1)
    assert float(model.encoder[0].conv.bias.detach().abs().max()) == 0.0


# ---------------------------------------------------------------- scheduled sampling (AR LSTM-VAE)
def test_teacher_forcing_probability_is_the_inverse_sigmoid_decay_with_rate_20():
    assert teacher_forcing_prob(0) == pytest.approx(20 / 21)
    assert teacher_forcing_prob(20 * math.log(20)) == pytest.approx(0.5)  # exp(epoch/20) = 20
    assert teacher_forcing_prob(100) == pytest.approx(20 / (20 + math.exp(5)))
    values = [teacher_forcing_prob(e) for e in range(0, 400, 10)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    assert teacher_forcing_prob(1e6) == 0.0


def test_short_runs_follow_the_paper_schedule_on_its_2000_epoch_time_axis():
    from loopgen.models.lstm_vae import schedule_epoch

    assert schedule_epoch(0, 40) == 0.0
    assert schedule_epoch(1, 40) == pytest.approx(50.0)
    assert schedule_epoch(7, 2000) == 7.0  # the paper profile is unchanged
    model: ARLSTMVAE = build("ar_lstm_vae")
    assert model.teacher_prob_at(0, 40) == pytest.approx(20 / 21)
    assert model.teacher_prob_at(2, 40) == pytest.approx(20 / (20 + math.exp(5)))  # paper epoch 100: ~0.12
    assert model.teacher_prob_at(10, 40) < 1e-5  # paper epoch 500: full sampling
    assert all(model.teacher_prob_at(e, 2000) == teacher_forcing_prob(e) for e in (0, 60, 100, 1999))
    with pytest.raises(ValueError):
        schedule_epoch(0, 0)


def test_ar_output_bias_starts_at_the_log_odds_of_the_cell_density():
    model: ARLSTMVAE = build("ar_lstm_vae")
    model.init_output_bias(0.02)
    torch.testing.assert_close(model.output.bias, torch.full((93,), math.log(0.02 / 0.98)))
    plain: ARLSTMVAE = build("ar_lstm_vae", output_bias_init="zero")
    plain.init_output_bias(0.02)
    assert float(plain.output.bias.detach().abs().max()) == 0.0
    with pytest.raises(ValueError):
        build("ar_lstm_vae", output_bias_init="nope")


def test_ar_decoder_stepwise_with_full_teacher_forcing_equals_the_one_pass_decoder():
    torch.manual_seed(0)
    model: ARLSTMVAE = build("ar_lstm_vae")
    x = _loops(3)
    z = torch.randn(3, 128)
    all_teacher = torch.ones(3, 128, dtype=torch.bool)
    torch.testing.assert_close(
        model.decode_steps(z, x, all_teacher), model._teacher_forced(z, x), atol=1e-5, rtol=1e-5
    )


def test_ar_decoder_inference_feeds_back_its_own_binarised_predictions():
    torch.manual_seed(0)
    model: ARLSTMVAE = build("ar_lstm_vae").eval()
    z = torch.randn(2, 128)
    logits = model.decode(z)
    own = (logits >= 0).float()
    # teacher-forcing on the model's own predictions reproduces full sampling exactly
    torch.testing.assert_close(model._teacher_forced(z, own), logits, atol=1e-5, rtol=1e-5)


def test_ar_decoder_initial_state_is_z():
    model: ARLSTMVAE = build("ar_lstm_vae")
    z = torch.randn(2, 128)
    h, c = model._initial_state(z)
    torch.testing.assert_close(h[0], z)
    torch.testing.assert_close(c[0], z)


# ---------------------------------------------------------------- the EMA quantiser
def _quantiser(codebook, decay=0.5, eps=0.0, threshold=0.0) -> VectorQuantiserEMA:
    q = VectorQuantiserEMA(
        num_codes=len(codebook), dim=len(codebook[0]), decay=decay, eps=eps, restart_threshold=threshold
    )
    cb = torch.tensor(codebook, dtype=torch.float32)
    q.codebook.copy_(cb)
    q.embed_sum.copy_(cb)
    return q.train()


def test_ema_update_matches_a_hand_computed_case():
    q = _quantiser([[0.0, 0.0], [10.0, 10.0]], decay=0.5, eps=0.0)
    z = torch.tensor([[1.0, 1.0], [3.0, 1.0], [9.0, 9.0]])
    zq, codes, sq_error, counts = q(z)
    assert codes.tolist() == [0, 0, 1]
    assert counts.tolist() == [2, 1]
    # quantised with the codebook *before* the update; squared errors 2, 10, 2
    torch.testing.assert_close(zq, torch.tensor([[0.0, 0.0], [0.0, 0.0], [10.0, 10.0]]))
    torch.testing.assert_close(sq_error, torch.tensor([2.0, 10.0, 2.0]))
    # N = 0.5 * [1, 1] + 0.5 * [2, 1] = [1.5, 1.0]
    torch.testing.assert_close(q.cluster_size, torch.tensor([1.5, 1.0]))
    # m0 = 0.5 * (0, 0) + 0.5 * ((1, 1) + (3, 1)) = (2, 1);  m1 = 0.5 * (10, 10) + 0.5 * (9, 9) = (9.5, 9.5)
    torch.testing.assert_close(q.embed_sum, torch.tensor([[2.0, 1.0], [9.5, 9.5]]))
    # no smoothing (eps = 0): e = m / N
    torch.testing.assert_close(q.codebook, torch.tensor([[2 / 1.5, 1 / 1.5], [9.5, 9.5]]))


def test_ema_laplace_smoothing_of_counts():
    q = _quantiser([[0.0, 0.0], [10.0, 10.0]], decay=0.5, eps=0.1)
    q(torch.tensor([[1.0, 1.0], [3.0, 1.0], [9.0, 9.0]]))
    # N = [1.5, 1.0], n = 2.5; smoothed N_k = (N_k + eps) / (n + K eps) * n
    n = 2.5
    smoothed = [(1.5 + 0.1) / (n + 0.2) * n, (1.0 + 0.1) / (n + 0.2) * n]
    expected = torch.tensor([[2.0 / smoothed[0], 1.0 / smoothed[0]], [9.5 / smoothed[1], 9.5 / smoothed[1]]])
    torch.testing.assert_close(q.codebook, expected)


def test_dead_codes_restart_at_encoder_outputs():
    torch.manual_seed(0)
    q = _quantiser([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0]], decay=0.99, eps=1e-5, threshold=1.0)
    z = torch.tensor([[1.0, 1.0], [9.0, 9.0], [2.0, 0.0], [11.0, 10.0]])
    q(z)
    # code 2 was unused: its count decayed to 0.99 < 1, so it now sits on one of the batch's vectors
    assert any(torch.equal(q.codebook[2], row) for row in z)
    assert float(q.cluster_size[2]) == 1.0
    assert float(q.cluster_size[0]) == pytest.approx(0.99 + 0.01 * 2)


def test_quantiser_leaves_the_codebook_alone_in_eval_mode():
    q = _quantiser([[0.0, 0.0], [10.0, 10.0]]).eval()
    before = q.codebook.clone()
    q(torch.tensor([[1.0, 1.0], [9.0, 9.0]]))
    assert torch.equal(q.codebook, before)


def test_nearest_code_by_matmul_equals_brute_force():
    torch.manual_seed(0)
    q = VectorQuantiserEMA(num_codes=64, dim=16)
    z = torch.randn(500, 16)
    brute = torch.cdist(z, q.codebook).argmin(dim=1)
    assert torch.equal(q.nearest(z), brute)


def test_straight_through_gradient_is_the_identity():
    q = _quantiser([[0.0, 0.0], [10.0, 10.0]]).eval()
    z = torch.tensor([[1.0, 2.0], [8.0, 9.0]], requires_grad=True)
    zq, _, _, _ = q(z)
    (zq * torch.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    torch.testing.assert_close(z.grad, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


def test_perplexity_of_uniform_and_single_code_usage():
    assert perplexity(torch.tensor([5.0, 5.0, 5.0, 5.0])) == pytest.approx(4.0)
    assert perplexity(torch.tensor([0.0, 7.0, 0.0])) == pytest.approx(1.0)
    assert perplexity(torch.zeros(3)) == 0.0


def test_vq_training_loss_reports_commitment_and_code_counts():
    torch.manual_seed(0)
    model = build("vq_vae", num_codes=256)
    loss, terms = model.training_loss(_loops(4))
    assert terms["code_counts"].shape == (256,)
    assert int(terms["code_counts"].sum()) == 4 * 32
    expected = terms["recon"] + 0.25 * terms["commitment"]
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)


def test_prior_predicts_the_next_code_over_k_classes():
    torch.manual_seed(0)
    prior = build("prior", num_codes=256, seq_len=32)
    codes = prior.example_input(3)
    logits, _ = prior(codes)
    assert logits.shape == (3, 32, 256)
    loss, terms = prior.training_loss(codes)
    assert float(loss.detach()) == pytest.approx(math.log(256), rel=0.5)
    assert 0.0 <= float(terms["accuracy"]) <= 1.0


def test_prior_accuracy_in_chunks_equals_one_forward():
    torch.manual_seed(0)
    prior = build("prior", num_codes=64, seq_len=16, dropout=0.4).train()
    codes = torch.randint(0, 64, (203, 16))
    codes[:, 8:] = codes[:, :8]  # a repeated half, so that the prior's guesses are not all wrong
    optimiser = torch.optim.AdamW(prior.parameters(), lr=1e-2)
    for _ in range(20):  # a few steps of learning the repetition
        loss, _ = prior.training_loss(codes)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    prior.eval()
    with torch.no_grad():
        logits, _ = prior(codes[:, :-1])
        one_forward = float((logits.argmax(dim=-1) == codes[:, 1:]).float().mean())
    assert 0.05 < one_forward < 1.0
    prior.train()  # accuracy evaluates without dropout, whatever the mode, and leaves the mode as it was
    for batch_size in (1, 7, 64, 203, 10_000):
        assert prior.accuracy(codes, batch_size=batch_size) == pytest.approx(one_forward, abs=1e-6)
    assert prior.training
    assert prior.accuracy(codes.numpy()) == pytest.approx(one_forward, abs=1e-6)  # the notebooks' numpy codes
    with pytest.raises(ValueError, match="batch_size"):
        prior.accuracy(codes, batch_size=0)
    with pytest.raises(ValueError, match="code sequences"):
        prior.accuracy(codes[:0])


@pytest.mark.parametrize("counted", [True, False])  # False: the GPU's way, without counting on the host
def test_restart_moves_only_the_dead_codes_to_encoder_outputs(counted):
    torch.manual_seed(0)
    q = _quantiser([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0], [50.0, 50.0]])
    q.cluster_size.copy_(torch.tensor([3.0, 0.2, 5.0, 0.1]))
    live = q.codebook[[0, 2]].clone(), q.embed_sum[[0, 2]].clone()
    z = torch.tensor([[1.0, 1.0], [9.0, 9.0], [2.0, 0.0], [11.0, 10.0]])
    q.restart(z, q.cluster_size < 1.0, counted=counted)
    for code in (1, 3):
        assert any(torch.equal(q.codebook[code], row) for row in z)
        assert torch.equal(q.embed_sum[code], q.codebook[code])
    torch.testing.assert_close(q.cluster_size, torch.tensor([3.0, 1.0, 5.0, 1.0]))
    assert torch.equal(q.codebook[[0, 2]], live[0]) and torch.equal(q.embed_sum[[0, 2]], live[1])
    q.restart(z, torch.zeros(4, dtype=torch.bool), counted=counted)  # no dead code: nothing moves
    torch.testing.assert_close(q.cluster_size, torch.tensor([3.0, 1.0, 5.0, 1.0]))


def test_quantiser_counts_equal_bincount_of_its_codes():
    torch.manual_seed(0)
    q = VectorQuantiserEMA(num_codes=64, dim=4).eval()
    _, codes, _, counts = q(torch.randn(500, 4))
    assert counts.dtype == torch.long
    assert torch.equal(counts, torch.bincount(codes, minlength=64))
