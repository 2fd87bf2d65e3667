"""Pyro guides: the amortised ``latent_guide`` over a guide family, and ``empty_guide`` for MDM.

A guide family is an ``nn.Module`` whose ``distribution(x0, masked)`` is ``q_phi(z | x0, xt)``;
``GUIDES`` (:data:`vmd_pyro.registry.GUIDES`) maps a family name to its class, where
:func:`vmd_pyro.program.make_guide` finds it. A family states which latent ``support`` it can match.
"""
from guides.amortized import empty_guide, latent_guide
from guides.categorical import CategoricalGuide
from guides.exact import ExactPosterior
from guides.normal import NormalGuide
from guides.residual import ResidualNormalGuide
from vmd_pyro.registry import GUIDES, register

register(GUIDES, "normal", NormalGuide)
register(GUIDES, "categorical", CategoricalGuide)
register(GUIDES, "normal-residual", ResidualNormalGuide)
register(GUIDES, "exact", ExactPosterior)

__all__ = ["GUIDES", "latent_guide", "empty_guide", "NormalGuide",
           "CategoricalGuide", "ResidualNormalGuide", "ExactPosterior"]
