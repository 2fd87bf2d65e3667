import pytest
import torch

from vmd_pyro.masking import LogLinearSchedule, corrupt, path_batch, path_logits, sample_times
from vmd_pyro.networks import NetConfig, make_denoiser


def test_log_linear_weight_is_minus_alpha_prime_over_one_minus_alpha():
    s = LogLinearSchedule(eps=1e-3)
    t = torch.linspace(0.01, 1, 50, dtype=torch.float64).requires_grad_()
    alpha = s.alpha(t)
    (d_alpha,) = torch.autograd.grad(alpha.sum(), t)
    assert torch.allclose(s.weight(t), -d_alpha / (1 - alpha))
    assert torch.allclose(s.weight(t), 1 / t)


def test_mask_rate_and_given_positions():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 5, (20000, 8), generator=g)
    maskable = torch.ones_like(x0, dtype=torch.bool)
    maskable[:, :2] = False
    t = torch.full((20000,), 0.3)
    b = corrupt(x0, 5, maskable=maskable, t=t, generator=g)
    assert not b.masked[:, :2].any()
    assert b.masked[:, 2:].float().mean().item() == pytest.approx(0.3 * (1 - 1e-3), abs=0.005)
    assert torch.equal(b.xt[~b.masked], x0[~b.masked]) and (b.xt[b.masked] == 5).all()
    assert torch.allclose(b.weight, 1 / t)


def test_stratified_times_cover_every_stratum():
    t = sample_times(64, antithetic=True, generator=torch.Generator().manual_seed(1))
    strata = (t * 64).floor().long()
    assert sorted(strata.tolist()) == list(range(64))
    assert ((t > 0) & (t <= 1)).all()


def test_path_batch_walks_every_step_of_one_path():
    """Random order, T = 3 over 7 maskable positions of 9: the steps reveal 3, 2, 2 positions that
    partition the maskable ones; step k reads x^(k) and the guide x^(k+1); each row's order is
    one random order (a position revealed early stays revealed)."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 5, (40, 9), generator=g)
    maskable = torch.ones_like(x0, dtype=torch.bool)
    maskable[:, :2] = False
    batch = path_batch(x0, 5, 3, maskable=maskable, generator=g)
    assert batch.path and batch.xt.shape == (40, 3, 9)
    assert batch.scored.sum(-1).tolist() == [[3, 2, 2]] * 40
    assert torch.equal(batch.scored.sum(1), maskable.long())           # every position once
    assert torch.equal(batch.masked[:, 0], maskable)
    assert torch.equal(batch.masked[:, 1:], batch.masked[:, :-1] & ~batch.scored[:, :-1])
    assert torch.equal(batch.xt == 5, batch.masked)
    clean = x0.unsqueeze(1).expand(-1, 3, -1)
    assert torch.equal(torch.where(batch.masked, clean, batch.xt), clean)
    assert torch.equal(batch.guide_tokens == 5, batch.masked & ~batch.scored)
    assert batch.weight.tolist() == [1.0] * 40 and batch.latent_used().all()
    assert torch.equal(batch.first_call()[0], batch.xt[:, 0])
    first = batch.scored[:, 0].float().mean(0)                          # a uniform order
    assert float(first[:2].max()) == 0 and float((first[2:] - 3 / 7).abs().max()) < 0.25


def test_path_batch_in_a_given_order_asks_for_scores_at_every_step():
    x0 = torch.randint(0, 5, (4, 6), generator=torch.Generator().manual_seed(0))
    calls = []

    def leftmost_first(xt):
        calls.append(xt.clone())
        return -torch.arange(6.0).expand(xt.shape)

    batch = path_batch(x0, 5, 3, order_scores=leftmost_first)
    position = torch.arange(6)
    for k in range(3):
        assert torch.equal(batch.scored[:, k], ((position >= 2 * k) & (position < 2 * k + 2))
                           .expand(4, 6))
    assert len(calls) == 3 and torch.equal(calls[1], batch.xt[:, 1])


def test_path_logits_shares_each_sequences_z_over_its_steps():
    """One z per sequence, ``(B, D)``, or every value of an enumerated one, ``(K, 1, D)``: each
    step's logits are the denoiser's on that step's input with that sequence's z."""
    torch.manual_seed(0)
    net = NetConfig(vocab_size=5, seq_len=6, arch="transformer", hidden=16, layers=1, heads=2,
                    latent_dim=3, z_conditioning="film")
    denoiser = make_denoiser(net)
    for p in denoiser.film.parameters():
        torch.nn.init.normal_(p)
    batch = path_batch(torch.randint(0, 5, (4, 6)), 5, 3)
    z = torch.randn(4, 3)
    got = path_logits(denoiser, batch.xt, z)
    for k in range(3):
        torch.testing.assert_close(got[:, k], denoiser(batch.xt[:, k], z))
    values = torch.randn(2, 1, 3)
    got = path_logits(denoiser, batch.xt, values)
    assert got.shape == (2, 4, 3, 6, 5)
    torch.testing.assert_close(got[1, 2, 0], denoiser(batch.xt[2:3, 0], values[1])[0])
    assert float((got[0] - got[1]).detach().abs().max()) > 1e-3
