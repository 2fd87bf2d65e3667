"""A discrete latent with K values, enumerated exactly."""
import torch
import pyro.distributions as dist
from torch import nn

from models.registry import Prior, register_prior


@register_prior
class DiscretePrior(Prior):
    """``z ~ Categorical(pi)`` over ``K`` values (``--components K``), learnable ``pi``.

    The denoiser sees a learned embedding of ``z``. The matching categorical guide is summed over all
    ``K`` values (``TraceEnum_ELBO``), so the bound has no Monte Carlo noise from ``z``.
    """

    name = "discrete"
    support = "discrete"
    default_guide = "categorical"
    elbo = "enum"

    def __init__(self, latent, net):
        super().__init__(latent, net)
        self.logits = nn.Parameter(torch.zeros(latent.components))
        self.embedding = nn.Embedding(latent.components, latent.latent_dim)

    def distribution(self, xt, masked):
        return dist.Categorical(logits=self.logits).expand((xt.shape[0],))

    def decoder_input(self, z):
        return self.embedding(z)
