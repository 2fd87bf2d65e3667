"""The prior registry: ``--prior NAME`` picks a :class:`Prior` subclass.

A prior is a small ``nn.Module`` that says what ``p(z | .)`` is (:meth:`Prior.distribution`), how a
value of ``z`` is fed to the denoiser (:meth:`Prior.decoder_input`), which guide family matches it and
which ELBO estimator fits it. Adding a prior is adding one file under ``models/`` that defines a
subclass decorated with :func:`register_prior`; ``models/__init__.py`` imports every module of the
package, so nothing else changes. The table itself is :data:`vmd_pyro.registry.PRIORS`, where
:class:`~vmd_pyro.program.DiffusionProgram` looks priors up.
"""
from __future__ import annotations

import torch
from torch import nn

from vmd_pyro.networks import NetConfig
from vmd_pyro.program import LatentConfig
from vmd_pyro.registry import PRIORS, register


class Prior(nn.Module):
    """Base class of latent priors ``p(z | xt)`` (most ignore ``xt``)."""

    name: str = ""
    support: str = "continuous"     # "continuous" or "discrete": which guides can match it
    default_guide: str = "normal"   # guide family from ``guides.GUIDES``
    elbo: str = "trace"             # "trace", "meanfield" (analytic KL) or "enum" (enumerated guide)
    depends_on_xt: bool = False     # True for learned priors p(z | xt); enables z strategy "prior"
    reads_denoiser: bool = False    # True: the program hands it the denoiser (read_from) once built
    has_mode: bool = True           # its distribution's ``.mode`` exists (z strategy "mode")

    def __init__(self, latent: LatentConfig, net: NetConfig):
        super().__init__()
        self.latent = latent
        if net.block_size and self.depends_on_xt and (
                type(self).block_distribution is Prior.block_distribution):
            raise ValueError(f"prior {self.name!r} conditions on the whole xt and has no block form;"
                             " in block models use 'block-conditional' or an independent prior")

    @property
    def decoder_dim(self) -> int:
        """Size of the vector the denoiser receives for one value of ``z``."""
        return self.latent.latent_dim

    def distribution(self, xt: torch.Tensor, masked: torch.Tensor):
        """``p(z | xt)`` with batch shape ``(B,)``."""
        raise NotImplementedError

    def block_distribution(self, x0: torch.Tensor, num_blocks: int):
        """``p(z_b | .)`` for every block of every sequence, batch shape ``(B, num_blocks)``. This
        default is for priors that ignore ``xt`` (``gaussian``, ``mog``, ``discrete``): one
        independent draw per block, as in the original method. A prior may override it to condition
        block ``b`` on the clean earlier blocks ``x0_{<b}`` (``block-conditional``)."""
        first = x0[:1]  # such a prior reads only the batch size from its arguments
        return self.distribution(first, torch.zeros_like(first, dtype=torch.bool)).expand(
            (x0.shape[0], num_blocks))

    def read_from(self, denoiser: nn.Module) -> None:
        """Priors with ``reads_denoiser``: the program's denoiser, held as a reference (its
        parameters belong to the model's denoiser, not to the prior)."""
        raise NotImplementedError

    def decoder_input(self, z: torch.Tensor) -> torch.Tensor:
        """Map a value of ``z`` to the denoiser's conditioning vector (identity for vectors)."""
        return z


def register_prior(cls: type[Prior]) -> type[Prior]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} must set a class attribute `name`")
    register(PRIORS, cls.name, cls)
    return cls
