#!/usr/bin/env python
"""Table and plot of why Sudoku puzzles go unsolved (JSON of ``sudoku.py solve --failures``).

    python experiments/sudoku_failures_report.py results/sudoku_levers/failures_*.json \
        --out-dir runs/failures

For each file (one model at one NFE): the solve rate and, over the unsolved puzzles, how many
hold a clash between two cells filled in the same denoiser call (cells the denoiser predicted
independently, without seeing each other: what a latent is for), how many hold no other clash,
and how many go wrong first in such a clash. Writes ``failures.md`` and ``failures.png`` (per
model and NFE, the share of puzzles solved, failed first in a same-call clash, failed otherwise).
Every number is read from the files; nothing is recomputed.
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


def load(paths) -> list[dict]:
    rows = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        if "failures" not in data:
            raise ValueError(f"{path}: no 'failures' (made without sudoku.py solve --failures?)")
        rows.append({"model": Path(data["checkpoint"]).stem
                     + (", z cut off" if data.get("without_latent") else "")
                     + (", argmax" if data.get("fill") == "argmax" else ""),
                     "nfe": data["nfe"], "solve_rate": data["solve_rate"], **data["failures"]})
    return sorted(rows, key=lambda r: (r["model"], r["nfe"]))


def share(count: int, total: int) -> str:
    return f"{count} ({100 * count / total:.0f}%)" if total else "0"


def table(rows: list[dict]) -> str:
    lines = ["| model | NFE | solved | unsolved | with a same-call clash | only same-call clashes "
             "| first wrong call clashes inside itself |", "|" + "---|" * 7]
    for r in rows:
        n = r["failed"]
        lines.append(f"| {r['model']} | {r['nfe']} | {100 * r['solve_rate']:.1f}% | {n} | "
                     f"{share(r['with_same_call_conflict'], n)} | "
                     f"{share(r['only_same_call_conflicts'], n)} | "
                     f"{share(r['first_error_in_same_call_conflict'], n)} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    labels = [f"{r['model']}\nNFE {r['nfe']}" for r in rows]
    solved = [r["solve_rate"] for r in rows]
    clash = [r["first_error_in_same_call_conflict"] / r["puzzles"] for r in rows]
    other = [1 - s - c for s, c in zip(solved, clash)]
    fig, ax = plt.subplots(figsize=(max(7.0, 0.9 * len(rows)), 5.5))
    xs = range(len(rows))
    ax.bar(xs, solved, color="tab:green", label="solved")
    ax.bar(xs, clash, bottom=solved, color="tab:red",
           label="unsolved: first error a clash inside one call")
    ax.bar(xs, other, bottom=[s + c for s, c in zip(solved, clash)], color="tab:gray",
           label="unsolved: otherwise (the first wrong digits clash with no cell of their call)")
    ax.set_xticks(list(xs), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("share of puzzles")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=2)
    ax.set_title("Why puzzles go unsolved (Top-Prob-Margin)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = cli.ArgumentParser(description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", help="JSON files of sudoku.py solve --failures")
    p.add_argument("--out-dir", default="runs/failures",
                   help="output folder (default runs/failures)")
    args = p.parse_args(argv)
    rows = cli.read_result_files(p, args.results, lambda: load(args.results))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "failures.md").write_text(table(rows) + "\n")
    plot(rows, out / "failures.png")
    print(table(rows))
    print(f"wrote {out / 'failures.md'} and {out / 'failures.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
