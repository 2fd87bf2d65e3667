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
            "z": solves["fixed"]["z_strategy"], "information": full[0]["mutual_information"],
            **{key: 100 * r["solve_rate"] for key, r in solves.items()},
            "files": [Path(p).name for p in paths]}


def table(rows: list[dict]) -> str:
    lines = ["| VMD | I(z; x), nats | NFE | puzzles | z from the prior | z from the oracle | MDM "
             "control | prior - control | oracle - control |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['information']:.2f} | {r['nfe']} | {r['puzzles']} | "
                     f"{r['fixed']:.1f}% ({r['z']}) | {r['oracle']:.1f}% | {r['control']:.1f}% | "
                     f"{r['fixed'] - r['control']:+.1f} | {r['oracle'] - r['control']:+.1f} |")
    lines += ["", "Files (fixed, oracle, control, latent): " + "; ".join(
        f"{r['name']}: " + ", ".join(r["files"]) for r in rows) + "; plot: oracle.png."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for key, label, marker in (("oracle", "z from its posterior given the solution (oracle)", "^"),
                               ("fixed", "z drawn from the prior", "o")):
        ax.scatter([r["information"] for r in rows], [r[key] - r["control"] for r in rows],
                   marker=marker, label=label)
    for r in rows:
        ax.annotate(r["name"], (r["information"], r["oracle"] - r["control"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.axhline(0, color="grey", lw=0.8)
    ax.axhline(10, color="grey", lw=0.8, ls="--", label="the issue's target (+10 points)")
    nfes = sorted({r["nfe"] for r in rows})
    ax.set_xlabel("I(z; x) with every blank masked (nats)")
    ax.set_ylabel(f"solve rate minus the MDM control's (points), NFE {', '.join(map(str, nfes))}")
    ax.set_title("What z could win (oracle) and what a decoder that draws it wins", fontsize=10)
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
