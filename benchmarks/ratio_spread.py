#!/usr/bin/env python
"""How much a VMD/MDM speed ratio of the small synthetic MLP moves between fresh processes.

``bench_speed.py`` times each comparison in one process, interleaving the two sides, so load from
other programs hits both alike. What interleaving cannot remove is the process itself: where the
allocator puts the tensors of a 4-token MLP whose steps last milliseconds. This script runs the
same comparisons in ``--processes`` fresh Python processes, one after another, and reports every
process's median ratio and their spread:

* the VMD/MDM training step (the library's fused Pyro engine, as in ``bench_speed.py``), with
  the default guide and with a linear one (``--guide-layers 0``: no hidden layer);
* VMD/MDM sampling (1,024 sequences, NFE 2, z drawn once);
* one VMD denoiser call with ``z`` against the same call without it (``z`` input cut off): the
  cost of the latent's path inside the network, the part of the sampling ratio that is VMD's own.

    python benchmarks/ratio_spread.py --processes 8 --out runs/bench/ratio_spread.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from vmd_pyro.experiment import load_script, provenance, write_json

NETWORK = "mlp-synthetic"
SAMPLING_SEQUENCES, SAMPLING_NFE = 1024, 2


def measure(repeats: int, steps: int) -> dict:
    """The three comparisons in this process (median and IQR over interleaved repeats)."""
    import pyro
    import torch

    from vmd_pyro.sampling import all_masked, generate
    bench = load_script("bench_speed", "benchmarks")
    torch.set_num_threads(1)
    pyro.enable_validation(False)
    net = bench.NETWORKS[NETWORK]
    batch = bench.make_batch(net, bench.BATCH[NETWORK])
    vmd, mdm = bench.make_program(net, "vmd"), bench.make_program(net, "mdm")
    x = all_masked(SAMPLING_SEQUENCES, net.seq_len, net.mask_id)
    z = torch.randn(SAMPLING_SEQUENCES, vmd.cfg.latent_dim)

    def sampler(program):
        return lambda: generate(program, x, nfe=SAMPLING_NFE, generator=torch.Generator())

    linear = bench.make_program(net, "vmd", guide="linear")
    out = {"vmd/mdm training step": bench.compare(
        bench.pyro_stepper(vmd, batch), bench.pyro_stepper(mdm, batch), repeats=repeats,
        steps=steps),
        "vmd with a linear guide/mdm training step": bench.compare(
        bench.pyro_stepper(linear, batch), bench.pyro_stepper(mdm, batch), repeats=repeats,
        steps=steps)}
    with torch.no_grad():
        out["vmd/mdm sampling"] = bench.compare(sampler(vmd), sampler(mdm), repeats=repeats,
                                                steps=steps)
        out["vmd denoiser call with z/without z"] = bench.compare(
            lambda: vmd.logits(x, z), lambda: vmd.logits(x), repeats=repeats, steps=4 * steps)
    return {k: {"ratio_median": v["ratio_median"], "ratio_iqr": v["ratio_iqr"],
                "a_ms": 1e3 * v["a_seconds_median"], "b_ms": 1e3 * v["b_seconds_median"]}
            for k, v in out.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--processes", type=int, default=8, help="fresh processes (default 8)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats per comparison")
    p.add_argument("--steps", type=int, default=20, help="adjacent pairs per repeat")
    p.add_argument("--out", default="runs/bench/ratio_spread.json", help="output JSON")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.repeats, args.steps)))
        return 0
    if args.processes < 2 or args.repeats < 2 or args.steps < 1:
        p.error("--processes and --repeats must be >= 2, --steps >= 1")
    import torch
    torch.set_num_threads(1)  # as in every child; provenance records it
    wall = time.perf_counter()
    runs = []
    for i in range(args.processes):
        child = subprocess.run([sys.executable, __file__, "--child", "--repeats", str(args.repeats),
                                "--steps", str(args.steps)], capture_output=True, text=True)
        if child.returncode:
            raise SystemExit(f"error: process {i} failed: {child.stderr.strip().splitlines()[-1:]}")
        runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(f"process {i}: " + ", ".join(f"{k} {v['ratio_median']:.3f}"
                                           for k, v in runs[-1].items()), flush=True)
    summary = {}
    for key in runs[0]:
        ratios = [r[key]["ratio_median"] for r in runs]
        summary[key] = {"median_over_processes": statistics.median(ratios), "min": min(ratios),
                        "max": max(ratios), "per_process": ratios}
        print(f"{key:38s} median {summary[key]['median_over_processes']:.3f} over "
              f"{len(ratios)} processes (range {min(ratios):.3f}-{max(ratios):.3f})")
    result = {"network": NETWORK, "sampling": {"sequences": SAMPLING_SEQUENCES,
                                               "nfe": SAMPLING_NFE, "z_strategy": "fixed"},
              "repeats": args.repeats, "steps": args.steps, "summary": summary, "runs": runs,
              **provenance(0), "wall_seconds": time.perf_counter() - wall}
    write_json(Path(args.out), result)
    print(f"wrote {args.out} ({result['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
