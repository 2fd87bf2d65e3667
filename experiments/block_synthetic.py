#!/usr/bin/env python
"""Block MDM against block VMD on the 4-token synthetic sets with two blocks of 2, beside the
published figures (two blocks, NFE 2, i.e. one call per block: VMD 94.2% / 88.6%, MDM 10.1% / 1.1%
accuracy on quad-d1 / quad-d2).

    python experiments/block_synthetic.py                 # 2 sets x 3 seeds, one run at a time
    python experiments/block_synthetic.py --jobs 6        # on a machine with 6 free cores
    python experiments/block_synthetic.py --aggregate-only

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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vmd_pyro import cli  # noqa: E402
from vmd_pyro.experiment import provenance, run_commands, write_json  # noqa: E402

PUBLISHED = {("quad-d1", "vmd"): 0.942, ("quad-d2", "vmd"): 0.886,
             ("quad-d1", "mdm"): 0.101, ("quad-d2", "mdm"): 0.011}   # two blocks of 2, NFE 2
DATASETS = ("quad-d1", "quad-d2")


def build_parser():
    p = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (one thread each)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--out-dir", default="results/block")
    p.add_argument("--aggregate-only", action="store_true", help="only rebuild the summary")
    return p


def command(dataset, seed, args, out):
    return [sys.executable, "experiments/run.py", "--threads", "1", "--quiet", "--no-validate",
            "--dataset", dataset, "--arch", "transformer", "--hidden", "32", "--layers", "2",
            "--heads", "4", "--block-size", "2", "--nfe", "2", "4", "--model", "mdm", "vmd",
            "--prior", "gaussian", "--steps", str(args.steps), "--batch-size", "64",
            "--num-samples", "5000", "--iw-samples", "4", "--seed", str(seed),
            "--device", args.device, "--out", str(out)]


def aggregate(out_dir: Path) -> tuple[list[dict], str]:
    runs = []
    for path in sorted((out_dir / "runs").glob("*.json")):
        runs += json.loads(path.read_text())["runs"]
    rows = []
    for dataset in DATASETS:
        for model in ("mdm", "vmd"):
            for nfe in (2, 4):
                sel = [r for r in runs if (r["dataset"], r["model"], r["nfe"]) == (dataset, model, nfe)]
                if not sel:
                    continue
                acc = [r["accuracy"] for r in sel]
                rows.append({"dataset": dataset, "model": model, "block_size": 2, "nfe": nfe,
                             "nfe_per_block": nfe // 2, "seeds": sorted(r["seed"] for r in sel),
                             "accuracy_mean": statistics.mean(acc),
                             "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                             "accuracy_per_seed": acc,
                             "kl_plugin_mean": statistics.mean(r["kl_plugin"] for r in sel),
                             "nelbo_bits_mean": statistics.mean(r["nelbo_bits"] for r in sel),
                             "published_accuracy": PUBLISHED.get((dataset, model)) if nfe == 2 else None,
                             "train_seconds_mean": statistics.mean(r["train_seconds"] for r in sel)})
    lines = ["| data | model | blocks x size | NFE (per block) | accuracy, mean ± sd over seeds | "
             "published | plug-in KL (nats) | NELBO bits/token |", "|" + "---|" * 8]
    for r in rows:
        pub = f"{100 * r['published_accuracy']:.1f}%" if r["published_accuracy"] is not None else "-"
        lines.append(f"| {r['dataset']} | block {r['model'].upper()} | 2 x 2 | "
                     f"{r['nfe']} ({r['nfe_per_block']}) | {100 * r['accuracy_mean']:.1f}% ± "
                     f"{100 * r['accuracy_std']:.1f} | {pub} | {r['kl_plugin_mean']:.3f} | "
                     f"{r['nelbo_bits_mean']:.3f} |")
    return rows, "\n".join(lines)


def main(argv=None):
    args = build_parser().parse_args(argv)
    out_dir = Path(args.out_dir)
    start = time.perf_counter()
    if not args.aggregate_only:
        jobs = [(d, s) for s in args.seeds for d in DATASETS]
        outs = [out_dir / "runs" / f"{d}-seed{s}.json" for d, s in jobs]
        codes = run_commands([command(d, s, args, o) for (d, s), o in zip(jobs, outs)],
                             [out_dir / "logs" / f"{o.stem}.log" for o in outs], args.jobs)
    rows, table = aggregate(out_dir)
    notes = ("Accuracy: share of 5000 generated sequences inside the data support. Two blocks of 2 "
             "tokens; NFE counts calls for the whole sequence, split evenly over the blocks. "
             "Block-causal transformer (hidden 32, 2 layers, 4 heads), Gaussian prior per block, "
             f"{args.steps} steps, batch 64 (sized to a shared 2-core CPU; the published models "
             "are larger and trained longer). Published: two blocks, NFE 2.")
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
