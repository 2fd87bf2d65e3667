"""A mixture prior for block VMD whose weights read the clean earlier blocks."""
import pyro.distributions as dist
from torch import nn

from models.block_conditional import earlier_blocks_params
from models.mog import MixturePrior
from models.registry import register_prior
from vmd_pyro.networks import TransformerTrunk, check_block_config


@register_prior
class BlockMixturePrior(MixturePrior):
    """``z_b ~ sum_k pi_k(x0_{<b}) N(mu_k, diag sigma_k^2)``: the ``K`` components of ``mog``
    shared by every block (``--components K``), mixture weights per block from the clean earlier
    blocks.

    The first block (and a model without blocks) is ``mog`` itself, with its learned weights. Why
    not ``mog`` per block: where a later block is fixed by the earlier ones (quad-d1's second
    pair), its latent carries nothing, and with one set of weights for all blocks the KL of that
    block pulls the weights onto one component, away from the even split the first block needs.
    Here the later block's weights can sit on one component alone. The KL to a Normal guide is
    sampled.
    """

    name = "block-mog"

    def __init__(self, latent, net):
        super().__init__(latent, net)                # logits: the first block's weights
        self.net = net
        if net.block_size:
            check_block_config(net)
            self.trunk = TransformerTrunk(net, net.vocab_size + 1)
            self.out = nn.Linear(net.hidden, latent.components)

    def block_distribution(self, x0, num_blocks):
        """``p(z_b | x0_{<b})`` for all blocks, batch shape ``(B, num_blocks)``."""
        logits = earlier_blocks_params(self, x0, self.logits)
        return dist.MixtureSameFamily(dist.Categorical(logits=logits),
                                      self.components().expand(logits.shape))
