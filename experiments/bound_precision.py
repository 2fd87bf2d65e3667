#!/usr/bin/env python
"""How precise is one estimate of the few-step bound? Trains one VMD on a synthetic set (the
settings of results/bounds) and evaluates its importance-weighted B_T again and again with fresh
random orders and z draws, at several (orders, K) settings, writing mean, sd and range per setting.

    python experiments/bound_precision.py --out runs/bound_precision.json
    python experiments/bound_precision.py --prior conditional --repeats 8 --out runs/p.json

An estimate of a bound is random: a single one can fall below the quantity it bounds (and below the
data entropy, when the model is close to it) by a few of its standard deviations. This script
measures that spread, so that tables can say which differences are larger than it.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import models  # noqa: F401  (fills the prior and model registries)
from vmd_pyro import cli
from vmd_pyro.bounds import BoundOptions, evaluate_nll_bounds
from vmd_pyro.datasets import synthetic
from vmd_pyro.experiment import provenance, write_json
from vmd_pyro.networks import NetConfig
from vmd_pyro.program import ProgramConfig, build_program
from vmd_pyro.training import TrainConfig, train


def main(argv=None):
    p = cli.ArgumentParser(description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="JSON output path")
    p.add_argument("--dataset", default="quad-d1", choices=synthetic.NAMES)
    p.add_argument("--prior", default="conditional")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=8, help="estimates per setting")
    p.add_argument("--nfe", nargs="+", type=int, default=[1, 2, 4])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    start = time.perf_counter()
    torch.set_num_threads(1)
    task = synthetic.make_synthetic(args.dataset)
    entropy = float(-(task.probs * task.probs.log2()).sum()) / task.seq_len
    torch.manual_seed(args.seed)
    program = build_program(ProgramConfig(
        net=NetConfig(vocab_size=task.vocab_size, seq_len=task.seq_len, hidden=128),
        model="vmd", prior=args.prior, latent_dim=2))
    train(program, task.sample, TrainConfig(steps=args.steps, batch_size=256, lr=3e-3,
                                            anneal_steps=args.steps // 5, eval_every=0,
                                            seed=args.seed, progress=False))
    ones = torch.ones_like(task.sequences, dtype=torch.bool)
    generator = torch.Generator().manual_seed(args.seed + 1)
    rows = []
    for nfe in args.nfe:
        for orders, k in ((4, 128), (32, 512)):
            opts = BoundOptions(nfe=nfe, num_orders=orders, iw_samples=k)
            runs = [evaluate_nll_bounds(program, task.sequences, ones, opts, weights=task.probs,
                                        generator=generator) for _ in range(args.repeats)]
            iw = [r["iw_nll_bound_bits"] for r in runs]
            rows.append({"nfe": nfe, "orders": orders, "iw_samples": k, "repeats": args.repeats,
                         "iw_mean": statistics.mean(iw), "iw_sd": statistics.stdev(iw),
                         "iw_min": min(iw), "iw_max": max(iw),
                         "reported_se_mean": statistics.mean(r["iw_nll_bound_bits_se"]
                                                             for r in runs),
                         "below_entropy": sum(v < entropy for v in iw)})
            print(rows[-1], flush=True)
    write_json(args.out, {"dataset": args.dataset, "prior": args.prior, "steps": args.steps,
                          "data_entropy_bits": entropy, "rows": rows,
                          "wall_seconds": time.perf_counter() - start, **provenance(args.seed)})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
