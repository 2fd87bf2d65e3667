#!/usr/bin/env python
"""One-step quality of VMD with the small default guide against larger and smaller guides.

Trains VMD (Gaussian prior) with ``experiments/run.py`` at its default budget on ``quad-d1`` and
``quad-d2`` for each guide (``--guides``: the default, the same with two hidden layers, one as
wide and deep as the denoiser, and a linear one with no hidden layer) and seed (one process and
one torch thread per run), evaluates NFE 1 with sampled and argmax tokens, and writes every
run's JSON plus a summary (mean and standard deviation over seeds) to ``--out``:

    python benchmarks/guide_quality.py --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from vmd_pyro.experiment import provenance, run_commands, write_json

HIDDEN = 128  # experiments/run.py's synthetic default width
# small: the default (a quarter of the width, one hidden layer); two-layer: the default width with
# two hidden layers (the default depth before 2a68155); full: as wide and deep as the denoiser;
# linear: the default width with no hidden layer.
GUIDES = {"small": [], "two-layer": ["--guide-layers", "2"],
          "full": ["--guide-hidden", str(HIDDEN), "--guide-layers", "2"],
          "linear": ["--guide-layers", "0"]}


def summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["guide"], r["fill"]), []).append(r)
    out = []
    for (dataset, guide, fill), rs in sorted(groups.items()):
        entry = {"dataset": dataset, "guide": guide, "fill": fill, "nfe": 1,
                 "seeds": [r["seed"] for r in rs], "guide_hidden": rs[0]["guide_hidden"],
                 "guide_layers": rs[0]["guide_layers"]}
        for key in ("accuracy", "kl", "objective_bits", "train_seconds"):
            values = [r[key] for r in rs]
            entry[key] = {"mean": statistics.mean(values),
                          "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                          "values": values}
        out.append(entry)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--datasets", nargs="+", default=["quad-d1", "quad-d2"])
    p.add_argument("--guides", nargs="+", default=list(GUIDES), choices=list(GUIDES),
                   help="small: the default guide (one hidden layer); two-layer: the same "
                        "width, two hidden layers; full: as wide and deep as the denoiser; linear: "
                        "the default width with no hidden layer (--guide-layers 0)")
    p.add_argument("--out", default="runs/bench/guide_quality")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time")
    p.add_argument("--no-run", action="store_true",
                   help="train nothing: summarise the runs already under --out")
    args = p.parse_args(argv)
    out = Path(args.out)
    start = time.perf_counter()
    commands, logs, paths, names = [], [], [], []
    for dataset in args.datasets:
        for guide in args.guides:
            flags = GUIDES[guide]
            for seed in args.seeds:
                tag = f"{dataset}-{guide}-seed{seed}"
                names.append(guide)
                paths.append(out / "runs" / f"{tag}.json")
                logs.append(out / "logs" / f"{tag}.log")
                commands.append([sys.executable, "experiments/run.py", "--dataset", dataset,
                                 "--model", "vmd", "--nfe", "1", "--iw-samples", "0",
                                 "--threads", "1", "--quiet", "--seed", str(seed), *flags,
                                 "--out", str(paths[-1])])
    codes = ([0 if path.exists() else 1 for path in paths] if args.no_run
             else run_commands(commands, logs, jobs=args.jobs))
    rows = []
    for cmd, path, code, guide in zip(commands, paths, codes, names):
        if code:
            print(f"failed ({code}): {' '.join(cmd)}", file=sys.stderr)
            continue
        data = json.loads(path.read_text())
        for r in data["runs"]:
            rows.append({"dataset": r["dataset"], "guide": guide, "fill": r["fill"],
                         "seed": r["seed"], "accuracy": r["accuracy"], "kl": r["kl"],
                         "objective_bits": r["objective_bits"], "train_seconds": r["train_seconds"],
                         "guide_hidden": r["config"]["guide_hidden"],
                         "guide_layers": r["config"]["guide_layers"]})
    summary = summarise(rows)
    write_json(out / "summary.json", {
        "summary": summary, "runs": rows, "commands": [" ".join(c[1:]) for c in commands],
        **provenance(args.seeds[0]), "seeds": args.seeds,
        "wall_seconds": time.perf_counter() - start})
    for s in summary:
        print(f"{s['dataset']} {s['guide']:9s} (hidden {s['guide_hidden']:3d} x "
              f"{s['guide_layers']}) {s['fill']:6s} "
              f"acc {100 * s['accuracy']['mean']:.1f} +- {100 * s['accuracy']['sd']:.1f} %  "
              f"KL {s['kl']['mean']:.3f} +- {s['kl']['sd']:.3f}  "
              f"train {s['train_seconds']['mean']:.0f} s")
    print(f"wrote {out / 'summary.json'}")
    return 1 if len(rows) < 2 * len(commands) else 0


if __name__ == "__main__":
    sys.exit(main())
