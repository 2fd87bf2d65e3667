import pytest
import torch

from vmd_pyro.masking import LogLinearSchedule, corrupt, sample_times


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
