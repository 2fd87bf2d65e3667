"""Decode again, with its own command, every solve file named on the command line (relative to
results/sudoku_hard/select/), writing the new file under the same name to OUT_DIR, so that it
gains the candidates_offered field; NFE 5 only, and the test split's puzzles from this repository.
Prints old and new solve rates side by side. Run from the repository root of a worktree."""
import json, os, shlex, subprocess, sys, time

SELECT = "results/sudoku_hard/select/"
OUT_DIR = os.environ.get("OUT_DIR", "/tmp/s19/coverage")
os.makedirs(OUT_DIR, exist_ok=True)
for name in sys.argv[1:]:
    old = json.load(open(SELECT + name))
    args = shlex.split(old["command"])
    args[args.index("--json") + 1] = os.path.join(OUT_DIR, os.path.basename(name))
    puzzles = args.index("--puzzles") + 1
    if args[puzzles].endswith("test_data0.txt"):  # session 17 named a copy outside the repository
        args[puzzles] = SELECT + "test_data0.txt"
    nfe = args.index("--nfe")
    end = nfe + 1
    while end < len(args) and not args[end].startswith("--"):
        end += 1
    args[nfe:end] = ["--nfe", "5"]
    print(" ".join(args), flush=True)
    start = time.time()
    subprocess.run(args, check=True)
    new = json.load(open(os.path.join(OUT_DIR, os.path.basename(name))))
    print(name, "old", old["solve_rate"], "new", new["solve_rate"], new["candidates_offered"],
          f"{time.time() - start:.0f} s", flush=True)
