#!/usr/bin/env python
"""One table (and plot) from ``sudoku.py solve --json`` files: solve rate against NFE per
checkpoint, fill and z strategy, over all puzzles and by clue count.

    python experiments/sudoku_solve_report.py runs/low_clues/*_nfe*.json --out-dir runs/low_report

Each file is one NFE of one decoder on one puzzle file; files that share checkpoint, fill and z
strategy make one row. Every file must name the same puzzle file (the table is about one split).
Writes ``table.md`` (counts solved, so small splits read as what they are) and ``solve_rate.png``.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vmd_pyro import cli  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sudoku_report import (enumerated_label, fill_label, line_colours,  # noqa: E402
                           save_with_legend_below, select_label)


def load_rows(paths: list[str]) -> tuple[str, dict[tuple[str, str, str], dict[int, dict]]]:
    """``(puzzle file, {(checkpoint, fill, z strategy): {nfe: result}})``; a run with the z input
    cut off (``--without-latent``) is its own row, and so is each way of keeping one of several
    decodes (``--candidates``, ``--z-strategy enumerate``, ``--select``) and each
    ``--temperature``. The files must name one puzzle file (a copy in another folder counts as
    the same) and agree on its number of puzzles with each clue count
    (a file may hold only some clue counts, ``sudoku.py solve --clues``)."""
    rows: dict[tuple[str, str, str], dict[int, dict]] = defaultdict(dict)
    puzzle_files, sizes = set(), defaultdict(set)
    for path in paths:
        result = json.loads(Path(path).read_text())
        if "by_clues" not in result or "nfe" not in result:
            raise ValueError(f"{path} is not a `sudoku.py solve --json` file")
        puzzle_files.add(Path(result["puzzles"]).name)
        for clues, part in result["by_clues"].items():
            sizes[clues].add(part["num_puzzles"])
        z = result["z_strategy"] + (", z cut off" if result.get("without_latent") else "")
        if result.get("candidates", 1) > 1 or result["z_strategy"] == "enumerate":
            several = ""  # enumerate over every z: the strategy says it
            if result["z_strategy"] != "enumerate":
                several = f"{result['candidates']} decodes "
            elif result.get("z_values"):
                several = f"{enumerated_label(result)} "
            z += f", {several}kept by {select_label(result)}"
        key = (Path(result["checkpoint"]).stem, fill_label(result), z)
        if result["nfe"] in rows[key]:
            raise ValueError(f"two files for {key} at NFE {result['nfe']} (one is {path})")
        rows[key][result["nfe"]] = result
    if len(puzzle_files) != 1:
        raise ValueError(f"the files solve different puzzle files: {sorted(puzzle_files)}")
    if any(len(counts) > 1 for counts in sizes.values()):
        raise ValueError(f"the files solve different puzzles of {puzzle_files.pop()}: puzzles per "
                         f"clue count {dict(sorted((c, sorted(n)) for c, n in sizes.items()))}")
    return puzzle_files.pop(), dict(rows)


def solved(result: dict, clues: str | None = None) -> str:
    """``"k / n (r%)"`` for all puzzles or for one clue count."""
    part = result if clues is None else result["by_clues"].get(clues)
    if part is None:
        return "-"
    n = part["num_puzzles"]
    k = round(part["solve_rate"] * n)
    return f"{k} / {n} ({100 * k / n:.1f}%)"


def passes(result: dict | None) -> str:
    """The denoiser passes per puzzle a file measured (``-`` if it did not)."""
    if result is None or "network_passes_per_puzzle" not in result:
        return "-"
    return f"{result['network_passes_per_puzzle']['denoiser']:g}"


def orders(rows: dict) -> str:
    """The decoding orders of the files, for the table and the plot's title."""
    return ", ".join(sorted({r["order"] for by_nfe in rows.values() for r in by_nfe.values()}))


def table(puzzle_file: str, rows: dict, sources: list[str]) -> str:
    nfes = sorted({nfe for by_nfe in rows.values() for nfe in by_nfe})
    clue_counts = sorted({c for by_nfe in rows.values() for r in by_nfe.values()
                          for c in r["by_clues"]}, key=int)
    head = "| checkpoint | fill | z | " + " | ".join(f"NFE {n}" for n in nfes) + " |"
    rule = "|---|---|---|" + "---|" * len(nfes)
    lines = [f"Puzzles: `{puzzle_file}`; solved / puzzles (solve rate), Top-Prob-Margin unless a "
             "file says otherwise."]
    for clues, title in [(None, "All puzzles")] + [(c, f"{c} clues") for c in clue_counts]:
        lines += ["", f"**{title}**", "", head, rule]
        for (name, fill, z), by_nfe in sorted(rows.items()):
            lines.append(f"| {name} | {fill} | {z} | " + " | ".join(
                solved(by_nfe[n], clues) if n in by_nfe else "-" for n in nfes) + " |")
        if clues is None:  # what each decoder spends, where its file measured it
            lines += ["", "**Denoiser passes per puzzle** (measured, `network_passes_per_puzzle`; "
                      "- where a file predates it)", "", head, rule]
            for (name, fill, z), by_nfe in sorted(rows.items()):
                lines.append(f"| {name} | {fill} | {z} | " + " | ".join(
                    passes(by_nfe.get(n)) for n in nfes) + " |")
    commits = sorted({r.get("git_commit", "?") for by_nfe in rows.values() for r in by_nfe.values()})
    lines += ["", f"Orders: {orders(rows)}. Commits: {', '.join(commits)}.",
              f"Source: {len(sources)} files, " + ", ".join(sorted(Path(s).name for s in sources))
              + "; plot: solve_rate.png."]
    return "\n".join(lines) + "\n"


def plot(rows: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for colour, ((name, fill, z), by_nfe) in zip(line_colours(len(rows)), sorted(rows.items())):
        nfes = sorted(by_nfe)
        ax.plot(nfes, [100 * by_nfe[n]["solve_rate"] for n in nfes], marker="o", color=colour,
                linestyle="-" if fill == "argmax" else "--", label=f"{name}, {fill}, z {z}")
    ax.set_xscale("log")
    ticks = sorted({n for by_nfe in rows.values() for n in by_nfe})
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.minorticks_off()
    ax.set_xlabel("NFE (denoiser calls per puzzle)")
    ax.set_ylabel("solve rate (%)")
    ax.set_title(f"Sudoku solve rate, order {orders(rows)} (table.md); argmax solid, sampled "
                 "dashed", fontsize=10)
    save_with_legend_below(fig, ax, path)


def main(argv=None) -> int:
    parser = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="sudoku.py solve --json files")
    parser.add_argument("--out-dir", required=True, help="where table.md and solve_rate.png go")
    args = parser.parse_args(argv)
    try:
        puzzle_file, rows = load_rows(args.files)
    except (OSError, json.JSONDecodeError, ValueError) as err:
        cli.fail(f"cannot read results: {err}")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table(puzzle_file, rows, args.files))
    plot(rows, out / "solve_rate.png")
    print(f"wrote {out / 'table.md'} and {out / 'solve_rate.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
