import math

import pyro
import pytest
import torch

import models  # noqa: F401 (registers the priors, guides and Pyro models: vmd_pyro.registry)
from vmd_pyro.masking import corrupt
from vmd_pyro.networks import NetConfig
from vmd_pyro.program import ProgramConfig, build_program


@pytest.fixture(autouse=True)
def _seed_and_validate():
    pyro.set_rng_seed(0)
    pyro.enable_validation(True)
    torch.set_num_threads(1)
    yield


def tiny_program(model="vmd", prior="gaussian", vocab=5, seq_len=4, latent_dim=3, components=3,
                 arch="mlp", **kw):
    net = NetConfig(vocab_size=vocab, seq_len=seq_len, arch=arch, hidden=16, layers=1, heads=2)
    return build_program(ProgramConfig(net=net, model=model, prior=prior, latent_dim=latent_dim,
                                       components=components, **kw))


def pairs(program, n=6, seed=0, t=0.6):
    """``n`` pairs ``(x0, xt)`` at mask rate ``t``, each with position 0 masked so that every example
    observes something (a non-trivial posterior)."""
    g = torch.Generator().manual_seed(seed)
    net = program.cfg.net
    x0 = torch.randint(0, net.vocab_size, (n, net.seq_len), generator=g)
    batch = corrupt(x0, program.mask_id, generator=g, t=torch.full((n,), t))
    batch.masked[:, 0] = True
    batch.xt[:, 0] = program.mask_id
    return batch


def fixed_normal_guide(program, scale: float):
    """Make a Normal guide ``N(0, scale^2)`` whatever it reads (its encoder's output layer set to
    constants): a proposal that does not depend on a random initialisation."""
    out = program.guide_net.encoder.out
    half = out.out_features // 2
    with torch.no_grad():
        out.weight.zero_()
        out.bias.copy_(torch.cat([torch.zeros(half),
                                  torch.full((half,), math.log(math.expm1(scale)))]))
