"""Latent usage (vmd_pyro.latent_usage): held-out pairs, the mutual information against its limits,
a mixture's coordinate marginals against quadrature, and the per-coordinate KL against the closed
form."""
import math

import numpy as np
import pyro.distributions as dist
import pytest
import torch

from tests.conftest import pairs, tiny_program
from vmd_pyro import latent_usage as U
from vmd_pyro.datasets import synthetic
from vmd_pyro.program import build_program


def test_held_out_pairs_cover_every_item_at_every_rate():
    task = synthetic.make_synthetic("quad-d1")
    batch, items = U.held_out_pairs(task, (0.5, 1.0), 10, 10, torch.Generator().manual_seed(0))
    assert len(batch) == 20 and torch.equal(items[:10], torch.arange(10))
    assert torch.equal(batch.x0, task.sequences[items])
    assert torch.all(batch.t[:10] == 0.5) and batch.masked[10:].all()  # t = 1 masks everything
    with pytest.raises(ValueError, match="mask rates"):
        U.held_out_pairs(task, (0.0,), 10, 10)


def test_mutual_information_limits():
    """Identical posteriors carry no information; well-separated ones carry log B nats."""
    same = dist.Normal(torch.zeros(6, 2), 1.0).to_event(1)
    apart = dist.Normal(torch.arange(6.0).unsqueeze(-1).expand(6, 2) * 50, 1.0).to_event(1)
    assert U.mutual_information(same) == pytest.approx(0.0, abs=1e-6)
    assert U.mutual_information(apart) == pytest.approx(math.log(6), abs=1e-4)
    probs = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    assert U.mutual_information(dist.Categorical(probs=probs)) == pytest.approx(0.0, abs=1e-6)
    one_hot = torch.eye(3)
    assert U.mutual_information(dist.Categorical(probs=one_hot)) == pytest.approx(math.log(3))


def test_coordinate_marginals_of_per_dimension_mixtures_are_those_mixtures():
    program = tiny_program(prior="mog-per-dim", latent_dim=2, components=3)
    prior = program.prior_dist(torch.full((2, 4), program.mask_id))
    marginal = U.coordinate_marginals(prior)
    z = torch.randn(5, 2, 2)
    assert marginal.batch_shape == (2, 2)
    assert torch.allclose(marginal.log_prob(z).sum(-1), prior.log_prob(z))  # independent coordinates


def test_coordinate_marginals_of_a_mixture_integrate_the_other_coordinate():
    program = tiny_program(prior="mog", latent_dim=2, components=3)
    xt = torch.full((1, 4), program.mask_id)
    prior = program.prior_dist(xt)
    grid = torch.linspace(-12, 12, 4001)
    z0 = torch.tensor([0.3])
    pts = torch.stack([z0.expand_as(grid), grid], -1).unsqueeze(1)     # (G, 1, 2)
    by_quadrature = torch.trapezoid(prior.log_prob(pts).exp().squeeze(-1).detach(), grid)
    marginal = U.coordinate_marginals(prior)
    assert marginal.batch_shape == (1, 2)
    assert float(marginal.log_prob(torch.tensor([[0.3, 0.0]]))[0, 0].exp().detach()) == pytest.approx(
        float(by_quadrature), rel=1e-4)


@pytest.mark.parametrize("prior", ["gaussian", "mog", "mog-per-dim", "discrete"])
def test_latent_usage_reports_every_rate(prior):
    program = tiny_program(prior=prior, latent_dim=3, components=4)
    batch = pairs(program, n=12)
    batch.t[6:] = 0.9
    usage = U.latent_usage(program, batch)
    units = 4 if prior == "discrete" else 3
    assert len(usage["activity"]) == units and usage["units"] == units
    assert len(usage["kl_per_dim"]) == (1 if prior == "discrete" else 3)
    assert all(k >= -0.05 for k in usage["kl_per_dim"])  # MC noise aside, a KL is non-negative
    assert [r["mask_rate"] for r in usage["per_mask_rate"]] == pytest.approx([0.6, 0.9])
    assert usage["kl_estimator"].startswith({"gaussian": "analytic", "discrete": "exact"}.get(
        prior, "Monte Carlo"))
    if prior == "gaussian":  # analytic per-coordinate KL of a diagonal Normal to N(0, 1)
        q = program.guide_dist(batch.x0, batch.masked).base_dist
        hand = 0.5 * (q.scale ** 2 + q.loc ** 2 - 1 - 2 * q.scale.log())
        np.testing.assert_allclose(usage["kl_per_dim"], hand.mean(0).detach(), rtol=1e-5)


@pytest.mark.parametrize("prior, guide", [("gaussian", "normal"), ("discrete", "categorical"),
                                          ("discrete", "exact")])
def test_latent_usage_in_chunks_equals_all_at_once(prior, guide):
    """The guide read 5 examples at a time (a last chunk of 2, rates split across chunks) gives
    the same KL, activity and I(z; x) as all 22 at once; for the exact guide this is what keeps a
    16-valued Sudoku latent inside memory."""
    program = tiny_program(prior=prior, guide=guide, latent_dim=3, components=4).eval()
    batch = pairs(program, n=22, seed=3)
    batch.t[::2] = 0.9
    whole = U.latent_usage(program, batch, rows=len(batch),
                           generator=torch.Generator().manual_seed(0))
    chunked = U.latent_usage(program, batch, rows=5, generator=torch.Generator().manual_seed(0))
    assert whole.keys() == chunked.keys()
    for key in ("kl_per_dim", "activity"):
        np.testing.assert_allclose(chunked[key], whole[key], rtol=1e-5, atol=1e-7)
    for a, b in zip(whole["per_mask_rate"], chunked["per_mask_rate"], strict=True):
        assert b["mask_rate"] == a["mask_rate"]
        assert b["mutual_information"] == pytest.approx(a["mutual_information"], rel=1e-4, abs=1e-6)
        np.testing.assert_allclose(b["kl_per_dim"], a["kl_per_dim"], rtol=1e-5, atol=1e-7)
    # the rows really differ, so a chunk read out of place would show
    assert np.ptp(U.posterior_means(program, batch, rows=5).numpy(), axis=0).max() > 1e-4
    with pytest.raises(ValueError, match="rows"):
        U.latent_usage(program, batch, rows=0)


def test_guide_rows_refuses_a_family_it_cannot_stack():
    with pytest.raises(TypeError, match="cannot stack"):
        U.guide_rows([dist.Gamma(torch.ones(2), 1.0)])


@pytest.mark.parametrize("arch, z_conditioning", [("mlp", "input"), ("mlp", "film"),
                                                  ("transformer", "film")])
def test_without_latent_is_the_network_fed_z_zero(arch, z_conditioning):
    """The cut copy gives the same logits for any z, equal to the original's at z = 0, while the
    original's logits do depend on z (so the check can fail); the original is left untouched."""
    program = tiny_program(arch=arch)
    program.cfg.net.z_conditioning = z_conditioning
    program = build_program(program.cfg).eval()
    if program.denoiser.film is not None:
        with torch.no_grad():
            program.denoiser.film.proj.weight.normal_()  # away from the no-effect start
    net = program.cfg.net
    xt = torch.randint(0, net.vocab_size + 1, (5, net.seq_len),
                       generator=torch.Generator().manual_seed(0))
    z1, z2 = torch.randn(2, 5, program.cfg.latent_dim, generator=torch.Generator().manual_seed(1))
    cut = U.without_latent(program)
    with torch.no_grad():
        assert not torch.allclose(program.logits(xt, z1), program.logits(xt, z2), atol=1e-4)
        assert torch.allclose(cut.logits(xt, z1), cut.logits(xt, z2), atol=1e-6)
        assert torch.allclose(cut.logits(xt, z1), program.logits(xt, torch.zeros_like(z1)),
                              atol=1e-5)
    with pytest.raises(ValueError, match="no latent"):
        U.without_latent(tiny_program(model="mdm"))
