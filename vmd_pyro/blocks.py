"""Block diffusion: autoregressive over blocks of ``L'`` tokens, masked diffusion inside a block.

The whole sequence is trained at once (as in block diffusion language models): the network reads the
concatenation ``[xt ; x0]`` of length ``2L`` under a block-causal attention mask,

* noisy block ``b`` (in ``xt``) attends to itself and to the clean blocks ``< b`` (in ``x0``);
* clean block ``b`` attends to the clean blocks ``<= b``; clean tokens never see noisy ones,

so the logits of block ``b`` are ``p(x0_b | xt_b, x0_{<b}, z_b)`` and nothing of a later block reaches
them. Both copies share the position embeddings. With one block (``block_size = L``) the noisy copy
attends only to itself: the network computes exactly the plain transformer on ``xt``, so the block
model with one block *is* the plain model (checked in ``tests/test_block.py``).

Every block has its own diffusion time ``t_b`` (:func:`corrupt_blocks`) and its own latent ``z_b``;
the NELBO is the sum of the per-block NELBOs (``models/block_vmd.py``).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from vmd_pyro.masking import DiffusionBatch, LogLinearSchedule, sample_times
from vmd_pyro.networks import NetConfig, SequenceEncoder, TransformerDenoiser


def check_block_config(cfg: NetConfig) -> None:
    if cfg.block_size < 1 or cfg.seq_len % cfg.block_size:
        raise ValueError(f"--block-size must be a positive divisor of the sequence length "
                         f"{cfg.seq_len}, got {cfg.block_size}")
    if cfg.arch != "transformer":
        raise ValueError("block diffusion needs the block-causal transformer: use --arch transformer")
    if cfg.attention != "full":
        raise ValueError("block diffusion has its own (block-causal) attention mask: use attention='full'")


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


def run_trunk(trunk, tokens: torch.Tensor, attn_mask: torch.Tensor,
              cond: torch.Tensor | None = None) -> torch.Tensor:
    """A :class:`~vmd_pyro.networks.TransformerTrunk` under an attention mask. ``tokens`` has length
    ``L`` or ``2L`` (the position embeddings repeat per copy); ``cond`` is added per token."""
    pos = trunk.positions().repeat(tokens.shape[-1] // trunk.pos.shape[0], 1)
    h = trunk.embed(tokens) + pos
    if cond is not None:
        h = h + cond
    lead = h.shape[:-2]
    h = trunk.encode(h.reshape(-1, *h.shape[-2:]), attn_mask)
    return trunk.norm(h).reshape(*lead, *h.shape[-2:])


def pool_blocks(h: torch.Tensor, block_size: int) -> torch.Tensor:
    """Mean of the features ``(..., L, H)`` over each block: ``(..., L / L', H)``."""
    return h.unflatten(-2, (h.shape[-2] // block_size, block_size)).mean(-2)


class BlockTransformerDenoiser(TransformerDenoiser):
    """``p(x0_b^i | xt_b, x0_{<b}, z_b)`` for every block at once (same parameters as the plain
    transformer). ``z`` has shape ``(*S, B, num_blocks, D)``; ``z_b`` is added to block ``b``'s noisy
    tokens only."""

    def forward(self, xt: torch.Tensor, z: torch.Tensor | None = None,
                x0: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        if x0 is None:
            raise ValueError("the block denoiser needs the clean sequence x0 (earlier blocks)")
        cond = None
        if z is not None:
            c = self.z_proj(z)                                         # (*S, B, nb or 1, H)
            lead = c.shape[:-2]
            c = c.unsqueeze(-2).expand(*lead, cfg.num_blocks, cfg.block_size, cfg.hidden)
            cond = F.pad(c.reshape(*lead, cfg.seq_len, cfg.hidden), (0, 0, 0, cfg.seq_len))
        mask = block_causal_mask(cfg.seq_len, cfg.block_size, xt.device)
        h = run_trunk(self.trunk, torch.cat([xt, x0], -1), mask, cond)
        return self.out(h[..., :cfg.seq_len, :])


class BlockSequenceEncoder(SequenceEncoder):
    """One feature vector per block for guides: block ``b`` summarises ``x0_{<=b}`` and the mask
    pattern of block ``b`` (the same ``[noisy ; clean]`` layout and mask as the denoiser, the noisy
    copy carrying ``x0`` plus the mask flags). Output ``(B, num_blocks, out_dim)``."""

    def forward(self, tokens: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        flagged = tokens + (cfg.vocab_size + 1) * masked.long()
        mask = block_causal_mask(cfg.seq_len, cfg.block_size, tokens.device)
        h = run_trunk(self.trunk, torch.cat([flagged, tokens], -1), mask)
        return self.out(pool_blocks(h[..., :cfg.seq_len, :], cfg.block_size))


def corrupt_blocks(x0: torch.Tensor, mask_id: int, block_size: int, *,
                   maskable: torch.Tensor | None = None,
                   schedule: LogLinearSchedule = LogLinearSchedule(), antithetic: bool = True,
                   generator=None) -> DiffusionBatch:
    """The forward process with one time ``t_b`` per block: ``t`` and ``weight`` have shape
    ``(B, num_blocks)``. Each block position is stratified over the batch on its own, so every block
    sees the whole of ``(0, 1]`` (stratifying all ``B * num_blocks`` times at once and handing the
    low strata to early blocks would bias the bound). With one block this draws exactly what
    :func:`vmd_pyro.masking.corrupt` draws."""
    batch_size, seq_len = x0.shape
    num_blocks = seq_len // block_size
    t = torch.stack([sample_times(batch_size, antithetic=antithetic, generator=generator,
                                  device=x0.device) for _ in range(num_blocks)], -1)
    p = schedule.mask_prob(t).repeat_interleave(block_size, -1)
    masked = torch.rand(x0.shape, generator=generator, device=x0.device) < p
    if maskable is not None:
        masked = masked & maskable
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    return DiffusionBatch(x0=x0, xt=xt, masked=masked, weight=schedule.weight(t), t=t)


def nfe_per_block(nfe: int, num_blocks: int) -> list[int]:
    """Split ``nfe`` network calls as evenly as possible over the blocks (earlier blocks get the
    remainder). Two blocks with NFE 2 is one call per block."""
    return [nfe // num_blocks + (1 if b < nfe % num_blocks else 0) for b in range(num_blocks)]


@torch.no_grad()
def generate_blocks(program, x: torch.Tensor, *, nfe: int, order: str, fill: str, z_strategy: str,
                    generator=None) -> torch.Tensor:
    """Block-by-block decoding: block ``b`` is filled in its share of the ``nfe`` calls
    (:func:`nfe_per_block`, at least one per block), conditioned on the decoded earlier blocks.
    ``z_b`` follows ``z_strategy`` inside the block: ``fixed`` draws it once from
    ``p(z_b | x^{<b})``, ``resample`` redraws it every step, ``posterior`` draws it from
    ``q(z_b | x0_hat, mask)``. Arguments are validated by :func:`vmd_pyro.sampling.generate`."""
    from vmd_pyro.sampling import decode_steps

    net = program.cfg.net
    if z_strategy == "prior":
        raise ValueError("z strategy 'prior' is for priors p(z | xt) without blocks; in block "
                         "models use 'fixed' or 'resample' (a block prior already sees x^{<b})")
    if nfe < net.num_blocks:
        warnings.warn(f"nfe={nfe} is below the {net.num_blocks} blocks; using one call per block")
        nfe = net.num_blocks
    mask_id, x = program.mask_id, x.clone()
    blk = block_of(net.seq_len, net.block_size, x.device)
    for b, calls in enumerate(nfe_per_block(nfe, net.num_blocks)):
        masked = (x == mask_id) & (blk == b)
        steps = min(calls, int(masked.sum(-1).max()))
        # logits(x, z) reads x as the clean copy too: only its blocks < b are attended to
        x = decode_steps(program, x, masked, steps, order=order, fill=fill,
                         z_strategy=z_strategy, generator=generator)
    return x


def block_sums(values: torch.Tensor, block_size: int) -> torch.Tensor:
    """Sum per-position values ``(..., L)`` within each block: ``(..., L / L')``."""
    return values.unflatten(-1, (values.shape[-1] // block_size, block_size)).sum(-1)


def calls_used(nfe: int, num_blocks: int, block_size: int) -> int:
    """Network calls block decoding really makes from all-mask for a requested ``nfe``."""
    return sum(min(c, block_size) for c in nfe_per_block(max(nfe, num_blocks), num_blocks))

