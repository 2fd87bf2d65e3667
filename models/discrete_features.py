"""A discrete latent whose probabilities are read from the denoiser's own features of xt."""
import torch
import pyro.distributions as dist
from torch import nn

from models.discrete import DiscretePrior
from models.registry import register_prior


@register_prior
class DenoiserFeaturePrior(DiscretePrior):
    """``z ~ Categorical(softmax(pi + mean_i g(h_i(xt))))`` over ``K`` values, where ``h(xt)`` are
    the denoiser's last features of ``xt`` with ``z`` cut off and ``g`` is a small per-position
    MLP (``--prior-hidden`` wide).

    Why: what ``z`` carries is part of the answer that the denoiser is unsure of; a prior with its
    own network (``discrete-conditional``) learns to read the puzzle from the KL's few nats per
    sequence alone, while the denoiser's features are trained on every token. This prior reads
    them as they are (no gradient flows back, so the denoiser is trained by its own loss only):
    it measures how much of ``z`` the denoiser's computation can predict. It extends
    ``discrete`` (the same ``pi`` and embedding of ``z``) with ``g``'s last layer at zero, so it
    starts as that prior, and a trained ``discrete`` VMD can be given it with ``--init-denoiser``
    and ``--train-only prior.head``. Costs one ``z``-free pass of the denoiser per new input: a
    training step asks for ``p(z | xt)`` twice (the model's prior and the exact guide's), and
    the second time reuses the first's features. Transformer denoisers without blocks.
    """

    name = "discrete-features"
    depends_on_xt = True
    reads_denoiser = True

    def __init__(self, latent, net):
        super().__init__(latent, net)
        if net.arch != "transformer":
            raise ValueError("prior 'discrete-features' reads a transformer denoiser's features "
                             "(--arch transformer)")
        self.width = net.hidden
        self.head = None
        self._denoiser = ()
        self._last = None  # (denoiser state, xt, features) of the last pass

    def read_from(self, denoiser):
        self._denoiser = (denoiser,)  # a tuple: not registered as a submodule of the prior
        self.head = nn.Sequential(nn.Linear(denoiser.cfg.hidden, self.width), nn.GELU(),
                                  nn.Linear(self.width, self.latent.components))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def distribution(self, xt, masked):
        if self.head is None:
            raise RuntimeError("prior 'discrete-features' has no denoiser to read (read_from)")
        return dist.Categorical(logits=self.logits + self.head(self._features(xt)).mean(-2))

    def _features(self, xt):
        """The denoiser's z-free features of ``xt`` (B, L, H), computed again only when the input
        or the denoiser (its mode, or any parameter changed in place, as an optimiser step does)
        differs from the last call's."""
        denoiser = self._denoiser[0]
        state = (denoiser.training, tuple(p._version for p in denoiser.parameters()))
        if self._last is not None:
            last_state, last_xt, features = self._last
            if last_state == state and last_xt.shape == xt.shape \
                    and last_xt.device == xt.device and torch.equal(last_xt, xt):
                return features
        with torch.no_grad():
            features = denoiser.trunk(xt)
        self._last = (state, xt.clone(), features)
        return features
