#!/usr/bin/env python
"""Run a grid of synthetic experiments through ``experiments/run.py`` and summarise it.

Each (dataset, model, prior, seed) is one training run whose JSON lands in ``OUT/runs/``; runs whose
JSON already exists are skipped, so an interrupted sweep resumes where it stopped. The summary
(``OUT/summary.json``, ``OUT/table.md``) gives mean and standard deviation over seeds, and the
dependency sweep on ``pair-p`` draws KL against p with the mutual-information limit
(``OUT/kl_vs_p.png``).

    python experiments/sweep.py --out results/synthetic                     # issue: core results
    python experiments/sweep.py --out results/priors --models vmd \\
        --priors gaussian mog discrete conditional --datasets quad-d1 quad-d2 pair-skewed
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import run  # noqa: E402
from vmd_pyro import cli  # noqa: E402
from vmd_pyro.datasets.synthetic import make_synthetic  # noqa: E402
from vmd_pyro.experiment import fmt, provenance, write_json  # noqa: E402

QUAD_NFE, PAIR_NFE = (1, 2, 4), (1, 2)


def parse_args(argv=None):
    p = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--datasets", nargs="+",
                   default=["quad-d1", "quad-d2", "pair-uniform", "pair-skewed"])
    p.add_argument("--models", nargs="+", default=["mdm", "vmd"], choices=["mdm", "vmd"])
    p.add_argument("--priors", nargs="+", default=["gaussian"])
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


def run_one(args, out: Path, dataset: str, model: str, prior: str, seed: int, p=None) -> list:
    tag = f"{dataset}{'' if p is None else f'-p{p:.2f}'}-{model}" + \
        ("" if model == "mdm" else f"-{prior}") + f"-s{seed}"
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
        argv = ["--task", "synthetic", "--dataset", dataset, "--model", model, "--prior", prior,
                "--seed", str(seed), "--threads", str(args.threads), "--quiet",
                "--steps", str(args.quad_steps if quad else args.pair_steps),
                "--nfe", *map(str, QUAD_NFE if quad else PAIR_NFE), "--out", str(path)]
        if p is not None:
            argv += ["--p", str(p), "--nfe", "1", "--fill", "sample"]
        argv += [a for a in args.extra if a != "--"]
        print(f"== {tag}: python experiments/run.py {' '.join(argv)}", flush=True)
        code = run.main(argv)
        if code != 0:
            cli.fail(f"run {tag} failed with exit code {code}")
    data = json.loads(path.read_text())
    return data["runs"] if "runs" in data else [data]


def summarise(records: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        key = (r["dataset"], r["model"], r["prior"], r["nfe"], r["fill"])
        groups.setdefault(key, []).append(r)
    rows = []
    for (dataset, model, prior, nfe, fill), rs in sorted(groups.items(), key=lambda kv: (
            kv[0][0], kv[0][1], str(kv[0][2]), kv[0][4], kv[0][3])):
        row = {"dataset": dataset, "model": model, "prior": prior or "-", "nfe": nfe, "fill": fill,
               "seeds": len(rs), "kl_estimator": rs[0]["kl_estimator"]}
        for key in ("accuracy", "kl", "nelbo_bits", "iw_nelbo_bits"):
            values = [r[key] for r in rs if r.get(key) is not None]
            if values:
                row[key] = statistics.fmean(values)
                row[key + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    cols = ["dataset", "model", "prior", "nfe", "fill", "seeds", "accuracy", "kl", "nelbo_bits",
            "iw_nelbo_bits"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = []
        for c in cols:
            if c in ("accuracy", "kl", "nelbo_bits", "iw_nelbo_bits") and c in row:
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


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    start = time.perf_counter()
    records, curves = [], {}
    model_priors = [(m, p) for m in args.models for p in (["-"] if m == "mdm" else args.priors)]
    for seed in args.seeds:          # seed-major: a cut-short sweep still covers every setting
        for dataset in args.datasets:
            for model, prior in model_priors:
                records += run_one(args, out, dataset, model,
                                   prior if prior != "-" else args.priors[0], seed)
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
    print(table(rows))


if __name__ == "__main__":
    main()
