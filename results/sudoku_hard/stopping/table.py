"""Print this folder's tables from its stopping.json files. Run from the repository root:
python results/sudoku_hard/stopping/table.py"""
import json
from pathlib import Path

import torch

from vmd_pyro.experiment import load_script
from vmd_pyro.sampling import stop_when_confident

stopping = load_script("sudoku_stopping")

HERE = Path(__file__).parent
SPLITS = {"test": ("seed0", "seed1"), "17-29 clues": ("few_seed0", "few_seed1")}


def pct(x):
    return f"{100 * x:.1f}%"


def main():
    for split, folders in SPLITS.items():
        records = {f: json.loads((HERE / f / "stopping.json").read_text())
                   for f in folders if (HERE / f / "stopping.json").exists()}
        if not records:
            continue
        print(f"\n{split}: every candidate tried (no threshold reached)\n")
        print("| seed | VMD: passes, solve rate, a valid grid among its candidates | "
              "MDM: the same |")
        print("|---|---|---|")
        for f, r in records.items():
            cells = []
            for name in ("vmd", "mdm"):
                end, valid = r[name]["curve"][-1], r[name]["valid"]
                offered = sum("1" in row for row in valid) / len(valid)
                cells.append(f"{end['passes']:.1f}, {pct(end['solve_rate'])}, {pct(offered)}")
            print(f"| {r['seed']} | {cells[0]} | {cells[1]} |")
        print(f"\n{split}: no stopping, the first N candidates all tried (the fixed-budget "
              f"decoders of sessions 24-25, from the same candidates)\n")
        print("| seed | decoder | N | passes | solve rate |")
        print("|---|---|---|---|---|")
        for f, r in records.items():
            for name, counts in (("vmd", (2, 4, 8, 16)), ("mdm", (2, 4, 8, 16, 24, 32, 64))):
                scores, copies, valid = stopping.candidates_of(r[name])
                for n in counts:
                    kept, passes = stop_when_confident(scores[:, :n], copies[:, :n, None],
                                                       float("inf"), decode_passes=r["nfe"],
                                                       check_passes=r["check_groups"])
                    solved = valid[torch.arange(len(kept)), kept].double().mean()
                    print(f"| {r['seed']} | {name.upper()} | {n} | {passes.double().mean():.1f} | "
                          f"{pct(solved)} |")
        print(f"\n{split}: thresholds set on the other half of the puzzles\n")
        print("| seed | budget (mean passes) | VMD: passes, solve rate | MDM: passes, solve rate "
              "| lead ± paired s.e. (McNemar p) |")
        print("|---|---|---|---|---|")
        for f, r in records.items():
            for row in r["held_out"]:
                print(f"| {r['seed']} | {row['budget']:g} | {row['vmd_passes']:.1f}, "
                      f"{pct(row['vmd_solve_rate'])} | {row['mdm_passes']:.1f}, "
                      f"{pct(row['mdm_solve_rate'])} | {100 * row['lead']:+.1f} ± "
                      f"{100 * row['lead_se']:.1f} ({row['mcnemar_p']:.1g}) |")
        print(f"\n{split}: largest lead read off the curves (thresholds chosen on these puzzles)\n")
        for f, r in records.items():
            best = max(r["leads"], key=lambda row: row["lead"])
            print(f"- seed {r['seed']}: VMD {pct(best['vmd_solve_rate'])} at "
                  f"{best['vmd_passes']:.1f} passes, MDM {pct(best['mdm_solve_rate'])} at "
                  f"{best['mdm_passes']:.1f}: {100 * best['lead']:+.1f} ± "
                  f"{100 * best['lead_se']:.1f}")


if __name__ == "__main__":
    main()
