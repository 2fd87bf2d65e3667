"""Bounds and distances against independent computations: quadrature for a 1-D latent, exact
enumeration over sequences, closed forms."""
import math

import pytest
import torch

from tests.conftest import fixed_normal_guide, tiny_program
from vmd_pyro import metrics
from vmd_pyro.datasets.synthetic import make_synthetic
from vmd_pyro.masking import corrupt
from vmd_pyro.sampling import all_masked, generate
from vmd_pyro.training import TrainConfig, train


def quadrature_log_lik(program, batch, half_width=12.0, points=6001):
    """log p(x0_masked | xt) = log ∫ p(z | xt) prod_{i masked} p(x0^i | xt, z) dz for a 1-D latent,
    by the trapezoid rule on a dense grid (independent of the guide and of Monte Carlo)."""
    grid = torch.linspace(-half_width, half_width, points, dtype=torch.float64)
    z = grid.float().reshape(points, 1, 1)                       # (G, 1, D=1)
    with torch.no_grad():
        logp = program.logits(batch.xt, z).log_softmax(-1).double()          # (G, B, L, V)
        token = logp.gather(-1, batch.x0.expand(logp.shape[:-1]).unsqueeze(-1)).squeeze(-1)
        log_lik = (token * batch.masked).sum(-1)                              # (G, B)
        log_prior = program.prior.distribution(batch.xt, batch.masked).log_prob(z).double()
    integrand = log_lik + log_prior
    dz = grid[1] - grid[0]
    weights = torch.full((points,), math.log(dz))
    weights[[0, -1]] += math.log(0.5)
    return torch.logsumexp(integrand + weights.double().unsqueeze(-1), 0)


def batch_with_masks(program, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randint(0, program.cfg.net.vocab_size, (n, program.cfg.net.seq_len), generator=g)
    return corrupt(x0, program.mask_id, t=torch.full((n,), 0.7), generator=g)


@pytest.mark.parametrize("prior", ["gaussian", "mog", "conditional"])
def test_iw_bound_increases_with_k_and_stays_below_exact(prior):
    torch.manual_seed(0)
    program = tiny_program(prior=prior, latent_dim=1)
    with torch.no_grad():  # a peaked likelihood in z, so the guide is a poor proposal
        program.denoiser.z_proj.weight.mul_(8.0)
    fixed_normal_guide(program, 1.0)  # the prior's width, whatever the random initialisation
    batch = batch_with_masks(program)
    exact = quadrature_log_lik(program, batch)
    means = []
    for k in (1, 4, 32, 256):
        draws = torch.stack([metrics.iw_log_likelihood(program, batch, k) for _ in range(100)])
        means.append(draws.double().mean(0))
    for lower, higher in zip(means, means[1:]):
        assert (higher >= lower - 0.02).all()
    assert (means[-1] - means[0]).mean() > 0.02          # the bound really tightens
    assert (means[-1] <= exact + 0.01).all()              # and never passes the exact value
    assert (exact - means[-1]).max() < 0.1                 # K = 256 is nearly exact here


def test_elbo_is_below_exact_for_discrete_prior():
    program = tiny_program(prior="discrete", components=5)
    batch = batch_with_masks(program)
    log_p = program.prior.distribution(batch.xt, batch.masked)
    with torch.no_grad():
        values = torch.arange(5).unsqueeze(-1)                               # (K, 1)
        per_k = metrics.log_likelihood_terms(program, batch, values) + log_p.log_prob(values)
        exact = torch.logsumexp(per_k, 0)
        # the enumerated ELBO, per example, with w(t) = 1 for comparison
        batch.weight = torch.ones(len(batch))
        elbo = -program.make_elbo().loss(program.model, program.guide, batch)
    assert elbo <= float(exact.sum()) + 1e-4
    # importance sampling with the exact posterior as guide would be tight; many samples get close
    iw = metrics.iw_log_likelihood(program, batch, 4000)
    assert torch.allclose(iw, exact, atol=0.05)


@pytest.mark.parametrize("prior", ["gaussian", "mog", "conditional"])
def test_elbo_is_below_exact_for_continuous_priors(prior):
    program = tiny_program(prior=prior, latent_dim=1)
    batch = batch_with_masks(program)
    batch.weight = torch.ones(len(batch))
    exact = quadrature_log_lik(program, batch).sum()
    elbo = torch.stack([-torch.as_tensor(program.make_elbo().loss(program.model, program.guide,
                                                                  batch))
                        for _ in range(300)]).mean()
    assert elbo <= exact + 0.02


def test_one_step_model_probs_match_sampling_frequencies():
    task = make_synthetic("pair-uniform")
    for prior in ("gaussian", "discrete"):
        program = tiny_program(prior=prior, vocab=10, seq_len=2)
        probs = metrics.one_step_model_probs(program, task, z_samples=20000,
                                             generator=torch.Generator().manual_seed(0))
        assert probs.sum() == pytest.approx(1.0, abs=1e-6)  # float32 prior weights
        samples, _ = generate(program, all_masked(40000, 2, program.mask_id), nfe=1,
                           generator=torch.Generator().manual_seed(1))
        freq = torch.bincount(samples[:, 0] * 10 + samples[:, 1], minlength=100).double() / 40000
        assert (freq - probs).abs().max() < 0.01


def test_kl_closed_forms():
    p = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
    q = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)
    assert metrics.kl_from_probs(p, q) == pytest.approx(math.log(2))
    task = make_synthetic("quad-d1")
    perfect = task.sequences.repeat(1000, 1)
    # plug-in with pseudo-counts on a perfect sample: p_hat = (1000.5)/(10000+5) for each sequence
    expected = math.log(0.1 / (1000.5 / 10005))
    assert metrics.kl_plugin(task, perfect) == pytest.approx(expected, abs=1e-12)
    assert metrics.accuracy(task, perfect) == 1.0
    assert metrics.accuracy(task, torch.zeros(4, 4, dtype=torch.long)) == 0.0


def test_paired_difference_matches_a_hand_count_and_scipy():
    # by hand: differences 0, 1, 0, 1, -1 (mean 0.2, sample variance 2.8 / 4); discordant 2 and 1,
    # McNemar p = 2 (C(3,0) + C(3,1)) / 2^3 = 1
    r = metrics.paired_difference([1, 1, 0, 1, 0], [1, 0, 0, 0, 1])
    assert (r["items"], r["a_only"], r["b_only"]) == (5, 2, 1)
    assert r["difference"] == pytest.approx(0.2)
    assert r["paired_standard_error"] == pytest.approx(math.sqrt(0.7 / 5))
    assert r["unpaired_standard_error"] == pytest.approx(math.sqrt((0.6 * 0.4 + 0.4 * 0.6) / 5))
    assert r["mcnemar_p"] == 1.0
    stats = pytest.importorskip("scipy.stats")
    gen = torch.Generator().manual_seed(0)
    for n, shared in ((200, 0.8), (3000, 0.0)):  # 3000: more discordant items than a float's 2^1023
        a = torch.rand(n, generator=gen) < 0.7
        b = torch.where(torch.rand(n, generator=gen) < shared, a, torch.rand(n, generator=gen) < 0.5)
        r = metrics.paired_difference(a, b)
        d = (a.double() - b.double()).numpy()
        assert r["paired_standard_error"] == pytest.approx(d.std(ddof=1) / math.sqrt(n))
        test = stats.binomtest(r["a_only"], r["a_only"] + r["b_only"], 0.5)
        assert r["mcnemar_p"] == pytest.approx(test.pvalue, rel=1e-9, abs=1e-300)
        if shared:  # outcomes shared on most items: the paired error is the smaller one
            assert r["paired_standard_error"] < 0.8 * r["unpaired_standard_error"]
    assert metrics.paired_difference(a, a)["paired_standard_error"] == 0.0
    with pytest.raises(ValueError, match="equally long"):
        metrics.paired_difference([1, 0, 1], [1, 0])


@pytest.mark.slow
def test_trained_one_step_mdm_sits_on_the_mutual_information_limit():
    """No factorised one-step decoder can beat I(x1; x2); a trained MDM reaches it."""
    task = make_synthetic("pair-p", p=0.6)
    limit = task.factorisation_limit()
    program = tiny_program(model="mdm", vocab=10, seq_len=2)
    train(program, task.sample, TrainConfig(steps=400, batch_size=256, lr=1e-2, progress=False,
                                            eval_every=0))
    kl = metrics.kl_from_probs(task.dense_probs(), metrics.one_step_model_probs(program, task))
    assert kl >= limit - 1e-9
    assert kl < limit + 0.05
