"""``DiffusionProgram``: one object holding the networks of an MDM or VMD and its Pyro model, guide
and ELBO. Training, sampling, metrics and diagnostics all go through it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import pyro
import torch
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from torch import nn

from vmd_pyro.elbo import MeanFieldELBO
from vmd_pyro.masking import DiffusionBatch, corrupt, corrupt_blocks, step_batch, step_batch_blocks
from vmd_pyro.networks import NetConfig, make_denoiser
from vmd_pyro.registry import GUIDES, PAIRS, PRIORS, lookup

# "meanfield" is TraceMeanField_ELBO minus the log-densities it would discard (vmd_pyro/elbo.py)
ELBOS = {"trace": Trace_ELBO, "meanfield": MeanFieldELBO, "enum": TraceEnum_ELBO}


@dataclass
class LatentConfig:
    latent_dim: int = 8      # dimension of a continuous z, or of the embedding of a discrete z
    components: int = 10     # K: mixture components (mog) or values of a discrete z


@dataclass
class ProgramConfig:
    net: NetConfig
    model: str = "vmd"               # "vmd" or "mdm"
    prior: str = "gaussian"          # registry name, ignored for mdm
    guide: str | None = None         # guide family; None = the prior's default
    latent_dim: int = 8
    components: int = 10
    elbo: str | None = None          # override the prior's ELBO ("trace", "meanfield", "enum")
    # Width and depth of the guide's encoder q(z | x0, xt); None: the small default of
    # small_guide_size. For an MLP encoder the depth is its number of hidden layers, and 0 makes
    # it linear (no hidden layer at all).
    guide_hidden: int | None = None
    guide_layers: int | None = None
    # Width and depth of a learned prior's network (conditional, block-conditional, block-mog);
    # None: the denoiser's. A prior only summarises its input into a few parameters, so it may be
    # narrower, e.g. to compare a block VMD with a block diffusion of equal parameter count.
    prior_hidden: int | None = None
    prior_layers: int | None = None
    # 2: MLP encoders have `layers` hidden layers. Configs saved before the field (version 1) built
    # every MLP encoder with two hidden layers, or none at 0 layers; from_dict reads them so.
    version: int = 2

    def __post_init__(self):
        # Resolved here so that saved configs (and resume checks) hold the sizes actually built.
        hidden, layers = small_guide_size(self.net)
        self.guide_hidden = hidden if self.guide_hidden is None else int(self.guide_hidden)
        self.guide_layers = layers if self.guide_layers is None else int(self.guide_layers)
        self.prior_hidden = self.net.hidden if self.prior_hidden is None else int(self.prior_hidden)
        self.prior_layers = self.net.layers if self.prior_layers is None else int(self.prior_layers)
        for name in ("guide_hidden", "guide_layers", "prior_hidden", "prior_layers"):
            least = 0 if name == "guide_layers" else 1  # 0 guide layers: a linear MLP encoder
            if getattr(self, name) < least:
                raise ValueError(f"{name} must be >= {least}")
        if self.guide_layers == 0 and self.net.arch != "mlp":
            raise ValueError("guide_layers 0 (a linear guide encoder) is for the MLP; a "
                             "transformer guide needs at least one layer")
        for name in ("guide_hidden", "prior_hidden"):
            if self.net.arch == "transformer" and getattr(self, name) % self.net.heads:
                raise ValueError(f"{name} {getattr(self, name)} must be a multiple of the "
                                 f"{self.net.heads} attention heads")

    def guide_net(self) -> NetConfig:
        """The network configuration of the guide's encoder: the denoiser's, resized."""
        return replace(self.net, hidden=self.guide_hidden, layers=self.guide_layers)

    def prior_net(self) -> NetConfig:
        """The network configuration of a learned prior: the denoiser's, resized."""
        return replace(self.net, hidden=self.prior_hidden, layers=self.prior_layers)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ProgramConfig":
        net = NetConfig(**d["net"])
        # Configs saved before the guide had its own size used the denoiser's width and depth.
        sizes = {"guide_hidden": net.hidden, "guide_layers": net.layers,
                 "prior_hidden": net.hidden, "prior_layers": net.layers}
        d = {**sizes, **d, "net": net}
        if d.get("version", 1) < 2 and net.arch == "mlp":
            for name in ("guide_layers", "prior_layers"):
                if d[name] is not None and int(d[name]) >= 1:
                    d[name] = 2
        return cls(**{**d, "version": cls.version})


def small_guide_size(net: NetConfig) -> tuple[int, int]:
    """Default ``(hidden, layers)`` of the guide's encoder: a quarter of the denoiser's width (at
    least 16; a multiple of the heads for transformers) and a third of its depth (at least 1).

    The guide only has to summarise ``(x0, mask)`` into a few latent dimensions, while the
    denoiser predicts every token; at a quarter of the width the guide costs a few percent of the
    denoiser's FLOPs, which keeps a VMD training step within 1.3x of MDM's (results/bench).
    """
    hidden = max(16, net.hidden // 4)
    if net.arch == "transformer":
        hidden = -(-hidden // net.heads) * net.heads
    return hidden, max(1, net.layers // 3)


class DiffusionProgram(nn.Module):
    """Networks plus the Pyro ``model``/``guide`` pair that defines the loss."""

    def __init__(self, cfg: ProgramConfig):
        super().__init__()
        if cfg.model not in ("vmd", "mdm"):
            raise ValueError(f"unknown model {cfg.model!r}; choose 'vmd' or 'mdm'")
        self.cfg = cfg
        self.mask_id = cfg.net.mask_id
        # Block diffusion (vmd_pyro.blocks): one latent and one diffusion time per block.
        self.block_size = cfg.net.block_size
        self._model, self._guide = lookup(
            PAIRS, ("block-" if self.block_size else "") + cfg.model, "Pyro model")
        if cfg.model == "mdm":
            self.prior = None
            self.guide_net = None
            self.denoiser = make_denoiser(cfg.net)
            self.elbo_name = "trace"
        else:
            latent = LatentConfig(cfg.latent_dim, cfg.components)
            self.prior = lookup(PRIORS, cfg.prior, "prior")(latent, cfg.prior_net())
            self.guide_net = make_guide(cfg.guide or self.prior.default_guide, self.prior,
                                        cfg.guide_net())
            net_cfg = NetConfig(**{**asdict(cfg.net), "latent_dim": self.prior.decoder_dim})
            self.denoiser = make_denoiser(net_cfg)
            # Built after the guide, so that a seed gives every model the same initial weights
            # as before guides could read the model; such a guide is told of it now.
            if self.prior.reads_denoiser:
                self.prior.read_from(self.denoiser)
            if getattr(self.guide_net, "reads_denoiser", False):
                self.guide_net.read_from(self.denoiser, self.prior)
            self.elbo_name = cfg.elbo or self.prior.elbo
            if self.guide_net.enumerate and self.elbo_name != "enum":
                raise ValueError(f"guide {cfg.guide!r} enumerates z and needs elbo 'enum'")
        if self.elbo_name not in ELBOS:
            raise ValueError(f"unknown elbo {self.elbo_name!r}; choose from {sorted(ELBOS)}")

    @property
    def has_latent(self) -> bool:
        return self.prior is not None

    # --- the Pyro program -------------------------------------------------------------------
    def model(self, batch, beta=1.0):
        if self.has_latent:
            return self._model(batch, self.denoiser, self.prior, beta)
        return self._model(batch, self.denoiser, beta)

    def guide(self, batch, beta=1.0):
        return self._guide(batch, self.guide_net, beta)

    def make_elbo(self, num_particles: int = 1) -> pyro.infer.ELBO:
        kwargs = ({"max_plate_nesting": 2 if self.block_size else 1}
                  if self.elbo_name == "enum" else {})
        return ELBOS[self.elbo_name](num_particles=num_particles, vectorize_particles=False,
                                     **kwargs)

    def corrupt(self, x0: torch.Tensor, maskable: torch.Tensor | None = None, *,
                antithetic: bool = True, generator=None) -> DiffusionBatch:
        """Draw ``t`` (one per block in block models) and ``xt ~ q(xt | x0)``."""
        if self.block_size:
            return corrupt_blocks(x0, self.mask_id, self.block_size, maskable=maskable,
                                  antithetic=antithetic, generator=generator)
        return corrupt(x0, self.mask_id, maskable=maskable, antithetic=antithetic,
                       generator=generator)

    def step_batch(self, x0: torch.Tensor, nfe_choices, maskable: torch.Tensor | None = None, *,
                   generator=None, order_scores=None) -> DiffusionBatch:
        """One random step of the T-call sampler per sequence (per block in block models, with ``T``
        calls per block): the batch of the ``steps`` objective. ``order_scores``: the sampler's
        own order instead of a random one (:func:`vmd_pyro.masking.step_batch`; no blocks)."""
        if self.block_size:
            if order_scores is not None:
                raise ValueError("block models train the steps objective in random order only")
            return step_batch_blocks(x0, self.mask_id, self.block_size, nfe_choices,
                                     maskable=maskable, generator=generator)
        return step_batch(x0, self.mask_id, nfe_choices, maskable=maskable, generator=generator,
                          order_scores=order_scores)

    # --- direct access for sampling and metrics ---------------------------------------------
    def logits(self, xt: torch.Tensor, z: torch.Tensor | None = None,
               x0: torch.Tensor | None = None) -> torch.Tensor:
        """``log p(x0^i | xt, z)`` logits for every position; ``z`` is a raw latent value. Block
        models also read the clean earlier blocks from ``x0`` (default: ``xt`` itself, which is
        what block-by-block decoding has)."""
        z_input = self.decoder_input(z)
        if self.block_size:
            return self.denoiser(xt, z_input, xt if x0 is None else x0)
        return self.denoiser(xt) if z is None else self.denoiser(xt, z_input)

    def decoder_input(self, z: torch.Tensor | None) -> torch.Tensor | None:
        return None if z is None else self.prior.decoder_input(z)

    def next_block_logits(self, xt: torch.Tensor, z: torch.Tensor | None, block: int,
                          past: list | None) -> torch.Tensor:
        """Block models: the logits of block ``block`` alone, ``(B, L', V)``, from its noisy
        tokens ``xt (B, L')``, the raw latents ``z`` of every block and the cached keys and values
        ``past`` of the clean blocks before it (``denoiser.extend_past``): what :meth:`logits`
        gives for that block when the earlier blocks are decoded, at a fraction of the cost."""
        return self.denoiser.next_block_logits(xt, self.decoder_input(z), block, past)

    def prior_dist(self, xt: torch.Tensor):
        """``p(z | xt)``; in block models ``p(z_b | x^{<b})`` for every block, shape (B, blocks)."""
        if self.block_size:
            return self.prior.block_distribution(xt, self.cfg.net.num_blocks)
        return self.prior.distribution(xt, xt == self.mask_id)

    def batch_prior(self, batch: DiffusionBatch):
        """The prior the model uses for ``batch`` (block models: given the clean earlier blocks)."""
        if self.block_size:
            return self.prior_dist(batch.x0)
        return self.prior.distribution(batch.xt, batch.masked)

    def guide_dist(self, x0: torch.Tensor, masked: torch.Tensor,
                   clean: torch.Tensor | None = None):
        """``q(z | tokens, flags)``; block guides read the earlier blocks from ``clean`` (default
        ``x0`` itself; a family that never serves block models need not take ``clean``)."""
        if clean is None:
            return self.guide_net.distribution(x0, masked)
        return self.guide_net.distribution(x0, masked, clean)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def make_guide(name: str, prior, net_cfg: NetConfig) -> nn.Module:
    """Guide family ``name`` for ``prior``, refusing a family that cannot match the prior."""
    cls = lookup(GUIDES, name, "guide")
    if cls.support != prior.support:
        raise ValueError(
            f"guide {name!r} ({cls.support} z) cannot match prior {prior.name!r} ({prior.support} z); "
            f"use --guide {prior.default_guide}")
    return cls(prior.latent, net_cfg)


def build_program(cfg: ProgramConfig) -> DiffusionProgram:
    """Build a fresh program (after ``import models``: :mod:`vmd_pyro.registry`). Clears Pyro's
    global parameter store, so that stale parameters from an earlier model (a notebook cell run
    twice) can never leak into this one."""
    pyro.clear_param_store()
    return DiffusionProgram(cfg)
