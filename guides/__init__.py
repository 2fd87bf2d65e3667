"""Pyro guides: the amortised ``latent_guide`` over a guide family, and ``empty_guide`` for MDM.

A guide family is an ``nn.Module`` whose ``distribution(x0, masked)`` is ``q_phi(z | x0, xt)``;
``GUIDES`` maps a family name to its class. A family states which latent ``support`` it can match.
"""
from guides.amortized import empty_guide, latent_guide
from guides.categorical import CategoricalGuide
from guides.normal import NormalGuide

GUIDES = {"normal": NormalGuide, "categorical": CategoricalGuide}


def make_guide(name, prior, net_cfg):
    """Build guide family ``name`` for ``prior``, refusing a family that cannot match the prior."""
    if name not in GUIDES:
        raise ValueError(f"unknown guide {name!r}; available: {', '.join(sorted(GUIDES))}")
    cls = GUIDES[name]
    if cls.support != prior.support:
        raise ValueError(
            f"guide {name!r} ({cls.support} z) cannot match prior {prior.name!r} ({prior.support} z); "
            f"use --guide {prior.default_guide}")
    return cls(prior.latent, net_cfg)


__all__ = ["GUIDES", "make_guide", "latent_guide", "empty_guide", "NormalGuide",
           "CategoricalGuide"]
