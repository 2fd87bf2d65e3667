#!/usr/bin/env python
"""Run a grid of synthetic experiments through ``experiments/run.py`` and summarise it.

Each (dataset, model, prior, seed) is one training run whose JSON lands in ``OUT/runs/``; runs whose
JSON already exists are skipped, so an interrupted sweep resumes where it stopped. The summary
(``OUT/summary.json``, ``OUT/table.md``) gives mean and standard deviation over seeds, and the
dependency sweep on ``pair-p`` draws KL against p with the mutual-information limit
(``OUT/kl_vs_p.png``).

    python experiments/sweep.py --out runs/synthetic
    python experiments/sweep.py --out runs/priors --models vmd \\
        --priors gaussian mog discrete conditional --datasets quad-d1 quad-d2 pair-skewed
    python experiments/sweep.py --out runs/bounds --objectives joint steps --p-values \\
        --priors gaussian mog discrete conditional --datasets quad-d1 quad-d2 pair-skewed

With ``--objectives joint steps`` every model is trained with both objectives (``steps`` trains
B_T at the NFEs it is evaluated at) and ``OUT/bounds_vs_nfe.png`` draws the likelihood bound
against NFE with the data entropy as the floor.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vmd_pyro import cli  # noqa: E402
from vmd_pyro.datasets.synthetic import make_synthetic  # noqa: E402
from vmd_pyro.experiment import (fmt, load_script, provenance, result_runs,  # noqa: E402
                                 write_json)

run = load_script("run")

QUAD_NFE, PAIR_NFE = (1, 2, 4), (1, 2)


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--datasets", nargs="+",
                   default=["quad-d1", "quad-d2", "pair-uniform", "pair-skewed"])
    p.add_argument("--models", nargs="+", default=["mdm", "vmd"], choices=["mdm", "vmd"])
    p.add_argument("--priors", nargs="+", default=["gaussian"])
    p.add_argument("--objectives", nargs="+", default=["joint"], choices=["joint", "steps"],
                   help="training objectives (run.py --objective; steps trains B_T at the "
                        "evaluated NFEs)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--quad-steps", type=int, default=4000, help="training steps on 4-token sets")
    p.add_argument("--pair-steps", type=int, default=1500, help="training steps on pair sets")
    p.add_argument("--p-values", nargs="*", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0],
                   help="dependency strengths for the KL-vs-p sweep (seed 0); none to skip")
    p.add_argument("--reuse", default=None,
                   help="another sweep's output directory: take identical runs from it instead of "
                        "training them again (same tag, same settings)")
    p.add_argument("--no-run", action="store_true",
                   help="train nothing: summarise the runs that exist (the table counts seeds)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("extra", nargs=argparse.REMAINDER,
                   help="after --, arguments passed to run.py unchanged (e.g. -- --hidden 128)")
    return p.parse_args(argv)


def run_one(args, out: Path, dataset: str, model: str, prior: str, seed: int, p=None,
            objective: str = "joint") -> list:
    tag = f"{dataset}{'' if p is None else f'-p{p:.2f}'}-{model}" + \
        ("" if model == "mdm" else f"-{prior}") + ("" if objective == "joint" else f"-{objective}") \
        + f"-s{seed}"
    path = out / "runs" / f"{tag}.json"
    reused = Path(args.reuse) / "runs" / f"{tag}.json" if args.reuse else None
    if not path.exists() and reused is not None and reused.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(reused.read_text())
        print(f"== {tag}: reused from {reused}", flush=True)
    if not path.exists() and args.no_run:
        return []
    if not path.exists():
        quad = dataset.startswith("quad")
        nfe = list(map(str, QUAD_NFE if quad else PAIR_NFE))
        argv = ["--task", "synthetic", "--dataset", dataset, "--model", model, "--prior", prior,
                "--seed", str(seed), "--threads", str(args.threads), "--quiet",
                "--steps", str(args.quad_steps if quad else args.pair_steps),
                "--nfe", *nfe, "--out", str(path), "--objective", objective]
        if objective == "steps":
            argv += ["--train-nfe", *nfe]
        if p is not None:
            argv += ["--p", str(p), "--nfe", "1", "--fill", "sample"]
        argv += [a for a in args.extra if a != "--"]
        print(f"== {tag}: python experiments/run.py {' '.join(argv)}", flush=True)
        code = run.main(argv)
        if code != 0:
            cli.fail(f"run {tag} failed with exit code {code}")
    data = json.loads(path.read_text())
    return result_runs(data)


def summarise(records: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        key = (r["dataset"], r["model"], r["prior"], objective_of(r), r["nfe"], r["fill"])
        groups.setdefault(key, []).append(r)
    rows = []
    for (dataset, model, prior, objective, nfe, fill), rs in sorted(groups.items(), key=lambda kv: (
            kv[0][0], kv[0][1], str(kv[0][2]), kv[0][3], kv[0][5], kv[0][4])):
        row = {"dataset": dataset, "model": model, "prior": prior or "-", "objective": objective,
               "nfe": nfe, "fill": fill, "seeds": len(rs), "kl_estimator": rs[0]["kl_estimator"],
               "bound_generator": rs[0].get("bound_generator"),
               "data_entropy_bits": rs[0].get("data_entropy_bits")}
        for key in METRICS:
            values = [r[key] for r in rs if r.get(key) is not None]
            if values:
                row[key] = statistics.fmean(values)
                row[key + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


# Averaged over seeds. nll_bound_bits: B_T at the row's NFE (a bound); nelbo_bits: MDM's continuous
# NELBO (a bound); objective_bits: VMD's training objective J (not a bound).
METRICS = ("accuracy", "kl", "nll_bound_bits", "iw_nll_bound_bits", "nelbo_bits", "objective_bits")


def objective_of(record: dict) -> str:
    return record.get("train_config", {}).get("objective", "joint")


def table(rows: list[dict]) -> str:
    cols = ["dataset", "model", "prior", "objective", "nfe", "fill", "seeds", *METRICS]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = []
        for c in cols:
            if c in METRICS and c in row:
                scale = 100 if c == "accuracy" else 1
                digits = 1 if c == "accuracy" else 3
                cells.append(f"{row[c] * scale:.{digits}f} ± {row[c + '_std'] * scale:.{digits}f}")
            else:
                cells.append(fmt(row.get(c)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_kl_vs_p(curves: dict, out: Path):
    fig, ax = plt.subplots(figsize=(6, 4))
    ps = [i / 100 for i in range(101)]
    ax.plot(ps, [make_synthetic("pair-p", p).factorisation_limit() for p in ps], "k--",
            label="I(x1; x2): floor of any factorised one-step decoder")
    for label, points in sorted(curves.items()):
        points = sorted(points)
        ax.plot([p for p, _ in points], [kl for _, kl in points], "o-", label=label)
    ax.set_xlabel("dependency strength p")
    ax.set_ylabel("KL(p_data || p_model), nats (NFE = 1)")
    ax.set_title("pair-p: one-step decoding")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "kl_vs_p.png", dpi=120)
    plt.close(fig)


def bounds_table(rows: list[dict]) -> str:
    """One line per (data set, model, prior, objective): the importance-weighted B_T at each NFE
    (mean ± sd over seeds), the training loss (MDM's NELBO, a bound; VMD's J, not one) and the
    one-step accuracy with sampled tokens, beside the data entropy."""
    sel = [r for r in rows if r["fill"] == "sample" and r.get("iw_nll_bound_bits") is not None]
    nfes = sorted({r["nfe"] for r in sel})
    lines = ["| data (entropy, bits/token) | model | objective | seeds | "
             + " | ".join(f"IW B_{n}" for n in nfes)
             + " | NELBO (MDM) or J (VMD) | accuracy % NFE 1 |", "|" + "---|" * (6 + len(nfes))]
    keys = sorted({(r["dataset"], r["model"], r["prior"], r["objective"]) for r in sel},
                  key=lambda k: (k[0], k[1], k[2], k[3]))
    for dataset, model, prior, objective in keys:
        mine = {r["nfe"]: r for r in sel
                if (r["dataset"], r["model"], r["prior"], r["objective"]) ==
                (dataset, model, prior, objective)}
        first = next(iter(mine.values()))
        loss = "nelbo_bits" if model == "mdm" else "objective_bits"
        cells = [f"{mine[n]['iw_nll_bound_bits']:.3f} ± {mine[n]['iw_nll_bound_bits_std']:.3f}"
                 if n in mine else "-" for n in nfes]
        one = mine.get(1)
        lines.append(f"| {dataset} ({first['data_entropy_bits']:.3f}) | "
                     f"{'MDM' if model == 'mdm' else 'VMD ' + prior} | {objective} | "
                     f"{first['seeds']} | " + " | ".join(cells) + " | "
                     f"{first[loss]:.3f} ± {first[loss + '_std']:.3f} | "
                     + (f"{100 * one['accuracy']:.1f} ± {100 * one['accuracy_std']:.1f}"
                        if one else "-") + " |")
    return "\n".join(lines)


def plot_bounds_vs_nfe(rows: list[dict], out: Path):
    """Importance-weighted B_T (bits/token, mean over seeds, sd as error bars) against NFE, one panel
    per data set; MDM's continuous NELBO at the right edge; the data entropy as the floor."""
    datasets = sorted({r["dataset"] for r in rows})
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        sel = [r for r in rows if r["dataset"] == dataset and r["fill"] == "sample"
               and r.get("iw_nll_bound_bits") is not None]
        nfes = sorted({r["nfe"] for r in sel})
        edge = max(nfes) * 2
        for (model, prior, objective) in sorted({(r["model"], r["prior"], r["objective"])
                                                 for r in sel}):
            line = sorted((r["nfe"], r["iw_nll_bound_bits"], r["iw_nll_bound_bits_std"])
                          for r in sel if (r["model"], r["prior"], r["objective"]) ==
                          (model, prior, objective))
            label = ("MDM" if model == "mdm" else f"VMD {prior}") + f", {objective}"
            style = "-" if objective == "steps" else "--"
            handle = ax.errorbar([n for n, _, _ in line], [b for _, b, _ in line],
                                 [s for _, _, s in line], fmt="o" + style, capsize=3, label=label)
            nelbo = [r["nelbo_bits"] for r in sel if r["model"] == "mdm" and
                     r["objective"] == objective and r.get("nelbo_bits") is not None]
            if model == "mdm" and nelbo:
                ax.plot([edge], [nelbo[0]], "s", color=handle[0].get_color())
        ax.axhline(sel[0]["data_entropy_bits"], color="k", ls=":", label="data entropy (floor)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(nfes + [edge], [str(n) for n in nfes] + ["cont."])
        ax.set_xlabel("NFE T (cont. = MDM's continuous-time NELBO, squares)")
        ax.set_ylabel("bits/token, IW bound on -log p_T (random order, z resample)")
        ax.set_title(dataset)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "bounds_vs_nfe.png", dpi=120)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    start = time.perf_counter()
    records, curves = [], {}
    model_priors = [(m, p) for m in args.models for p in (["-"] if m == "mdm" else args.priors)]
    for seed in args.seeds:          # seed-major: a cut-short sweep still covers every setting
        for dataset in args.datasets:
            for objective in args.objectives:
                for model, prior in model_priors:
                    records += run_one(args, out, dataset, model,
                                       prior if prior != "-" else args.priors[0], seed,
                                       objective=objective)
    for p in args.p_values:
        for model, prior in model_priors:
            for r in run_one(args, out, "pair-p", model,
                             prior if prior != "-" else args.priors[0], 0, p):
                label = "MDM" if model == "mdm" else f"VMD ({r['prior']})"
                curves.setdefault(label, []).append((p, r["kl"]))
    rows = summarise(records)
    summary = {"rows": rows, "kl_vs_p": curves, "sweep_seconds": time.perf_counter() - start,
               "sweep_command": "python experiments/sweep.py " + " ".join(sys.argv[1:] if argv is None else argv),
               **provenance(args.seeds[0])}
    write_json(out / "summary.json", summary)
    (out / "table.md").write_text(table(rows) + "\n")
    if curves:
        plot_kl_vs_p(curves, out)
    if any(r.get("nll_bound_bits") is not None for r in rows):
        plot_bounds_vs_nfe(rows, out)
        (out / "bounds_table.md").write_text(bounds_table(rows) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
