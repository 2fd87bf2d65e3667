"""The masked diffusion model (MDM): no latent."""
import pyro
import pyro.distributions as dist
from pyro import poutine

from guides.amortized import empty_guide
from vmd_pyro.registry import PAIRS, Pair, register


def mdm_model(batch, denoiser, beta=1.0):
    """Masked diffusion model, one forward-process draw per sequence.

    Generative story, for each sequence in the batch (weighted by ``w(t)``)::

        x0^i ~ Categorical(softmax(denoiser(xt)_i))   independently, for each masked position i

    Unmasked positions are carried over and contribute nothing (SUBS). A ``steps`` batch scores only
    the positions its step reveals (``batch.scored``). ``beta`` is unused: there is
    no latent to anneal; it is accepted so every model has the same signature.
    """
    pyro.module("denoiser", denoiser)
    with pyro.plate("data", len(batch)), poutine.scale(scale=batch.weight):
        logits = denoiser(batch.xt)
        pyro.sample("x0", dist.Categorical(logits=logits).mask(batch.scored).to_event(1),
                    obs=batch.x0)


register(PAIRS, "mdm", Pair(mdm_model, empty_guide))
