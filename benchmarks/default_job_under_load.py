#!/usr/bin/env python
"""Wall time of the default job while other CPU-bound processes compete for the cores.

Starts ``--burners`` busy-loop processes (``python -c "while True: pass"``), runs each job
(``python experiments/run.py`` and ``python experiments/run.py --prior mog``, with their default
thread choice and output folder) as a user runs it and again with ``--model-processes 1`` (the
models one after the other in one process, the behaviour before they trained side by side),
alternating which goes first, stops the burners, and writes the wall times, the CPU time each run
used, the machine's load (other users' processes count too), each run's accuracy and KL and the
wall-time ratio of the pair (timed minutes apart under the same burners, so the ratio is what to
compare between runs, not the seconds) to ``--out``. With ``B`` burners on ``C`` cores and nothing
else running, a one-process job gets ``C / (B + 1)`` of a core, so its wall time is about its CPU
time times ``(B + 1) / C``; two processes get ``2 C / (B + 2)`` between them:

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
ONE_PROCESS = ["--model-processes", "1"]  # the models one after the other
# what each row of a job reports (MDM has nelbo_bits, VMD objective_bits: None where absent)
RESULT_KEYS = ("model", "prior", "nfe", "fill", "accuracy", "kl", "kl_estimator", "nll_bound_bits",
               "nll_bound_bits_se", "iw_nll_bound_bits", "iw_nll_bound_bits_se", "nelbo_bits",
               "objective_bits")


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
            "model_processes": runs[0]["model_processes"],
            "train_seconds": {r["model"]: r["train_seconds"] for r in runs},
            "results": [{k: r.get(k) for k in RESULT_KEYS} for r in runs]}


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
        jobs, pairs = [], []
        for i, extra in enumerate(JOBS):
            variants = [extra, extra + ONE_PROCESS][::1 if i % 2 == 0 else -1]
            for variant in variants:
                jobs.append(run_job(variant))
                job = jobs[-1]
                print(f"{job['command']}: {job['wall_seconds']:.1f} s ({job['threads']} thread(s) x "
                      f"{job['model_processes']} process(es), load "
                      f"{job['load_average_before'][0]:.1f} before, {job['runnable_before']} "
                      f"runnable), {job['cpu_seconds']:.1f} s CPU, results in {job['result_file']}",
                      flush=True)
            default, one = sorted(jobs[-2:], key=lambda job: job["model_processes"])[::-1]
            pairs.append({"command": default["command"], "wall_ratio_to_one_process":
                          default["wall_seconds"] / one["wall_seconds"],
                          "same_results": default["results"] == one["results"]})
            print(f"{pairs[-1]['command']}: {pairs[-1]['wall_ratio_to_one_process']:.2f} x the "
                  f"wall time of {one['command']}; same results: {pairs[-1]['same_results']}",
                  flush=True)
    finally:
        for b in burners:
            b.kill()
            b.wait()
    write_json(args.out, {"burners": args.burners, "cores": len(os.sched_getaffinity(0)),
                          "jobs": jobs, "pairs": pairs, **provenance(0),
                          "wall_seconds": time.perf_counter() - start})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
