#!/usr/bin/env python
"""What a latent could win on Sudoku, and what its prior loses: one table and one plot from
``sudoku.py solve --json`` and ``sudoku.py latent --json`` files.

    python experiments/sudoku_oracle_report.py --out-dir runs/oracle_report \\
        --row "K 4, 30-40" fixed_nfe5.json oracle_nfe5.json control_nfe5.json latent.json ...

Each ``--row`` names one VMD: its solve file with a z strategy that a decoder can run (``fixed``),
its solve file with ``--z-strategy oracle`` (z redrawn every call from its posterior given the
solution: a ceiling on what any prior could make of this denoiser), the solve file of its MDM
control on the same puzzles, NFE, order and fill, and its ``latent`` file (I(z; x) with every blank
masked is the x axis). Writes ``table.md`` and ``oracle.png``: the gap to the control with z from
the prior and with z from the oracle, against how much the latent carries.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vmd_pyro import cli  # noqa: E402

SOLVE_KEYS = ("fixed", "oracle", "control")


def load_row(name: str, paths: list[str]) -> dict:
    """One VMD's solve rates (in %) and I(z; x) with every blank masked, checked to compare like
    with like: the same puzzles, NFE, order and fill in its three solve files."""
    solves = {key: json.loads(Path(p).read_text()) for key, p in zip(SOLVE_KEYS, paths)}
    latent = json.loads(Path(paths[3]).read_text())
    for key, result in solves.items():
        if "solve_rate" not in result or "nfe" not in result:
            raise ValueError(f"{name}: the {key} file is not a `sudoku.py solve --json` file")
    if solves["oracle"]["z_strategy"] != "oracle":
        raise ValueError(f"{name}: the second file must be a --z-strategy oracle run")
    for field in ("puzzles", "nfe", "order", "fill", "num_puzzles"):
        values = {Path(str(r[field])).name for r in solves.values()}
        if len(values) != 1:
            raise ValueError(f"{name}: the solve files differ in {field}: {sorted(values)}")
    full = [r for r in latent.get("per_mask_rate", []) if r["mask_rate"] == 1.0]
    if not full:
        raise ValueError(f"{name}: the latent file has no mask rate 1.0")
    return {"name": name, "nfe": solves["fixed"]["nfe"], "puzzles": solves["fixed"]["num_puzzles"],
            "puzzle_file": Path(solves["fixed"]["puzzles"]).name,
            "z": solves["fixed"]["z_strategy"], "information": full[0]["mutual_information"],
            **{key: 100 * r["solve_rate"] for key, r in solves.items()},
            "files": [Path(p).name for p in paths]}


def table(rows: list[dict]) -> str:
    lines = ["| # | VMD | puzzles | I(z; x), nats | NFE | z from the prior | z from the oracle | MDM "
             "control | prior - control | oracle - control |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rows, 1):
        lines.append(f"| {i} | {r['name']} | {r['puzzles']} ({r['puzzle_file']}) | "
                     f"{r['information']:.2f} | {r['nfe']} | {r['fixed']:.1f}% ({r['z']}) | "
                     f"{r['oracle']:.1f}% | {r['control']:.1f}% | "
                     f"{r['fixed'] - r['control']:+.1f} | {r['oracle'] - r['control']:+.1f} |")
    lines += ["", "Files (fixed, oracle, control, latent): " + "; ".join(
        f"{i}: " + ", ".join(r["files"]) for i, r in enumerate(rows, 1)) + "; plot: oracle.png "
        "(points numbered as the rows)."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    markers = dict(zip(sorted({r["puzzle_file"] for r in rows}), "os^Dv"))
    for key, label, colour in (("oracle", "z from its posterior given the solution (oracle)", "C0"),
                               ("fixed", "z drawn from the prior", "C1")):
        ax.scatter([], [], color=colour, label=label)
        for i, r in enumerate(rows, 1):
            point = (r["information"], r[key] - r["control"])
            ax.scatter(*point, color=colour, marker=markers[r["puzzle_file"]])
            ax.annotate(str(i), point, fontsize=7, xytext=(3, 2), textcoords="offset points")
    for puzzles, marker in markers.items():
        ax.scatter([], [], color="grey", marker=marker, label=f"puzzles: {puzzles}")
    ax.axhline(0, color="grey", lw=0.8)
    ax.axhline(10, color="grey", lw=0.8, ls="--", label="the issue's target (+10 points)")
    nfes = sorted({r["nfe"] for r in rows})
    ax.set_xlabel("I(z; x) with every blank masked (nats)")
    ax.set_ylabel("solve rate minus the MDM control's (points)")
    ax.set_title(f"What z could win (oracle) and what drawing it wins, NFE "
                 f"{', '.join(map(str, nfes))} (table.md)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--row", nargs=5, action="append", required=True,
                        metavar=("NAME", "FIXED", "ORACLE", "CONTROL", "LATENT"),
                        help="one VMD: a name, its solve files with z from the prior and from the "
                             "oracle, its MDM control's solve file, its latent file")
    parser.add_argument("--out-dir", required=True, help="folder for table.md and oracle.png")
    args = parser.parse_args(argv)
    rows = cli.read_result_files(parser, [p for row in args.row for p in row[1:]],
                                 lambda: [load_row(row[0], row[1:]) for row in args.row])
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table(rows))
    plot(rows, out / "oracle.png")
    print(f"wrote {out / 'table.md'} and {out / 'oracle.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
