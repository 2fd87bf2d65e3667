import pyro
import pytest
import torch

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
