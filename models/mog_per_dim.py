"""A learnable mixture of Gaussians for each latent dimension on its own (a factorial prior)."""
import torch
import torch.nn.functional as F
import pyro.distributions as dist
from torch import nn

from models.registry import Prior, register_prior


@register_prior
class PerDimensionMixturePrior(Prior):
    """``z_j ~ sum_k pi_jk N(mu_jk, sigma_jk^2)`` independently for each dimension ``j``.

    With ``D`` dimensions and ``K`` components per dimension the prior has ``K^D`` modes from only
    ``D K`` components: a latent whose dimensions can name independent factors of the data (two
    independent pairs of tokens need two factors of 10 values, where one mixture needs 100
    components). The KL to a Normal guide is sampled (``Trace_ELBO``).
    """

    name = "mog-per-dim"
    has_mode = False  # a mixture has no closed-form mode

    def __init__(self, latent, net):
        super().__init__(latent, net)
        k, d = latent.components, latent.latent_dim
        self.logits = nn.Parameter(torch.zeros(d, k))
        self.locs = nn.Parameter(torch.randn(d, k))
        self.raw_scales = nn.Parameter(torch.full((d, k), 0.5413))  # softplus(0.5413) = 1

    def distribution(self, xt, masked):
        components = dist.Normal(self.locs, F.softplus(self.raw_scales) + 1e-3)
        per_dim = dist.MixtureSameFamily(dist.Categorical(logits=self.logits), components)
        return per_dim.to_event(1).expand((xt.shape[0],))
