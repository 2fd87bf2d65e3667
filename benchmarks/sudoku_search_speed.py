#!/usr/bin/env python
"""Speed of the Sudoku uniqueness check, and a few-clue split rebuilt with it.

(a) ``rules.count_solutions`` (propagation of naked and hidden singles between branches) against
    the plain backtracking it replaced for counting (``len(rules._solutions(grid, 2))``, still the
    search of ``solve`` and ``random_grid``), timed interleaved on the same grids: the puzzles of a
    file (unique solutions) and the same puzzles with one clue removed (often several solutions).
    The counts are compared first; the ratio is the median over repeats.
(b) With ``--rebuild SEED``: the 19-20-clue split of ``experiments/sudoku_hard_results.sh focus``
    for that data seed, searched again into an empty cache, timed, and compared with the puzzles
    committed in ``results/sudoku_hard/focus_puzzles_data<SEED>.txt`` (built with the plain
    check; its search time is in the notes of ``focus_mdm_sample_data<SEED>.json``).

    python benchmarks/sudoku_search_speed.py --out runs/bench/sudoku_search_speed.json
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from vmd_pyro.datasets import sudoku
from vmd_pyro.datasets.sudoku.rules import _solutions
from vmd_pyro.datasets.sudoku.task import load_or_build_hard
from vmd_pyro.experiment import provenance, write_json

FOCUS = "results/sudoku_hard/focus_puzzles_data{}.txt"


def grids_to_count(path: str, seed: int) -> list[list[int]]:
    """The puzzles of ``path`` and each with one random clue removed."""
    puzzles, _ = sudoku.read_puzzles(path)
    rng = random.Random(seed)
    fewer = []
    for puzzle in puzzles:
        grid = list(puzzle)
        grid[rng.choice([i for i in range(81) if grid[i]])] = 0
        fewer.append(grid)
    return [list(p) for p in puzzles] + fewer


def timed_pass(count, grids) -> float:
    start = time.perf_counter()
    for grid in grids:
        count(grid)
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--puzzles", default=FOCUS.format(0), help="puzzle file for (a)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats of (a)")
    p.add_argument("--rebuild", type=int, default=None, metavar="SEED",
                   help="also (b): rebuild the focus split of this data seed (about 9 min)")
    p.add_argument("--out", default="runs/bench/sudoku_search_speed.json")
    args = p.parse_args(argv)
    if args.repeats < 2:
        p.error("--repeats must be >= 2")
    wall = time.perf_counter()
    grids = grids_to_count(args.puzzles, seed=0)
    propagated = [sudoku.count_solutions(g, 2) for g in grids]
    plain = [len(_solutions(g, 2)) for g in grids]
    if propagated != plain:
        raise SystemExit("error: the two checks disagree; timing them would mean nothing")
    ratios, new_s, old_s = [], [], []
    pair = [("new", lambda g: sudoku.count_solutions(g, 2)), ("old", lambda g: _solutions(g, 2))]
    for r in range(args.repeats):  # alternate which goes first
        times = {name: timed_pass(fn, grids) for name, fn in (pair if r % 2 == 0 else pair[::-1])}
        new_s.append(times["new"])
        old_s.append(times["old"])
        ratios.append(times["new"] / times["old"])
    result = {"grids": len(grids), "puzzles": args.puzzles,
              "unique": sum(c == 1 for c in plain), "several": sum(c == 2 for c in plain),
              "count_solutions/plain backtracking": {
                  "ratio_median": statistics.median(ratios), "ratios": ratios,
                  "ms_per_grid_new": 1e3 * statistics.median(new_s) / len(grids),
                  "ms_per_grid_old": 1e3 * statistics.median(old_s) / len(grids)}}
    print(f"count_solutions / plain backtracking: {statistics.median(ratios):.3f} "
          f"({result['count_solutions/plain backtracking']['ms_per_grid_new']:.2f} vs "
          f"{result['count_solutions/plain backtracking']['ms_per_grid_old']:.2f} ms per grid, "
          f"{len(grids)} grids)")
    if args.rebuild is not None:
        cfg = sudoku.HardSplitConfig(clue_min=19, clue_max=20, per_count=100, max_grids=1400,
                                     moves=200, seed=args.rebuild, focus_moves=3000)
        committed, _ = sudoku.read_puzzles(FOCUS.format(args.rebuild))
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            split = load_or_build_hard(cfg, cache)
            seconds = time.perf_counter() - start
        same = [list(p) for p in committed] == split["puzzles"]
        result["rebuild"] = {"data_seed": args.rebuild, "seconds": seconds,
                             "identical_to_committed": same, "puzzles": len(split["puzzles"])}
        print(f"focus split, data seed {args.rebuild}: rebuilt in {seconds:.0f} s, "
              f"identical to {FOCUS.format(args.rebuild)}: {same}")
    write_json(args.out, {**result, **provenance(0), "wall_seconds": time.perf_counter() - wall})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
