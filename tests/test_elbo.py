"""``MeanFieldELBO`` (vmd_pyro.elbo) gives the value and gradients of Pyro's own estimators: of
``TraceMeanField_ELBO`` where the KL is analytic, of ``Trace_ELBO`` where it is not, for the same
draw of z."""
import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

from tests.conftest import tiny_program
from tests.test_block import block_program
from vmd_pyro.elbo import MeanFieldELBO
from vmd_pyro.masking import corrupt, corrupt_blocks


def loss_and_grads(program, elbo, batch, beta, seed=11):
    program.zero_grad(set_to_none=True)
    pyro.set_rng_seed(seed)
    loss = elbo.differentiable_loss(program.model, program.guide, batch, beta)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in program.named_parameters() if p.grad is not None}
    program.zero_grad(set_to_none=True)
    return loss.detach(), grads


def assert_same(a, b):
    (la, ga), (lb, gb) = a, b
    torch.testing.assert_close(la, lb, rtol=1e-6, atol=1e-5)
    assert ga.keys() == gb.keys() and ga
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], rtol=1e-5, atol=1e-6, msg=name)


def random_batch(program, n=16, seed=0, blocks=False):
    g = torch.Generator().manual_seed(seed)
    net = program.cfg.net
    x0 = torch.randint(0, net.vocab_size, (n, net.seq_len), generator=g)
    if blocks:
        return corrupt_blocks(x0, program.mask_id, program.block_size, generator=g)
    return corrupt(x0, program.mask_id, generator=g)


@pytest.mark.parametrize("prior,blocks", [("gaussian", False), ("conditional", False),
                                          ("block-conditional", True)])
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_analytic_kl_sites_match_trace_mean_field_elbo(prior, blocks, beta):
    program = block_program(prior=prior).train() if blocks else tiny_program(prior=prior)
    assert program.elbo_name == "meanfield" and isinstance(program.make_elbo(), MeanFieldELBO)
    batch = random_batch(program, blocks=blocks)
    with pyro.validation_enabled(True):
        assert_same(loss_and_grads(program, MeanFieldELBO(), batch, beta),
                    loss_and_grads(program, TraceMeanField_ELBO(), batch, beta))


@pytest.mark.parametrize("prior", ["mog", "mog-per-dim"])
def test_a_site_without_analytic_kl_is_scored_as_trace_elbo_does(prior):
    program = tiny_program(prior=prior)
    batch = random_batch(program)
    assert_same(loss_and_grads(program, MeanFieldELBO(), batch, 0.5),
                loss_and_grads(program, Trace_ELBO(), batch, 0.5))


def test_loss_is_the_float_of_the_differentiable_loss():
    program = tiny_program()
    batch = random_batch(program)
    pyro.set_rng_seed(3)
    value = MeanFieldELBO().loss(program.model, program.guide, batch, 1.0)
    pyro.set_rng_seed(3)
    assert value == pytest.approx(float(loss_and_grads(program, MeanFieldELBO(), batch, 1.0, 3)[0]))
