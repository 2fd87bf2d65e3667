"""The posterior check: how good is the amortised guide ``q(z | x0, xt)``?

For one pair ``(x0, xt)`` the exact posterior is

    p(z | x0, xt)  ∝  p(z | xt) * prod_{i masked in xt} p_theta(x0^i | xt, z)

(the ``w(t)`` and ``beta`` scales of training multiply guide and model alike, so they do not move
it). This module

* takes held-out pairs at fixed mask rates (:func:`vmd_pyro.latent_usage.held_out_pairs`);
* draws ``z`` from the guide and turns the draws into ArviZ ``InferenceData`` with named dims
  ``(example, latent)`` and per-example coordinates ``item`` (index into the data table) and
  ``mask_rate`` (:func:`guide_draws`, :func:`to_inference_data`);
* builds a reference posterior: NUTS on the model above for a continuous ``z`` (chains run one after
  the other, R-hat and ESS from ArviZ; :func:`nuts_reference`) and the exact posterior by
  enumeration for a discrete ``z`` (:func:`exact_discrete_posterior`);
* measures the guide: PSIS k-hat of the guide as an importance proposal (:func:`psis_khat`), its
  distance to the reference (:func:`guide_vs_reference`), and adds the latent usage of
  :mod:`vmd_pyro.latent_usage` (KL to the prior per dimension, active units, I(z; x)).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import MCMC, NUTS

from vmd_pyro.latent_usage import held_out_pairs, latent_usage
from vmd_pyro.masking import DiffusionBatch
from vmd_pyro.metrics import log_likelihood_terms
from vmd_pyro.sampling import _draw
from vmd_pyro.training import requires_grad_only

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # arviz 0.23 announces its 1.0 refactor
    import arviz as az


@dataclass
class DiagnosticsConfig:
    mask_rates: tuple = (0.25, 0.5, 0.75, 1.0)   # fixed diffusion times t of the held-out pairs
    examples_per_rate: int = 10      # held-out pairs per mask rate judged against the reference
    population_per_rate: int = 500   # pairs per mask rate for KL, active units and MI (guide only)
    guide_draws: int = 1000          # draws of z from the guide per example (k-hat, distances)
    chains: int = 4                  # NUTS chains, run in a loop
    warmup: int = 300
    samples: int = 500               # NUTS draws per chain
    max_tree_depth: int = 8
    activity_threshold: float = 0.01  # Burda et al.: unit d active if Cov_x(E_q[z_d]) > this
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


# --- the unnormalised posterior and the guide ------------------------------------------------------
def log_joint(program, batch: DiffusionBatch, z: torch.Tensor) -> torch.Tensor:
    """``log p(z | xt) + sum_{i masked} log p(x0^i | xt, z)`` for ``z`` of shape ``(*S, B[, D])``:
    the unnormalised log posterior, with no ``w(t)`` scale. Returns shape ``(*S, B)``."""
    return program.prior_dist(batch.xt).log_prob(z) + log_likelihood_terms(program, batch, z)


@torch.no_grad()
def guide_draws(program, batch: DiffusionBatch, num_draws: int, generator=None):
    """``num_draws`` draws of ``z ~ q(z | x0, xt)`` per example, shape ``(S, B[, D])``, with their
    ``log q`` and ``log p(x0, z | xt)`` (each ``(S, B)``)."""
    q = program.guide_dist(batch.x0, batch.masked)
    z = _draw(q.expand((num_draws,) + q.batch_shape), generator)
    return z, q.log_prob(z), log_joint(program, batch, z)


def to_inference_data(z, batch: DiffusionBatch, items, sample_stats: dict | None = None):
    """ArviZ ``InferenceData`` from draws ``z`` of shape ``(chain, draw, example[, latent])``.

    Dims are named ``example`` and ``latent``; each example carries the coordinates ``item`` (row of
    the data table), ``mask_rate`` (its ``t``) and ``num_masked``. ``sample_stats`` holds extra
    per-draw arrays of shape ``(chain, draw, example)`` (log densities) or ``(chain, draw)``
    (divergences of a sampler that moves all examples at once).
    """
    z = _numpy(z)
    if z.ndim not in (3, 4) or z.shape[2] != len(batch):
        raise ValueError(f"z must have shape (chain, draw, {len(batch)}[, latent]), got {z.shape}")
    dims = ["example", "latent"][: z.ndim - 2]
    coords = {"example": np.arange(len(batch))}
    if z.ndim == 4:
        coords["latent"] = np.arange(z.shape[3])
    stats = {k: _numpy(v) for k, v in (sample_stats or {}).items()}
    stat_dims = {k: ["example"][: v.ndim - 2] for k, v in stats.items()}
    idata = az.from_dict(posterior={"z": z}, sample_stats=stats or None, coords=coords,
                         dims={"z": dims, **stat_dims})
    example_coords = {"item": ("example", _numpy(items)),
                      "mask_rate": ("example", _numpy(batch.t)),
                      "num_masked": ("example", _numpy(batch.masked.sum(-1)))}
    for group in idata.groups():
        idata[group] = idata[group].assign_coords(example_coords)
    return idata


def _numpy(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# --- reference posteriors -------------------------------------------------------------------------
def reference_model(program, batch: DiffusionBatch):
    """The posterior target for a batch of independent pairs ``(x0, xt)``, without ``w(t)``::

        z_b    ~ p(z | xt_b)
        x0_b^i ~ Categorical(softmax(denoiser(xt_b, z_b)_i))   for masked i (observed)
    """
    with pyro.plate("example", len(batch)):
        z = pyro.sample("z", program.prior_dist(batch.xt))
        logits = program.logits(batch.xt, z)
        pyro.sample("x0", dist.Categorical(logits=logits).mask(batch.masked).to_event(1),
                    obs=batch.x0)


def frozen(program):
    """Networks as constants: NUTS differentiates with respect to ``z`` only."""
    return requires_grad_only(program, ())


def nuts_reference(program, batch: DiffusionBatch, cfg: DiagnosticsConfig, progress=False):
    """Reference draws of a continuous ``z`` from ``p(z | x0, xt)`` for every example.

    NUTS (``pyro.infer.MCMC``) on the potential ``-log p(z, x0 | xt)`` of :func:`reference_model`
    (written out directly, which skips Pyro's tracing on every leapfrog step) runs ``cfg.chains``
    chains one after another (``num_chains > 1`` forks processes and is fragile), each started from
    its own prior draw so that R-hat can see chains that disagree. Examples with no masked position
    have the prior as their exact posterior and get exact prior draws instead (a multimodal prior
    would otherwise be a hard target for NUTS).
    Returns ``z`` of shape ``(chain, draw, B, D)`` and ``diverging`` of shape ``(chain, draw)``.
    """
    observed = batch.masked.any(-1)
    shape = (cfg.chains, cfg.samples)
    with torch.no_grad():
        z = _draw(program.prior_dist(batch.xt).expand(shape + (len(batch),)),
                  torch.Generator().manual_seed(cfg.seed))
    diverging = torch.zeros(shape, dtype=torch.bool)
    if observed.any():
        sub = batch.select(observed)

        def potential(params):  # - log p(z, x0 | xt) of the reference model, summed over examples
            return -log_joint(program, sub, params["z"]).sum()

        with frozen(program):
            for chain in range(cfg.chains):
                pyro.set_rng_seed(cfg.seed + chain)
                kernel = NUTS(potential_fn=potential, max_tree_depth=cfg.max_tree_depth)
                mcmc = MCMC(kernel, num_samples=cfg.samples, warmup_steps=cfg.warmup,
                            initial_params={"z": z[chain, 0, observed].clone()},
                            disable_progbar=not progress)
                mcmc.run()
                z[chain][:, observed] = mcmc.get_samples()["z"].detach()
                steps = [i for i in mcmc.diagnostics()["divergences"]["chain 0"]
                         if 0 <= i < cfg.samples]  # indices count from the end of warmup
                diverging[chain, steps] = True
    return z, diverging


@torch.no_grad()
def exact_discrete_posterior(program, batch: DiffusionBatch) -> torch.Tensor:
    """``p(z = k | x0, xt)`` for a discrete ``z`` by enumerating its ``K`` values, shape ``(B, K)``."""
    values = torch.arange(program.cfg.components).unsqueeze(-1)          # (K, 1)
    return log_joint(program, batch, values).log_softmax(0).exp().T     # (B, K)


def mcmc_summary(idata) -> dict:
    """R-hat (rank-normalised, split) and bulk/tail ESS of the reference draws, worst case over all
    examples and latent dimensions, with the divergence count."""
    rhat = az.rhat(idata)["z"].values
    ess_bulk = az.ess(idata, method="bulk")["z"].values
    ess_tail = az.ess(idata, method="tail")["z"].values
    out = {"rhat_max": float(np.nanmax(rhat)), "ess_bulk_min": float(np.nanmin(ess_bulk)),
           "ess_tail_min": float(np.nanmin(ess_tail)),
           "rhat_per_example": _worst(rhat, np.nanmax),
           "ess_bulk_per_example": _worst(ess_bulk, np.nanmin)}
    if "sample_stats" in idata.groups() and "diverging" in idata.sample_stats:
        out["divergences"] = int(idata.sample_stats["diverging"].values.sum())
    return out


def _worst(values, reduce):
    return reduce(values.reshape(values.shape[0], -1), axis=1).tolist()


# --- comparing the guide with the reference --------------------------------------------------------
def psis_khat(log_weights) -> np.ndarray:
    """Pareto k-hat per example of importance weights ``log_weights`` of shape ``(B, S)``
    (``arviz.psislw``). Below 0.5 the proposal is good; above 0.7 importance sampling with it is
    unreliable (Vehtari et al. 2024)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz warns once k-hat exceeds 0.7: we report it instead
        _, khat = az.psislw(np.asarray(log_weights, dtype=np.float64))
    return np.asarray(khat)


def khat_summary(khat) -> dict:
    """Mean, median, max and the fractions below 0.5 / above 0.7, over the finite k-hats (the fit
    is degenerate, +-inf, when the tail weights are all tied, as for a discrete z)."""
    khat = np.asarray(khat, dtype=np.float64)
    finite = khat[np.isfinite(khat)]
    if len(finite) == 0:
        return {"non_finite": int(len(khat))}
    return {"mean": float(finite.mean()), "median": float(np.median(finite)),
            "max": float(finite.max()), "fraction_below_0.5": float((finite < 0.5).mean()),
            "fraction_above_0.7": float((finite > 0.7).mean()),
            "non_finite": int(len(khat) - len(finite))}


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Euclidean) between two samples
    ``(n, D)`` and ``(m, D)``; zero exactly when the two distributions agree. Same-sample terms use
    the U-statistic (no zero diagonal)."""
    x, y = x.double().reshape(len(x), -1), y.double().reshape(len(y), -1)
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).sum() / (len(x) * (len(x) - 1))
    yy = torch.cdist(y, y).sum() / (len(y) * (len(y) - 1))
    return float(2 * xy - xx - yy)


def guide_vs_reference(guide_z, ref_z, log_q=None, log_p=None, guide_probs=None,
                       ref_probs=None, max_points: int = 1000) -> dict:
    """Per-example distance between guide and reference.

    Continuous ``z``: the energy distance between guide draws ``guide_z (S, B, D)`` and pooled
    reference draws ``ref_z (C, N, B, D)``, next to its noise floor (the energy distance between
    the first and second half of the reference chains), and ``kl_gap``: the importance-weighted
    bound from the ``S`` guide draws minus the ELBO from the same draws, a Monte Carlo lower bound
    on ``KL(q || p(z | x0, xt))`` (it tends to the KL as ``S`` grows).
    Discrete ``z``: the exact ``KL(q || p)`` and total variation from the probability tables.
    """
    if guide_probs is not None:
        q, p = guide_probs.double(), ref_probs.double()
        kl = (q * (q.clamp_min(1e-300).log() - p.clamp_min(1e-300).log())).sum(-1)
        return {"estimator": "exact KL(q || p) and total variation over the K values of z",
                "kl_exact": kl.tolist(), "total_variation": (0.5 * (q - p).abs().sum(-1)).tolist()}
    chains = ref_z.shape[0]
    pooled = ref_z.reshape((-1,) + ref_z.shape[2:])
    first, second = ref_z[: chains // 2 or 1], ref_z[chains // 2 or 1:]
    first, second = (h.reshape((-1,) + h.shape[2:]) for h in (first, second))
    energy, floor = [], []
    for b in range(guide_z.shape[1]):
        energy.append(energy_distance(guide_z[:max_points, b], _thin(pooled[:, b], max_points)))
        if len(second):
            floor.append(energy_distance(_thin(first[:, b], max_points),
                                         _thin(second[:, b], max_points)))
    out = {"estimator": "energy distance 2E|X-Y|-E|X-X'|-E|Y-Y'| (guide draws vs pooled reference "
                        "draws); floor: first vs second half of the reference chains; kl_gap: "
                        "IW bound minus ELBO from the guide draws, a lower bound on KL(q||p)",
           "energy_distance": energy, "energy_floor": floor}
    if log_q is not None:
        log_w = (log_p - log_q).double()
        iw = torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])
        out["kl_gap"] = (iw - log_w.mean(0)).tolist()
    return out


def _thin(x, max_points):
    step = max(1, math.ceil(len(x) / max_points))
    return x[::step]


# --- everything at once -----------------------------------------------------------------------------
@dataclass
class Diagnosis:
    report: dict                       # JSON-ready numbers
    idata: object                      # az.InferenceData: guide draws, reference draws
    batch: DiffusionBatch              # the held-out pairs
    items: torch.Tensor
    population: DiffusionBatch = field(repr=False, default=None)   # pairs for the latent usage
    population_items: torch.Tensor = field(repr=False, default=None)


def diagnose(program, task, cfg: DiagnosticsConfig, progress: bool = False) -> Diagnosis:
    """All diagnostics of a trained VMD ``program`` on a synthetic ``task``."""
    if not program.has_latent:
        raise ValueError("an MDM has no latent variable to diagnose; use a VMD model")
    generator = torch.Generator().manual_seed(cfg.seed)
    batch, items = held_out_pairs(task, cfg.mask_rates, cfg.examples_per_rate, program.mask_id,
                                  generator)
    z, log_q, log_p = guide_draws(program, batch, cfg.guide_draws, generator)
    khat = psis_khat((log_p - log_q).T)
    idata = to_inference_data(z.unsqueeze(0), batch, items,
                              {"log_q": log_q.unsqueeze(0), "log_joint": log_p.unsqueeze(0)})
    report = {"psis_khat": [float(k) if np.isfinite(k) else None for k in khat],
              "psis_khat_summary": khat_summary(khat)}

    if program.prior.support == "discrete":
        guide_probs = program.guide_dist(batch.x0, batch.masked).probs.detach()
        ref_probs = exact_discrete_posterior(program, batch)
        ref_z = _draw(dist.Categorical(probs=ref_probs).expand(
            (cfg.chains, cfg.samples, len(batch))), generator)
        ref = to_inference_data(ref_z, batch, items)
        report["reference"] = {"method": "exact posterior by enumeration over the K values of z",
                               "posterior_probs": ref_probs.tolist()}
        report["guide_vs_reference"] = guide_vs_reference(None, None, guide_probs=guide_probs,
                                                          ref_probs=ref_probs)
        # k-hat fits a continuous tail; a K-valued proposal has at most K distinct weights, whose
        # exact supremum says more: importance sampling keeps an ESS of at least S / max ratio.
        report["psis_khat_summary"]["note"] = (
            "discrete z: at most K distinct importance weights, so the Pareto fit is degenerate "
            "(null = non-finite); see max_weight_ratio, the exact sup of p(z|x0,xt)/q(z|x0,xt)")
        report["max_weight_ratio"] = (ref_probs / guide_probs.clamp_min(1e-300)).max(-1).values.tolist()
    else:
        ref_z, diverging = nuts_reference(program, batch, cfg, progress=progress)
        ref = to_inference_data(ref_z, batch, items, {"diverging": diverging})
        report["reference"] = {"method": f"NUTS, {cfg.chains} chains run in a loop, "
                                         f"{cfg.warmup} warmup + {cfg.samples} draws each; exact "
                                         "prior draws for examples with nothing masked",
                               **mcmc_summary(ref)}
        report["guide_vs_reference"] = guide_vs_reference(z, ref_z, log_q, log_p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # custom group names are allowed, ArviZ only notes them
        idata.add_groups({"reference_posterior": ref.posterior})
        if "sample_stats" in ref.groups():
            idata.add_groups({"reference_sample_stats": ref.sample_stats})

    population, population_items = held_out_pairs(task, cfg.mask_rates, cfg.population_per_rate,
                                                  program.mask_id, generator)
    usage = latent_usage(program, population, cfg.activity_threshold, generator)
    report.update(kl_per_dim=usage.pop("kl_per_dim"), active_units=usage.pop("active_units"),
                  latent_usage=usage)
    report["examples"] = [{"example": b, "item": int(items[b]), "mask_rate": float(batch.t[b]),
                           "x0": batch.x0[b].tolist(), "xt": batch.xt[b].tolist(),
                           "psis_khat": report["psis_khat"][b]} for b in range(len(batch))]
    report["config"] = cfg.to_dict()
    return Diagnosis(report, idata, batch, items, population, population_items)
