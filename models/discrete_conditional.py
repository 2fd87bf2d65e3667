"""A discrete latent whose probabilities are read from the partially masked sequence."""
import pyro.distributions as dist
from torch import nn

from models.registry import Prior, register_prior
from vmd_pyro.networks import SequenceEncoder


@register_prior
class DiscreteConditionalPrior(Prior):
    """``z ~ Categorical(softmax(f_psi(xt)))`` over ``K`` values (``--components K``).

    Why: a discrete ``z`` that encodes something about the solution costs ``KL(q || p(z))`` against
    an unconditional prior, and at sampling time a draw from that prior is a guess that ignores the
    puzzle. Reading ``xt`` lets the prior put its mass on the values the given tokens make likely.
    The denoiser sees a learned embedding of ``z``; the guide is summed over all ``K`` values
    (``categorical`` or ``exact``), and z strategy ``prior`` redraws from ``p(z | x^(k))``.
    """

    name = "discrete-conditional"
    support = "discrete"
    default_guide = "categorical"
    elbo = "enum"
    depends_on_xt = True

    def __init__(self, latent, net):
        super().__init__(latent, net)
        self.encoder = SequenceEncoder(net, latent.components)
        self.embedding = nn.Embedding(latent.components, latent.latent_dim)

    def distribution(self, xt, masked):
        return dist.Categorical(logits=self.encoder(xt, masked))

    def decoder_input(self, z):
        return self.embedding(z)
