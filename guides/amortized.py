"""The amortised guide ``q_phi(z | x0, xt)`` (any family) and the empty guide of MDM."""
import pyro
from pyro import poutine


def latent_guide(batch, guide_net, beta=1.0):
    """Variational family ``q_phi(z | x0, xt)``, one ``z`` per sequence, amortised by ``guide_net``.

    The ``z`` site carries the same scales as in the model (``w(t)`` times ``beta``), so the guide
    targets the exact posterior ``p(z | x0, xt)``. Families with a discrete ``z`` are enumerated
    exactly (``TraceEnum_ELBO``) instead of sampled. It reads ``batch.guide_tokens`` with the flags
    of ``batch.masked``: ``x0`` for the ``joint`` objective, ``x^(k+1)`` (the step's reveals known)
    for ``steps``. Like the model it leaves out ``z`` where no token is scored.
    """
    pyro.module("guide", guide_net)
    infer = {"enumerate": "parallel"} if guide_net.enumerate else {}
    with pyro.plate("data", len(batch)), poutine.scale(scale=batch.weight * beta):
        pyro.sample("z", guide_net.distribution(batch.guide_tokens, batch.masked)
                    .mask(batch.latent_used()), infer=infer)


def empty_guide(batch, *args, **kwargs):
    """MDM has no latent variable, so its guide has no sample sites."""
