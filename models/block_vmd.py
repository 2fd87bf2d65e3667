"""Block diffusion with one latent per block (block VMD), and block diffusion without a latent."""
import pyro
import pyro.distributions as dist
from pyro import poutine

from guides.block import block_latent_guide
from guides.amortized import empty_guide
from vmd_pyro.registry import PAIRS, Pair, register


def _tokens(batch, logits, num_blocks):
    """The masked-token site, one event of ``L'`` tokens per (sequence, block)."""
    per_block = (num_blocks, batch.x0.shape[-1] // num_blocks)
    return dist.Categorical(logits=logits.unflatten(-2, per_block)).mask(
        batch.scored.unflatten(-1, per_block)).to_event(1), batch.x0.unflatten(-1, per_block)


def block_vmd_model(batch, denoiser, prior, beta=1.0):
    """Block VMD, one forward-process draw (own ``t_b``) per block of each sequence.

    Generative story, for each sequence and each block ``b`` (all sites weighted by ``w(t_b)``)::

        z_b    ~ p(z_b | x0_{<b})                             (independent, or block-conditional)
        x0_b^i ~ Categorical(denoiser(xt_b, x0_{<b}, z_b)_i)  independently given z_b, masked i

    The objective is the sum over blocks of the per-block VMD objectives (J or B_T, not a NELBO);
    all blocks are computed in one block-causal network call. ``beta`` scales the ``z`` site (KL annealing), as in the guide.
    """
    pyro.module("denoiser", denoiser)
    pyro.module("prior", prior)
    num_blocks = batch.weight.shape[-1]
    with pyro.plate("sequences", len(batch), dim=-2), pyro.plate("blocks", num_blocks, dim=-1), \
            poutine.scale(scale=batch.weight):
        with poutine.scale(scale=beta):
            z = pyro.sample("z", prior.block_distribution(batch.x0, num_blocks).mask(
                batch.latent_used(batch.x0.shape[-1] // num_blocks)))
        logits = denoiser(batch.xt, prior.decoder_input(z), batch.x0)
        tokens, obs = _tokens(batch, logits, num_blocks)
        pyro.sample("x0", tokens, obs=obs)


def block_mdm_model(batch, denoiser, beta=1.0):
    """Block diffusion without a latent: for each sequence and block ``b`` (weighted by
    ``w(t_b)``), ``x0_b^i ~ Categorical(denoiser(xt_b, x0_{<b})_i)`` independently, masked ``i``.
    ``beta`` is unused (no latent)."""
    pyro.module("denoiser", denoiser)
    num_blocks = batch.weight.shape[-1]
    with pyro.plate("sequences", len(batch), dim=-2), pyro.plate("blocks", num_blocks, dim=-1), \
            poutine.scale(scale=batch.weight):
        tokens, obs = _tokens(batch, denoiser(batch.xt, None, batch.x0), num_blocks)
        pyro.sample("x0", tokens, obs=obs)


register(PAIRS, "block-vmd", Pair(block_vmd_model, block_latent_guide))
register(PAIRS, "block-mdm", Pair(block_mdm_model, empty_guide))
