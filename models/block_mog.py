"""A mixture prior for block VMD whose weights read the clean earlier blocks."""
import torch
import torch.nn.functional as F
import pyro.distributions as dist
from torch import nn

from models.block_conditional import earlier_blocks_params
from models.registry import Prior, register_prior
from vmd_pyro.networks import TransformerTrunk, check_block_config


@register_prior
class BlockMixturePrior(Prior):
    """``z_b ~ sum_k pi_k(x0_{<b}) N(mu_k, diag sigma_k^2)``: one set of ``K`` components shared by
    every block (``--components K``), mixture weights per block from the clean earlier blocks.

    The first block (and a model without blocks) has learned weights, as ``mog``. Why not ``mog``
    per block: where a later block is fixed by the earlier ones (quad-d1's second pair), its
    latent carries nothing, and with one set of weights for all blocks the KL of that block pulls
    the weights onto one component, away from the even split the first block needs. Here the
    later block's weights can sit on one component alone. The KL to a Normal guide is sampled.
    """

    name = "block-mog"

    def __init__(self, latent, net):
        super().__init__(latent, net)
        k, d = latent.components, latent.latent_dim
        self.start = nn.Parameter(torch.zeros(k))                    # first block's logits
        self.locs = nn.Parameter(torch.randn(k, d))
        self.raw_scales = nn.Parameter(torch.full((k, d), 0.5413))  # softplus(0.5413) = 1
        self.net = net
        if net.block_size:
            check_block_config(net)
            self.trunk = TransformerTrunk(net, net.vocab_size + 1)
            self.out = nn.Linear(net.hidden, k)

    def _mixture(self, logits):
        components = dist.Normal(self.locs, F.softplus(self.raw_scales) + 1e-3).to_event(1)
        return dist.MixtureSameFamily(dist.Categorical(logits=logits),
                                      components.expand(logits.shape))

    def distribution(self, xt, masked):
        """Without blocks there is nothing earlier: the first block's mixture."""
        return self._mixture(self.start.expand(xt.shape[0], -1))

    def block_distribution(self, x0, num_blocks):
        """``p(z_b | x0_{<b})`` for all blocks, batch shape ``(B, num_blocks)``."""
        return self._mixture(earlier_blocks_params(self, x0))
