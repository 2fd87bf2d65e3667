"""The prior registry: ``--prior NAME`` picks a :class:`Prior` subclass.

A prior is a small ``nn.Module`` that says what ``p(z | .)`` is (:meth:`Prior.distribution`), how a
value of ``z`` is fed to the denoiser (:meth:`Prior.decoder_input`), which guide family matches it and
which ELBO estimator fits it. Adding a prior is adding one file under ``models/`` that defines a
subclass decorated with :func:`register_prior`; ``models/__init__.py`` imports every module of the
package, so nothing else changes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vmd_pyro.networks import NetConfig

PRIORS: dict[str, type["Prior"]] = {}


@dataclass
class LatentConfig:
    latent_dim: int = 8      # dimension of a continuous z, or of the embedding of a discrete z
    components: int = 10     # K: mixture components (mog) or values of a discrete z


class Prior(nn.Module):
    """Base class of latent priors ``p(z | xt)`` (most ignore ``xt``)."""

    name: str = ""
    support: str = "continuous"     # "continuous" or "discrete": which guides can match it
    default_guide: str = "normal"   # guide family from ``guides.GUIDES``
    elbo: str = "trace"             # "trace", "meanfield" (analytic KL) or "enum" (enumerated guide)
    depends_on_xt: bool = False     # True for learned priors p(z | xt); enables z strategy "prior"

    def __init__(self, latent: LatentConfig, net: NetConfig):
        super().__init__()
        self.latent = latent

    @property
    def decoder_dim(self) -> int:
        """Size of the vector the denoiser receives for one value of ``z``."""
        return self.latent.latent_dim

    def distribution(self, xt: torch.Tensor, masked: torch.Tensor):
        """``p(z | xt)`` with batch shape ``(B,)``."""
        raise NotImplementedError

    def decoder_input(self, z: torch.Tensor) -> torch.Tensor:
        """Map a value of ``z`` to the denoiser's conditioning vector (identity for vectors)."""
        return z


def register_prior(cls: type[Prior]) -> type[Prior]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} must set a class attribute `name`")
    if cls.name in PRIORS and PRIORS[cls.name] is not cls:
        raise ValueError(f"prior name {cls.name!r} is registered twice")
    PRIORS[cls.name] = cls
    return cls


def get_prior_class(name: str) -> type[Prior]:
    try:
        return PRIORS[name]
    except KeyError:
        raise ValueError(f"unknown prior {name!r}; available: {', '.join(sorted(PRIORS))}") from None
