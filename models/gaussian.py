"""The standard Gaussian prior of the original VMD method."""
import torch
import pyro.distributions as dist

from models.registry import Prior, register_prior


@register_prior
class GaussianPrior(Prior):
    """``z ~ N(0, I_D)``. The KL to a Normal guide is analytic (``TraceMeanField_ELBO``)."""

    name = "gaussian"
    elbo = "meanfield"

    def distribution(self, xt, masked):
        zeros = xt.new_zeros((xt.shape[0], self.latent.latent_dim), dtype=torch.get_default_dtype())
        return dist.Normal(zeros, 1.0).to_event(1)
