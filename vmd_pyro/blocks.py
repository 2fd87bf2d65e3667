"""Block diffusion: autoregressive over blocks of ``L'`` tokens, masked diffusion inside a block.

The whole sequence is trained at once (as in block diffusion language models): the network reads the
concatenation ``[xt ; x0]`` of length ``2L`` under a block-causal attention mask,

* noisy block ``b`` (in ``xt``) attends to itself and to the clean blocks ``< b`` (in ``x0``);
* clean block ``b`` attends to the clean blocks ``<= b``; clean tokens never see noisy ones,

so the logits of block ``b`` are ``p(x0_b | xt_b, x0_{<b}, z_b)`` and nothing of a later block reaches
them. Both copies share the position embeddings. With one block (``block_size = L``) the noisy copy
attends only to itself: the network computes exactly the plain transformer on ``xt``, so the block
model with one block *is* the plain model (checked in ``tests/test_block.py``).

Every block has its own diffusion time ``t_b`` and its own latent ``z_b``; the training objective
is the sum of the per-block objectives (``models/block_vmd.py``).

This module holds the layout shared by the block code beside its kin: the block-causal networks
(``vmd_pyro.networks``), per-block corruption (``vmd_pyro.masking.corrupt_blocks``), block-by-block
decoding (``vmd_pyro.sampling``) and the per-block bounds (``vmd_pyro.bounds``). It imports nothing
of the package, so they can all import it.
"""
from __future__ import annotations

import torch


def block_of(seq_len: int, block_size: int, device=None) -> torch.Tensor:
    """Block index of every position, shape (L,)."""
    return torch.arange(seq_len, device=device) // block_size


def block_causal_mask(seq_len: int, block_size: int, device=None) -> torch.Tensor:
    """Attention mask for the ``[xt ; x0]`` layout, (2L, 2L) bool, True where attention is NOT
    allowed (PyTorch's convention)."""
    blk = block_of(seq_len, block_size, device)
    same = blk[:, None] == blk[None, :]
    earlier = blk[:, None] > blk[None, :]
    noisy_rows = torch.cat([same, earlier], 1)
    clean_rows = torch.cat([torch.zeros_like(same), same | earlier], 1)
    return ~torch.cat([noisy_rows, clean_rows], 0)


def clean_causal_mask(seq_len: int, block_size: int, device=None) -> torch.Tensor:
    """Attention mask for clean tokens alone, (L, L): block ``b`` sees the blocks ``<= b``."""
    blk = block_of(seq_len, block_size, device)
    return blk[:, None] < blk[None, :]


def pool_blocks(h: torch.Tensor, block_size: int) -> torch.Tensor:
    """Mean of the features ``(..., L, H)`` over each block: ``(..., L / L', H)``."""
    return h.unflatten(-2, (h.shape[-2] // block_size, block_size)).mean(-2)


def block_sums(values: torch.Tensor, block_size: int) -> torch.Tensor:
    """Sum per-position values ``(..., L)`` within each block: ``(..., L / L')``."""
    return values.unflatten(-1, (values.shape[-1] // block_size, block_size)).sum(-1)


def nfe_per_block(nfe: int, num_blocks: int) -> list[int]:
    """Split ``nfe`` network calls as evenly as possible over the blocks (earlier blocks get the
    remainder). Two blocks with NFE 2 is one call per block."""
    return [nfe // num_blocks + (1 if b < nfe % num_blocks else 0) for b in range(num_blocks)]
