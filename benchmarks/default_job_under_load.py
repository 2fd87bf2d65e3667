#!/usr/bin/env python
"""Wall time of the default job while other CPU-bound processes compete for the cores.

Starts ``--burners`` busy-loop processes (``python -c "while True: pass"``), runs each job
(``python experiments/run.py`` and ``python experiments/run.py --prior mog`` by default, with their
default thread choice and output folder) one after the other, stops the burners, and writes the
wall times, the CPU time each job used, the machine's load (other users' processes count too) and
each job's accuracy and KL to ``--out``. With ``B`` burners on ``C`` cores and nothing else
running, a one-thread job gets ``C / (B + 1)`` of a core, so its wall time is about its CPU time
times ``(B + 1) / C``:

    python benchmarks/default_job_under_load.py --burners 2
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

from vmd_pyro.experiment import REPO, provenance, write_json

JOBS = [[], ["--prior", "mog"]]


def runnable_processes() -> int:
    """Processes running or ready to run on the whole machine now (``/proc/loadavg``), this
    script's own included: the competition a job really had, beyond the burners."""
    return int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])


def run_job(extra: list[str]) -> dict:
    cmd = [sys.executable, "experiments/run.py", *extra]  # as a user runs it (progress bar on)
    load_before, running_before = os.getloadavg(), runnable_processes()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    written = re.search(r"^wrote (\S+result\.json)$", proc.stdout, re.MULTILINE)
    if not written:
        raise SystemExit(f"{' '.join(cmd)} did not say where it wrote its results")
    runs = json.loads((REPO / written.group(1)).read_text())["runs"]
    return {"command": "python " + " ".join(cmd[1:]), "wall_seconds": wall,
            "cpu_seconds": cpu, "load_average_before": load_before,
            "load_average_after": os.getloadavg(), "runnable_before": running_before,
            "runnable_after": runnable_processes(),
            "result_file": written.group(1), "threads": runs[0]["threads"],
            "train_seconds": {r["model"]: r["train_seconds"] for r in runs},
            "results": [{k: r[k] for k in ("model", "prior", "nfe", "fill", "accuracy", "kl",
                                            "kl_estimator", "nelbo_bits")} for r in runs]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--burners", type=int, default=2, help="busy-loop processes (default 2)")
    p.add_argument("--out", default="runs/bench/default_job_under_load.json")
    args = p.parse_args(argv)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(args.burners)]
    start = time.perf_counter()
    try:
        time.sleep(5)  # let the burners show in the load average the thread choice reads
        jobs = []
        for extra in JOBS:
            jobs.append(run_job(extra))
            print(f"{jobs[-1]['command']}: {jobs[-1]['wall_seconds']:.1f} s "
                  f"({jobs[-1]['threads']} thread(s), load {jobs[-1]['load_average_before'][0]:.1f}"
                  f" before, {jobs[-1]['runnable_before']} runnable), {jobs[-1]['cpu_seconds']:.1f}"
                  f" s CPU, results in {jobs[-1]['result_file']}", flush=True)
    finally:
        for b in burners:
            b.kill()
            b.wait()
    write_json(args.out, {"burners": args.burners, "cores": len(os.sched_getaffinity(0)),
                          "jobs": jobs, **provenance(0),
                          "wall_seconds": time.perf_counter() - start})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
