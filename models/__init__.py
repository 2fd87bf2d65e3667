"""Pyro model functions (``mdm_model``, ``vmd_model``) and the latent priors.

Every module in this package is imported here so that the priors and the model/guide pairs defined
in it register themselves in :mod:`vmd_pyro.registry` (a new prior is one new file); the model
modules import ``guides``, which registers the guide families. ``import models`` is thus what an
entry point does before building a program.
"""
import importlib
import pkgutil

from models.registry import PRIORS, LatentConfig, Prior, register_prior

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from models.mdm import mdm_model  # noqa: E402
from models.vmd import vmd_model  # noqa: E402

__all__ = ["PRIORS", "LatentConfig", "Prior", "register_prior",
           "mdm_model", "vmd_model"]
