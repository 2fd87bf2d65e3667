"""A diagonal Normal guide that also reads what the denoiser predicts without ``z`` (lever 2 of the
latent issue)."""
import torch
import torch.nn.functional as F
import pyro.distributions as dist
from torch import nn

from guides.model_reading import ModelReadingGuide
from vmd_pyro.networks import make_encoder


class ResidualNormalGuide(ModelReadingGuide):
    """``q(z | x0, xt, p0) = N(mu, diag sigma^2)`` of ``(x0, m, p0)``, ``m`` the mask pattern and
    ``p0(x0^i | xt)`` the denoiser's probabilities with its ``z`` input cut off, at the masked
    positions (zeros elsewhere).

    Why: a guide that sees only ``x0`` has to work out for itself which of the revealed tokens the
    denoiser would get wrong, the only thing ``z`` can usefully carry; with ``p0`` beside the truth
    that residual is in its input. ``p0`` is computed without gradients (the guide does not train
    the denoiser) by one extra denoiser call per batch. Models without blocks only.
    """

    name = "normal-residual"
    support = "continuous"
    enumerate = False

    def __init__(self, latent, net_cfg):
        super().__init__(net_cfg)
        self.encoder = make_encoder(net_cfg, 2 * latent.latent_dim, cond_width=net_cfg.hidden)
        self.read = nn.Linear(net_cfg.vocab_size, net_cfg.hidden)

    @torch.no_grad()
    def denoiser_probs(self, tokens, masked):
        """``p0 (B, L, V)``: the denoiser's probabilities on ``xt`` (``tokens`` with the masked
        positions masked again) with no ``z``, zeroed where nothing is masked."""
        denoiser, _ = self.model_parts()
        return denoiser(self.masked_input(tokens, masked)).softmax(-1) * masked.unsqueeze(-1)

    def distribution(self, x0, masked, clean=None):
        features = self.read(self.denoiser_probs(x0, masked))             # (B, L, H)
        loc, raw_scale = self.encoder(x0, masked, cond=features).chunk(2, dim=-1)
        return dist.Normal(loc, F.softplus(raw_scale) + 1e-4).to_event(1)
