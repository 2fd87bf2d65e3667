"""Rerun committed solve commands (NFE 5 only, test split) at the current worktree's commit,
writing to /tmp/s19/coverage/, so that each file gains candidates_offered."""
import json, shlex, subprocess, sys, os, time
SEL = "/work/main/results/sudoku_hard/select/"
names = sys.argv[1:]
os.makedirs("/tmp/s19/coverage", exist_ok=True)
for name in names:
    d = json.load(open(SEL + name))
    args = shlex.split(d["command"])
    i = args.index("--json"); args[i + 1] = "/tmp/s19/coverage/" + name
    i = args.index("--puzzles"); args[i + 1] = "results/sudoku_hard/select/test_data0.txt"
    i = args.index("--nfe"); j = i + 1
    while j < len(args) and not args[j].startswith("--"): j += 1
    args[i:j] = ["--nfe", "5"]
    print(" ".join(args), flush=True)
    t = time.time()
    subprocess.run(args, check=True)
    new = json.load(open("/tmp/s19/coverage/" + name))
    print(name, "old", d["solve_rate"], "new", new["solve_rate"], new["candidates_offered"],
          f"{time.time() - t:.0f} s", flush=True)
