"""``MeanFieldELBO``: Pyro's ``TraceMeanField_ELBO``, computing only the densities its loss reads.

Pyro's importance trace scores every sample site of the model and the guide before the mean-field
loss looks at them. For a latent site whose KL to the prior has a closed form, the loss then uses
the KL and discards both log-densities: on the 4-token synthetic MLP, skipping them makes a VMD
training step 3.6% faster (``results/bench/speed.json``, measured against Pyro's in one run).
Here the observed sites are scored, each latent site contributes its analytic KL, and only a
latent site without one is scored in both traces (``log p(z) - log q(z)``, as ``Trace_ELBO``
would). Same value and gradients as ``TraceMeanField_ELBO`` (``tests/test_elbo.py``), and it is
still an ordinary Pyro ELBO (``differentiable_loss``, ``loss``, ``SVI``).
"""
from __future__ import annotations

import torch
from pyro import poutine
from pyro.distributions.kl import kl_divergence
from pyro.distributions.util import scale_and_mask
from pyro.infer import TraceMeanField_ELBO
from pyro.infer.util import is_validation_enabled, torch_item
from pyro.poutine.util import prune_subsample_sites
from pyro.util import check_model_guide_match


def site_log_prob(site) -> torch.Tensor:
    """The site's log-density at its value, with the site's scale and mask applied, summed."""
    log_p = site["fn"].log_prob(site["value"])
    return scale_and_mask(log_p, site["scale"], site["mask"]).sum()


class MeanFieldELBO(TraceMeanField_ELBO):
    """The mean-field ELBO (analytic KL where one is registered), scoring only what it uses."""

    def _get_trace(self, model, guide, args, kwargs):
        guide_trace = poutine.trace(guide, graph_type="flat").get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace),
                                    graph_type="flat").get_trace(*args, **kwargs)
        if is_validation_enabled():
            check_model_guide_match(model_trace, guide_trace, self.max_plate_nesting)
        return prune_subsample_sites(model_trace), prune_subsample_sites(guide_trace)

    def _differentiable_loss_particle(self, model_trace, guide_trace):
        elbo = 0.0
        for name, site in model_trace.nodes.items():
            if site["type"] != "sample":
                continue
            if site["is_observed"]:
                elbo = elbo + site_log_prob(site)
                continue
            q = guide_trace.nodes[name]
            if not q["fn"].has_rsample:  # the mean-field estimator needs reparameterised draws
                raise NotImplementedError(f"latent site {name!r}: the guide's distribution "
                                          "cannot be reparameterised; use Trace_ELBO")
            try:
                kl = kl_divergence(q["fn"], site["fn"])
            except NotImplementedError:  # no closed form: the sampled log-ratio at q's draw
                elbo = elbo + site_log_prob(site) - site_log_prob(q)
            else:
                elbo = elbo - scale_and_mask(kl, q["scale"], q["mask"]).sum()
        extra = [n for n, s in guide_trace.nodes.items()
                 if s["type"] == "sample" and n not in model_trace.nodes]
        if extra:
            raise NotImplementedError(f"guide-only sample sites {extra} are not supported")
        return torch_item(-elbo), -elbo
