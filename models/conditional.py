"""A learned prior conditioned on the partially masked sequence."""
import torch.nn.functional as F
import pyro.distributions as dist

from models.registry import Prior, register_prior
from vmd_pyro.networks import SequenceEncoder


@register_prior
class ConditionalPrior(Prior):
    """``z ~ N(mu_psi(xt), diag sigma_psi(xt)^2)``: the prior sees what is already decoded.

    At sampling time the z strategy ``prior`` redraws ``z`` from it after every step. The KL to a
    Normal guide is analytic (``TraceMeanField_ELBO``).
    """

    name = "conditional"
    elbo = "meanfield"
    depends_on_xt = True

    def __init__(self, latent, net):
        super().__init__(latent, net)
        self.encoder = SequenceEncoder(net, 2 * latent.latent_dim)

    def distribution(self, xt, masked):
        loc, raw_scale = self.encoder(xt, masked).chunk(2, dim=-1)
        return dist.Normal(loc, F.softplus(raw_scale) + 1e-4).to_event(1)
