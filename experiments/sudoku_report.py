#!/usr/bin/env python
"""Markdown table and plot of Sudoku results (JSON written by ``run.py --task sudoku``).

    python experiments/sudoku_report.py results/sudoku/eval_cpu_*.json --out-dir runs/sudoku

Writes ``table.md`` (solve rate and cell accuracy per model, order and NFE, with the training
budget) and ``solve_rate.png`` (solve rate and cell accuracy against NFE, one column per order, one
line per model).
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

ORDER_NAMES = {"random": "random", "top-prob": "Top-Prob", "top-prob-margin": "Top-Prob-Margin"}


def model_label(run: dict, with_z: bool = True) -> str:
    """The trained model and, ``with_z`` and where not the default ``fixed``, the latent's
    decoding strategy."""
    if run["model"] == "mdm":
        return "MDM"
    parts = [f"{run['prior']} prior"]
    free = run.get("train_config", {}).get("free_nats")
    if free:
        parts.append(f"{free:g} free nats")
    z = run.get("z_strategy") or "fixed"
    if with_z and z != "fixed":
        parts.append(f"z {z}")
    return f"VMD ({', '.join(parts)})"


def trained_label(run: dict) -> str:
    return model_label(run, with_z=False)


def is_fixed(run: dict) -> bool:
    return (run.get("z_strategy") or "fixed") == "fixed"


def load_runs(paths) -> tuple[list[dict], list[str]]:
    """All runs of the files, and the commits that produced them."""
    runs, commits = [], []
    for path in paths:
        data = json.loads(Path(path).read_text())
        runs += data.get("runs", [data])
        commits.append(data.get("git_commit", "?"))
    return runs, list(dict.fromkeys(commits))


def table(runs: list[dict]) -> str:
    labels = list(dict.fromkeys(model_label(r) for r in runs))
    by_key = {(model_label(r), r["order"], r["nfe"]): r for r in runs}
    head = "| order | NFE | " + " | ".join(f"{m} solve rate | {m} cell acc." for m in labels) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(labels))]
    for order in ORDER_NAMES:
        for nfe in sorted({r["nfe"] for r in runs}):
            cells = []
            for m in labels:
                r = by_key.get((m, order, nfe))
                cells += ([f"{100 * r['solve_rate']:.1f}%", f"{100 * r['cell_accuracy']:.1f}%"]
                          if r else ["-", "-"])
            if any(c != "-" for c in cells):
                lines.append(f"| {ORDER_NAMES[order]} | {nfe} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def z_table(runs: list[dict], order: str = "top-prob-margin") -> str:
    """Solve rate of every VMD model and z strategy with one order, against NFE."""
    runs = [r for r in runs if r["model"] == "vmd" and r["order"] == order]
    labels = list(dict.fromkeys(model_label(r) for r in runs))
    by_key = {(model_label(r), r["nfe"]): r for r in runs}
    lines = ["| NFE | " + " | ".join(labels) + " |", "|" + "---|" * (1 + len(labels))]
    for nfe in sorted({r["nfe"] for r in runs}):
        cells = [f"{100 * by_key[m, nfe]['solve_rate']:.1f}%" if (m, nfe) in by_key else "-"
                 for m in labels]
        lines.append(f"| {nfe} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def budget(runs: list[dict]) -> str:
    rows = ["| model | parameters | steps | batch | training wall time | final val NELBO (bits/blank) |",
            "|---|---|---|---|---|---|"]
    for label in dict.fromkeys(trained_label(r) for r in runs):
        r = next(r for r in runs if trained_label(r) == label)
        rows.append(f"| {label} | {r['parameters']:,} | {r['steps']} | "
                    f"{r['train_config']['batch_size']} | {r['train_seconds'] / 60:.1f} min | "
                    f"{r['val_nelbo_bits']:.3f} |")
    return "\n".join(rows)


def plot(runs: list[dict], path: Path, title: str) -> None:
    """Top row: solve rate against NFE; bottom row: cell accuracy, with chance (1/9) dashed."""
    fig, axes = plt.subplots(2, len(ORDER_NAMES), figsize=(4 * len(ORDER_NAMES), 6.4),
                             sharex=True, sharey="row")
    # One colour per trained model, one line style per z strategy, the same in every panel.
    colour = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(trained_label(r) for r in runs))}
    style = {"fixed": "-", "resample": "--", "posterior": ":", "prior": "-."}
    for col, order in enumerate(ORDER_NAMES):
        for row, key in enumerate(("solve_rate", "cell_accuracy")):
            ax = axes[row, col]
            for label in dict.fromkeys(model_label(r) for r in runs):
                chosen = [r for r in runs if model_label(r) == label and r["order"] == order]
                pts = sorted((r["nfe"], 100 * r[key]) for r in chosen)
                if pts:
                    z = chosen[0].get("z_strategy") or "fixed"
                    ax.plot(*zip(*pts), marker="o", alpha=0.8, label=label,
                            color=colour[trained_label(chosen[0])], linestyle=style.get(z, "-"))
            if key == "cell_accuracy":
                ax.axhline(100 / 9, color="grey", linestyle="--", linewidth=1, label="chance (1/9)")
                ax.set_xlabel("NFE (denoiser calls per puzzle)")
            else:
                ax.set_title(ORDER_NAMES[order])
                ax.set_ylim(-2, 102)
            ax.set_xscale("log")
            ax.set_xticks([5, 10, 20, 50], labels=["5", "10", "20", "50"])
            ax.minorticks_off()
            ax.set_xlim(4, 60)
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("solve rate (%)")
    axes[1, 0].set_ylabel("cell accuracy on blanks (%)")
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes[1]), key=lambda h: len(h[1]))
    axes[1, 0].legend(handles, labels, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", help="JSON files from run.py --task sudoku")
    p.add_argument("--out-dir", default="runs/sudoku")
    args = p.parse_args(argv)
    try:
        runs, commits = load_runs(args.results)
    except (OSError, json.JSONDecodeError) as err:
        cli.fail(f"cannot read results: {err}")
    if not runs or any("solve_rate" not in r for r in runs):
        cli.fail("these are not Sudoku results (no solve_rate)")
    first = runs[0]
    lo, hi = first["clue_range"]
    setting = (f"{first['num_puzzles']} test puzzles, {lo}-{hi} clues, unique solutions; fill "
               f"{first['fill']}" + (", VMD z fixed unless stated"
                                     if any(r["model"] == "vmd" for r in runs) else ""))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot(runs, out / "solve_rate.png", f"Sudoku test split against NFE ({setting})")
    text = "\n\n".join([
        f"Sudoku, {setting}. Solve rate = the filled grid is valid (rows, columns and boxes checked "
        "by the rules) and keeps every clue; cell accuracy = blanks equal to the unique solution.",
        table([r for r in runs if is_fixed(r)]),
        "VMD solve rate with Top-Prob-Margin for each way of handling the latent while decoding "
        "(fixed: one prior draw per puzzle; resample: a new prior draw every step, given the cells "
        "decoded so far where the prior depends on them; posterior: a draw from the guide given "
        "the current denoised estimate):", z_table(runs),
        "Training budget (one CPU thread on a shared 2-core machine; the wall time "
        "includes the periodic validation; VMD's parameters include its guide network, which only "
        "training uses; its denoiser is MDM's plus a small latent projection):", budget(runs),
        f"Source: {', '.join(args.results)} (commit {', '.join(commits)}); "
        f"plot: solve_rate.png."])
    (out / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
