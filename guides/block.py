"""The amortised guide of block VMD: one latent per block."""
import pyro
from pyro import poutine


def block_latent_guide(batch, guide_net, beta=1.0):
    """``q_phi(z_b | x0_{<b}, tokens and mask of block b)`` for every block, amortised by
    ``guide_net`` (whose encoder is block-causal, :class:`vmd_pyro.networks.BlockSequenceEncoder`).
    Block ``b``'s tokens are ``batch.guide_tokens`` (``x0`` for ``joint``; the block after its step
    for ``steps``), the earlier blocks are clean. The ``z`` site carries the model's scales
    ``w(t_b) * beta`` (or ``T``)."""
    pyro.module("guide", guide_net)
    infer = {"enumerate": "parallel"} if guide_net.enumerate else {}
    with pyro.plate("sequences", len(batch), dim=-2), \
            pyro.plate("blocks", batch.weight.shape[-1], dim=-1), \
            poutine.scale(scale=batch.weight * beta):
        block_size = batch.x0.shape[-1] // batch.weight.shape[-1]
        pyro.sample("z", guide_net.distribution(batch.guide_tokens, batch.masked, batch.x0).mask(
            batch.latent_used(block_size)), infer=infer)
