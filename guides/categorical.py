"""Categorical guide family for a discrete latent; enumerated exactly."""
import pyro.distributions as dist
from torch import nn

from vmd_pyro.networks import make_encoder


class CategoricalGuide(nn.Module):
    """``q(z = k | x0, xt) = softmax(f(x0, m))_k`` over the prior's ``K`` values."""

    support = "discrete"
    enumerate = True

    def __init__(self, latent, net_cfg):
        super().__init__()
        self.encoder = make_encoder(net_cfg, latent.components)

    def distribution(self, x0, masked, clean=None):
        return dist.Categorical(logits=self.encoder(x0, masked, clean))
