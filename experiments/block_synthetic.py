#!/usr/bin/env python
"""Block MDM against block VMD on the 4-token synthetic sets with two blocks of 2, beside the
published figures (two blocks, NFE 2, i.e. one call per block: VMD 94.2% / 88.6%, MDM 10.1% / 1.1%
accuracy on quad-d1 / quad-d2).

    python experiments/block_synthetic.py --out-dir runs/block            # 2 sets x 3 seeds
    python experiments/block_synthetic.py --out-dir runs/block --jobs 6   # with 6 free cores
    python experiments/block_synthetic.py --out-dir runs/block --aggregate-only

Beside accuracy, every row has the few-step likelihood bound B_T (bits/token, importance-weighted,
random order, z resampled per step; the sum over blocks of each block's bound with the calls block
decoding gives it), the block MDM's continuous NELBO and the block VMD's training objective J
(not a bound).

Each run is one ``experiments/run.py`` call (both models, same seed) writing JSON under
``OUT/runs/``; the summary (mean and standard deviation over seeds) goes to ``OUT/summary.json``
and ``OUT/table.md``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from vmd_pyro import cli
from vmd_pyro.experiment import provenance, run_commands, write_json

PUBLISHED = {("quad-d1", "vmd"): 0.942, ("quad-d2", "vmd"): 0.886,
             ("quad-d1", "mdm"): 0.101, ("quad-d2", "mdm"): 0.011}   # two blocks of 2, NFE 2
DATASETS = ("quad-d1", "quad-d2")


def build_parser():
    p = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=4000,
                   help="training steps (default 4000, the one-block runs' budget)")
    p.add_argument("--hidden", type=int, default=64, help="transformer width (default 64)")
    p.add_argument("--batch-size", type=int, default=256, help="(default 256, as one-block runs)")
    p.add_argument("--prior", default="gaussian", help="block VMD's prior per block (default gaussian)")
    p.add_argument("--components", type=int, default=10, help="K of a mog or discrete prior")
    p.add_argument("--latent-dim", type=int, default=2, help="dimension of each block's z (default 2)")
    p.add_argument("--guide-hidden", type=int, default=None,
                   help="width of the guide's encoder (default: run.py's, a quarter of --hidden)")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--objective", default="joint", choices=["joint", "steps"],
                   help="joint: the original objective J; steps: the few-step bound with "
                        "--train-nfe calls per block, for both models (default joint)")
    p.add_argument("--train-nfe", type=int, default=1,
                   help="with --objective steps: calls per block whose bound is trained (default 1)")
    p.add_argument("--models", nargs="+", default=["mdm", "vmd"], choices=["mdm", "vmd"],
                   help="which models each run trains (default both; block MDM does not depend "
                        "on the VMD options, so a VMD-only rerun can skip it)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (one thread each)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--out-dir", required=True, help="output folder (e.g. runs/block)")
    p.add_argument("--aggregate-only", action="store_true", help="only rebuild the summary")
    return p


def command(dataset, seed, args, out):
    return [sys.executable, "experiments/run.py", "--threads", "1", "--model-processes", "1",
            "--quiet", "--no-validate",
            "--dataset", dataset, "--arch", "transformer", "--hidden", str(args.hidden),
            "--layers", "2", "--heads", "4", "--block-size", "2", "--nfe", "2", "4",
            "--model", *args.models, "--prior", args.prior, "--components", str(args.components),
            "--latent-dim", str(args.latent_dim),
            *(["--guide-hidden", str(args.guide_hidden)] if args.guide_hidden else []),
            "--steps", str(args.steps), "--batch-size", str(args.batch_size),
            "--num-samples", "5000", "--iw-samples", "4", "--seed", str(seed),
            "--objective", args.objective,
            *(["--train-nfe", str(args.train_nfe)] if args.objective == "steps" else []),
            "--device", args.device, "--out", str(out)]


def aggregate(out_dir: Path) -> tuple[list[dict], str]:
    runs = []
    for path in sorted((out_dir / "runs").glob("*.json")):
        runs += json.loads(path.read_text())["runs"]
    rows = []
    for dataset in DATASETS:
        for model in ("mdm", "vmd"):
            for nfe in (2, 4):
                sel = [r for r in runs if (r["dataset"], r["model"], r["nfe"], r["fill"]) ==
                       (dataset, model, nfe, "sample")]
                if not sel:
                    continue
                acc = [r["accuracy"] for r in sel]
                rows.append({"dataset": dataset, "model": model, "block_size": 2, "nfe": nfe,
                             "nfe_per_block": nfe // 2, "seeds": sorted(r["seed"] for r in sel),
                             "accuracy_mean": statistics.mean(acc),
                             "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                             "accuracy_per_seed": acc,
                             "kl_plugin_mean": statistics.mean(r["kl_plugin"] for r in sel),
                             **{f"{key}_mean": statistics.mean(r[key] for r in sel)
                                for key in ("nll_bound_bits", "iw_nll_bound_bits", "nelbo_bits",
                                            "objective_bits") if key in sel[0]},
                             "bound_generator": sel[0]["bound_generator"],
                             "published_accuracy": PUBLISHED.get((dataset, model)) if nfe == 2 else None,
                             "train_seconds_mean": statistics.mean(r["train_seconds"] for r in sel)})
    lines = ["| data | model | blocks x size | NFE (per block) | accuracy, mean ± sd over seeds | "
             "published | plug-in KL (nats) | IW bound B_T bits/token | MDM NELBO / VMD objective J "
             "bits/token |", "|" + "---|" * 9]
    for r in rows:
        pub = f"{100 * r['published_accuracy']:.1f}%" if r["published_accuracy"] is not None else "-"
        lines.append(f"| {r['dataset']} | block {r['model'].upper()} | 2 x 2 | "
                     f"{r['nfe']} ({r['nfe_per_block']}) | {100 * r['accuracy_mean']:.1f}% ± "
                     f"{100 * r['accuracy_std']:.1f} | {pub} | {r['kl_plugin_mean']:.3f} | "
                     f"{r['iw_nll_bound_bits_mean']:.3f} | "
                     f"{r.get('nelbo_bits_mean', r.get('objective_bits_mean')):.3f} |")
    return rows, "\n".join(lines)


def main(argv=None):
    args = build_parser().parse_args(argv)
    out_dir = Path(args.out_dir)
    start = time.perf_counter()
    if not args.aggregate_only:
        jobs = [(d, s) for s in args.seeds for d in args.datasets]
        outs = [out_dir / "runs" / f"{d}-seed{s}.json" for d, s in jobs]
        codes = run_commands([command(d, s, args, o) for (d, s), o in zip(jobs, outs)],
                             [out_dir / "logs" / f"{o.stem}.log" for o in outs], args.jobs)
    rows, table = aggregate(out_dir)
    uses_components = "mog" in args.prior or args.prior == "discrete"  # K means something
    notes = ("Accuracy: share of 5000 generated sequences (sampled tokens) inside the data support. "
             "Two blocks of 2 "
             "tokens; NFE counts calls for the whole sequence, split evenly over the blocks. "
             f"Block-causal transformer (hidden {args.hidden}, 2 layers, 4 heads), prior "
             f"{args.prior}{f' (K={args.components})' if uses_components else ''}"
             f" per block (latent dimension {args.latent_dim}, guide width "
             f"{args.guide_hidden or 'a quarter of the denoiser'}), objective {args.objective}"
             f"{f' (T={args.train_nfe} per block)' if args.objective == 'steps' else ''}, "
             f"{args.steps} steps, batch {args.batch_size}. Published: two blocks, "
             "NFE 2. IW bound: B_T of block-by-block decoding (random order within a block, z "
             "resampled per step, sampled tokens); the data entropy is its floor. The last column "
             "is the block MDM's NELBO (a bound) or the block VMD's objective J (not a bound).")
    meta = provenance(args.seeds[0])
    meta.pop("seed")
    write_json(out_dir / "summary.json", {"rows": rows, "notes": notes, **meta,
                                          "wall_seconds": time.perf_counter() - start})
    (out_dir / "table.md").write_text(table + "\n\n" + notes + "\n")
    print(table)
    print(notes)
    if not args.aggregate_only and any(codes):  # the summary above holds the runs that finished
        cli.fail(f"some runs failed (exit codes {codes}); see {out_dir / 'logs'}")


if __name__ == "__main__":
    main()
