"""Few-step likelihood: the bound ``B_T`` on ``-log p_T(x0)`` of the T-call sampler (docs/method.md).

The sampler with ``T`` denoiser calls reveals ``n_k = ceil(remaining / steps_left)`` positions at
step ``k``. Under a uniformly random order ``sigma``, with ``M_k`` the positions still masked before
step ``k``, ``R_k`` those it reveals and ``x^(k)`` = ``x0`` with ``M_k`` masked, the generator that
draws a fresh ``z ~ p(z | x^(k))`` every step (z strategy ``resample``, or ``prior`` for a learned
prior) gives ``x0`` the probability

    p_T(x0) = E_sigma prod_k P_k,   P_k = E_{z ~ p(z | x^(k))} prod_{i in R_k} p(x0^i | x^(k), z)

and ``-log p_T(x0) <= B_T = E_sigma sum_k [E_{q_k}(-sum_{R_k} log p(x0^i | x^(k), z)) + KL(q_k || p)]``
with ``q_k = q(z | x^(k+1), M_k)``, the guide reading the sequence after the step with the flags of
``M_k``. The importance-weighted form replaces each step's bracket by ``-log mean_j w_kj`` (``K``
draws, half from ``q_k`` and half from the prior: see :class:`_Latent`) and combines ``M`` orders as
``-log mean_m prod_k mean_j w_mkj``: it is non-increasing in ``K`` and ``M`` and converges to
``-log p_T(x0)``. A discrete ``z`` is summed exactly, so its importance-weighted form *is*
``-log P_k`` per step.

Other generators, each named in the result (:func:`generator_name`):

* ``fixed`` z (one draw per sequence from ``p(z | x^(1))``, the original method): one KL per
  sequence, ``KL(q(z | x0, M_1) || p(z | x^(1)))``, and the token terms of every step under that z;
* MDM: no latent, ``P_k = prod_{R_k} p(x0^i | x^(k))``; under ``top-prob`` / ``top-prob-margin`` the
  path is a function of ``x0``, so ``-log p_T(x0)`` is exact (no order to average over);
* block models: the sum over blocks of the bound of block ``b`` given the clean earlier blocks, with
  the calls per block that block-by-block decoding makes.

Every function here returns nats per sequence; :func:`evaluate_nll_bounds` turns them into bits per
maskable position (per token, per character, per Sudoku blank).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from vmd_pyro.blocks import block_of, nfe_per_block
from vmd_pyro.masking import reveal_count, reveal_mask
from vmd_pyro.sampling import ORDERS, _draw, position_scores

BOUND_Z_STRATEGIES = ("resample", "fixed")


@dataclass
class BoundOptions:
    nfe: int                      # T: denoiser calls of the sampler (for the whole sequence)
    order: str = "random"         # the sampler's order
    z_strategy: str = "resample"  # "resample" (fresh z per step; also "prior") or "fixed"
    num_orders: int = 1           # M random orders per sequence (random order only)
    iw_samples: int = 16          # K draws of a continuous z per step (discrete z: summed exactly)


def generator_name(program, opts: BoundOptions) -> str:
    """What the bound is a bound of, in words that go into every table and JSON record."""
    parts = [f"T={opts.nfe}", f"order={opts.order}", "fill=sample"]
    if program.has_latent:
        parts.append(f"z={opts.z_strategy}")
    if program.block_size:
        parts.append(f"blocks of {program.block_size}")
    return ", ".join(parts)


def check_options(program, opts: BoundOptions) -> None:
    if not isinstance(opts.nfe, int) or opts.nfe < 1:
        raise ValueError(f"the bound's NFE must be an integer >= 1, got {opts.nfe!r}")
    if opts.order not in ORDERS:
        raise ValueError(f"unknown order {opts.order!r}; choose from {', '.join(ORDERS)}")
    if opts.z_strategy not in BOUND_Z_STRATEGIES:
        raise ValueError(f"bounds exist for z strategies {', '.join(BOUND_Z_STRATEGIES)} "
                         f"(resample also covers 'prior'), not {opts.z_strategy!r}")
    if opts.order != "random" and program.has_latent:
        raise ValueError(f"a bound under order {opts.order!r} is implemented for MDM only (with a "
                         "latent the order depends on z); use order 'random'")
    if opts.num_orders < 1 or opts.iw_samples < 1:
        raise ValueError("num_orders and iw_samples must be >= 1")


def segments(program, nfe: int, device) -> list[tuple[torch.Tensor, int, int | None]]:
    """``(positions, calls, block)`` per decoding segment: the whole sequence in ``nfe`` calls, or
    each block with its share of the calls (as :func:`vmd_pyro.sampling.generate_blocks`)."""
    net = program.cfg.net
    if not program.block_size:
        return [(torch.ones(net.seq_len, dtype=torch.bool, device=device), nfe, None)]
    blk = block_of(net.seq_len, net.block_size, device)
    calls = nfe_per_block(max(nfe, net.num_blocks), net.num_blocks)
    return [(blk == b, c, b) for b, c in enumerate(calls)]


def _pick(values: torch.Tensor, block: int | None) -> torch.Tensor:
    """Block ``block``'s entry of a per-block tensor ``(..., B, num_blocks)``."""
    return values if block is None else values[..., block]


class _Latent:
    """The values of ``z`` a step is scored under, with what the bound needs of them.

    A discrete ``z``: every value (exact sums). A continuous ``z``: ``K - K // 2`` draws from the
    guide ``q`` and ``K // 2`` from the prior ``p``. The bound ``E_q[-log lik] + KL`` uses the guide's
    draws (``KL`` in closed form where torch has one, else sampled). The importance-weighted form
    weighs all ``K`` by ``p / ((n_q q + n_p p) / K)`` (a deterministic mixture proposal, unbiased for
    ``P_k``): since the likelihood is at most 1, every weight is at most ``K / n_p`` -- the estimate
    cannot be thrown far by a rare draw, as it can with a guide narrower than the posterior."""

    def __init__(self, program, q, p, block, iw_samples, generator):
        self.discrete = program.prior.support == "discrete"
        if self.discrete:
            k = program.cfg.components
            self.z = torch.arange(k, device=q.logits.device).reshape((k,) + (1,) * len(q.batch_shape))
            self.from_q = slice(None)
        else:
            n_p = iw_samples // 2
            n_q = iw_samples - n_p
            draws = [_draw(q, generator, (n_q,))] + ([_draw(p, generator, (n_p,))] if n_p else [])
            self.z = torch.cat(draws, 0)
            self.from_q = slice(0, n_q)
        self.log_q = _pick(q.log_prob(self.z), block).double()     # (S, B)
        self.log_p = _pick(p.log_prob(self.z), block).double()
        if self.discrete:
            self.kl = (self.log_q.exp() * (self.log_q - self.log_p)).sum(0)
            return
        share_q = n_q / iw_samples
        self.log_proposal = (torch.logaddexp(self.log_q + math.log(share_q),
                                             self.log_p + math.log(1 - share_q))
                             if n_p else self.log_q)
        try:
            self.kl = _pick(torch.distributions.kl_divergence(q, p), block).double()
        except NotImplementedError:  # e.g. a mixture prior: sampled KL
            self.kl = (self.log_q - self.log_p)[self.from_q].mean(0)

    def bound(self, log_lik: torch.Tensor) -> torch.Tensor:
        """``E_q[-log_lik] + KL``, per sequence (nats)."""
        if self.discrete:
            return -(self.log_q.exp() * log_lik).sum(0) + self.kl
        return -log_lik[self.from_q].mean(0) + self.kl

    def iw_bound(self, log_lik: torch.Tensor) -> torch.Tensor:
        """``-log mean_j exp(log_lik + log p - log proposal)``; for a discrete z the exact
        ``-log sum_z p(z) exp(log_lik)``."""
        if self.discrete:
            return -torch.logsumexp(log_lik + self.log_p, 0)
        log_w = log_lik + self.log_p - self.log_proposal
        return -(torch.logsumexp(log_w, 0) - math.log(log_w.shape[0]))


def _token_log_lik(program, x, z, x0, reveal) -> torch.Tensor:
    """``sum_{i in reveal} log p(x0^i | x, z)``, shape ``(S, B)`` for ``z`` of shape ``(S, ...)``."""
    return _revealed_log_lik(program.logits(x, z).double().log_softmax(-1), x0, reveal)


def _revealed_log_lik(logp, x0, reveal) -> torch.Tensor:
    """``sum_{i in reveal} logp[..., i, x0^i]`` from log-probabilities ``(..., B, L, V)``."""
    token = logp.gather(-1, x0.expand(logp.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    return (token * reveal).sum(-1)


@torch.no_grad()
def sequence_bounds(program, x0: torch.Tensor, maskable: torch.Tensor, opts: BoundOptions, *,
                    priorities: torch.Tensor | None = None, generator=None):
    """``(B_T, importance-weighted B_T)`` in nats per sequence, shapes ``(B,)``.

    ``priorities`` ``(M, B, L)``: the random orders to average over (position with the highest
    priority revealed first); default ``opts.num_orders`` uniformly random ones. A test passes all
    ``L!`` orders to get the exact expectation over ``sigma``.
    """
    check_options(program, opts)
    batch_size, seq_len = x0.shape
    if opts.order != "random":
        priorities = torch.zeros(1, batch_size, seq_len, device=x0.device)  # unused: deterministic
    elif priorities is None:
        priorities = torch.rand((opts.num_orders, batch_size, seq_len), generator=generator,
                                device=x0.device)
    num_orders = priorities.shape[0]
    # Every order is a copy of the batch: (M * B, L).
    x0_all, maskable_all = x0.repeat(num_orders, 1), maskable.repeat(num_orders, 1)
    priority = priorities.reshape(num_orders * batch_size, seq_len)
    bound = torch.zeros(num_orders * batch_size, dtype=torch.float64, device=x0.device)
    iw = torch.zeros_like(bound)
    for positions, calls, block in segments(program, opts.nfe, x0.device):
        later = positions.cumsum(0) > 0  # this segment and every later one
        b, w = _segment_bounds(program, x0_all, maskable_all & positions,
                               maskable_all & later, calls, block, priority, opts, generator)
        bound, iw = bound + b, iw + w
    bound = bound.reshape(num_orders, batch_size).mean(0)
    iw = -(torch.logsumexp(-iw.reshape(num_orders, batch_size), 0) - math.log(num_orders))
    return bound, iw


def _segment_bounds(program, x0, to_fill, hidden, calls, block, priority, opts, generator):
    """The bound of decoding the positions ``to_fill`` in ``calls`` steps, starting from ``x0`` with
    ``hidden`` masked (later blocks stay masked, earlier ones are clean)."""
    mask = torch.full_like(x0, program.mask_id)
    x = torch.where(hidden, mask, x0)
    masked = to_fill.clone()
    bound = torch.zeros(x0.shape[0], dtype=torch.float64, device=x0.device)
    iw = torch.zeros_like(bound)
    fixed = None
    if program.has_latent and opts.z_strategy == "fixed":
        fixed = _Latent(program, program.guide_dist(x0, to_fill), program.prior_dist(x), block,
                        opts.iw_samples, generator)
        fixed_log_lik = torch.zeros_like(fixed.log_q)
    for step in range(calls):
        count = reveal_count(masked.sum(-1), calls - step)
        # MDM: one call per step gives the token probabilities and, for a confidence order, the
        # scores that pick R_k (a VMD uses random order only, check_options)
        logp = None if program.has_latent else program.logits(x).double().log_softmax(-1)
        scores = priority if opts.order == "random" else position_scores(logp.exp(), opts.order)
        reveal = reveal_mask(scores, masked, count)
        x_next = torch.where(reveal, x0, x)
        if not program.has_latent:
            log_lik = _revealed_log_lik(logp, x0, reveal)
            bound, iw = bound - log_lik, iw - log_lik
        elif fixed is not None:
            fixed_log_lik = fixed_log_lik + _token_log_lik(program, x, fixed.z, x0, reveal)
        else:
            latent = _Latent(program, program.guide_dist(x_next, masked), program.prior_dist(x),
                             block, opts.iw_samples, generator)
            log_lik = _token_log_lik(program, x, latent.z, x0, reveal)
            used = reveal.any(-1)  # a step that reveals nothing has P_k = 1 exactly
            bound = bound + torch.where(used, latent.bound(log_lik), 0.0)
            iw = iw + torch.where(used, latent.iw_bound(log_lik), 0.0)
        x, masked = x_next, masked & ~reveal
    if fixed is not None:  # one KL per sequence (per block), if the segment has anything to fill
        used = to_fill.any(-1)
        bound = torch.where(used, fixed.bound(fixed_log_lik), 0.0)
        iw = torch.where(used, fixed.iw_bound(fixed_log_lik), 0.0)
    return bound, iw


@torch.no_grad()
def evaluate_nll_bounds(program, x0: torch.Tensor, maskable: torch.Tensor, opts: BoundOptions, *,
                        weights: torch.Tensor | None = None, batch_size: int = 256,
                        generator=None) -> dict:
    """Data-averaged ``B_T`` and its importance-weighted form, in nats per sequence and in bits per
    maskable position (per token; per Sudoku blank; per character), for the sequences ``x0`` with
    probabilities ``weights`` (default: equal; a synthetic task passes its whole support and its
    probabilities, so the data side has no sampling error).

    The ``opts.num_orders`` random orders are drawn in up to 4 independent groups of equal size
    (their own orders and z draws). Combined, the groups give exactly the estimate of all orders
    together (``-log mean_m`` over equal groups is ``-log mean_g`` of the groups' own); their spread
    gives the Monte Carlo standard error (``*_se``; ``None`` with one group). A bound estimate is
    random: within a few standard errors it can sit on either side of what it estimates."""
    check_options(program, opts)
    weights = (torch.full((len(x0),), 1.0 / len(x0), dtype=torch.float64) if weights is None
               else weights.double() / weights.double().sum()).to(x0.device)
    groups = min(4, opts.num_orders) if opts.order == "random" else 1
    group_opts = replace(opts, num_orders=max(1, opts.num_orders // groups))
    bound = torch.zeros(groups, len(x0), dtype=torch.float64, device=x0.device)
    iw = torch.zeros_like(bound)
    for g in range(groups):
        for start in range(0, len(x0), batch_size):
            rows = slice(start, start + batch_size)
            bound[g, rows], iw[g, rows] = sequence_bounds(program, x0[rows], maskable[rows],
                                                          group_opts, generator=generator)
    per_position = 1.0 / float((weights * maskable.sum(-1)).sum()) / math.log(2)
    average = lambda per_sequence: per_sequence @ weights * per_position  # noqa: E731  bits
    combined_iw = -(torch.logsumexp(-iw, 0) - math.log(groups))
    out = {"bound_nfe": opts.nfe, "bound_order": opts.order,
           "bound_generator": generator_name(program, opts),
           "nll_bound_bits": float(average(bound.mean(0))),
           "iw_nll_bound_bits": float(average(combined_iw)),
           "nll_bound_bits_se": None, "iw_nll_bound_bits_se": None,
           "bound_orders": groups * group_opts.num_orders,
           "bound_iw_samples": (0 if not program.has_latent else "exact sum over z"
                                if program.prior.support == "discrete" else opts.iw_samples)}
    if groups > 1:
        out["nll_bound_bits_se"] = float(average(bound).std() / math.sqrt(groups))
        out["iw_nll_bound_bits_se"] = float(average(iw).std() / math.sqrt(groups))
    return out
