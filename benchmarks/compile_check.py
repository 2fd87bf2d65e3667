#!/usr/bin/env python
"""Does ``torch.compile`` of the inner networks speed up a training step?

For each network of ``bench_speed.NETWORKS`` (the synthetic MLP and the Sudoku transformer), MDM
and VMD (default small guide) are built twice from the same seed; in one copy the denoiser and the
guide's network are compiled in place (``nn.Module.compile``, inductor; the Pyro model and guide
themselves are never compiled, as DESIGN section 4 says). The compiled and plain training steps
(the library's fused engine, as in ``bench_speed.py``) are timed interleaved in this process, and
the compile time (the first compiled steps) is recorded.

    python benchmarks/compile_check.py --out runs/bench/compile_check.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyro
import torch

from vmd_pyro.experiment import load_script, provenance, write_json

bench = load_script("bench_speed", "benchmarks")


def compiled_program(net, model: str):
    program = bench.make_program(net, model)
    program.denoiser.compile()
    if program.guide_net is not None:
        program.guide_net.compile()
    return program


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats per comparison")
    p.add_argument("--networks", nargs="+", default=list(bench.NETWORKS),
                   choices=list(bench.NETWORKS))
    p.add_argument("--out", default="runs/bench/compile_check.json", help="output JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    pyro.enable_validation(False)
    wall, results = time.perf_counter(), {}
    for name in args.networks:
        net = bench.NETWORKS[name]
        batch = bench.make_batch(net, bench.BATCH[name])
        steps = {}
        for model in ("mdm", "vmd"):
            plain = bench.pyro_stepper(bench.make_program(net, model), batch)
            start = time.perf_counter()
            compiled = bench.pyro_stepper(compiled_program(net, model), batch)
            for _ in range(3):  # compilation happens in the first calls
                compiled()
            results[f"{name} {model}: compile seconds (3 first steps)"] = (
                time.perf_counter() - start)
            steps[model] = (compiled, plain)
            key = f"{name} {model}: compiled/plain training step"
            results[key] = bench.compare(compiled, plain, repeats=args.repeats,
                                         steps=bench.STEPS[name])
            print(f"{key}: {results[key]['ratio_median']:.3f}", flush=True)
        for kind, index in (("compiled", 0), ("plain", 1)):
            key = f"{name}: vmd/mdm training step ({kind})"
            results[key] = bench.compare(steps["vmd"][index], steps["mdm"][index],
                                         repeats=args.repeats, steps=bench.STEPS[name])
            print(f"{key}: {results[key]['ratio_median']:.3f}", flush=True)
    out = {"comparisons": results, **provenance(0), "wall_seconds": time.perf_counter() - wall}
    write_json(Path(args.out), out)
    print(f"wrote {args.out} ({out['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
