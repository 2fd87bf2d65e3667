"""Evaluation: the training objective (MDM: its NELBO, a bound; VMD: the objective J, not a bound) and
its importance-weighted form, sample accuracy and KL(p_data || p_model) with a stated estimator,
and the paired comparison of two decoders on the same items.
Likelihood bounds of the few-step generators are in :mod:`vmd_pyro.bounds`."""
from __future__ import annotations

import math

import torch

from vmd_pyro.blocks import block_sums
from vmd_pyro.datasets.synthetic import SyntheticTask, all_sequences, encode
from vmd_pyro.sampling import _draw


def log_likelihood_terms(program, batch, z=None) -> torch.Tensor:
    """``sum_{i scored} log p(x0^i | xt, z)`` per example, shape ``z.shape[:-1]`` broadcast with
    (B,); in block models per block, (..., B, blocks)."""
    logp = program.logits(batch.xt, z, batch.x0).log_softmax(-1)
    token = logp.gather(-1, batch.x0.expand(logp.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    if program.block_size:
        return block_sums(token * batch.scored, program.block_size)
    return (token * batch.scored).sum(-1)


@torch.no_grad()
def iw_log_likelihood(program, batch, num_samples: int) -> torch.Tensor:
    """Importance-weighted lower bound on ``log p(x0_scored | xt)`` per example, shape (B,):
    ``log mean_k p(x0 | xt, z_k) p(z_k) / q(z_k | x0, xt)`` with ``z_k ~ q``. For MDM (no latent) the
    term is exact. It increases with ``num_samples`` towards ``log p(x0_scored | xt)``. Examples
    with nothing scored get exactly 0 (``z`` explains nothing there)."""
    if not program.has_latent:
        return log_likelihood_terms(program, batch)
    q = program.guide_dist(batch.guide_tokens, batch.masked)
    p = program.batch_prior(batch)
    z = q.sample((num_samples,))
    log_w = log_likelihood_terms(program, batch, z) + p.log_prob(z) - q.log_prob(z)
    used = batch.latent_used(program.block_size)
    return torch.where(used, torch.logsumexp(log_w, 0) - math.log(num_samples), 0.0)


@torch.no_grad()
def evaluate_bounds(program, sample_fn, *, num_batches: int = 20, batch_size: int = 512,
                    iw_samples: int = 0, generator=None) -> dict:
    """Monte Carlo estimates (over data, t and masks) of the ``joint`` training loss with
    ``beta = 1`` and, if ``iw_samples > 0``, of its importance-weighted form, in nats per sequence
    and in bits per token. ``sample_fn(batch_size, generator) -> (x0, maskable)``.

    For MDM the loss is the continuous-time NELBO, a bound on ``-log p(x0)``: keys ``nelbo_*``. For
    VMD it is the original method's objective J, which is *not* a bound (docs/method.md: the joint term of
    all masked tokens is counted as one token): keys ``objective_*``. Bounds of the few-step
    generators are :func:`vmd_pyro.bounds.evaluate_nll_bounds`."""
    elbo = program.make_elbo()
    total, total_iw, count, tokens = 0.0, 0.0, 0, 0.0
    for _ in range(num_batches):
        x0, maskable = sample_fn(batch_size, generator)
        batch = program.corrupt(x0, maskable, generator=generator)
        total += float(elbo.loss(program.model, program.guide, batch))
        if iw_samples:
            iw = iw_log_likelihood(program, batch, iw_samples)
            total_iw += float(-(batch.weight * iw).sum())
        count += len(batch)
        tokens += float(maskable.sum())
    per_token = count / tokens / math.log(2)
    name = objective_name(program)
    out = {f"{name}_nats": total / count, f"{name}_bits": total / count * per_token}
    if iw_samples:
        out.update({"iw_samples": iw_samples, f"iw_{name}_nats": total_iw / count,
                    f"iw_{name}_bits": total_iw / count * per_token})
    return out


def objective_name(program) -> str:
    """``nelbo`` for MDM (a bound on -log p(x0)); ``objective`` for VMD (the training objective J,
    not a bound). Record keys use it so a table can never call VMD's number a NELBO."""
    return "objective" if program.has_latent else "nelbo"


def accuracy(task: SyntheticTask, samples: torch.Tensor) -> float:
    """Fraction of generated sequences inside the data support."""
    return float(task.in_support(samples.cpu()).double().mean())


def kl_from_probs(p_data: torch.Tensor, p_model: torch.Tensor) -> float:
    """``sum_x p_data(x) log(p_data(x) / p_model(x))`` over the data support (nats)."""
    nz = p_data > 0
    return float((p_data[nz] * (p_data[nz].log() - p_model[nz].clamp_min(1e-300).log())).sum())


def kl_plugin(task: SyntheticTask, samples: torch.Tensor, pseudo_count: float = 0.5) -> float:
    """KL(p_data || p_hat) with ``p_hat`` the sample frequencies plus ``pseudo_count`` per support
    sequence (so an unseen support sequence gives a large but finite KL)."""
    counts = torch.bincount(encode(samples.cpu(), task.vocab_size),
                            minlength=task.vocab_size ** task.seq_len).double()
    p_data = task.dense_probs()
    support = p_data > 0
    p_hat = (counts + pseudo_count * support) / (len(samples) + pseudo_count * int(support.sum()))
    return kl_from_probs(p_data, p_hat)


@torch.no_grad()
def one_step_model_probs(program, task: SyntheticTask, *, z_samples: int = 2000,
                         generator=None) -> torch.Tensor:
    """The model distribution of one-step decoding from all-mask (NFE = 1, sample fill), as a dense
    table over all ``V^L`` sequences: exact over sequences; for a continuous latent a Monte Carlo
    average over ``z_samples`` prior draws, for a discrete latent an exact sum over its values."""
    seq_len, mask_id = task.seq_len, program.mask_id
    xt = torch.full((1, seq_len), mask_id, dtype=torch.long, device=next(program.parameters()).device)
    seqs = all_sequences(seq_len, task.vocab_size).to(xt.device)       # (N, L)
    positions = torch.arange(seq_len, device=xt.device)
    if not program.has_latent:
        logp = program.logits(xt).double().log_softmax(-1)[0]          # (L, V)
        return logp[positions, seqs].sum(-1).exp().double().cpu()
    prior = program.prior_dist(xt)
    if program.prior.support == "discrete":
        z = torch.arange(program.cfg.components, device=xt.device).unsqueeze(-1)   # (K, 1)
        log_pz = prior.log_prob(z)                                                  # (K, 1)
    else:
        z = _draw(prior.expand((z_samples,)), generator).unsqueeze(1)               # (S, 1, D)
        log_pz = torch.full((z_samples, 1), -math.log(z_samples), device=xt.device)
    logp = program.logits(xt, z).double().log_softmax(-1)[:, 0]        # (K, L, V)
    per_z = logp[:, positions, seqs].sum(-1)                           # (K, N)
    return torch.logsumexp(per_z + log_pz.double(), 0).exp().cpu()


def paired_difference(a, b) -> dict:
    """Compare two decoders on the same items from their per-item successes ``a`` and ``b``
    (bools, same order): both rates, the difference ``a - b``, its standard error from the paired
    differences (``sd(a_i - b_i) / sqrt(n)``, smaller than the unpaired one when both succeed on
    the same items; both are given), the discordant counts (``a_only``, ``b_only``) and the exact
    two-sided McNemar p-value (a binomial test at 1/2 of the discordant items: under "equally
    good" each is as likely to favour either decoder)."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape or a.dim() != 1 or len(a) < 2:
        raise ValueError(f"need two equally long lists of at least 2 outcomes, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    n = len(a)
    pa, pb = float(a.mean()), float(b.mean())
    a_only, b_only = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    discordant, fewer = a_only + b_only, min(a_only, b_only)
    # exact integers: 2**discordant overflows a float past 1023 items
    tail = sum(math.comb(discordant, i) for i in range(fewer + 1))
    return {"items": n, "rate_a": pa, "rate_b": pb, "difference": pa - pb,
            "paired_standard_error": float((a - b).std() / math.sqrt(n)),
            "unpaired_standard_error": math.sqrt((pa * (1 - pa) + pb * (1 - pb)) / n),
            "a_only": a_only, "b_only": b_only,
            "mcnemar_p": min(1.0, 2 * tail / 2 ** discordant)}
