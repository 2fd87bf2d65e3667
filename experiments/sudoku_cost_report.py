#!/usr/bin/env python
"""Solve rate against what a decoder spends: one line per series of ``sudoku.py solve --json``
files, each file one point at the denoiser passes per puzzle it measured.

    python experiments/sudoku_cost_report.py --out-dir runs/cost \\
        --series "MDM, N sampled grids, checked" mdm_n4.json mdm_n8.json mdm_n16.json \\
        --series "VMD, every z, checked" vmd_k4.json vmd_k8.json vmd_k16.json

A point's x is ``network_passes_per_puzzle["denoiser"]``, counted by ``sampling.counting_passes``
while the file was made (passes of other networks, such as a prior's own, are listed in the
table); its y is the solve rate. A series is a way of spending more (more candidates, more values
of z, more calls) and its files are drawn in the order given. Every file must solve the same
puzzle file. Writes ``table.md`` and ``cost.png``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vmd_pyro import cli  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sudoku_report import (enumerated_label, fill_label, save_with_legend_below,  # noqa: E402
                           select_label)


def load_series(series: list[list[str]]) -> tuple[str, list[tuple[str, list[dict]]]]:
    """``(puzzle file, [(label, [result, ...]), ...])``; refuses files without measured passes,
    series without files and files of different puzzle files."""
    loaded, puzzle_files = [], set()
    for label, *paths in series:
        if not paths:
            raise ValueError(f"series {label!r} has no files")
        results = []
        for path in paths:
            result = json.loads(Path(path).read_text())
            if "network_passes_per_puzzle" not in result or "solve_rate" not in result:
                raise ValueError(f"{path} has no measured passes (a `sudoku.py solve --json` file "
                                 "made since session 17)")
            puzzle_files.add(Path(result["puzzles"]).name)
            results.append({**result, "_file": Path(path).name})
        loaded.append((label, results))
    if len(puzzle_files) != 1:
        raise ValueError(f"the files solve different puzzle files: {sorted(puzzle_files)}")
    return puzzle_files.pop(), loaded


def decoder(result: dict) -> str:
    """How a file decoded, in a few words: NFE, fill and how many decodes were kept how."""
    several = result["z_strategy"] == "enumerate" or result.get("candidates", 1) > 1
    decodes = (enumerated_label(result) if result["z_strategy"] == "enumerate"
               else result.get("candidates", 1))
    kept = (f", {decodes} kept by {select_label(result)}" if several
            else f", z {result['z_strategy']}")
    return f"NFE {result['nfe']}, {fill_label(result)}{kept}"


def table(puzzle_file: str, series: list[tuple[str, list[dict]]]) -> str:
    lines = [f"Puzzles: `{puzzle_file}`. Passes per puzzle as measured by each file.", "",
             "| series | checkpoint | decoder | denoiser passes | other passes | solve rate | file |",
             "|---|---|---|---|---|---|---|"]
    for label, results in series:
        for r in results:
            passes = r["network_passes_per_puzzle"]
            other = ", ".join(f"{net} {n:g}" for net, n in passes.items() if net != "denoiser" and n)
            lines.append(f"| {label} | {Path(r['checkpoint']).stem} | {decoder(r)} | "
                         f"{passes['denoiser']:g} | {other or '-'} | {100 * r['solve_rate']:.1f}% | "
                         f"`{r['_file']}` |")
    commits = sorted({r.get("git_commit", "?")[:7] for _, rs in series for r in rs})
    lines += ["", f"Commits: {', '.join(commits)}; plot: cost.png."]
    return "\n".join(lines) + "\n"


def plot(series: list[tuple[str, list[dict]]], path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, results in series:
        x = [r["network_passes_per_puzzle"]["denoiser"] for r in results]
        ax.plot(x, [100 * r["solve_rate"] for r in results], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("denoiser passes per puzzle (measured)")
    ax.set_ylabel("solve rate (%)")
    ax.set_title(title, fontsize=10)
    save_with_legend_below(fig, ax, path, fontsize=8, offset=-0.15)


def main(argv=None) -> int:
    parser = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", nargs="+", action="append", required=True,
                        metavar=("LABEL", "FILE"),
                        help="a label and its sudoku.py solve --json files, in drawing order "
                             "(repeat for every line)")
    parser.add_argument("--title", default="Sudoku solve rate against denoiser passes")
    parser.add_argument("--out-dir", required=True, help="where table.md and cost.png go")
    args = parser.parse_args(argv)
    try:
        puzzle_file, series = load_series(args.series)
    except (OSError, json.JSONDecodeError, KeyError, ValueError) as err:
        cli.fail(f"cannot read results: {err}")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table(puzzle_file, series))
    plot(series, out / "cost.png", f"{args.title} ({puzzle_file})")
    print(f"wrote {out / 'table.md'} and {out / 'cost.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
