"""The forward (masking) process of masked diffusion.

Each maskable position of a clean sequence ``x0`` is replaced by the mask token independently
with probability ``1 - alpha_t``. We use the log-linear schedule ``alpha_t = 1 - (1 - eps) t``, whose
ELBO weight ``w(t) = -alpha'_t / (1 - alpha_t)`` is exactly ``1 / t`` (DESIGN.md section 1).
"""
from __future__ import annotations

from dataclasses import dataclass

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
    tokens (Sudoku clues, prompts) are never masked.
    """
    p = schedule.mask_prob(t).unsqueeze(-1)
    masked = torch.rand(x0.shape, generator=generator, device=x0.device) < p
    if maskable is not None:
        masked = masked & maskable
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    return xt, masked


@dataclass
class DiffusionBatch:
    """One training/evaluation batch of the forward process: everything the Pyro model and guide
    condition on. ``weight`` is the per-example ELBO weight ``w(t)``."""

    x0: torch.Tensor       # (B, L) clean tokens
    xt: torch.Tensor       # (B, L) partially masked tokens
    masked: torch.Tensor   # (B, L) bool, True where xt is the mask token
    weight: torch.Tensor   # (B,) w(t)
    t: torch.Tensor        # (B,) diffusion times

    def __len__(self) -> int:
        return self.x0.shape[0]


def corrupt(x0: torch.Tensor, mask_id: int, *, maskable: torch.Tensor | None = None,
            schedule: LogLinearSchedule = LogLinearSchedule(), antithetic: bool = True,
            generator=None, t: torch.Tensor | None = None) -> DiffusionBatch:
    """Draw ``t`` and ``xt ~ q(xt | x0)`` for a batch of clean sequences."""
    if t is None:
        t = sample_times(x0.shape[0], antithetic=antithetic, generator=generator, device=x0.device)
    xt, masked = mask_tokens(x0, t, mask_id, schedule, maskable, generator)
    return DiffusionBatch(x0=x0, xt=xt, masked=masked, weight=schedule.weight(t), t=t)
