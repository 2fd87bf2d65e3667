"""A prior for block VMD conditioned on the clean earlier blocks."""
import torch
import torch.nn.functional as F
import pyro.distributions as dist
from torch import nn

from models.registry import Prior, register_prior
from vmd_pyro.blocks import clean_causal_mask, pool_blocks
from vmd_pyro.networks import TransformerTrunk, check_block_config, run_trunk


@register_prior
class BlockConditionalPrior(Prior):
    """``z_b ~ N(mu(x0_{<b}), diag sigma(x0_{<b})^2)``: each block's latent sees what came before.

    A block-causal transformer summarises the clean blocks ``<= b`` (mean over block ``b``); block
    ``b + 1`` reads that summary. The first block (and a model without blocks) has a learned
    ``N(mu_0, sigma_0^2)``. The KL to a Normal guide is analytic (``TraceMeanField_ELBO``).
    """

    name = "block-conditional"
    elbo = "meanfield"

    def __init__(self, latent, net):
        super().__init__(latent, net)
        d = latent.latent_dim
        # softplus(0.5413) = 1: the first block starts as N(0, I).
        self.start = nn.Parameter(torch.cat([torch.zeros(d), torch.full((d,), 0.5413)]))
        self.net = net
        if net.block_size:
            check_block_config(net)
            self.trunk = TransformerTrunk(net, net.vocab_size + 1)
            self.out = nn.Linear(net.hidden, 2 * d)

    @staticmethod
    def _normal(params):
        loc, raw_scale = params.chunk(2, dim=-1)
        return dist.Normal(loc, F.softplus(raw_scale) + 1e-4).to_event(1)

    def distribution(self, xt, masked):
        """Without blocks there is nothing earlier: the learned first-block prior."""
        return self._normal(self.start.expand(xt.shape[0], -1))

    def block_distribution(self, x0, num_blocks):
        """``p(z_b | x0_{<b})`` for all blocks, batch shape ``(B, num_blocks)``."""
        return self._normal(earlier_blocks_params(self, x0, self.start))


def earlier_blocks_params(prior, x0, start):
    """Per-block parameters ``(B, num_blocks, P)`` of a prior that reads the clean earlier blocks:
    block 0 gets ``start`` (P,), block ``b > 0`` gets ``prior.out`` of the mean of
    ``prior.trunk``'s block-causal features over block ``b - 1`` (a summary of ``x0_{<b}``)."""
    net = prior.net
    h = run_trunk(prior.trunk, x0, clean_causal_mask(net.seq_len, net.block_size, x0.device))
    upto = prior.out(pool_blocks(h, net.block_size))             # block b: summary of x0_{<=b}
    first = start.expand(*upto.shape[:-2], 1, -1)
    return torch.cat([first, upto[..., :-1, :]], -2)
