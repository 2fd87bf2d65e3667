#!/usr/bin/env python
"""Which levers make the latent earn its keep? One-step (and few-step) decoding on the 4-token sets,
lever by lever, at the same training budget as ``results/bounds`` (4000 steps of 256, one thread).

    python experiments/latent_ablation.py --out runs/latent
    python experiments/latent_ablation.py --out runs/latent --levers discrete-steps1 --seeds 0
    python experiments/latent_ablation.py --out runs/latent --no-run      # summarise what exists

Each lever is a named set of ``experiments/run.py`` options (``LEVERS``); every (lever, data set,
seed) is one run through ``experiments/sweep.py``'s runner, its JSON under ``OUT/<lever>/runs/``.
The summary (``OUT/summary.json``, ``OUT/table.md``) gives mean and sd over seeds of accuracy,
KL(p_data || p_model) and the importance-weighted few-step bound at NFE 1, 2 and 4, for sampled
tokens and for argmax given z.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from vmd_pyro.experiment import load_script, provenance, write_json

sweep = load_script("sweep")

# name -> (what it tests, run.py options). A discrete z with at least as many values as the data set
# has sequences (quad-d1 10, quad-d2 100) can name each one. The Gaussian levers keep the guide as
# wide as the denoiser (--guide-hidden 128), as in the baseline runs of results/bounds.
# the options every "-steps1" lever shares: train B_1 itself, with a guide as wide as the denoiser
TRAIN_B1 = ["--objective", "steps", "--train-nfe", "1"]
FULL_GUIDE = ["--guide-hidden", "128"]
LEVERS = {
    "gaussian-joint": ("baseline: N(0, I) prior, objective J",
                       ["--prior", "gaussian"]),
    "gaussian-steps1": ("lever 1: train B_1 (one-step bound) instead of J",
                        ["--prior", "gaussian", *TRAIN_B1, *FULL_GUIDE]),
    "gaussian8-steps1": ("levers 1 + latent dimension 8",
                         ["--prior", "gaussian", "--latent-dim", "8", *TRAIN_B1, *FULL_GUIDE]),
    "film-steps1": ("levers 1 + 4: train B_1, z scales and shifts every layer (FiLM)",
                    ["--prior", "gaussian", *TRAIN_B1, *FULL_GUIDE, "--z-conditioning", "film"]),
    "residual-steps1": ("levers 1 + 2: train B_1 with a guide that also reads the denoiser's "
                        "probabilities without z (--guide normal-residual)",
                        ["--prior", "gaussian", *TRAIN_B1, *FULL_GUIDE, "--guide",
                         "normal-residual"]),
    "mog16-steps1": ("levers 1 + 3: train B_1 with a learnable mixture prior of 16 components "
                     "(a Normal guide can match one component, so z can name a sequence cheaply)",
                     ["--prior", "mog", "--components", "16", *TRAIN_B1, *FULL_GUIDE]),
    "mog128-steps1": ("levers 1 + 3: mog16-steps1 with 128 components (quad-d2 has 100 "
                      "sequences)",
                      ["--prior", "mog", "--components", "128", *TRAIN_B1, *FULL_GUIDE]),
    "mog128d8-steps1": ("levers 1 + 3: mog128-steps1 in 8 latent dimensions (more room to "
                        "keep 128 components apart)",
                        ["--prior", "mog", "--components", "128", "--latent-dim", "8",
                         *TRAIN_B1, *FULL_GUIDE]),
    "mogdim10-steps1": ("levers 1 + 3: train B_1 with a factorial prior, a mixture of 10 "
                        "components in each of the 2 latent dimensions (100 modes)",
                        ["--prior", "mog-per-dim", "--components", "10", *TRAIN_B1, *FULL_GUIDE]),
    "discrete16-steps1": ("levers 1 + 3: enumerated discrete z, K = 16 (quad-d1 has 10 "
                          "sequences), train B_1",
                          ["--prior", "discrete", "--components", "16", *TRAIN_B1]),
    "exact16-head-steps1": ("levers 1 + 3 with no guide network: discrete z, K = 16, the model's "
                            "exact posterior (--guide exact), z on the head (one denoiser pass "
                            "for all 16 values), train B_1: the control of results/sudoku_levers' "
                            "warm starts",
                            ["--prior", "discrete", "--components", "16", "--guide", "exact",
                             "--z-conditioning", "head", *TRAIN_B1]),
    "discrete128-steps1": ("levers 1 + 3: enumerated discrete z, K = 128 (quad-d2 has 100 "
                           "sequences), train B_1; 128 network passes per example per step",
                           ["--prior", "discrete", "--components", "128", *TRAIN_B1]),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    p.add_argument("--datasets", nargs="+", default=["quad-d1", "quad-d2"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-run", action="store_true", help="only summarise existing runs")
    p.add_argument("--reuse", default=None,
                   help="a results/bounds-style sweep folder: take identical runs (gaussian-joint "
                        "is results/bounds' Gaussian VMD) from it instead of training them again")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out, start, rows = Path(args.out), time.perf_counter(), []
    for seed in args.seeds:
        for lever in args.levers:
            runner = sweep.parse_args(["--out", str(out / lever), "--quad-steps", str(args.steps),
                                       "--threads", str(args.threads), "--models", "vmd",
                                       *(["--no-run"] if args.no_run else []),
                                       *(["--reuse", args.reuse] if args.reuse and
                                         lever == "gaussian-joint" else []),
                                       "--", *LEVERS[lever][1]])
            for dataset in args.datasets:
                objective = "steps" if "steps" in lever else "joint"
                for r in sweep.run_one(runner, out / lever, dataset, "vmd",
                                       LEVERS[lever][1][1], seed, objective=objective):
                    rows.append({**r, "lever": lever})
    summary = []
    for lever in args.levers:
        for row in sweep.summarise([r for r in rows if r["lever"] == lever]):
            summary.append({"lever": lever, "what": LEVERS[lever][0],
                            "options": " ".join(LEVERS[lever][1]), **row})
    write_json(out / "summary.json", {"rows": summary, "levers": {k: {"what": w, "options": o}
                                                                  for k, (w, o) in LEVERS.items()},
                                      "sweep_seconds": time.perf_counter() - start,
                                      **provenance(args.seeds[0])})
    lines = ["| lever | data | NFE | fill | seeds | accuracy % | KL (nats) | IW bound bits/token | "
             "H bits/token |", "|" + "---|" * 9]
    for r in sorted(summary, key=lambda r: (r["dataset"], r["lever"] != "gaussian-joint",
                                            r["lever"], r["fill"], r["nfe"])):
        def cell(key, scale=1.0, digits=3):
            return (f"{r[key] * scale:.{digits}f} ± {r[key + '_std'] * scale:.{digits}f}"
                    if key in r else "-")
        lines.append(f"| {r['lever']} | {r['dataset']} | {r['nfe']} | {r['fill']} | {r['seeds']} | "
                     f"{cell('accuracy', 100, 1)} | {cell('kl')} | {cell('iw_nll_bound_bits')} | "
                     f"{r['data_entropy_bits']:.3f} |")
    legend = "\n".join(f"- `{k}`: {w} (`{' '.join(o)}`)" for k, (w, o) in LEVERS.items()
                       if k in args.levers)
    (out / "table.md").write_text("\n".join(lines) + "\n\n" + legend + "\n")
    print("\n".join(lines))
    print(legend)


if __name__ == "__main__":
    main()
