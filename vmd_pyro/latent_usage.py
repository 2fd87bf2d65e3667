"""How much does a trained VMD use its latent? Cheap measures from the guide alone (no MCMC):

* held-out pairs ``(x0, xt)`` at fixed mask rates (:func:`held_out_pairs`);
* ``KL(q(z | x0, xt) || p(z | xt))`` per latent coordinate (:func:`guides_and_kl`), the guide
  read a few hundred examples at a time (an exact guide runs the denoiser once per value of z);
* active units (Burda et al. 2016) and the mutual information ``I(z; x)`` under the aggregate
  posterior, per mask rate (:func:`latent_usage`);
* the denoiser with its ``z`` input cut off (:func:`without_latent`), to decode with and compare.

The posterior check (PSIS k-hat, NUTS and exact reference posteriors, ArviZ) is
:mod:`vmd_pyro.diagnostics`.
"""
from __future__ import annotations

import math
from copy import deepcopy

import pyro.distributions as dist
import torch

from vmd_pyro.masking import DiffusionBatch, corrupt
from vmd_pyro.networks import latent_input_weights
from vmd_pyro.sampling import _draw


# --- held-out pairs -------------------------------------------------------------------------------
def held_out_pairs(task, mask_rates, per_rate: int, mask_id: int, generator=None):
    """``per_rate`` pairs ``(x0, xt)`` at each mask rate ``t``: ``x0`` cycles through the task's
    sequences (so every data mode appears), ``xt ~ q(xt | x0)`` at that ``t``. Returns the
    :class:`DiffusionBatch` and ``items`` (row of ``task.sequences`` for each example)."""
    if per_rate < 1:
        raise ValueError(f"need at least one example per mask rate, got {per_rate}")
    if not mask_rates or any(not 0.0 < t <= 1.0 for t in mask_rates):
        raise ValueError(f"mask rates must lie in (0, 1], got {list(mask_rates)}")
    items = torch.arange(per_rate).remainder(len(task.sequences)).repeat(len(mask_rates))
    t = torch.tensor(mask_rates, dtype=torch.get_default_dtype()).repeat_interleave(per_rate)
    x0 = task.sequences[items]
    return corrupt(x0, mask_id, generator=generator, t=t), items


# --- how much the latent is used -------------------------------------------------------------------
def coordinate_marginals(d):
    """The one-dimensional marginal of each coordinate of a diagonal Normal, of a mixture of
    diagonal Normals, or of independent one-dimensional mixtures (``mog-per-dim``), as a
    distribution with batch shape ``(..., D)``."""
    if isinstance(d, dist.MixtureSameFamily):
        normal = d.component_distribution.base_dist        # batch (..., K, D)
        loc, scale = normal.loc.transpose(-1, -2), normal.scale.transpose(-1, -2)  # (..., D, K)
        logits = d.mixture_distribution.logits.unsqueeze(-2).expand(loc.shape)
        return dist.MixtureSameFamily(dist.Categorical(logits=logits), dist.Normal(loc, scale))
    base = d.base_dist if isinstance(d, dist.Independent) else d
    if isinstance(base, dist.Normal):
        return dist.Normal(base.loc, base.scale)
    if isinstance(base, dist.MixtureSameFamily) and not base.event_shape:
        return base                                        # already one mixture per coordinate
    raise ValueError(f"no coordinate marginals for {type(d).__name__}")


# Examples per guide evaluation. An exact guide runs the denoiser once per value of z and example,
# so 1,000 Sudoku puzzles x 5 mask rates x 16 values at once need more than 23 GB.
ROWS = 256


def guide_rows(parts, index=slice(None)):
    """One guide distribution, batch shape ``(B,)``, made of the rows ``index`` of the guide
    distributions ``parts`` stacked in order. Guides are categorical or diagonal Normal."""
    if all(isinstance(q, dist.Categorical) for q in parts):
        return dist.Categorical(logits=torch.cat([q.logits for q in parts])[index])
    if all(isinstance(q, dist.Independent) and isinstance(q.base_dist, dist.Normal) for q in parts):
        loc = torch.cat([q.base_dist.loc for q in parts])[index]
        scale = torch.cat([q.base_dist.scale for q in parts])[index]
        return dist.Normal(loc, scale).to_event(1)
    raise TypeError(f"cannot stack guide distributions {sorted({type(q).__name__ for q in parts})}")


def _chunks(batch: DiffusionBatch, rows: int):
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    return (batch.select(slice(start, start + rows)) for start in range(0, len(batch), rows))


def _kl_per_dim(q, p, discrete: bool, num_draws: int, generator):
    if discrete:
        return torch.distributions.kl_divergence(q, p).unsqueeze(-1)
    q1, p1 = coordinate_marginals(q), coordinate_marginals(p)
    if isinstance(p1, dist.Normal):
        return torch.distributions.kl_divergence(q1, p1)
    z = _draw(q1.expand((num_draws,) + q1.batch_shape), generator)
    return (q1.log_prob(z) - p1.log_prob(z)).mean(0)


@torch.no_grad()
def guides_and_kl(program, batch: DiffusionBatch, num_draws: int = 256, generator=None,
                  rows: int = ROWS):
    """The guide ``q(z | x0, xt)`` of ``batch``, ``rows`` examples at a time (a list of
    distributions, one per chunk: :func:`guide_rows` stacks them), and
    ``KL(q(z_d | x0, xt) || p(z_d | xt))`` per example and latent coordinate, shape ``(B, D)``:
    analytic when both marginals are Normal, a Monte Carlo average over ``num_draws`` guide draws
    otherwise (mixture prior). A discrete ``z`` has one coordinate: the exact KL, shape ``(B, 1)``."""
    discrete = program.prior.support == "discrete"
    parts, kl = [], []
    for sub in _chunks(batch, rows):
        q = program.guide_dist(sub.x0, sub.masked)
        parts.append(q)
        kl.append(_kl_per_dim(q, program.prior_dist(sub.xt), discrete, num_draws, generator))
    return parts, torch.cat(kl)


def _means(q, discrete: bool):
    return q.probs if discrete else q.mean


@torch.no_grad()
def posterior_means(program, batch: DiffusionBatch, rows: int = ROWS) -> torch.Tensor:
    """``E_q[z]`` per example, ``(B, D)``; for a discrete ``z`` the probability table ``(B, K)``
    (the mean of its one-hot code). ``rows`` examples per guide evaluation."""
    parts = [program.guide_dist(sub.x0, sub.masked) for sub in _chunks(batch, rows)]
    return _means(guide_rows(parts), program.prior.support == "discrete")


@torch.no_grad()
def mutual_information(q, num_draws: int = 64, generator=None) -> float:
    """``I(z; x)`` under the aggregate posterior ``q(z) = mean_b q(z | x_b)`` of a batch of guide
    distributions ``q`` (batch shape ``(B,)``): ``E_b E_{q(z|x_b)}[log q(z|x_b) - log q(z)]``.
    Exact for a categorical ``q`` (``H(q(z)) - mean_b H(q(z|x_b))``), Monte Carlo otherwise.
    Bounded by ``log B``."""
    if isinstance(q, dist.Categorical):
        aggregate = dist.Categorical(probs=q.probs.mean(0))
        return float(aggregate.entropy() - q.entropy().mean())
    total = 0.0
    for _ in range(num_draws):  # one draw at a time: the (B, B) table of densities is the big part
        z = _draw(q, generator)                                          # (B, D)
        log_q_all = q.log_prob(z.unsqueeze(-2))                          # (B, B): z_b under q_j
        log_aggregate = torch.logsumexp(log_q_all, -1) - math.log(q.batch_shape[0])
        total += float((q.log_prob(z) - log_aggregate).mean())
    return total / num_draws


def latent_usage(program, batch: DiffusionBatch, threshold: float = 0.01, generator=None,
                 rows: int = ROWS) -> dict:
    """KL to the prior per latent coordinate, active units (Burda et al. 2016: coordinate ``d`` is
    active when ``Cov_x(E_q[z_d]) > threshold``) and ``I(z; x)``, for the whole batch and per mask
    rate. For a discrete ``z`` the "units" are the ``K`` values (activity of ``q(z = k)``). The
    guide reads ``rows`` examples at a time; the result does not depend on ``rows`` (but for the
    Monte Carlo KL of a mixture prior, whose draws do)."""
    parts, kl = guides_and_kl(program, batch, generator=generator, rows=rows)
    discrete = program.prior.support == "discrete"
    # the estimator guides_and_kl chose, named from the same test it made
    normal_prior = not discrete and isinstance(
        coordinate_marginals(program.prior_dist(batch.xt[:1])), dist.Normal)
    q = guide_rows(parts)  # stacked once; each mask rate takes its rows from it
    means = _means(q, discrete)
    rates = sorted(set(batch.t.tolist()))
    per_rate = []
    for t in rates:
        idx = batch.t == t
        activity = means[idx].var(0)
        per_rate.append({"mask_rate": t, "kl_per_dim": kl[idx].mean(0).tolist(),
                         "kl_total": float(kl[idx].sum(-1).mean()),
                         "activity": activity.tolist(),
                         "active_units": int((activity > threshold).sum()),
                         "mutual_information": mutual_information(guide_rows([q], idx),
                                                                  generator=generator)})
    activity = means.var(0)
    return {"kl_per_dim": kl.mean(0).tolist(), "kl_total": float(kl.sum(-1).mean()),
            "activity": activity.tolist(), "active_units": int((activity > threshold).sum()),
            "activity_threshold": threshold, "units": int(activity.numel()),
            "kl_estimator": ("exact" if discrete else
                             "analytic per coordinate" if normal_prior else
                             "Monte Carlo (256 guide draws) against the mixture's coordinate "
                             "marginal"),
            "mutual_information_estimator": (
                "I(z; x0, mask) under the aggregate posterior of each mask rate's examples, "
                + ("exact" if discrete else
                   "Monte Carlo with 64 guide draws per example")),
            "per_mask_rate": per_rate}


def without_latent(program):
    """A copy of ``program`` whose denoiser ignores ``z``: the weights that read ``z`` (its
    projection into the network and, with FiLM, the modulation's) are zeroed, which is the same
    network fed ``z = 0`` in every call. Decoding with it shows what a VMD does without its
    latent: where the solve rate or the accuracy does not move, the model does not use ``z``, and
    whatever it does better than an MDM lives in its denoiser's other weights."""
    if not program.has_latent:
        raise ValueError("an MDM has no latent to cut off")
    cut = deepcopy(program)
    with torch.no_grad():
        for weight in latent_input_weights(cut.denoiser):
            weight.zero_()
    return cut
