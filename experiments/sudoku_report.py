#!/usr/bin/env python
"""Markdown table and plot of Sudoku results (JSON written by ``run.py --task sudoku``).

    python experiments/sudoku_report.py results/sudoku/eval_cpu_*.json --out-dir runs/sudoku

Writes ``table.md`` (solve rate and cell accuracy per model, order and NFE, with the training
budget) and ``solve_rate.png`` (solve rate and cell accuracy against NFE, one column per order, one
line per model). Rows of the few-clue split (``run.py --test-clues``, split ``test-clues``) get
their own tables, solve rate per clue count for every model and NFE, and ``solve_rate_by_clues.png``
(solve rate against NFE on that split, and against the clue count at each NFE):

    python experiments/sudoku_report.py results/sudoku_hard/eval_*.json --out-dir runs/hard \
        --names MDM "VMD (steps, T 5)"

``--names`` labels the models of the files in order (one name per file; a file's VMD rows with
another z strategy than ``fixed`` get it appended), where the stored configuration does not tell
them apart (for instance the training clue range).
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from vmd_pyro import cli  # noqa: E402
from vmd_pyro.experiment import result_runs  # noqa: E402

ORDER_NAMES = {"random": "random", "top-prob": "Top-Prob", "top-prob-margin": "Top-Prob-Margin"}


def model_label(run: dict, with_z: bool = True) -> str:
    """The trained model (its ``--names`` name where given) and, ``with_z`` and where not the
    default ``fixed``, the latent's decoding strategy."""
    z = run.get("z_strategy") or "fixed"
    z_part = [f"z {z}"] if with_z and z != "fixed" else []
    if run.get("name"):
        return run["name"] + (f" ({z_part[0]})" if z_part else "")
    if run["model"] == "mdm":
        return "MDM"
    parts = [f"{run['prior']} prior"]
    free = run.get("train_config", {}).get("free_nats")
    if free:
        parts.append(f"{free:g} free nats")
    return f"VMD ({', '.join(parts + z_part)})"


def trained_label(run: dict) -> str:
    return model_label(run, with_z=False)


def is_fixed(run: dict) -> bool:
    return (run.get("z_strategy") or "fixed") == "fixed"


def load_runs(paths, names=None) -> tuple[list[dict], list[str]]:
    """All runs of the files (each named by its entry of ``names`` where given), and the commits
    that produced them."""
    runs, commits = [], []
    for path, name in zip(paths, names or [None] * len(paths)):
        data = json.loads(Path(path).read_text())
        found = result_runs(data)
        runs += [{**r, "name": name} if name else r for r in found]
        commits.append(data.get("git_commit", "?"))
    return runs, list(dict.fromkeys(commits))


def split_of(run: dict) -> str:
    return run.get("split", "test")


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
    rows = ["| model | parameters | steps | batch | training wall time | final val training "
            "objective (bits/blank; VMD's J is not a bound) |", "|---|---|---|---|---|---|"]
    for label in dict.fromkeys(trained_label(r) for r in runs):
        r = next(r for r in runs if trained_label(r) == label)
        # files written before the rename call the objective nelbo_bits, also for VMD
        value = r.get("val_objective_bits", r.get("val_nelbo_bits"))
        objective = "-" if value is None else f"{value:.3f}"
        rows.append(f"| {label} | {r['parameters']:,} | {r['steps']} | "
                    f"{r['train_config']['batch_size']} | {r['train_seconds'] / 60:.1f} min | "
                    f"{objective} |")
    return "\n".join(rows)


def value_range(numbers) -> str:
    """``"89"``, or ``"81-89"`` where runs of several splits (data seeds) differ in size."""
    numbers = sorted(set(numbers))
    return str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"


def fill_label(result: dict) -> str:
    """A solve file's fill, with its temperature where it is not 1 (``sample T=0.75``)."""
    temperature = result.get("temperature", 1)
    return result["fill"] + (f" T={temperature:g}" if temperature != 1 else "")


def select_label(result: dict) -> str:
    """How a solve file kept one of several decodes (``pseudo-likelihood, each different grid
    checked once`` with ``--check-distinct``)."""
    return result["select"] + (", each different grid checked once"
                               if result.get("check_distinct") else "")


def enumerated_label(result: dict) -> str:
    """Which values of z an ``enumerate`` solve file decoded: ``every z``, or ``the M most
    probable z`` with ``--z-values M``."""
    values = result.get("z_values") or 0
    return f"the {values} most probable z" if values else "every z"


def save_with_legend_below(fig, ax, path, fontsize: int = 7, offset: float = -0.2) -> None:
    """Legend under the axes (with a dozen lines, a legend inside hides the points it names),
    a light grid, and the figure saved and closed."""
    ax.legend(fontsize=fontsize, loc="upper center", bbox_to_anchor=(0.5, offset), ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def line_colours(count: int) -> list:
    """One colour per line: the default cycle's 10, or 20 distinct ones past 10 lines (the
    default cycle would repeat its colours)."""
    return [f"C{i}" if count <= 10 else plt.cm.tab20(i % 20) for i in range(count)]


def clue_table(runs: list[dict]) -> str:
    """Few-clue split: solve rate per clue count (columns, with the puzzle count in the header)
    for every model, order and NFE (rows), and over all its puzzles."""
    counts = sorted({int(c) for r in runs for c in r["by_clues"]})
    sizes = {c: value_range(r["by_clues"][str(c)]["num_puzzles"] for r in runs
                            if str(c) in r["by_clues"]) for c in counts}
    head = ("| model | order | NFE | " + " | ".join(f"{c} ({sizes[c]})" for c in counts)
            + f" | all ({value_range(r['num_puzzles'] for r in runs)}) | all: cell acc. |")
    lines = [head, "|" + "---|" * (5 + len(counts))]
    order = model_order(runs)
    for r in sorted(runs, key=lambda r: (order[model_label(r)], r["order"], r["nfe"])):
        cells = [f"{100 * r['by_clues'][str(c)]['solve_rate']:.1f}%" if str(c) in r["by_clues"]
                 else "-" for c in counts]
        lines.append(f"| {model_label(r)} | {ORDER_NAMES[r['order']]} | {r['nfe']} | "
                     + " | ".join(cells) + f" | {100 * r['solve_rate']:.1f}% | "
                     f"{100 * r['cell_accuracy']:.1f}% |")
    return "\n".join(lines)


def model_order(runs: list[dict]) -> dict:
    return {label: i for i, label in enumerate(dict.fromkeys(model_label(r) for r in runs))}


def plot_by_clues(runs: list[dict], path: Path, title: str, order="top-prob-margin") -> None:
    """Few-clue split, one order: solve rate against NFE (all puzzles; left) and against the clue
    count at each NFE (one panel per NFE)."""
    runs = [r for r in runs if r["order"] == order]
    nfes = sorted({r["nfe"] for r in runs})
    fig, axes = plt.subplots(1, 1 + len(nfes), figsize=(3.6 * (1 + len(nfes)), 3.8), sharey=True)
    labels = list(model_order(runs))
    colors = line_colours(len(labels))
    for i, label in enumerate(labels):
        mine = [r for r in runs if model_label(r) == label]
        pts = sorted((r["nfe"], 100 * r["solve_rate"]) for r in mine)
        axes[0].plot(*zip(*pts), marker="o", color=colors[i], label=label)
        for ax, nfe in zip(axes[1:], nfes):
            at = [r for r in mine if r["nfe"] == nfe]
            if at:
                by = sorted((int(c), 100 * v["solve_rate"]) for c, v in at[0]["by_clues"].items())
                ax.plot(*zip(*by), marker="o", color=colors[i], label=label)
    axes[0].set_xscale("log")
    axes[0].set_xticks(nfes, labels=[str(n) for n in nfes])
    axes[0].minorticks_off()
    axes[0].set_xlabel("NFE (denoiser calls per puzzle)")
    axes[0].set_ylabel(f"solve rate (%), {ORDER_NAMES[order]}")
    axes[0].set_title("all puzzles of the split")
    for ax, nfe in zip(axes[1:], nfes):
        ax.set_xlabel("clues")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"NFE {nfe}")
    for ax in axes:
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot(runs: list[dict], path: Path, title: str) -> None:
    """Top row: solve rate against NFE; bottom row: cell accuracy, with chance (1/9) dashed; one
    column per decoding order the runs have."""
    orders = [order for order in ORDER_NAMES if any(r["order"] == order for r in runs)]
    width = max(6.5, 4 * len(orders))
    fig, axes = plt.subplots(2, len(orders), figsize=(width, 6.4), sharex=True, sharey="row",
                             squeeze=False)
    # One colour per trained model, one line style per z strategy, the same in every panel.
    models = list(dict.fromkeys(trained_label(r) for r in runs))
    colour = dict(zip(models, line_colours(len(models))))
    style = {"fixed": "-", "resample": "--", "posterior": ":", "prior": "-."}
    for col, order in enumerate(orders):
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
    fig.suptitle(textwrap.fill(title, int(14 * width)), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", help="JSON files from run.py --task sudoku")
    p.add_argument("--names", nargs="+", default=None,
                   help="one model name per results file, in order (default: from the stored "
                        "configuration: MDM, or VMD with its prior)")
    p.add_argument("--out-dir", default="runs/sudoku")
    args = p.parse_args(argv)
    if args.names is not None and len(args.names) != len(args.results):
        cli.fail(f"--names needs one name per results file: {len(args.names)} names for "
                 f"{len(args.results)} files")
    try:
        runs, commits = load_runs(args.results, args.names)
    except (OSError, json.JSONDecodeError) as err:
        cli.fail(f"cannot read results: {err}")
    if not runs or any("solve_rate" not in r for r in runs):
        cli.fail("these are not Sudoku results (no solve_rate)")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts, plots = [], []
    standard = [r for r in runs if split_of(r) == "test"]
    if standard:
        setting = split_setting(standard[0], "test puzzles", standard)
        plot(standard, out / "solve_rate.png", f"Sudoku test split against NFE ({setting})")
        plots.append("solve_rate.png")
        parts += [
            f"Sudoku, {setting}. Solve rate = the filled grid is valid (rows, columns and boxes "
            "checked by the rules) and keeps every clue; cell accuracy = blanks equal to the unique "
            "solution.",
            table(primary_runs(standard)),
            "VMD solve rate with Top-Prob-Margin for each way of handling the latent while "
            "decoding (fixed: one prior draw per puzzle; resample: a new prior draw every step, "
            "given the cells decoded so far where the prior depends on them; posterior: a draw "
            "from the guide given the current denoised estimate):", z_table(standard)]
    few = [r for r in runs if split_of(r) == "test-clues"]
    if few:
        setting = split_setting(few[0], "few-clue test puzzles", few)
        plot_by_clues(few, out / "solve_rate_by_clues.png", f"Sudoku, {setting}")
        plots.append("solve_rate_by_clues.png")
        parts += [f"Few-clue split ({setting}): solve rate per clue count (puzzles of that count "
                  "in the header), and over all puzzles of the split:", clue_table(few)]
    parts += ["Training budget (one CPU thread on a shared 2-core machine; the wall time "
              "includes the periodic validation; VMD's parameters include its guide network, "
              "which only training uses; its denoiser is MDM's plus a small latent projection):",
              budget(runs),
              f"Source: {', '.join(args.results)} (commit {', '.join(commits)}); "
              f"plot: {', '.join(plots)}."]
    text = "\n\n".join(parts)
    (out / "table.md").write_text(text + "\n")
    print(text)
    return 0


def primary_runs(runs: list[dict]) -> list[dict]:
    """The runs of the main table: z fixed, or the only decoding a trained model was run with."""
    fixed = {trained_label(r) for r in runs if is_fixed(r)}
    return [r for r in runs if is_fixed(r) or trained_label(r) not in fixed]


def split_setting(first: dict, what: str, runs: list[dict]) -> str:
    lo, hi = first["clue_range"]
    # files of several splits (data seeds) or fills: name the range of sizes and every fill
    fills = sorted({r["fill"] for r in runs})
    return (f"{value_range(r['num_puzzles'] for r in runs)} {what}, {lo}-{hi} clues, unique "
            f"solutions; fill{'s' if len(fills) > 1 else ''} {', '.join(fills)}"
            + (", VMD z fixed unless stated" if any(r["model"] == "vmd" for r in runs) else ""))


if __name__ == "__main__":
    sys.exit(main())
