"""The exact posterior of a discrete latent, read off the model itself: a guide with no network."""
import torch
import pyro.distributions as dist

from guides.model_reading import ModelReadingGuide
from vmd_pyro.masking import first_call, path_logits


class ExactPosterior(ModelReadingGuide):
    """``q(z = k | x0, xt) = p(z = k | x0, xt)``, proportional to
    ``p(k | xt) prod_i p(x0^i | xt, k)`` over the scored positions, from the model's own prior and
    denoiser evaluated at every one of the ``K`` values of ``z``.

    Why: with it the enumerated ELBO is the exact ``log p(x0 | xt)`` of the mixture the model
    defines, with no amortisation gap, so a latent that stays unused is one the model has no use
    for, not one a small guide failed to find. It is computed without gradients: at the exact
    posterior the gradient of the ELBO is ``E_q grad log p(x0, z | xt)`` (Fisher's identity), which
    the enumerated model term supplies. Costs one denoiser call per value of ``z`` (one call in all
    with ``--z-conditioning head``). Discrete priors, models without blocks.
    """

    name = "exact"
    support = "discrete"
    enumerate = True
    reads_paths = True  # the posterior given every step of a path (objective ``paths``)

    def __init__(self, latent, net_cfg):
        super().__init__(net_cfg)
        self.components = latent.components

    @torch.no_grad()
    def distribution(self, tokens, masked, clean=None):
        """``tokens`` with the flags ``masked``: ``x0`` (objective J) or ``x^(k+1)``, the step's
        reveals known and later ones still masked (objective ``steps``); the model reads the
        masked positions as masked and scores those whose token ``tokens`` shows. With a step
        axis, ``(B, T, L)`` (objective ``paths``), the likelihoods of all ``T`` steps multiply and
        the prior reads the first step's input."""
        denoiser, prior = self.model_parts()
        xt = self.masked_input(tokens, masked)
        scored = masked & (tokens != self.mask_id)
        values = torch.arange(self.components, device=tokens.device)
        z = prior.decoder_input(values).unsqueeze(-2)                      # (K, 1, D)
        logp = path_logits(denoiser, xt, z).log_softmax(-1)                 # (K, B, [T,] L, V)
        index = torch.where(scored, tokens, torch.zeros_like(tokens)).unsqueeze(-1)
        loglik = (logp.gather(-1, index.expand(*logp.shape[:-1], 1)).squeeze(-1)
                  * scored).flatten(2).sum(-1)                              # (K, B)
        return dist.Categorical(logits=prior.distribution(*first_call(xt, masked)).logits
                                + loglik.T)
