"""Print this folder's tables from its stopping.json files. Run from the repository root:
python results/sudoku_hard/stopping/table.py"""
import json
from pathlib import Path

import torch

from vmd_pyro.experiment import load_script
from vmd_pyro.sampling import stop_when_confident

stopping = load_script("sudoku_stopping")

HERE = Path(__file__).parent
SPLITS = {"test": ("seed0", "seed1"), "17-29 clues": ("few_seed0", "few_seed1"),
          # session 27: the same VMDs with 48 sampled grids after their 16 argmax ones
          "test, VMD + 48 sampled": ("vmd_samples_seed0", "vmd_samples_seed1"),
          "17-29 clues, VMD + 48 sampled": ("vmd_samples_few_seed0", "vmd_samples_few_seed1"),
          # session 27: the candidates of run.sh checked in 10 groups (10 passes) instead of 5
          "17-29 clues, check of 10 passes": ("check10_few_seed0", "check10_few_seed1"),
          # session 28: the test split's candidates checked in 2 groups (2 passes) instead of 5
          "test, check of 2 passes": ("check2_seed0", "check2_seed1")}
COUNTS = (1, 2, 4, 8, 16, 24, 32, 64)  # first N candidates tried
BOUND_BUDGETS = (15, 20, 25, 30, 40, 60)  # mean passes


def pct(x):
    return f"{100 * x:.1f}%"


def every_candidate(record, name, count=None):
    """(mean passes, solve rate) of trying the first ``count`` candidates (all: None)."""
    scores, copies, valid = record["candidates"][name]
    kept, passes = stop_when_confident(scores, copies.unsqueeze(-1), float("inf"),
                                       decode_passes=record["nfe"],
                                       check_passes=record["check_groups"],
                                       max_candidates=count)
    return float(passes.double().mean()), float(valid[torch.arange(len(kept)), kept].double().mean())


def perfect_check(record, name, budget):
    """The bound of stopping.perfect_check_rate for one decoder's candidates in a record."""
    _, copies, valid = record["candidates"][name]
    return stopping.perfect_check_rate(copies, valid, budget, decode_passes=record["nfe"],
                                       check_passes=record["check_groups"])


def main():
    for split, folders in SPLITS.items():
        records = {f: json.loads((HERE / f / "stopping.json").read_text())
                   for f in folders if (HERE / f / "stopping.json").exists()}
        if not records:
            continue
        for r in records.values():  # each decoder's candidates parsed once, for every table
            r["candidates"] = {name: stopping.candidates_of(r[name]) for name in ("vmd", "mdm")}
        print(f"\n{split}: every candidate tried (no threshold reached)\n")
        print("| seed | VMD: passes, solve rate, a valid grid among its candidates | "
              "MDM: the same |")
        print("|---|---|---|")
        for f, r in records.items():
            cells = []
            for name in ("vmd", "mdm"):
                passes, solved = every_candidate(r, name)
                offered = sum("1" in row for row in r[name]["valid"]) / len(r[name]["valid"])
                cells.append(f"{passes:.1f}, {pct(solved)}, {pct(offered)}")
            print(f"| {r['seed']} | {cells[0]} | {cells[1]} |")
        print(f"\n{split}: no stopping, the first N candidates all tried (the fixed-budget "
              f"decoders of sessions 24-25, from the same candidates)\n")
        print("| seed | decoder | N | passes | solve rate |")
        print("|---|---|---|---|---|")
        for f, r in records.items():
            for name in ("vmd", "mdm"):
                for n in [n for n in COUNTS if n <= len(r[name]["valid"][0])]:
                    passes, solved = every_candidate(r, name, n)
                    print(f"| {r['seed']} | {name.upper()} | {n} | {passes:.1f} | {pct(solved)} |")
        print(f"\n{split}: threshold and cap set on the other half of the puzzles\n")
        print("| seed | budget (mean passes) | VMD: passes, solve rate | MDM: passes, solve rate "
              "| lead ± paired s.e. (McNemar p) |")
        print("|---|---|---|---|---|")
        for f, r in records.items():
            for row in r["held_out"]:
                print(f"| {r['seed']} | {row['budget']:g} | {row['vmd_passes']:.1f}, "
                      f"{pct(row['vmd_solve_rate'])} | {row['mdm_passes']:.1f}, "
                      f"{pct(row['mdm_solve_rate'])} | {100 * row['lead']:+.1f} ± "
                      f"{100 * row['lead_se']:.1f} ({row['mcnemar_p']:.1g}) |")
        print(f"\n{split}: solve rate with a check that knew validity and which puzzles no "
              f"candidate solves (a bound on any stopping rule for these candidates in this "
              f"order)\n")
        print("| seed | decoder | " + " | ".join(f"{b:g} passes" for b in BOUND_BUDGETS) + " |")
        print("|---|---|" + "---|" * len(BOUND_BUDGETS))
        for f, r in records.items():
            for name in ("vmd", "mdm"):
                count = len(r[name]["valid"][0])
                print(f"| {r['seed']} | {name.upper()}, {count} candidates | " + " | ".join(
                    pct(perfect_check(r, name, b)) for b in BOUND_BUDGETS) + " |")
        print(f"\n{split}: largest lead read off the curves (settings chosen on these puzzles)\n")
        for f, r in records.items():
            best = max(r["leads"], key=lambda row: row["lead"])
            print(f"- seed {r['seed']}: VMD {pct(best['vmd_solve_rate'])} at "
                  f"{best['vmd_passes']:.1f} passes, MDM {pct(best['mdm_solve_rate'])} at "
                  f"{best['mdm_passes']:.1f}: {100 * best['lead']:+.1f} ± "
                  f"{100 * best['lead_se']:.1f}")


if __name__ == "__main__":
    main()
