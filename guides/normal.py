"""Diagonal Normal guide family."""
import torch.nn.functional as F
import pyro.distributions as dist
from torch import nn

from vmd_pyro.networks import make_encoder


class NormalGuide(nn.Module):
    """``q(z | x0, xt) = N(mu(x0, m), diag sigma(x0, m)^2)``, ``m`` the mask pattern."""

    support = "continuous"
    enumerate = False

    def __init__(self, latent, net_cfg):
        super().__init__()
        self.encoder = make_encoder(net_cfg, 2 * latent.latent_dim)

    def distribution(self, x0, masked, clean=None):
        loc, raw_scale = self.encoder(x0, masked, clean).chunk(2, dim=-1)
        return dist.Normal(loc, F.softplus(raw_scale) + 1e-4).to_event(1)
