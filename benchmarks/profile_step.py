#!/usr/bin/env python
"""Where the time of one training step goes, and what the optimiser choice costs.

For each network of ``bench_speed.NETWORKS`` and each model (MDM, VMD with the default small guide)
this script

1. profiles training steps of the library's fused engine with ``torch.profiler`` and prints the
   operators with the most self CPU time (written to ``--out`` too);
2. times the step with AdamW in its three implementations (per-tensor loop, ``foreach``, ``fused``)
   interleaved in the same run (``bench_speed.compare``), as ratios to the per-tensor loop.

    python benchmarks/profile_step.py --threads 1
"""
from __future__ import annotations

import argparse
import sys
import time

import pyro
import torch
from torch.profiler import ProfilerActivity, profile

from vmd_pyro.experiment import load_script, provenance, write_json

bench_speed = load_script("bench_speed", "benchmarks")
BATCH, NETWORKS, compare = bench_speed.BATCH, bench_speed.NETWORKS, bench_speed.compare
make_batch, make_program, pyro_stepper = (bench_speed.make_batch, bench_speed.make_program,
                                          bench_speed.pyro_stepper)

OPTIMIZERS = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def top_operators(step, steps: int, rows: int) -> tuple[str, list[dict]]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    averages = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in averages)
    table = [{"operator": e.key, "self_cpu_share": e.self_cpu_time_total / total,
              "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / steps, "calls_per_step":
              e.count / steps} for e in averages[:rows]]
    text = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    return text, table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rows", type=int, default=15, help="operators listed per profile")
    p.add_argument("--out", default="runs/bench/profile.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pyro.enable_validation(False)
    start = time.perf_counter()
    results = {"profiles": {}, "optimizers": {}}
    for name, net in NETWORKS.items():
        batch = make_batch(net, BATCH[name])
        steps = 20 if net.arch == "mlp" else 3
        for model in ("mdm", "vmd"):
            key = f"{name} {model}"
            program = make_program(net, model)
            step = pyro_stepper(program, batch, OPTIMIZERS["fused"])
            step()
            text, table = top_operators(step, steps, args.rows)
            results["profiles"][key] = table
            print(f"== {key}: fused AdamW, {steps} steps\n{text}", flush=True)
            loop = pyro_stepper(program, batch, OPTIMIZERS["loop"])
            for opt in ("foreach", "fused"):
                r = compare(pyro_stepper(program, batch, OPTIMIZERS[opt]), loop, repeats=args.repeats,
                            steps=steps)
                results["optimizers"][f"{key}: {opt}/loop AdamW step"] = r
                print(f"{key}: {opt}/loop AdamW training step {r['ratio_median']:.3f} "
                      f"(IQR {r['ratio_iqr'][0]:.3f}-{r['ratio_iqr'][1]:.3f})", flush=True)
    results.update(provenance(0), wall_seconds=time.perf_counter() - start)
    write_json(args.out, results)
    print(f"wrote {args.out} ({results['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
