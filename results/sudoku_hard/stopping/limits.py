"""What limits the stopping decoders, from this folder's records (no decoding). Run from the
repository root: python results/sudoku_hard/stopping/limits.py [--out FILE.json]

1. How well the check ranks: over every different grid of every puzzle, the share of (valid,
   invalid) pairs in which the valid grid scores higher (the area under the ROC curve), and the
   share of puzzles that no candidate solves.
   Beside it, what a check that knew validity would give with no foresight: stop at the first
   valid grid, or after N candidates (the best N for each budget), and the largest lead this
   gives the VMD over MDM at any budget, with the check's cost and with a free check (and, for
   comparison, the largest lead under ``perfect_check_rate``).
   ``perfect_check_rate`` also knows in advance which puzzles no candidate solves and spends
   nothing more on them.
2. Giving up (``sudoku_stopping.py --give-up``): the held-out rows again, the thresholds, caps and
   give-up levels set on the other half of the puzzles, beside the same search without giving up.
3. A what-if for the test split: the VMD's list with MDM's argmax grid put first (as if one value
   of z decoded like MDM), its 16 values of z after it, scored by the same check. Puzzles have
   one solution, so a valid grid of the VMD repeats MDM's valid grid and shares its check; an
   invalid one is counted as new (a repeat would save a check). Held-out rows against MDM, and
   the bound of a check that knew validity."""
import argparse
import json
import sys
import time
from pathlib import Path

import torch

from vmd_pyro.experiment import load_script, provenance, write_json
from vmd_pyro.sampling import passes_after_each_try, stop_when_confident

stopping = load_script("sudoku_stopping")
HERE = Path(__file__).parent
RECORDS = {"test": ("seed0", "seed1"),
           "test, VMD + 48 sampled": ("vmd_samples_seed0", "vmd_samples_seed1"),
           "test, check of 2 passes": ("check2_seed0", "check2_seed1"),
           "17-29 clues": ("few_seed0", "few_seed1"),
           "17-29 clues, VMD + 48 sampled": ("vmd_samples_few_seed0", "vmd_samples_few_seed1"),
           "17-29 clues, check of 10 passes": ("check10_few_seed0", "check10_few_seed1")}


PLOTTED = {"seed0": "test split (seed0)", "few_seed0": "17-29 clues (few_seed0)"}


def budgets(split):
    return (15, 20, 25, 30, 40, 60) if split.startswith("test") else \
        (15, 20, 25, 30, 40, 60, 80, 120)


def ranking(scores, copies, valid) -> dict:
    """The check's AUC over the different grids of all puzzles, and the puzzles none solves."""
    distinct = copies == torch.arange(copies.shape[1])
    good, bad = scores[distinct & valid], scores[distinct & ~valid]
    higher = (good.unsqueeze(1) > bad.unsqueeze(0)).double().sum() \
        + 0.5 * (good.unsqueeze(1) == bad.unsqueeze(0)).double().sum()
    return {"valid_grids": len(good), "invalid_grids": len(bad),
            "auc": float(higher / (len(good) * len(bad))),
            "no_valid_candidate": float((~valid.any(-1)).double().mean())}


def knowing_validity_points(copies, valid, decode_passes, check_passes) -> list[tuple]:
    """(mean passes, solve rate) of a decoder that stops at its first valid grid or after N
    candidates (one N for all puzzles), for every N."""
    score = valid.double()          # a check that knew validity: 1 for a valid grid, else 0
    spent = passes_after_each_try(copies.unsqueeze(-1), decode_passes=decode_passes,
                                  check_passes=check_passes)   # once, for every N
    points = []
    for cap in range(1, valid.shape[1] + 1):
        kept, passes = stop_when_confident(score, copies.unsqueeze(-1), 1.0,
                                           decode_passes=decode_passes, check_passes=check_passes,
                                           max_candidates=cap, spent=spent)
        points.append((float(passes.double().mean()),
                       float(valid[torch.arange(len(kept)), kept].double().mean())))
    return points


def best_within(points, budget):
    return max([r for p, r in points if p <= budget], default=None)


def references(copies, valid, decode_passes: int, check_passes: int) -> dict:
    """One decoder's two references at every budget from one decode to 120 mean passes: a check
    that knew validity (:func:`knowing_validity_points`, its best rate within the budget), with the
    check's cost and free (by cost), and with foresight (``perfect_check_rate``)."""
    known = {}
    for cost in sorted({0, check_passes}):
        points = knowing_validity_points(copies, valid, decode_passes, cost)
        known[cost] = {b: best_within(points, b) for b in range(decode_passes + cost, 121)}
    return {"known": known, "foresight": {
        b: stopping.perfect_check_rate(copies, valid, b, decode_passes=decode_passes,
                                       check_passes=check_passes)
        for b in range(decode_passes + check_passes, 121)}}


def largest_lead(vmd: dict, mdm: dict) -> tuple[int, float]:
    """(budget, lead): where the VMD's rate leads MDM's most, over the budgets both reach (chosen
    on these puzzles: an upper figure)."""
    return max(((b, vmd[b] - mdm[b]) for b in vmd if vmd[b] is not None and mdm[b] is not None),
               key=lambda t: t[1])


def mdm_first(vmd, mdm, count: int):
    """(scores, copies, valid): MDM's argmax candidate, then the VMD's ``count`` argmax ones."""
    (vs, vc, vv), (ms, _, mv) = vmd, mdm
    copies = vc[:, :count] + 1
    copies = torch.where(vv[:, :count] & mv[:, :1], 0, copies)  # the one solution, seen first
    return (torch.cat([ms[:, :1], vs[:, :count]], 1), torch.cat([copies.new_zeros(len(copies), 1),
            copies], 1), torch.cat([mv[:, :1], vv[:, :count]], 1))


def plot(panels: dict, out: Path) -> None:
    """Solve rate against mean passes, one panel per (record, its :func:`references`): each
    decoder's measured curve (the record's, settings chosen on these puzzles), a check that knew
    validity without foresight, and with it (``perfect_check_rate``)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(panels), figsize=(11, 4))
    for ax, (title, (record, refs)) in zip(axes, panels.items()):
        for name, color in (("vmd", "tab:blue"), ("mdm", "tab:orange")):
            curve = record[name]["curve"]
            curve = curve + [{**curve[-1], "passes": max(120, curve[-1]["passes"])}]  # flat after
            ax.step([p["passes"] for p in curve], [100 * p["solve_rate"] for p in curve],
                    where="post", color=color, label=f"{name.upper()}: measured")
            known = refs[name]["known"][record["check_groups"]]
            ax.plot(list(known), [100 * (r or 0) for r in known.values()], "--",
                    color=color, label=f"{name.upper()}: check that knew validity")
            foresight = refs[name]["foresight"]
            ax.plot(list(foresight), [100 * r for r in foresight.values()], ":", color=color,
                    label=f"{name.upper()}: ... and which puzzles none solves")
        ax.set(title=title, xlabel="mean denoiser passes per puzzle", ylabel="solve rate (%)",
               xlim=(0, 120))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Stopping decoders at NFE 5 against two references (seed 0)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def line(split, folder, what, row):
    return (f"| {split} | {folder} | {what} | {row['budget']:g} | {row['vmd_passes']:.1f}, "
            f"{100 * row['vmd_solve_rate']:.1f}% | {row['mdm_passes']:.1f}, "
            f"{100 * row['mdm_solve_rate']:.1f}% | {100 * row['lead']:+.1f} ± "
            f"{100 * row['lead_se']:.1f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file, and a "
                                                  "plot of seed 0's curves beside it (.png)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = {"records": {}, **provenance(None)}
    print("| split | record | decoder | different grids | check AUC | no valid candidate | "
          "knowing validity, no foresight: 20 / 25 / 40 passes | with foresight "
          "(perfect_check_rate) |")
    print("|---|---|---|---|---|---|---|---|")
    table, free, panels = [], [], {}
    for split, folders in RECORDS.items():
        for folder in folders:
            record = json.loads((HERE / folder / "stopping.json").read_text())
            options = stopping.build_parser().parse_args(
                ["--out-dir", "unused", "--budgets", *map(str, budgets(split))])
            options.nfe, options.check_groups = record["nfe"], record["check_groups"]
            found = {name: stopping.candidates_of(record[name]) for name in ("vmd", "mdm")}
            refs = {name: references(*found[name][1:], options.nfe, options.check_groups)
                    for name in found}
            entry = {name: {**ranking(*found[name]), "knowing_validity": {
                f"{b:g}": refs[name]["known"][options.check_groups][int(b)]
                for b in options.budgets}, "perfect_check_rate": {
                f"{b:g}": refs[name]["foresight"][int(b)] for b in options.budgets}}
                     for name in found}
            for name, r in entry.items():
                print(f"| {split} | {folder} | {name.upper()} | {r['valid_grids'] + r['invalid_grids']} "
                      f"| {r['auc']:.4f} | {100 * r['no_valid_candidate']:.1f}% | "
                      + " / ".join(f"{100 * r['knowing_validity'][str(b)]:.1f}"
                                   if r['knowing_validity'][str(b)] is not None else "-"
                                   for b in (20, 25, 40)) + " | "
                      + " / ".join(f"{100 * r['perfect_check_rate'][str(b)]:.1f}"
                                   for b in (20, 25, 40)) + " |")
            outcomes = {}
            for give_up in (False, True):
                options.give_up = give_up
                outcomes[give_up] = {name: stopping.held_out(*found[name], options)
                                     for name in found}
                key = "give_up" if give_up else "stopping"
                entry[key] = stopping.lead_rows(outcomes[give_up]["vmd"], outcomes[give_up]["mdm"])
                table += [line(split, folder, key.replace("_", " "), r) for r in entry[key]]
            saved = {row["budget"]: row for row in record["held_out"]}
            for row in entry["stopping"]:   # the same search as the record's own analysis
                if row["budget"] in saved and any(
                        abs(row[k] - saved[row["budget"]][k]) > 1e-9 for k in ("lead", "vmd_passes")):
                    raise RuntimeError(f"{folder}: held-out row at {row['budget']:g} passes "
                                       f"differs from the record's")
            entry["largest_lead_knowing_validity"] = [
                dict(zip(("check_passes", "budget", "lead"),
                         (cost, *largest_lead(refs["vmd"]["known"][cost], refs["mdm"]["known"][cost]))))
                for cost in refs["vmd"]["known"]]
            budget, lead = largest_lead(refs["vmd"]["foresight"], refs["mdm"]["foresight"])
            entry["largest_lead_with_foresight"] = {"budget": budget, "lead": lead}
            free.append(f"- {split}, {folder}: " + "; ".join(
                f"check of {r['check_passes']} passes: {100 * r['lead']:+.1f} at {r['budget']}"
                for r in entry["largest_lead_knowing_validity"])
                + f"; with foresight (perfect_check_rate): {100 * lead:+.1f} at {budget}")
            if split == "test":
                options.give_up = False
                argmax = found["vmd"][0].shape[1] - record.get("vmd_samples", 0)  # one per z
                both = mdm_first(found["vmd"], found["mdm"], argmax)
                entry["mdm_first"] = stopping.lead_rows(stopping.held_out(*both, options),
                                                        outcomes[False]["mdm"])
                table += [line(split, folder, "MDM's grid first", r) for r in entry["mdm_first"]]
                entry["mdm_first_perfect_check"] = {
                    f"{b:g}": stopping.perfect_check_rate(both[1], both[2], b,
                                                        decode_passes=options.nfe,
                                                        check_passes=options.check_groups)
                    for b in options.budgets}
            result["records"][folder] = entry
            if folder in PLOTTED:
                panels[PLOTTED[folder]] = record, refs
    print("\n| split | record | VMD decoder | budget | VMD: passes, solve rate | "
          "MDM: passes, solve rate | lead ± paired s.e. |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(table))
    print("\nLargest lead if both knew validity, without foresight and with it (budget in mean "
          "passes, chosen on these puzzles)")
    print("\n".join(free))
    print("\nMDM's grid first, with a check that knew validity (VMD list / budget: solve rate)")
    for folder in RECORDS["test"]:
        bound = result["records"][folder]["mdm_first_perfect_check"]
        print(f"- {folder}: " + ", ".join(f"{b}: {100 * r:.1f}%" for b, r in bound.items()))
    result["seconds"] = time.perf_counter() - start
    if args.out:
        write_json(args.out, result)
        plot(panels, args.out.with_suffix(".png"))
        print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
