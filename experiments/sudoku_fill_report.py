#!/usr/bin/env python
"""Sampled against argmax tokens: one Sudoku table row per checkpoint and z strategy.

    python experiments/sudoku_fill_report.py results/sudoku_levers/argmax_*.json \
        --sampled results/sudoku_levers/train_*.json results/sudoku/eval_cpu_*.json \
        --out-dir runs/fill

Each ``argmax`` file is a ``run.py --task sudoku --checkpoint CKPT --fill argmax`` evaluation. Its
sampled-token counterpart is the ``--sampled`` file whose rows come from the same trained model
(the same recorded training history up to wall times: the file that trained CKPT, one that
evaluated it, or the run that a retrained CKPT reproduces; the checkpoint may have been renamed)
with the same decoding order and z strategy (``-`` where none does). Writes ``fill.md`` (solve rate on the test split at every NFE, both fills) and
``fill.png`` (the gain of argmax over sampled tokens at each NFE, one point per row).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vmd_pyro import cli  # noqa: E402
from vmd_pyro.experiment import result_runs  # noqa: E402


def option(command: str, name: str) -> str | None:
    """The value of ``name`` in a recorded ``run.py`` command line (None where absent)."""
    words = shlex.split(command)
    return words[words.index(name) + 1] if name in words else None


def test_rates(runs: list[dict], fill: str, z: str | None, order: str) -> dict[int, float]:
    """``{nfe: solve rate}`` of the test-split rows with this fill, z strategy and order."""
    return {r["nfe"]: r["solve_rate"] for r in runs
            if r.get("split", "test") == "test" and r["order"] == order
            and (r.get("fill") or "sample") == fill and r.get("z_strategy") == z}


def trajectory(run: dict) -> list[dict]:
    """The training history without its wall times: what a retrained checkpoint reproduces."""
    return [{k: v for k, v in record.items() if k != "elapsed"} for record in run.get("history", [])]


def same_model(run: dict, other: dict) -> bool:
    """Rows of one trained model: the same training trajectory (the checkpoint stores it)."""
    return run["model"] == other["model"] and trajectory(run) == trajectory(other)


def rows(argmax_paths, sampled_paths) -> list[dict]:
    """One entry per argmax file: its checkpoint, model, z strategy, order, both fills' solve rates
    per NFE (``sample`` empty where no sampled file holds the same model) and the files read."""
    sampled = [(path, result_runs(json.loads(Path(path).read_text()))) for path in sampled_paths]
    found = []
    for path in argmax_paths:
        data = json.loads(Path(path).read_text())
        ckpt = option(data.get("command", ""), "--checkpoint")
        if ckpt is None:
            raise ValueError(f"{path}: not a run.py --checkpoint evaluation")
        first = result_runs(data)[0]
        z, order = first.get("z_strategy"), first["order"]
        match = next(((p, rates) for p, runs in sampled
                      for rates in [test_rates([r for r in runs if same_model(r, first)],
                                               "sample", z, order)] if rates), (None, {}))
        found.append({"checkpoint": ckpt, "model": first["model"], "prior": first.get("prior"),
                      "z_strategy": z, "order": order,
                      "argmax": test_rates(result_runs(data), "argmax", z, order),
                      "sample": match[1], "sampled_file": match[0], "argmax_file": str(path),
                      "git_commit": data.get("git_commit")})
    return found


def markdown(found: list[dict]) -> str:
    nfes = sorted({n for row in found for n in row["argmax"]})
    head = ("| checkpoint | model | z | " + " | ".join(f"sampled NFE {n}" for n in nfes) + " | "
            + " | ".join(f"argmax NFE {n}" for n in nfes) + " |")
    lines = [head, "|" + "---|" * (3 + 2 * len(nfes))]

    def cell(rates, n):
        return f"{100 * rates[n]:.1f}%" if n in rates else "-"

    for row in found:
        model = "MDM" if row["model"] == "mdm" else f"VMD {row['prior']}"
        lines.append(f"| `{row['checkpoint']}` | {model} | {row['z_strategy'] or '-'} | "
                     + " | ".join(cell(row["sample"], n) for n in nfes) + " | "
                     + " | ".join(cell(row["argmax"], n) for n in nfes) + " |")
    return "\n".join(lines) + "\n"


def plot(found: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in found:
        nfes = sorted(set(row["argmax"]) & set(row["sample"]))
        if not nfes:
            continue
        gain = [100 * (row["argmax"][n] - row["sample"][n]) for n in nfes]
        ax.plot(nfes, gain, marker="o", alpha=0.6,
                color="black" if row["model"] == "mdm" else "tab:blue", lw=1)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xscale("log")
    ticks = sorted({n for row in found for n in row["argmax"]})
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.minorticks_off()
    ax.set_xlabel("NFE (denoiser calls)")
    ax.set_ylabel("argmax minus sampled tokens (points)")
    ax.set_title("Sudoku solve rate, test split, Top-Prob-Margin, z per row (fill.md)\n"
                 "MDM black, VMD blue", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("argmax", nargs="+", help="run.py --checkpoint ... --fill argmax JSON files")
    parser.add_argument("--sampled", nargs="*", default=[],
                        help="JSON files of the same checkpoints with sampled tokens")
    parser.add_argument("--out-dir", required=True, help="where fill.md and fill.png go")
    args = parser.parse_args(argv)
    found = cli.read_result_files(parser, [*args.argmax, *args.sampled],
                                  lambda: rows(args.argmax, args.sampled))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fill.md").write_text(markdown(found))
    (out / "fill.json").write_text(json.dumps(found, indent=1))
    plot(found, out / "fill.png")
    print(f"wrote {out / 'fill.md'}, fill.json and fill.png ({len(found)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
