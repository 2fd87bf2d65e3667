"""The Pyro model/guide pairs define the weighted objectives of docs/method.md: checked against losses
written out by hand from the networks' outputs. Where a sequence has no masked token, ``z`` explains
nothing and its site is masked out (``used`` below): no KL term there."""
import math

import numpy as np
import pyro
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from tests.conftest import tiny_program
from vmd_pyro.masking import corrupt


def make_batch(program, n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    vocab, seq_len = program.cfg.net.vocab_size, program.cfg.net.seq_len
    x0 = torch.randint(0, vocab, (n, seq_len), generator=g)
    return corrupt(x0, program.mask_id, generator=g)


def token_log_lik(program, batch, z_input):
    """sum over masked i of log softmax(denoiser(xt, z))[x0^i], written out directly."""
    logits = program.denoiser(batch.xt, z_input)
    logp = F.log_softmax(logits, -1)
    x0 = batch.x0.expand(logp.shape[:-1])
    picked = torch.gather(logp, -1, x0.unsqueeze(-1)).squeeze(-1)
    return torch.where(batch.masked, picked, torch.zeros_like(picked)).sum(-1)


def test_mdm_loss_is_weighted_masked_cross_entropy():
    program = tiny_program(model="mdm")
    batch = make_batch(program)
    loss = program.make_elbo().loss(program.model, program.guide, batch)
    hand = -(batch.weight * token_log_lik(program, batch, None)).sum().detach()
    assert loss == pytest.approx(float(hand), rel=1e-5)


@pytest.mark.parametrize("prior", ["gaussian", "mog", "mog-per-dim", "conditional"])
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_sampled_elbo_equals_hand_written_nelbo_for_the_same_z(prior, beta):
    program = tiny_program(prior=prior, elbo="trace")
    batch = make_batch(program)
    pyro.set_rng_seed(7)
    loss = program.make_elbo().loss(program.model, program.guide, batch, beta)
    pyro.set_rng_seed(7)
    q = program.guide_dist(batch.x0, batch.masked)
    z = q.rsample()  # the same draw Pyro's guide made
    p = program.prior.distribution(batch.xt, batch.masked)
    used = batch.masked.any(-1)
    per_example = -token_log_lik(program, batch, z) + beta * used * (q.log_prob(z) - p.log_prob(z))
    hand = (batch.weight * per_example).sum()
    assert loss == pytest.approx(float(hand), rel=1e-5)


@pytest.mark.parametrize("prior", ["gaussian", "conditional"])
def test_analytic_kl_elbo_matches_closed_form(prior):
    program = tiny_program(prior=prior)  # default elbo: meanfield (analytic KL)
    assert program.elbo_name == "meanfield"
    batch = make_batch(program)
    beta = 0.5
    pyro.set_rng_seed(3)
    loss = program.make_elbo().loss(program.model, program.guide, batch, beta)
    pyro.set_rng_seed(3)
    q = program.guide_dist(batch.x0, batch.masked)
    z = q.rsample()
    p = program.prior.distribution(batch.xt, batch.masked)
    mq, sq = q.base_dist.loc, q.base_dist.scale
    mp, sp = p.base_dist.loc, p.base_dist.scale
    kl = (torch.log(sp / sq) + (sq ** 2 + (mq - mp) ** 2) / (2 * sp ** 2) - 0.5).sum(-1)
    used = batch.masked.any(-1)
    hand = (batch.weight * (-token_log_lik(program, batch, z) + beta * used * kl)).sum()
    assert loss == pytest.approx(float(hand), rel=1e-5)


@pytest.mark.parametrize("beta", [1.0, 0.25])
def test_enumerated_discrete_elbo_equals_hand_sum_over_values(beta):
    program = tiny_program(prior="discrete", components=4)
    assert program.elbo_name == "enum"
    with torch.no_grad():  # make the prior non-uniform so its weights matter
        program.prior.logits.copy_(torch.tensor([0.5, -1.0, 0.0, 1.5]))
    batch = make_batch(program)
    loss = program.make_elbo().loss(program.model, program.guide, batch, beta)
    log_q = F.log_softmax(program.guide_net.encoder(batch.x0, batch.masked), -1)     # (B, K)
    log_p = F.log_softmax(program.prior.logits, -1)                                  # (K,)
    used = batch.masked.any(-1)
    hand = 0.0
    for k in range(4):
        z_input = program.prior.embedding(torch.full((len(batch),), k))
        cost = -token_log_lik(program, batch, z_input) + beta * used * (log_q[:, k] - log_p[k])
        hand = hand + log_q[:, k].exp() * cost
    hand = (batch.weight * hand).sum()
    assert loss == pytest.approx(float(hand), rel=1e-5)
    # the gradient flows through the exact sum (no score-function noise): loss is deterministic
    assert program.make_elbo().loss(program.model, program.guide, batch, beta) == pytest.approx(loss)


def test_loss_is_per_example_weighted():
    """Doubling one example's weight changes the loss by exactly that example's term."""
    program = tiny_program(model="mdm")
    batch = make_batch(program, n=4)
    elbo = program.make_elbo()
    base = elbo.loss(program.model, program.guide, batch)
    term = -float(batch.weight[2] * token_log_lik(program, batch, None)[2])
    batch.weight = batch.weight.clone()
    batch.weight[2] *= 2
    assert elbo.loss(program.model, program.guide, batch) == pytest.approx(base + term, rel=1e-5)


def test_mismatched_guide_and_prior_are_refused():
    with pytest.raises(ValueError, match="cannot match prior 'gaussian'.*--guide normal"):
        tiny_program(prior="gaussian", guide="categorical")
    with pytest.raises(ValueError, match="cannot match prior 'discrete'"):
        tiny_program(prior="discrete", guide="normal")
    with pytest.raises(ValueError, match="unknown prior 'laplace'; available: .*gaussian"):
        tiny_program(prior="laplace")
    with pytest.raises(ValueError, match="unknown guide"):
        tiny_program(prior="gaussian", guide="flow")


def test_registry_holds_every_prior():
    from models import PRIORS
    assert {"gaussian", "mog", "discrete", "conditional", "discrete-conditional",
            "discrete-features"} <= set(PRIORS)


def test_conditional_prior_depends_on_xt():
    program = tiny_program(prior="conditional")
    mask = program.mask_id
    a = torch.tensor([[mask, mask, mask, mask]])
    b = torch.tensor([[1, mask, 3, mask]])
    pa, pb = program.prior_dist(a), program.prior_dist(b)
    assert not torch.allclose(pa.base_dist.loc, pb.base_dist.loc)
    pyro.set_rng_seed(0)
    za = pa.sample()
    pyro.set_rng_seed(0)
    zb = pb.sample()
    assert not torch.allclose(za, zb)


def test_discrete_conditional_prior_depends_on_xt_and_sums_like_the_discrete_one():
    """Its probabilities move with xt, and the enumerated ELBO is the hand-written sum over the K
    values with p(k | xt) in place of p(k)."""
    program = tiny_program(prior="discrete-conditional", components=4)
    mask = program.mask_id
    pa = program.prior_dist(torch.tensor([[mask, mask, mask, mask]]))
    pb = program.prior_dist(torch.tensor([[1, mask, 3, mask]]))
    assert not torch.allclose(pa.probs, pb.probs)
    batch = make_batch(program)
    loss = program.make_elbo().loss(program.model, program.guide, batch)
    log_q = F.log_softmax(program.guide_net.encoder(batch.x0, batch.masked), -1)     # (B, K)
    log_p = F.log_softmax(program.prior.encoder(batch.xt, batch.masked), -1)        # (B, K)
    used = batch.masked.any(-1)
    hand = 0.0
    for k in range(4):
        z_input = program.prior.embedding(torch.full((len(batch),), k))
        cost = -token_log_lik(program, batch, z_input) + used * (log_q[:, k] - log_p[:, k])
        hand = hand + log_q[:, k].exp() * cost
    assert loss == pytest.approx(float((batch.weight * hand).sum()), rel=1e-5)


def test_kl_annealing_scales_only_the_latent_terms():
    """loss(beta) = reconstruction + beta * weighted KL, with the same z draw."""
    program = tiny_program(prior="gaussian")
    batch = make_batch(program)
    elbo = program.make_elbo()
    pyro.set_rng_seed(11)
    q = program.guide_dist(batch.x0, batch.masked)
    z = q.rsample()
    p = program.prior.distribution(batch.xt, batch.masked)
    recon = float(-(batch.weight * token_log_lik(program, batch, z)).sum())
    kl = float((batch.weight * batch.masked.any(-1) * torch.distributions.kl_divergence(q, p)).sum())
    for beta in (0.01, 0.5, 1.0):
        pyro.set_rng_seed(11)
        assert elbo.loss(program.model, program.guide, batch, beta) == pytest.approx(
            recon + beta * kl, rel=1e-5)


def test_per_dimension_mixture_density_is_the_product_of_one_dimensional_mixtures():
    """log p(z) = sum_j log sum_k pi_jk N(z_j; mu_jk, sigma_jk), written with scipy, and the
    density integrates to one over a grid (two dimensions: K^2 = 9 modes from 2 x 3 components)."""
    program = tiny_program(prior="mog-per-dim", latent_dim=2, components=3)
    prior = program.prior
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([[0.5, 0.0, -1.0], [0.0, 1.0, 0.2]]))
        prior.locs.copy_(torch.tensor([[-2.0, 0.0, 3.0], [-1.0, 1.0, 2.5]]))
    p = prior.distribution(torch.zeros(1, 4, dtype=torch.long), None)
    pi = torch.softmax(prior.logits, -1).detach().numpy()
    mu, sd = prior.locs.detach().numpy(), (torch.nn.functional.softplus(prior.raw_scales) +
                                           1e-3).detach().numpy()
    z = torch.randn(50, 2) * 2
    hand = sum(np.log((pi[j] * stats.norm.pdf(z[:, j, None].numpy(), mu[j], sd[j])).sum(-1))
               for j in range(2))
    assert np.allclose(p.log_prob(z[:, None]).squeeze(-1).detach().numpy(), hand, atol=1e-5)
    grid = torch.linspace(-9, 11, 801)
    cells = torch.cartesian_prod(grid, grid)
    mass = p.log_prob(cells[:, None]).exp().sum() * (grid[1] - grid[0]) ** 2
    assert float(mass) == pytest.approx(1.0, abs=1e-3)


def features_program(**kw):
    return tiny_program(prior="discrete-features", guide="exact", components=4, arch="transformer",
                        **kw)


def test_discrete_features_prior_starts_as_the_discrete_one_and_then_reads_the_denoiser():
    """Its head starts at zero (p(z | xt) = softmax(pi) for every xt); with a head it reads the
    denoiser's own z-free features: change the denoiser and p(z | xt) changes, while no gradient
    of the prior reaches the denoiser."""
    program = features_program()
    mask = program.mask_id
    xt = torch.tensor([[mask, mask, mask, mask], [1, mask, 3, mask]])
    with torch.no_grad():
        program.prior.logits.copy_(torch.tensor([0.5, -1.0, 0.0, 1.5]))
    torch.testing.assert_close(program.prior_dist(xt).probs,
                               F.softmax(program.prior.logits, -1).expand(2, 4))
    torch.nn.init.normal_(program.prior.head[-1].weight)
    pa, pb = program.prior_dist(xt).probs
    assert not torch.allclose(pa, pb)
    program.prior_dist(xt).log_prob(torch.tensor([0, 1])).sum().backward()
    assert program.prior.head[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in program.denoiser.parameters())
    with torch.no_grad():
        program.denoiser.trunk.embed.weight.mul_(-2.0)
    assert not torch.allclose(program.prior_dist(xt).probs[1], pb)
    assert not any(name.startswith("prior.") and "denoiser" in name
                   for name, _ in program.named_parameters())  # a reference, not a copy


def test_with_everything_else_fixed_the_elbo_fits_the_feature_prior_to_the_exact_posterior():
    """Training only the head (the probe of a trained VMD) minimises sum_b w_b CE(q_b, p_b): the
    enumerated ELBO's gradient in the head is that cross-entropy's, q the exact posterior."""
    program = features_program()
    torch.nn.init.normal_(program.prior.head[-1].weight)
    batch = make_batch(program)
    head = list(program.prior.head.parameters())
    loss = program.make_elbo().differentiable_loss(program.model, program.guide, batch)
    elbo_grads = torch.autograd.grad(loss, head)
    q = program.guide_dist(batch.x0, batch.masked).probs
    log_p = program.prior_dist(batch.xt).logits
    cross_entropy = -(q * log_p).sum(-1) * batch.masked.any(-1)
    hand_grads = torch.autograd.grad((batch.weight * cross_entropy).sum(), head)
    for a, b in zip(elbo_grads, hand_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_discrete_features_prior_reads_the_denoiser_once_per_training_step():
    """The model's prior and the exact guide ask for p(z | xt) of equal inputs: one z-free pass
    serves both, the loss is the one computed without reuse, and a changed denoiser (an
    optimiser step) or input is read afresh."""
    program = features_program()
    torch.nn.init.normal_(program.prior.head[-1].weight)
    batch = make_batch(program)
    reads = []
    # a pass is z-free when the trunk gets the tokens alone (the likelihood's get z's embedding)
    program.denoiser.trunk.register_forward_hook(lambda m, inputs, out: reads.append(len(inputs) == 1))
    elbo = program.make_elbo()
    loss = elbo.differentiable_loss(program.model, program.guide, batch)
    assert reads.count(True) == 1
    program.prior._last = None                        # the same loss without reuse
    torch.testing.assert_close(elbo.differentiable_loss(program.model, program.guide, batch), loss)
    optimiser = torch.optim.SGD(program.denoiser.parameters(), lr=0.1)
    loss.backward()
    optimiser.step()
    before = reads.count(True)
    elbo.differentiable_loss(program.model, program.guide, batch)
    assert reads.count(True) == before + 1  # new weights: read once again
    program.prior_dist(batch.xt[:1])
    assert reads.count(True) == before + 2  # a new input too


def test_discrete_features_prior_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="transformer"):
        tiny_program(prior="discrete-features", guide="exact", components=4)
    from vmd_pyro.networks import NetConfig
    from vmd_pyro.program import ProgramConfig, build_program
    net = NetConfig(vocab_size=5, seq_len=4, arch="transformer", hidden=16, layers=1, heads=2,
                    block_size=2)
    with pytest.raises(ValueError, match="no block form"):
        build_program(ProgramConfig(net=net, prior="discrete-features", components=4))


def test_every_prior_says_truly_whether_it_has_a_mode():
    """``Prior.has_mode`` is what run.py checks before training for ``--z-strategy mode``; it
    must agree with whether the prior's distribution has a ``.mode`` (blocks: per block)."""
    from models import PRIORS
    from vmd_pyro.networks import NetConfig
    from vmd_pyro.program import ProgramConfig, build_program
    for name, cls in PRIORS.items():
        net = NetConfig(vocab_size=5, seq_len=4, arch="transformer", hidden=16, layers=1, heads=2,
                        block_size=2 if name.startswith("block") else 0)
        program = build_program(ProgramConfig(
            net=net, prior=name, components=3, latent_dim=3,
            **({"guide": "exact"} if name == "discrete-features" else {})))
        x = torch.full((2, 4), program.mask_id)
        try:
            program.prior_dist(x).mode
            has_mode = True
        except NotImplementedError:
            has_mode = False
        assert cls.has_mode == has_mode, name
