"""A learnable mixture-of-Gaussians prior."""
import torch
import torch.nn.functional as F
import pyro.distributions as dist
from torch import nn

from models.registry import Prior, register_prior


@register_prior
class MixturePrior(Prior):
    """``z ~ sum_k pi_k N(mu_k, diag sigma_k^2)`` with learnable ``pi, mu, sigma`` (``--components K``).

    The KL to a Normal guide has no closed form, so it is estimated by sampling (``Trace_ELBO``).
    """

    name = "mog"
    has_mode = False  # a mixture has no closed-form mode

    def __init__(self, latent, net):
        super().__init__(latent, net)
        k, d = latent.components, latent.latent_dim
        self.logits = nn.Parameter(torch.zeros(k))
        self.locs = nn.Parameter(torch.randn(k, d))  # spread the components out at the start
        self.raw_scales = nn.Parameter(torch.full((k, d), 0.5413))  # softplus(0.5413) = 1

    def components(self):
        """The ``K`` diagonal Normals, batch shape ``(K,)``."""
        return dist.Normal(self.locs, F.softplus(self.raw_scales) + 1e-3).to_event(1)

    def distribution(self, xt, masked):
        mixture = dist.MixtureSameFamily(dist.Categorical(logits=self.logits), self.components())
        return mixture.expand((xt.shape[0],))
