"""The forward (masking) process of masked diffusion.

Each maskable position of a clean sequence ``x0`` is replaced by the mask token independently
with probability ``1 - alpha_t``. We use the log-linear schedule ``alpha_t = 1 - (1 - eps) t``, whose
ELBO weight ``w(t) = -alpha'_t / (1 - alpha_t)`` is exactly ``1 / t`` (docs/method.md).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass(frozen=True)
class LogLinearSchedule:
    """``alpha_t = 1 - (1 - eps) t``: the probability that a token is still clean at time ``t``."""

    eps: float = 1e-3

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 - (1.0 - self.eps) * t

    def mask_prob(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 - self.alpha(t)

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """ELBO weight ``w(t) = -alpha'_t / (1 - alpha_t)``; for this schedule exactly ``1/t``."""
        d_alpha = -(1.0 - self.eps)
        return -d_alpha / self.mask_prob(t)


def sample_times(batch_size: int, *, antithetic: bool = True, generator=None, device=None,
                 t_min: float = 1e-5) -> torch.Tensor:
    """Diffusion times ``t`` in ``(0, 1]``.

    With ``antithetic`` the batch is stratified: ``t_i = (u + i) / B`` for one shared ``u``, so every
    batch covers the unit interval evenly (lower-variance estimate of the time integral; each
    ``t_i`` is still marginally uniform). ``t_min`` only guards against a division by zero.
    """
    if antithetic:
        u = torch.rand((), generator=generator, device=device)
        t = (u + torch.arange(batch_size, device=device)) / batch_size
    else:
        t = torch.rand(batch_size, generator=generator, device=device)
    return t.clamp(min=t_min)


def mask_tokens(x0: torch.Tensor, t: torch.Tensor, mask_id: int, schedule: LogLinearSchedule,
                maskable: torch.Tensor | None = None, generator=None):
    """Draw ``xt ~ q(xt | x0)``. Returns ``(xt, masked)`` where ``masked`` marks masked positions.

    ``maskable`` (bool, same shape as ``x0``) marks positions that may be masked at all; given
    tokens (Sudoku clues, prompts) are never masked. ``t`` is one time per sequence ``(B,)``, or one
    per block ``(B, num_blocks)`` for block diffusion (each block's positions masked at its ``t_b``).
    """
    p = schedule.mask_prob(t)
    p = p.unsqueeze(-1) if t.dim() == 1 else p.repeat_interleave(x0.shape[-1] // t.shape[-1], -1)
    masked = torch.rand(x0.shape, generator=generator, device=x0.device) < p
    if maskable is not None:
        masked = masked & maskable
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    return xt, masked


@dataclass
class DiffusionBatch:
    """One training/evaluation batch: everything the Pyro model and guide condition on.

    ``weight`` is the per-example weight: ``w(t)`` for the ``joint`` objective (one forward-process
    draw), ``T`` for the ``steps`` objective (one step of the T-step sampler, :func:`step_batch`).
    The model scores the tokens at ``scored`` (``joint``: every masked position; ``steps``: the
    positions the step reveals) and the guide reads ``guide_tokens`` with the flags of ``masked``
    (``joint``: ``x0``; ``steps``: ``x^(k+1)``, the sequence after the step).

    A *path* batch (:func:`path_batch`, objective ``paths``) holds every step of a sequence's path:
    ``xt``, ``masked``, ``scored``, ``guide_tokens`` and ``t`` gain a step axis after the batch
    axis, ``(B, T, L)``, and one ``z`` per sequence serves all ``T`` steps.
    """

    x0: torch.Tensor       # (B, L) clean tokens
    xt: torch.Tensor       # (B, L) partially masked tokens: the denoiser's and the prior's input
    masked: torch.Tensor   # (B, L) bool, True where xt is the mask token
    weight: torch.Tensor   # (B,) w(t) or T
    t: torch.Tensor        # (B,) diffusion times (steps: the fraction of positions still masked)
    scored: torch.Tensor | None = None        # (B, L) bool, default ``masked``
    guide_tokens: torch.Tensor | None = None  # (B, L), default ``x0``

    def __post_init__(self):
        if self.scored is None:
            self.scored = self.masked
        if self.guide_tokens is None:
            self.guide_tokens = self.x0

    def __len__(self) -> int:
        return self.x0.shape[0]

    @property
    def path(self) -> bool:
        """Does the batch hold whole paths (a step axis, :func:`path_batch`)?"""
        return self.xt.dim() > self.x0.dim()

    def first_call(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(xt, masked)`` of the sampler's first call (:func:`first_call`)."""
        return first_call(self.xt, self.masked)

    def select(self, index) -> "DiffusionBatch":
        """The examples ``index`` (a slice, bool mask or index tensor) of every field."""
        return DiffusionBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def latent_used(self, block_size: int = 0) -> torch.Tensor:
        """Bool per example (per block in block models, given ``block_size``): does any token get
        scored? Where none does, ``z`` explains nothing and its site is masked out: the exact
        posterior is then the prior itself, which a Normal guide cannot match for a mixture prior,
        so ``w(t) KL`` would otherwise grow without bound as ``t -> 0`` (docs/method.md)."""
        if block_size:
            return self.scored.unflatten(-1, (-1, block_size)).any(-1)
        return self.scored.flatten(1).any(-1)


def first_call(xt: torch.Tensor, masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(xt, masked)`` of the sampler's first call from one call's ``(B, L)`` or a path's
    ``(B, T, L)``: what a prior ``p(z | xt)`` reads, once per sequence (a path's ``z`` is drawn
    before its first step)."""
    if xt.dim() == 3:
        return xt[:, 0], masked[:, 0]
    return xt, masked


def corrupt(x0: torch.Tensor, mask_id: int, *, maskable: torch.Tensor | None = None,
            schedule: LogLinearSchedule = LogLinearSchedule(), antithetic: bool = True,
            generator=None, t: torch.Tensor | None = None) -> DiffusionBatch:
    """Draw ``t`` and ``xt ~ q(xt | x0)`` for a batch of clean sequences."""
    if t is None:
        t = sample_times(x0.shape[0], antithetic=antithetic, generator=generator, device=x0.device)
    xt, masked = mask_tokens(x0, t, mask_id, schedule, maskable, generator)
    return DiffusionBatch(x0=x0, xt=xt, masked=masked, weight=schedule.weight(t), t=t)


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
    xt, masked = mask_tokens(x0, t, mask_id, schedule, maskable, generator)
    return DiffusionBatch(x0=x0, xt=xt, masked=masked, weight=schedule.weight(t), t=t)


def reveal_count(remaining: torch.Tensor, steps_left) -> torch.Tensor:
    """How many positions a step reveals: ``ceil(remaining / steps_left)``, an even split of what is
    still masked over the calls left (0 where no call is left). The one rule of the sampler, the
    bounds and the ``steps`` objective alike."""
    steps_left = torch.as_tensor(steps_left, device=remaining.device)
    return torch.where(steps_left > 0,
                       -torch.div(-remaining, steps_left.clamp_min(1), rounding_mode="floor"), 0)


def reveal_mask(scores: torch.Tensor, masked: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Bool (B, L): the ``count[b]`` masked positions with the highest score in each row."""
    scores = scores.masked_fill(~masked, float("-inf"))
    rank = scores.argsort(-1, descending=True).argsort(-1)
    return masked & (rank < count.unsqueeze(-1))


def reveal_schedule(num_masked: torch.Tensor, steps: torch.Tensor, step: torch.Tensor):
    """The sampler's exactly-k schedule: with ``num_masked`` positions to fill in ``steps`` calls,
    step ``j`` reveals ``ceil(remaining_j / (steps - j))``. Returns ``(remaining, revealed)`` before
    and at step ``step`` (0-based), elementwise over tensors of equal shape."""
    remaining = num_masked.clone()
    for j in range(int(step.max()) if step.numel() else 0):
        before = j < step
        remaining = torch.where(before, remaining - reveal_count(remaining, steps - j), remaining)
    return remaining, reveal_count(remaining, steps - step)


def step_batch(x0: torch.Tensor, mask_id: int, nfe_choices, *, maskable: torch.Tensor | None = None,
               generator=None, order_scores=None) -> DiffusionBatch:
    """One uniformly random step of the T-step random-order sampler per sequence: the batch of the
    ``steps`` objective, an unbiased estimate of the few-step bound ``B_T`` (docs/method.md).

    For each sequence ``T`` is drawn from ``nfe_choices`` (capped at its number of maskable
    positions, which is what the sampler does), then a step ``k`` uniformly from ``0 .. T-1``. Under
    a uniform random order the positions still masked before step ``k`` (``M_k``) are a uniform subset
    of the maskable ones of the schedule's size, and those it reveals (``R_k``) a uniform subset of
    ``M_k`` of size ``ceil(|M_k| / (T - k))``. The model reads ``x^(k)`` and scores ``R_k``; the guide
    reads ``x^(k+1)`` (``R_k`` revealed) with the flags of ``M_k``; the weight ``T`` turns one step
    into the sum over all ``T``.

    ``order_scores(xt) -> (B, L)`` replaces the random order by the sampler's own: each step reveals
    the highest-scoring masked positions of the current sequence (e.g. the denoiser's
    Top-Prob-Margin), revealing ``x0``'s tokens there, one call of ``order_scores`` per step up to
    ``k``. For a model without a latent whose scores depend on ``xt`` alone this is the only path
    of that sampler to ``x0``, so the objective is its exact ``-log p_T(x0)`` with sampled tokens.
    """
    batch_size, seq_len = x0.shape
    device = x0.device
    if maskable is None:
        maskable = torch.ones_like(x0, dtype=torch.bool)
    choices = torch.as_tensor(list(nfe_choices), dtype=torch.long, device=device)
    if choices.numel() == 0 or int(choices.min()) < 1:
        raise ValueError(f"training NFEs must be integers >= 1, got {list(nfe_choices)}")
    num_maskable = maskable.sum(-1)
    pick = torch.randint(len(choices), (batch_size,), generator=generator, device=device)
    steps = torch.minimum(choices[pick], num_maskable.clamp_min(1))
    step = (torch.rand(batch_size, generator=generator, device=device) * steps).long()
    step = torch.minimum(step, steps - 1)
    mask = torch.full_like(x0, mask_id)
    weight = torch.where(num_maskable > 0, steps, 0).to(torch.get_default_dtype())
    if order_scores is not None:
        masked, scored = _ordered_step(x0, mask_id, maskable, steps, step, order_scores)
        return DiffusionBatch(x0=x0, xt=torch.where(masked, mask, x0), masked=masked,
                              weight=weight, t=masked.sum(-1) / num_maskable.clamp_min(1),
                              scored=scored, guide_tokens=torch.where(masked & ~scored, mask, x0))
    remaining, revealed = reveal_schedule(num_maskable, steps, step)
    # A uniform random order of the maskable positions: M_k is its last `remaining` entries and R_k
    # the first `revealed` of those.
    priority = torch.rand(x0.shape, generator=generator, device=device).masked_fill(~maskable, 2.0)
    rank = priority.argsort(-1).argsort(-1)
    masked = rank < remaining.unsqueeze(-1)
    scored = rank < revealed.unsqueeze(-1)
    return DiffusionBatch(x0=x0, xt=torch.where(masked, mask, x0), masked=masked, weight=weight,
                          t=remaining / num_maskable.clamp_min(1), scored=scored,
                          guide_tokens=torch.where(masked & ~scored, mask, x0))


def _sampler_steps(x0, mask_id, maskable, steps, order_scores, num_steps):
    """``(M_j, R_j)`` for ``j = 0 .. num_steps - 1`` of the ``steps``-call sampler (``steps``: a
    number or one per row) that reveals, at every step, the masked positions ``order_scores`` ranks
    highest, filling them with ``x0``'s tokens: one call of ``order_scores`` per step."""
    masked = maskable.clone()
    for j in range(num_steps):
        scores = order_scores(torch.where(masked, mask_id, x0))
        reveal = reveal_mask(scores, masked, reveal_count(masked.sum(-1), steps - j))
        yield masked, reveal
        masked = masked & ~reveal


def _ordered_step(x0, mask_id, maskable, steps, step, order_scores):
    """``(M_k, R_k)`` of step ``step`` (per row) of the ``steps``-call sampler in the order of
    ``order_scores``."""
    at_step_masked, at_step_scored = maskable.clone(), torch.zeros_like(maskable)
    path = _sampler_steps(x0, mask_id, maskable, steps, order_scores,
                          int(step.max()) + 1 if step.numel() else 0)
    for j, (masked, reveal) in enumerate(path):
        here = (step == j).unsqueeze(-1)
        at_step_masked = torch.where(here, masked, at_step_masked)
        at_step_scored = torch.where(here, reveal, at_step_scored)
    return at_step_masked, at_step_scored


def path_batch(x0: torch.Tensor, mask_id: int, nfe: int, *, maskable: torch.Tensor | None = None,
               generator=None, order_scores=None) -> DiffusionBatch:
    """Every step of the ``nfe``-call sampler's path to ``x0``, per sequence: the batch of the
    ``paths`` objective, in which one ``z`` serves the whole path (the ``fixed`` z strategy of the
    sampler and of ``vmd_pyro.bounds``).

    Step ``k`` reads ``x^(k)`` (``M_k`` masked) and scores its reveals ``R_k``; the guide reads
    ``x^(k+1)`` with the flags of ``M_k``, as in :func:`step_batch`, but all ``T`` steps at once, so
    in random order the loss is the bound ``B_T`` with ``z`` fixed (docs/method.md; in a VMD's own
    order, which ``z`` moves, not a bound) and the exact posterior of ``z`` is the posterior given
    the whole path. Weight 1: every step is scored. In a uniformly random
    order, or in the sampler's own (``order_scores``, one gradient-free call per step). Fields
    as in :func:`step_batch` with a step axis: ``(B, T, L)``.
    """
    if nfe < 1:
        raise ValueError(f"a path needs at least one call, got nfe={nfe}")
    if maskable is None:
        maskable = torch.ones_like(x0, dtype=torch.bool)
    if order_scores is None:  # a uniform random order: one random priority per position
        priority = torch.rand(x0.shape, generator=generator, device=x0.device)
        order_scores = lambda xt: priority  # noqa: E731
    steps = list(_sampler_steps(x0, mask_id, maskable, nfe, order_scores, nfe))
    masked = torch.stack([m for m, _ in steps], 1)
    scored = torch.stack([r for _, r in steps], 1)
    clean = x0.unsqueeze(1).expand_as(masked)
    num_maskable = maskable.sum(-1)
    return DiffusionBatch(x0=x0, xt=torch.where(masked, mask_id, clean), masked=masked,
                          weight=(num_maskable > 0).to(torch.get_default_dtype()),
                          t=masked.sum(-1) / num_maskable.clamp_min(1).unsqueeze(-1),
                          scored=scored, guide_tokens=torch.where(masked & ~scored, mask_id, clean))


def path_logits(denoiser, xt: torch.Tensor, z_input: torch.Tensor) -> torch.Tensor:
    """``denoiser(xt, z)`` for one call per sequence, ``xt (B, L)``, or for whole paths,
    ``xt (B, T, L)``: the ``T`` calls of a sequence share its ``z`` (``(B, D)``, or ``(*K, 1, D)``
    for every value of an enumerated ``z``). Returns ``(*K, B, L, V)`` or ``(*K, B, T, L, V)``."""
    if xt.dim() == 2:
        return denoiser(xt, z_input)
    batch_size, num_steps = xt.shape[:2]
    if z_input.shape[-2] != 1:
        z_input = z_input.repeat_interleave(num_steps, dim=-2)
    return denoiser(xt.flatten(0, 1), z_input).unflatten(-3, (batch_size, num_steps))


def step_batch_blocks(x0: torch.Tensor, mask_id: int, block_size: int, nfe_choices, *,
                      maskable: torch.Tensor | None = None, generator=None) -> DiffusionBatch:
    """:func:`step_batch` for block diffusion: every block of every sequence on its own, one random
    step of ``T`` calls for that block (``T`` from ``nfe_choices``: calls per block), given the clean
    earlier blocks, which the block denoiser reads from ``x0``. ``weight`` and ``t`` have shape
    ``(B, num_blocks)``, as in :func:`corrupt_blocks`; with one block this is :func:`step_batch`."""
    batch_size, seq_len = x0.shape
    per_block = (-1, block_size)
    flat = step_batch(x0.reshape(per_block), mask_id, nfe_choices,
                      maskable=None if maskable is None else maskable.reshape(per_block),
                      generator=generator)
    return DiffusionBatch(**{f.name: getattr(flat, f.name).reshape(
        batch_size, -1 if getattr(flat, f.name).dim() == 1 else seq_len) for f in fields(flat)})
