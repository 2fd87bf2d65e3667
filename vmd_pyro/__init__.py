"""vmd-pyro: Variational Masked Diffusion as a probabilistic program in Pyro.

The library core: the masking process (:mod:`vmd_pyro.masking`), networks
(:mod:`vmd_pyro.networks`), the model/guide bundle (:mod:`vmd_pyro.program`), training
(:mod:`vmd_pyro.training`), sampling (:mod:`vmd_pyro.sampling`) and metrics
(:mod:`vmd_pyro.metrics`); the experiment tasks (:mod:`vmd_pyro.tasks`). Pyro model functions and
priors live in the top-level ``models`` package, guides in ``guides``: they import ``vmd_pyro``, never
the reverse, and ``import models`` registers them in :mod:`vmd_pyro.registry`.
"""
__version__ = "0.1.0"
