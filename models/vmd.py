"""Variational masked diffusion (VMD): a global latent ``z`` per sequence, any registered prior."""
import pyro
import pyro.distributions as dist
from pyro import poutine

from guides.amortized import latent_guide
from vmd_pyro.masking import path_logits
from vmd_pyro.registry import PAIRS, Pair, register


def vmd_model(batch, denoiser, prior, beta=1.0):
    """Variational masked diffusion model, one forward-process draw per sequence.

    Generative story, for each sequence in the batch (all sites weighted by ``w(t)``)::

        z    ~ p(z | xt)                                  (the prior; most ignore xt)
        x0^i ~ Categorical(softmax(denoiser(xt, z)_i))   independently given z, masked i only

    Given ``z`` the tokens are independent, but marginally they are not, so tokens revealed in one
    step can agree. The ``z`` site is additionally scaled by ``beta`` (KL annealing); the guide
    applies the same scales. With a ``joint`` batch (``vmd_pyro.masking.corrupt``) and ``beta = 1``
    the loss is the original method's objective J; with a ``steps`` batch (``step_batch``: input
    ``x^(k)``, scored tokens ``R_k``, weight ``T``) it estimates the few-step bound ``B_T``
    (docs/method.md). With a ``paths`` batch (``path_batch``: every step ``k`` of a sequence's
    path, weight 1) one ``z``, drawn given the first call's input, serves all the steps: the bound
    ``B_T`` of the sampler that holds ``z`` fixed. ``z`` is masked out of sequences with no scored
    token.
    """
    pyro.module("denoiser", denoiser)
    pyro.module("prior", prior)
    with pyro.plate("data", len(batch)), poutine.scale(scale=batch.weight):
        with poutine.scale(scale=beta):
            z = pyro.sample("z", prior.distribution(*batch.first_call())
                            .mask(batch.latent_used()))
        logits = path_logits(denoiser, batch.xt, prior.decoder_input(z))
        pyro.sample("x0", dist.Categorical(logits=logits).mask(batch.scored)
                    .to_event(batch.scored.dim() - 1),
                    obs=batch.x0.unsqueeze(1).expand_as(batch.xt) if batch.path else batch.x0)


register(PAIRS, "vmd", Pair(vmd_model, latent_guide))
