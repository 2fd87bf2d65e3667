"""Figures for :mod:`vmd_pyro.diagnostics`. Each function takes a :class:`Diagnosis` (and the
program where it needs the guide) and returns a matplotlib figure; callers choose the backend
(``experiments/diagnose.py`` uses Agg)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from vmd_pyro.latent_usage import posterior_means

RATE_COLOURS = plt.get_cmap("viridis")


def _rate_colour(t, rates):
    return RATE_COLOURS(0.15 + 0.7 * rates.index(t) / max(1, len(rates) - 1))


def showcase_examples(diagnosis, count: int = 4) -> list[int]:
    """One example per mask rate (cycling), preferring ones with something masked."""
    t = diagnosis.batch.t.tolist()
    masked = diagnosis.batch.masked.any(-1).tolist()
    chosen = []
    for rate in sorted(set(t)):
        candidates = [b for b in range(len(t)) if t[b] == rate and masked[b]] or \
                     [b for b in range(len(t)) if t[b] == rate]
        chosen.append(candidates[len(chosen) % len(candidates)])
    return chosen[:count]


def plot_guide_vs_reference(diagnosis, program, examples=None):
    """Continuous z: histograms of guide and reference draws of the two coordinates with the
    largest KL to the prior, one row per example. Discrete z: q(z = k) next to the exact posterior."""
    examples = examples or showcase_examples(diagnosis)
    guide = diagnosis.idata.posterior["z"].values[0]                          # (S, B[, D])
    ref = diagnosis.idata.reference_posterior["z"].values
    ref = ref.reshape((-1,) + ref.shape[2:])                                  # (C*N, B[, D])
    batch = diagnosis.batch
    if program.prior.support == "discrete":
        q = program.guide_dist(batch.x0, batch.masked).probs.detach().numpy()
        p = np.asarray(diagnosis.report["reference"]["posterior_probs"])
        fig, axes = plt.subplots(1, len(examples), figsize=(3.2 * len(examples), 2.8),
                                 squeeze=False)
        k = np.arange(q.shape[1])
        for ax, b in zip(axes[0], examples):
            ax.bar(k - 0.2, q[b], 0.4, label="guide q(z|x0,xt)")
            ax.bar(k + 0.2, p[b], 0.4, label="exact posterior")
            ax.set_title(_example_title(diagnosis, b), fontsize=8)
            ax.set_xlabel("value of z")
        axes[0, 0].set_ylabel("probability")
        axes[0, 0].legend(fontsize=7)
    else:
        dims = np.argsort(diagnosis.report["kl_per_dim"])[::-1][:2]
        fig, axes = plt.subplots(len(examples), len(dims), figsize=(3.3 * len(dims),
                                                                    2.2 * len(examples)),
                                 squeeze=False)
        for row, b in enumerate(examples):
            for col, d in enumerate(dims):
                ax = axes[row, col]
                both = np.concatenate([guide[:, b, d], ref[:, b, d]])
                bins = np.linspace(both.min(), both.max(), 40)
                ax.hist(ref[:, b, d], bins, density=True, alpha=0.5, label="reference (NUTS)")
                ax.hist(guide[:, b, d], bins, density=True, histtype="step", lw=1.5,
                        label="guide")
                ax.set_title(f"{_example_title(diagnosis, b)}, z[{d}]", fontsize=8)
        axes[0, 0].legend(fontsize=7)
    fig.suptitle("guide vs reference posterior p(z | x0, xt); (k) = token k is masked in xt",
                 fontsize=9)
    fig.tight_layout()
    return fig


def _example_title(diagnosis, b) -> str:
    batch = diagnosis.batch
    tokens = " ".join(f"({int(x)})" if m else str(int(x)) for x, m in zip(batch.x0[b],
                                                                           batch.masked[b]))
    return f"ex {b}, t={float(batch.t[b]):.2f}: x0 = {tokens}"


def plot_khat(diagnosis):
    """PSIS k-hat of the guide as an importance proposal, per example, coloured by mask rate. For a
    discrete z (at most K distinct weights: the Pareto fit is degenerate) the exact largest
    importance weight p(z | x0, xt) / q(z | x0, xt) instead."""
    discrete = "max_weight_ratio" in diagnosis.report
    values = np.asarray(diagnosis.report["max_weight_ratio" if discrete else "psis_khat"],
                        dtype=np.float64)  # None (a degenerate fit) becomes nan: not drawn
    t = diagnosis.batch.t.tolist()
    rates = sorted(set(t))
    fig, ax = plt.subplots(figsize=(6.5, 3))
    for rate in rates:
        idx = [b for b in range(len(t)) if t[b] == rate]
        ax.scatter(idx, values[idx], color=_rate_colour(rate, rates), label=f"t = {rate:g}", s=18)
    ax.set_xlabel("held-out example")
    if discrete:
        ax.axhline(1.0, color="grey", ls=":", lw=1)
        ax.set_ylabel("max_z p(z|x0,xt) / q(z|x0,xt)")
        ax.set_title("discrete z: largest importance weight of the guide (1 = exact posterior)",
                     fontsize=9)
    else:
        for level, style in ((0.5, ":"), (0.7, "--")):
            ax.axhline(level, color="grey", ls=style, lw=1)
        ax.set_ylabel("PSIS k-hat")
        ax.set_title("guide as importance proposal for p(z | x0, xt): k-hat < 0.5 good, > 0.7 bad",
                     fontsize=9)
    ax.legend(fontsize=7, ncol=len(rates))
    fig.tight_layout()
    return fig


def plot_latent_space(program, batch, items, axes=None):
    """The aggregate posterior: E_q[z | x0, xt] of each example in ``batch``, one panel per mask
    rate, coloured by the data sequence (mode) ``items``. Continuous z: projected on the two leading
    principal axes of all the means (exact when D = 2). Discrete z: the mean of q(z = k) per data
    sequence. ``axes``: a row of axes to draw into (one per mask rate); a new figure otherwise."""
    means = posterior_means(program, batch).numpy()
    items = items.numpy()
    rates = sorted(set(batch.t.tolist()))
    continuous = program.prior.support != "discrete"
    if axes is None:
        fig, axes = plt.subplots(1, len(rates), figsize=(3.2 * len(rates), 3.2), squeeze=False,
                                 sharex=continuous, sharey=continuous)
        axes = axes[0]
        title = True
    else:
        fig, title = axes[0].figure, False
    cmap = plt.get_cmap("tab10")
    if not continuous:
        for ax, rate in zip(axes, rates):
            idx = (batch.t == rate).numpy()
            table = np.stack([means[idx & (items == i)].mean(0) for i in range(items.max() + 1)])
            ax.imshow(table, vmin=0, vmax=1, cmap="Blues", aspect="auto")
            ax.set_title(f"t = {rate:g}", fontsize=9)
            ax.set_xlabel("value of z")
        axes[0].set_ylabel("data sequence (mode)")
        if title:
            fig.suptitle("mean guide probability q(z = k | x0, xt) per data sequence", fontsize=10)
    else:
        centred = means - means.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        proj = centred @ vt[:2].T if means.shape[1] > 1 else np.c_[centred, np.zeros(len(means))]
        for ax, rate in zip(axes, rates):
            idx = (batch.t == rate).numpy()
            ax.scatter(proj[idx, 0], proj[idx, 1], c=[cmap(i % 10) for i in items[idx]], s=6,
                       alpha=0.7)
            ax.set_title(f"t = {rate:g}", fontsize=9)
            ax.set_xlabel("PC 1")
        axes[0].set_ylabel("PC 2")
        if len(modes := np.unique(items)) <= 10:
            handles = [plt.Line2D([], [], ls="", marker="o", color=cmap(i)) for i in modes]
            axes[-1].legend(handles, [f"seq {i}" for i in modes], fontsize=6,
                            loc="center left", bbox_to_anchor=(1.0, 0.5))
        if title:
            fig.suptitle("aggregate posterior: E_q[z | x0, xt], coloured by data sequence",
                         fontsize=10)
    if title:
        fig.tight_layout()
    return fig


def plot_kl_vs_rate(diagnosis):
    """KL(q || prior) per latent coordinate against the mask rate, with the mutual information
    I(z; x) and the number of active units."""
    per_rate = diagnosis.report["latent_usage"]["per_mask_rate"]
    rates = [r["mask_rate"] for r in per_rate]
    kl = np.array([r["kl_per_dim"] for r in per_rate])                    # (T, D)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    for d in range(kl.shape[1]):
        ax.plot(rates, kl[:, d], marker="o", ms=3, label=f"z[{d}]" if kl.shape[1] > 1 else "z")
    ax.set_xlabel("mask rate t")
    ax.set_ylabel("KL(q(z_d | x0, xt) || p(z_d)) [nats]")
    ax.set_title("KL to the prior per latent coordinate", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    ax2.plot(rates, [r["mutual_information"] for r in per_rate], marker="o", label="I(z; x)")
    ax2.plot(rates, [r["kl_total"] for r in per_rate], marker="s", label="total KL")
    ax2.set_xlabel("mask rate t")
    ax2.set_ylabel("nats")
    twin = ax2.twinx()
    twin.plot(rates, [r["active_units"] for r in per_rate], color="grey", ls="--", marker="x",
              label="active units")
    twin.set_ylabel("active units", color="grey")
    twin.set_ylim(-0.2, diagnosis.report["latent_usage"]["units"] + 0.2)
    ax2.set_title("aggregate-posterior MI, total KL, active units", fontsize=9)
    lines = ax2.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax2.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


PLOTS = {"guide_vs_reference": lambda d, p: plot_guide_vs_reference(d, p),
         "khat": lambda d, p: plot_khat(d),
         "latent_space": lambda d, p: plot_latent_space(p, d.population, d.population_items),
         "kl_vs_mask_rate": lambda d, p: plot_kl_vs_rate(d)}


def save_all(diagnosis, program, out_dir) -> list[str]:
    """Write every figure as ``out_dir/NAME.png``; returns the paths."""
    paths = []
    for name, make in PLOTS.items():
        with torch.no_grad():
            fig = make(diagnosis, program)
        path = f"{out_dir}/{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
