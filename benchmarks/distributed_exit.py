#!/usr/bin/env python
"""How often a 2-rank gloo run that succeeded fails at exit, by how its ranks end.

A torchrun run of 2 CPU ranks trains a tiny program for a few steps, waits at the barrier, leaves
the process group and writes one file per rank, as ``experiments/run.py`` does. Then each rank ends
either through the interpreter's teardown (``--teardown interpreter``: ``sys.exit``) or through
``vmd_pyro.distributed.exit_process`` (``exit``: flush, then ``os._exit``). The two alternate run
by run, so both see the same load; a run counts as an abort when torchrun fails although both
ranks wrote their file. The aborts are rare (about 1 run in 100 on a loaded 2-core machine), so
hundreds of runs are needed to tell the two apart.

    python benchmarks/distributed_exit.py --runs 200 --out results/bench
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from vmd_pyro.experiment import provenance  # noqa: E402

RANKS = """
import sys
import torch
from tests.conftest import tiny_program
from vmd_pyro import distributed, training
from vmd_pyro.datasets import synthetic

distributed.init_from_env(torch.device("cpu"))
rank, _ = distributed.rank_and_world()
cfg = training.TrainConfig(steps=20, batch_size=16, eval_every=0, progress=False, validate=False)
training.train(tiny_program(vocab=10, seq_len=4), synthetic.make_synthetic("quad-d1").sample, cfg)
distributed.finish()
distributed.shutdown()
with open(f"{sys.argv[1]}/rank{rank}.done", "w") as f:
    f.write("ok")
if sys.argv[2] == "exit":
    distributed.exit_process(0)
sys.exit(0)
"""


def one_run(script: Path, teardown: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                              "--nproc_per_node=2", str(script), tmp, teardown],
                             capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
        written = sum((Path(tmp) / f"rank{r}.done").exists() for r in (0, 1))
    return {"returncode": out.returncode, "files_written": written,
            "terminate_message": "terminate called" in out.stderr}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="runs of each kind (default 200)")
    parser.add_argument("--out", default="runs/bench", help="folder for distributed_exit.json")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    start = time.perf_counter()
    counts = {t: {"runs": 0, "aborts_after_both_files": 0, "other_failures": 0}
              for t in ("interpreter", "exit")}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "ranks.py"
        script.write_text(RANKS)
        for _ in tqdm(range(args.runs), desc="pairs of runs"):
            for teardown in ("interpreter", "exit"):
                r = one_run(script, teardown)
                c = counts[teardown]
                c["runs"] += 1
                if r["returncode"] != 0:
                    both = r["files_written"] == 2
                    c["aborts_after_both_files" if both else "other_failures"] += 1
                    print(f"\n{teardown}: exit code {r['returncode']}, {r['files_written']} files, "
                          f"terminate message {r['terminate_message']}", flush=True)
    result = {"counts": counts, "wall_seconds": time.perf_counter() - start,
              "load_average": os.getloadavg(), **provenance(None)}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    path = Path(args.out) / "distributed_exit.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    for teardown, c in counts.items():
        print(f"{teardown:12s} {c['aborts_after_both_files']} aborts after both files, "
              f"{c['other_failures']} other failures, in {c['runs']} runs")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
