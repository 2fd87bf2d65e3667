"""The posterior check (vmd_pyro.diagnostics), checked against closed forms and independent
computations: quadrature for a one-dimensional latent, Pyro's own enumeration for a discrete one,
Gaussian toys for k-hat and the energy distance."""
import math

import numpy as np
import pyro.distributions as dist
import pytest
import torch
import torch.nn.functional as F
from pyro.infer import TraceEnum_ELBO, config_enumerate

from tests.conftest import pairs, tiny_program
from vmd_pyro import diagnostics as D


@pytest.mark.parametrize("prior", ["gaussian", "discrete"])
def test_inference_data_keeps_shapes_names_and_coordinates(tmp_path, prior):
    program = tiny_program(prior=prior, latent_dim=3)
    batch = pairs(program, n=5)
    items = torch.tensor([4, 3, 2, 1, 0])
    z, log_q, log_p = D.guide_draws(program, batch, 7)
    assert z.shape == ((7, 5, 3) if prior == "gaussian" else (7, 5))
    idata = D.to_inference_data(z.unsqueeze(0), batch, items, {"log_q": log_q.unsqueeze(0)})
    post = idata.posterior["z"]
    assert post.dims == (("chain", "draw", "example", "latent") if prior == "gaussian"
                         else ("chain", "draw", "example"))
    np.testing.assert_array_equal(post.values[0], z.numpy())
    np.testing.assert_array_equal(post["item"].values, items.numpy())
    np.testing.assert_allclose(post["mask_rate"].values, batch.t.numpy())
    np.testing.assert_array_equal(idata.sample_stats["num_masked"].values,
                                  batch.masked.sum(-1).numpy())
    idata.to_netcdf(tmp_path / "d.nc")
    back = D.az.from_netcdf(tmp_path / "d.nc")
    np.testing.assert_array_equal(back.posterior["z"].values, post.values)
    with pytest.raises(ValueError, match="must have shape"):
        D.to_inference_data(z, batch, items)


def quadrature_posterior(program, batch, grid):
    """Posterior mean and variance of a 1-D z on a grid, from the networks written out by hand."""
    logits = program.denoiser(batch.xt, grid.unsqueeze(-1).unsqueeze(-1))     # (G, B, L, V)
    token = F.log_softmax(logits, -1).gather(
        -1, batch.x0.expand(logits.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    log_post = (token * batch.masked).sum(-1) - 0.5 * grid.unsqueeze(-1) ** 2  # N(0, 1) prior
    w = torch.softmax(log_post.double(), 0)
    mean = (w * grid.unsqueeze(-1)).sum(0)
    return mean, (w * (grid.unsqueeze(-1) - mean) ** 2).sum(0)


@pytest.mark.slow
def test_nuts_reference_recovers_the_posterior_of_a_1d_latent():
    program = tiny_program(prior="gaussian", latent_dim=1)
    with torch.no_grad():  # make z matter, so the posterior is far from the prior
        program.denoiser.z_proj.weight.mul_(6.0)
    batch = pairs(program, n=3)
    with torch.no_grad():
        mean, var = quadrature_posterior(program, batch, torch.linspace(-8, 8, 8001))
    assert (mean.abs() > 0.2).any() or (var < 0.8).any()  # the check below is not trivial
    cfg = D.DiagnosticsConfig(chains=2, warmup=150, samples=500)
    z, diverging = D.nuts_reference(program, batch, cfg)
    assert z.shape == (2, 500, 3, 1) and diverging.shape == (2, 500)
    draws = z.reshape(-1, 3).double()
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.12)
    np.testing.assert_allclose(draws.var(0), var, rtol=0.2)
    summary = D.mcmc_summary(D.to_inference_data(z, batch, torch.zeros(3),
                                                 {"diverging": diverging}))
    assert summary["rhat_max"] < 1.05 and summary["ess_bulk_min"] > 100
    assert summary["divergences"] == int(diverging.sum())  # per iteration, not per example


def test_exact_discrete_posterior_matches_pyro_enumeration():
    program = tiny_program(prior="discrete", components=4)
    batch = pairs(program, n=6)
    ours = D.exact_discrete_posterior(program, batch)
    marginals = TraceEnum_ELBO(max_plate_nesting=1).compute_marginals(
        config_enumerate(D.reference_model), lambda *a: None, program, batch)
    torch.testing.assert_close(ours, marginals["z"].probs.detach(), rtol=1e-5, atol=1e-6)
    assert torch.allclose(ours.sum(-1), torch.ones(6))


def test_khat_is_small_for_a_good_proposal_and_large_for_a_bad_one():
    """Target N(0, 1). Proposals: a slightly wider Normal (bounded weights), and a much narrower
    one (weights with a heavy tail): k-hat tells them apart."""
    g = torch.Generator().manual_seed(0)
    target = dist.Normal(0.0, 1.0)

    def khat(scale):
        z = torch.randn(20, 4000, generator=g, dtype=torch.float64) * scale
        return D.psis_khat(target.log_prob(z) - dist.Normal(0.0, scale).log_prob(z))

    good, bad = khat(1.1), khat(0.4)
    assert good.shape == (20,)
    assert np.median(good) < 0.3 and np.median(bad) > 0.7


def test_khat_of_the_guide_is_small_when_the_guide_is_the_exact_posterior():
    """A discrete guide set to the exact enumerated posterior is a perfect proposal."""
    program = tiny_program(prior="discrete", components=5)
    batch = pairs(program, n=8)
    posterior = D.exact_discrete_posterior(program, batch)
    program.guide_net.distribution = lambda x0, masked: dist.Categorical(probs=posterior)
    z, log_q, log_p = D.guide_draws(program, batch, 2000, torch.Generator().manual_seed(0))
    log_w = (log_p - log_q).T
    assert torch.allclose(log_w, log_w[:, :1], atol=1e-4)  # constant weights: log p(x0 | xt)
    report = D.guide_vs_reference(None, None, guide_probs=posterior, ref_probs=posterior)
    assert max(report["kl_exact"]) < 1e-6 and max(report["total_variation"]) < 1e-6
    program.guide_net.distribution = lambda x0, masked: dist.Categorical(
        probs=torch.full_like(posterior, 0.2))
    report = D.guide_vs_reference(None, None, guide_probs=torch.full_like(posterior, 0.2),
                                  ref_probs=posterior)
    expected = (0.2 * (math.log(0.2) - posterior.log())).sum(-1)
    np.testing.assert_allclose(report["kl_exact"], expected, rtol=1e-3)


def test_energy_distance_matches_closed_form_for_shifted_normals():
    """For X ~ N(0, 1), Y ~ N(m, 1) in 1-D: 2E|X-Y| - E|X-X'| - E|Y-Y'| with
    E|N(m, 2)| = 2 phi(m / sqrt 2) + m (1 - 2 Phi(-m / sqrt 2)) and E|X - X'| = 2 / sqrt(pi)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3000, 1, generator=g)
    assert abs(D.energy_distance(x, torch.randn(3000, 1, generator=g))) < 0.01
    m = 1.5
    normal = torch.distributions.Normal(0.0, 1.0)
    s = math.sqrt(2.0)
    e_xy = s * 2 * math.exp(float(normal.log_prob(torch.tensor(m / s)))) + m * (
        1 - 2 * float(normal.cdf(torch.tensor(-m / s))))
    exact = 2 * e_xy - 2 * 2 / math.sqrt(math.pi)
    assert D.energy_distance(x, torch.randn(3000, 1, generator=g) + m) == pytest.approx(
        exact, abs=0.05)
