"""Guide families (guides/): the guide that reads the denoiser's z-free prediction."""
import pyro
import pytest
import torch

from tests.conftest import pairs, tiny_program
from vmd_pyro.checkpoint import load_program, save_checkpoint
from vmd_pyro.latent_usage import without_latent
from vmd_pyro.networks import NetConfig
from vmd_pyro.program import ProgramConfig, build_program


def residual_program(arch="mlp", **kw):
    return tiny_program(guide="normal-residual", arch=arch, **kw)


@pytest.mark.parametrize("arch", ["mlp", "transformer"])
def test_residual_guide_reads_the_denoisers_probabilities_without_z(arch):
    program = residual_program(arch)
    batch = pairs(program)
    probs = program.guide_net.denoiser_probs(batch.x0, batch.masked)
    # independently: the denoiser on xt, its z input cut off, softmax, kept where masked
    with torch.no_grad():
        expected = program.denoiser(batch.xt).softmax(-1)
    masked = batch.masked.unsqueeze(-1)
    assert torch.allclose(probs, torch.where(masked, expected, torch.zeros_like(expected)))
    assert torch.allclose(probs.sum(-1), batch.masked.float())
    # the read is live: another denoiser output layer gives another q
    before = program.guide_dist(batch.x0, batch.masked).mean
    with torch.no_grad():
        program.denoiser.out.weight.mul_(3.0)
    assert not torch.allclose(program.guide_dist(batch.x0, batch.masked).mean, before)


def test_residual_guide_does_not_train_the_denoiser_and_owns_none_of_its_parameters():
    program = residual_program()
    batch = pairs(program)
    program.guide_dist(batch.x0, batch.masked).rsample().sum().backward()
    assert all(p.grad is None for p in program.denoiser.parameters())
    assert all(p.grad is not None for p in program.guide_net.parameters())
    assert not any("denoiser" in name for name, _ in program.guide_net.named_parameters())
    parts = sum(p.numel() for m in (program.denoiser, program.guide_net, program.prior)
                for p in m.parameters())
    assert program.num_parameters() == parts


def test_residual_guide_elbo_equals_hand_written_nelbo_for_the_same_z():
    program = residual_program(elbo="trace")
    batch = pairs(program)
    pyro.set_rng_seed(7)
    loss = program.make_elbo().loss(program.model, program.guide, batch)
    pyro.set_rng_seed(7)
    q = program.guide_dist(batch.x0, batch.masked)
    z = q.rsample()
    p = program.prior.distribution(batch.xt, batch.masked)
    logp = program.denoiser(batch.xt, z).log_softmax(-1).gather(-1, batch.x0.unsqueeze(-1))[..., 0]
    per_example = -(logp * batch.masked).sum(-1) + q.log_prob(z) - p.log_prob(z)
    hand = float((batch.weight * per_example).sum().detach())
    assert float(loss) == pytest.approx(hand, rel=1e-5)


def test_residual_guide_survives_a_checkpoint_and_a_copy(tmp_path):
    program = residual_program()
    batch = pairs(program)
    with torch.no_grad():
        program.denoiser.out.bias.add_(0.5)
    save_checkpoint(tmp_path / "m.pt", program)
    loaded, _ = load_program(tmp_path / "m.pt")
    assert loaded.guide_net.model_parts()[0] is loaded.denoiser
    assert torch.allclose(loaded.guide_dist(batch.x0, batch.masked).mean,
                          program.guide_dist(batch.x0, batch.masked).mean)
    cut = without_latent(program)            # a deep copy: its guide reads the copy's denoiser
    assert cut.guide_net.model_parts()[0] is cut.denoiser


def test_residual_guide_refuses_block_models():
    net = NetConfig(vocab_size=5, seq_len=4, arch="transformer", hidden=16, layers=1, heads=2,
                    block_size=2)
    with pytest.raises(ValueError, match="without blocks"):
        build_program(ProgramConfig(net=net, guide="normal-residual"))


def test_residual_guide_without_a_denoiser_says_so():
    from guides.residual import ResidualNormalGuide
    from vmd_pyro.program import LatentConfig
    guide = ResidualNormalGuide(LatentConfig(latent_dim=3), NetConfig(vocab_size=5, seq_len=4))
    x0 = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(RuntimeError, match="no denoiser to read"):
        guide.distribution(x0, torch.ones(2, 4, dtype=torch.bool))


# --- the exact posterior of a discrete z (guide "exact") ----------------------------------------

def exact_program(arch="mlp", z_conditioning="head", prior="discrete"):
    net = NetConfig(vocab_size=5, seq_len=4, arch=arch, hidden=16, layers=1, heads=2,
                    z_conditioning=z_conditioning)
    program = build_program(ProgramConfig(net=net, prior=prior, guide="exact", latent_dim=3,
                                          components=4))
    with torch.no_grad():  # values of z that change the denoiser's output (its z weights start at 0)
        for p in program.denoiser.film.parameters() if program.denoiser.film is not None else []:
            p.normal_()
        for p in program.prior.parameters():  # a prior that is not uniform
            p.normal_()
    return program


def log_joint(program, xt, x0, scored):
    """``log p(k) + sum_i log p(x0^i | xt, k)`` over the scored positions, ``(B, K)``, one value
    of z at a time."""
    columns = []
    for k in range(program.cfg.components):
        z = torch.full((xt.shape[0],), k)
        logp = program.logits(xt, z).log_softmax(-1).gather(-1, x0.unsqueeze(-1))[..., 0]
        log_prior = program.prior_dist(xt).logits.log_softmax(-1)   # (B, K); (K,) expanded
        columns.append(log_prior[:, k] + (logp * scored).sum(-1))
    return torch.stack(columns, -1)


@pytest.mark.parametrize("arch,z_conditioning", [("mlp", "head"), ("transformer", "head"),
                                                 ("mlp", "input")])
def test_exact_guide_is_bayes_rule_over_the_models_own_mixture(arch, z_conditioning):
    program = exact_program(arch, z_conditioning)
    batch = pairs(program)
    q = program.guide_dist(batch.x0, batch.masked).probs
    with torch.no_grad():
        expected = log_joint(program, batch.xt, batch.x0, batch.masked).softmax(-1)
    torch.testing.assert_close(q, expected, rtol=1e-5, atol=1e-6)
    assert q.std(0).max() > 1e-3                 # a posterior that depends on the sequence


def test_exact_guide_scores_only_the_steps_reveals():
    program = exact_program()
    x0 = torch.randint(0, 5, (6, 4), generator=torch.Generator().manual_seed(0))
    batch = program.step_batch(x0, [2], generator=torch.Generator().manual_seed(1))
    q = program.guide_dist(batch.guide_tokens, batch.masked).probs
    with torch.no_grad():
        expected = log_joint(program, batch.xt, batch.x0, batch.scored).softmax(-1)
    torch.testing.assert_close(q, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("prior", ["discrete", "discrete-conditional"])
def test_with_the_exact_guide_the_elbo_is_the_exact_marginal_likelihood_and_its_gradient(prior):
    program = exact_program(prior=prior)
    batch = pairs(program)
    loss = program.make_elbo().differentiable_loss(program.model, program.guide, batch)
    marginal = log_joint(program, batch.xt, batch.x0, batch.masked).logsumexp(-1)
    exact = -(batch.weight * marginal).sum()
    assert float(loss.detach()) == pytest.approx(float(exact.detach()), rel=1e-5)
    params = list(program.denoiser.parameters()) + list(program.prior.parameters())
    got = torch.autograd.grad(loss, params, allow_unused=True)
    want = torch.autograd.grad(exact, params, allow_unused=True)
    for g, w in zip(got, want):
        if w is None:
            assert g is None or not g.abs().max()
        else:
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)
