"""Print this folder's table (the published-scale config on one H200, session 26) from its JSON
files and draw the full MDM's learning curve. Run from the repository root:
    python results/sudoku_published_scale/report.py [--plot DIR]"""
import argparse
import json
from pathlib import Path

HERE = Path(__file__).parent
STAGES = [  # file, what it is
    ("train_mdm", "1. MDM from scratch, continuous-time objective"),
    ("train_vmd", "2. VMD (K=16, FiLM, exact posterior) on B_5 steps, from 1"),
    ("train_vmd-paths", "3. VMD on B_5 paths, from 2"),
    ("train_mdm-ft", "4. MDM control on B_5 steps, from 1"),
    ("train_mdm2", "5. MDM 1 trained on, continuous-time objective"),
]


def load(name):
    return json.loads((HERE / f"{name}.json").read_text())


def updates(record):
    return record["history"][-1]["step"]


def learning_curve():
    """(seconds of training, validation solve rate at NFE 10) of the MDM over runs 1 and 5."""
    first, second = load("train_mdm"), load("train_mdm2")
    offset = first["train_seconds"]
    return ([(h["elapsed"], h["val_solve_rate_nfe10_margin"]) for h in first["history"]]
            + [(offset + h["elapsed"], h["val_solve_rate_nfe10_margin"]) for h in second["history"]])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, help="also draw learning_curve.png into this folder")
    args = parser.parse_args()
    print("| stage | batch | training s | updates | s per update (evaluations included) | test solve, NFE 5 argmax |")
    print("|---|---|---|---|---|---|")
    for name, what in STAGES:
        r = load(name)
        n = updates(r)
        print(f"| {what} | {r['train_config']['batch_size']} | {r['train_seconds']:.0f} | {n} | "
              f"{r['train_seconds'] / n:.3f} | {100 * r['solve_rate']:.1f}% |")
    print()
    print("| MDM after runs 1 and 5 (one argmax decode, Top-Prob-Margin, 1,000 test puzzles) "
          "| solve rate | cell accuracy | decode s |")
    print("|---|---|---|---|")
    for nfe in (5, 10, 50):
        r = load(f"test_argmax2_nfe{nfe}")
        print(f"| NFE {nfe} | {100 * r['solve_rate']:.1f}% | {100 * r['cell_accuracy']:.1f}% | "
              f"{r['seconds']:.1f} |")
    print()
    print("MDM validation solve rate (NFE 10) against seconds of training:",
          ", ".join(f"{s:.0f} s {100 * v:.1f}%" for s, v in learning_curve()))
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        seconds, solved = zip(*learning_curve())
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(seconds, [100 * v for v in solved], "o-")
        stop = load("train_mdm")["train_seconds"]
        ax.axvline(stop, ls=":", c="grey")
        ax.text(stop + 5, 50, "the VMD stages\nstarted from here", fontsize=8, color="grey")
        ax.set(xlabel="seconds of training on one H200 (batch 256)",
               ylabel="validation solve rate, NFE 10 (%)",
               title="Published-scale MDM (6.0M parameters)")
        fig.tight_layout()
        args.plot.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot / "learning_curve.png", dpi=120)
        print(f"wrote {args.plot / 'learning_curve.png'}")


if __name__ == "__main__":
    main()
