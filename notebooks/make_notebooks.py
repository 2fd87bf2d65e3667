#!/usr/bin/env python
"""Writes the notebooks of this folder from the cells below, so that their source lives in
reviewable Python; with ``--execute`` it also runs them top to bottom (full settings, one thread)
and saves them with their outputs. They go to ``--out-dir`` (default ``runs/notebooks``, outside
the tracked tree); the committed notebooks were made with

    python notebooks/make_notebooks.py --execute --out-dir notebooks

(one of them alone with ``--only NAME``; a notebook runs in this folder wherever it is saved, so
its relative paths are the same).

With ``VMD_SMOKE=1`` the notebooks train tiny models for a few dozen steps, and the Sudoku one
decodes 6 puzzles with the committed models (the test suite runs them that way,
``tests/test_notebooks.py``)."""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch

import models  # noqa: F401 (registers the priors, guides and Pyro models: vmd_pyro.registry)
from vmd_pyro import diagnostics, latent_usage, metrics
from vmd_pyro.datasets import synthetic
from vmd_pyro.experiment import markdown_table
from vmd_pyro.networks import NetConfig
from vmd_pyro.program import ProgramConfig, build_program
from vmd_pyro.training import TrainConfig, train

warnings.filterwarnings("ignore", category=FutureWarning)  # arviz announcing its 1.0 refactor
SMOKE = os.environ.get("VMD_SMOKE") == "1"  # tiny training: the test suite runs the notebook so
torch.set_num_threads(1)
torch.manual_seed(0)
STEPS = 40 if SMOKE else 2500
BATCH = 64 if SMOKE else 256
HIDDEN = 32 if SMOKE else 128
LATENT_DIM = 4
task = synthetic.make_synthetic("quad-d1")
print(f"smoke run: {SMOKE}; {STEPS} training steps per model")


def train_program(model="vmd", prior="gaussian"):
    """A fresh program on quad-d1 (build_program clears Pyro's parameter store) trained for STEPS."""
    net = NetConfig(vocab_size=task.vocab_size, seq_len=task.seq_len, hidden=HIDDEN)
    program = build_program(ProgramConfig(net=net, model=model, prior=prior,
                                          latent_dim=LATENT_DIM, components=10))
    start = time.perf_counter()
    history = train(program, task.sample, TrainConfig(steps=STEPS, batch_size=BATCH,
                                                      anneal_steps=STEPS // 5,
                                                      eval_every=0, progress=False,
                                                      validate=False))
    print(f"{model:>3} {prior if model == 'vmd' else '':<11}: train loss "
          f"{history[-1]['train_loss']:.3f} nats/sequence, {time.perf_counter() - start:.0f} s")
    return program'''


def latent_priors():
    return [
        new_markdown_cell(
            "# Latent priors of VMD, side by side\n\n"
            "Variational masked diffusion adds a latent `z` per sequence so that tokens decoded in "
            "the same step can agree. This notebook trains an MDM (no latent) and VMD with each "
            "registered prior (`gaussian`, `mog`, `discrete`, `conditional`) on the 4-token set "
            "`quad-d1` = {(k, k+1, k+2, k+3) mod 10}, then compares\n\n"
            "1. one-step (NFE = 1) and two-step accuracy and the exact one-step KL(p_data || p_model),\n"
            "2. what the latent space of each prior looks like (the guide's means, coloured by data "
            "sequence),\n"
            "3. samples: what the decoder makes of prior draws of `z`.\n\n"
            "Set `VMD_SMOKE=1` for a tiny run (seconds; what the tests do)."),
        new_code_cell(SETUP),
        new_markdown_cell("## Train one model per prior"),
        new_code_cell(
            'PRIORS = ["gaussian", "mog", "discrete", "conditional"]\n'
            'programs = {"mdm": train_program(model="mdm")}\n'
            'for prior in PRIORS:\n'
            '    programs[prior] = train_program(prior=prior)'),
        new_markdown_cell(
            "## One-step accuracy and KL\n\n"
            "Accuracy: fraction of generated sequences in the data support. The one-step KL is "
            "exact over the 10^4 sequences; the mixture over `z` is exact for the discrete prior "
            "and a Monte Carlo average over prior draws otherwise. Any model that decodes the four "
            "tokens independently in one step has KL >= the factorisation limit (total "
            "correlation) printed below."),
        new_code_cell(
            'from vmd_pyro.sampling import all_masked, generate\n\n'
            'NUM_SAMPLES = 2000 if SMOKE else 20000\n'
            'generator = torch.Generator().manual_seed(1)\n'
            'rows = []\n'
            'for name, program in programs.items():\n'
            '    row = {"model": name}\n'
            '    for nfe in (1, 2):\n'
            '        x, _ = generate(program, all_masked(NUM_SAMPLES, task.seq_len, program.mask_id),\n'
            '                        nfe=nfe, generator=generator)\n'
            '        row[f"accuracy NFE {nfe}"] = metrics.accuracy(task, x)\n'
            '    probs = metrics.one_step_model_probs(program, task, z_samples=200 if SMOKE else 2000,\n'
            '                                         generator=generator)\n'
            '    row["KL NFE 1 (nats)"] = metrics.kl_from_probs(task.dense_probs(), probs)\n'
            '    rows.append(row)\n'
            'print(markdown_table(rows, list(rows[0])))\n'
            'print(f"factorisation limit: {task.factorisation_limit():.3f} nats")'),
        new_markdown_cell(
            "## Latent spaces\n\n"
            "For each prior, `E_q[z | x0, xt]` for 300 pairs per mask rate, coloured by the data "
            "sequence. Continuous priors: projection on the two leading principal axes of the "
            "means. Discrete prior: the mean of `q(z = k)` per data sequence (a permutation "
            "matrix when each value of `z` names one sequence). At low mask rates little is "
            "hidden and the guide stays near the prior; with everything masked, `z` must carry "
            "the whole sequence."),
        new_code_cell(
            'from vmd_pyro.diagnostic_plots import plot_latent_space\n\n'
            'RATES = (0.25, 0.5, 1.0)\n'
            'pairs, items = latent_usage.held_out_pairs(task, RATES, 60 if SMOKE else 300,\n'
            '                                            task.vocab_size, torch.Generator().manual_seed(2))\n'
            'fig, axes = plt.subplots(len(PRIORS), len(RATES), figsize=(10, 2.9 * len(PRIORS)))\n'
            'for row, prior in zip(axes, PRIORS):\n'
            '    with torch.no_grad():\n'
            '        plot_latent_space(programs[prior], pairs, items, axes=row)\n'
            '    row[0].set_ylabel(f"{prior}\\n" + row[0].get_ylabel())\n'
            'fig.tight_layout()'),
        new_markdown_cell(
            "## Samples\n\n"
            "Five prior draws of `z` per model, each decoded in one step from the all-mask "
            "sequence by taking the most likely token at every position: if `z` has learned to "
            "name a data sequence, each row is a member of the data set (marked with *)."),
        new_code_cell(
            'xt = all_masked(1, task.seq_len, task.vocab_size)\n'
            'for prior in PRIORS:\n'
            '    program = programs[prior]\n'
            '    with torch.no_grad():\n'
            '        z = program.prior_dist(xt).sample((5,)).squeeze(1)\n'
            '        decoded = program.logits(xt.expand(5, -1), z).argmax(-1)\n'
            '    marks = task.in_support(decoded)\n'
            '    print(f"{prior:<11}", "  ".join(" ".join(map(str, s)) + ("*" if m else " ")\n'
            '                                     for s, m in zip(decoded.tolist(), marks.tolist())))'),
    ]


def posterior_diagnostics():
    return [
        new_markdown_cell(
            "# Posterior diagnostics of the VMD guide\n\n"
            "The guide `q(z | x0, xt)` is trained to approximate the posterior "
            "`p(z | x0, xt) ∝ p(z | xt) prod_{i masked} p(x0^i | xt, z)`. Here we check how close "
            "it gets, with `vmd_pyro.diagnostics`:\n\n"
            "* draws of `z` from the guide for held-out pairs at fixed mask rates, as ArviZ "
            "`InferenceData` (dims `example`, `latent`; coordinates `item`, `mask_rate`);\n"
            "* a reference posterior: NUTS (chains in a loop; R-hat, ESS) for a Gaussian prior, "
            "exact enumeration for a discrete one;\n"
            "* PSIS k-hat of the guide as importance proposal, the energy distance to the "
            "reference, KL to the prior per latent coordinate, active units and I(z; x), against "
            "the mask rate.\n\n"
            "`experiments/diagnose.py` runs the same from the command line."),
        new_code_cell(SETUP + '\n\nimport arviz as az\n\n'
                      'from vmd_pyro import diagnostic_plots as plots\n\n'
                      'CONFIG = diagnostics.DiagnosticsConfig(\n'
                      '    mask_rates=(0.5, 1.0) if SMOKE else (0.25, 0.5, 0.75, 1.0),\n'
                      '    examples_per_rate=2 if SMOKE else 10,\n'
                      '    population_per_rate=50 if SMOKE else 500,\n'
                      '    guide_draws=200 if SMOKE else 1000,\n'
                      '    chains=2 if SMOKE else 4, warmup=30 if SMOKE else 300,\n'
                      '    samples=60 if SMOKE else 500)\n'
                      'CONFIG'),
        new_markdown_cell("## A Gaussian prior: guide against NUTS"),
        new_code_cell(
            'program = train_program(prior="gaussian")\n'
            'start = time.perf_counter()\n'
            'diagnosis = diagnostics.diagnose(program, task, CONFIG)\n'
            'print(f"diagnostics in {time.perf_counter() - start:.0f} s")\n'
            'diagnosis.idata'),
        new_markdown_cell(
            "The reference draws (group `reference_posterior`) first: did NUTS converge? "
            "R-hat near 1 and a bulk ESS in the hundreds make it a usable yardstick."),
        new_code_cell(
            'reference = az.InferenceData(posterior=diagnosis.idata.reference_posterior)\n'
            'print({k: v for k, v in diagnosis.report["reference"].items() if not k.endswith("example")})\n'
            'az.summary(reference, var_names=["z"], kind="diagnostics").head(8)'),
        new_markdown_cell(
            "PSIS k-hat per held-out example: below 0.5 the guide is a good importance proposal "
            "for the posterior, above 0.7 importance sampling with it is unreliable."),
        new_code_cell(
            'print(diagnosis.report["psis_khat_summary"])\n'
            'plots.plot_khat(diagnosis);'),
        new_markdown_cell(
            "Guide against reference for one example per mask rate (the two latent coordinates "
            "with the largest KL to the prior), and the energy distance per example next to its "
            "noise floor (first against second half of the reference chains)."),
        new_code_cell(
            'plots.plot_guide_vs_reference(diagnosis, program);\n'
            'gvr = diagnosis.report["guide_vs_reference"]\n'
            'rows = [{"example": b, "t": float(diagnosis.batch.t[b]), "energy": gvr["energy_distance"][b],\n'
            '         "floor": gvr["energy_floor"][b], "KL gap": gvr["kl_gap"][b]}\n'
            '        for b in range(len(diagnosis.batch))]\n'
            'print(markdown_table(rows, list(rows[0])))'),
        new_markdown_cell(
            "How the latent is used as the mask rate grows: KL to the prior per coordinate, "
            "I(z; x) under the aggregate posterior, active units (Burda et al.: "
            "Cov_x(E_q[z_d]) > 0.01) and the aggregate posterior itself."),
        new_code_cell(
            'plots.plot_kl_vs_rate(diagnosis)\n'
            'plots.plot_latent_space(program, diagnosis.population, diagnosis.population_items);'),
        new_markdown_cell(
            "## A discrete prior: the exact posterior by enumeration\n\n"
            "With `K` values of `z` the posterior is a table; KL(q || p) and the total variation "
            "are exact."),
        new_code_cell(
            'discrete = train_program(prior="discrete")\n'
            'exact = diagnostics.diagnose(discrete, task, CONFIG)\n'
            'gvr = exact.report["guide_vs_reference"]\n'
            'print(f"KL(q || p): mean {np.mean(gvr[\'kl_exact\']):.4f}, max {np.max(gvr[\'kl_exact\']):.4f} nats; "\n'
            '      f"total variation max {np.max(gvr[\'total_variation\']):.4f}")\n'
            'print(f"active values of z: {exact.report[\'active_units\']} of {exact.report[\'latent_usage\'][\'units\']}")\n'
            'plots.plot_guide_vs_reference(exact, discrete)\n'
            'plots.plot_latent_space(discrete, exact.population, exact.population_items);'),
    ]

GUESSES_SETUP = '''\
import os
import time

import matplotlib.pyplot as plt
import torch

import models  # noqa: F401 (registers the priors, guides and Pyro models: vmd_pyro.registry)
from vmd_pyro.checkpoint import load_program
from vmd_pyro.datasets import sudoku
from vmd_pyro.experiment import markdown_table
from vmd_pyro.sampling import counting_passes, generate, pseudo_log_likelihood

SMOKE = os.environ.get("VMD_SMOKE") == "1"  # a few puzzles: the test suite runs the notebook so
torch.set_num_threads(1)
RESULTS = "../results/sudoku_hard/paths/"
vmd, _ = load_program(RESULTS + "ft-exact16-paths-b16.pt")   # seed 0's `paths` VMD, K = 16
mdm, _ = load_program(RESULTS + "ft3-mdm-steps-b64.pt")      # its MDM control of equal time
PUZZLES = 6 if SMOKE else 200
puzzles, solutions = sudoku.read_puzzles("../results/sudoku_hard/select/test_data0.txt")
puzzles, solutions = sudoku.to_tokens(puzzles[:PUZZLES]), sudoku.to_tokens(solutions[:PUZZLES])
DECODE = dict(nfe=5, order="top-prob-margin")
print(f"smoke run: {SMOKE}; the first {PUZZLES} puzzles of the 30-40-clue test split")'''


def guesses_and_checks():
    return [
        new_markdown_cell(
            "# Guesses and checks: a discrete z decoding Sudoku\n\n"
            "A VMD whose `z` takes `K` values can decode a puzzle once per value, holding it "
            "through all calls, and keep the grid that its own denoiser scores highest when "
            "each filled cell is masked again and scored given the rest (`--z-strategy "
            "enumerate --select pseudo-likelihood`). This notebook loads the committed CPU "
            "models of `results/sudoku_hard/paths/` (no training) and shows\n\n"
            "1. the 16 guesses for one puzzle: how probable each value of `z` is, which guesses "
            "coincide, which are valid, and how the check ranks them;\n"
            "2. what each decoder costs in denoiser passes per puzzle (counted by "
            "`sampling.counting_passes`) against what it solves, beside MDM's argmax and sampled "
            "grids checked the same way;\n"
            "3. decoders that try their candidates one at a time and stop once the check is "
            "confident.\n\n"
            "It decodes the first 200 test puzzles (`VMD_SMOKE=1`: 6), so its rates are rough; the "
            "1,000-puzzle figures are in `results/sudoku_hard/paths/README.md`."),
        new_code_cell(GUESSES_SETUP),
        new_markdown_cell(
            "## One puzzle, sixteen guesses\n\n"
            "Every value of `z`, NFE 5, argmax tokens. `grid` numbers the different grids: values "
            "of `z` that share a number decoded the same grid. The last column is the selection "
            "score, the pseudo-likelihood check plus `log p(z)`; the first row is the grid kept."),
        new_code_cell(
            'K = vmd.cfg.components\n'
            'offered = []\n'
            'with torch.no_grad():\n'
            '    generate(vmd, puzzles, fill="argmax", z_strategy="enumerate", select="pseudo-likelihood",\n'
            '             on_candidates=offered.append, generator=torch.Generator().manual_seed(0), **DECODE)\n'
            'guesses = offered[0]                                   # (puzzles, K, 81)\n'
            'valid = sudoku.valid_candidates(puzzles, guesses)     # (puzzles, K)\n'
            'mixed = (valid.sum(-1) > 0) & (valid.sum(-1) < K)     # some guesses right, some wrong\n'
            'row = int(mixed.double().argmax())\n'
            'with torch.no_grad():\n'
            '    log_prior = vmd.prior_dist(puzzles[row:row + 1]).logits.log_softmax(-1)[0]\n'
            '    check = pseudo_log_likelihood(vmd, puzzles[row].expand(K, -1), guesses[row], torch.arange(K),\n'
            '                                  generator=torch.Generator().manual_seed(0))\n'
            'grid = {}\n'
            'rows = [{"z": k, "p(z)": float(log_prior[k].exp()),\n'
            '         "grid": grid.setdefault(tuple(guesses[row, k].tolist()), len(grid)),\n'
            '         "valid": bool(valid[row, k]), "wrong cells": int((guesses[row, k] != solutions[row]).sum()),\n'
            '         "check + log p(z)": float(check[k] + log_prior[k])} for k in range(K)]\n'
            'print(f"puzzle {row}: {int((puzzles[row] != sudoku.MASK_ID).sum())} clues, {len(grid)} different "\n'
            '      f"grids, {int(valid[row].sum())} of {K} guesses valid")\n'
            'print(markdown_table(sorted(rows, key=lambda r: -r["check + log p(z)"]), list(rows[0])))\n'
            'print(f"over {PUZZLES} puzzles: {valid.any(-1).double().mean():.1%} have a valid guess; "\n'
            '      f"{sum(len(g.unique(dim=0)) for g in guesses) / PUZZLES:.1f} different grids per puzzle")'),
        new_markdown_cell(
            "## What each decoder spends\n\n"
            "The VMD once at its prior's most probable `z`, on its 4 most probable values, and on "
            "every value; MDM once by argmax and with 4 and 16 sampled grids. Several decodes are "
            "checked by pseudo-likelihood, each different grid once (`check_distinct`: for the VMD "
            "under the most probable value of `z` that decoded it)."),
        new_code_cell(
            'CHECK = dict(select="pseudo-likelihood", check_distinct=True)\n'
            'DECODERS = {\n'
            '    "VMD: prior\'s mode": (vmd, dict(fill="argmax", z_strategy="mode")),\n'
            '    "VMD: 4 most probable z": (vmd, dict(fill="argmax", z_strategy="enumerate", z_values=4, **CHECK)),\n'
            '    "VMD: every z": (vmd, dict(fill="argmax", z_strategy="enumerate", **CHECK)),\n'
            '    "MDM: argmax": (mdm, dict(fill="argmax")),\n'
            '    "MDM: 4 sampled grids": (mdm, dict(fill="sample", candidates=4, **CHECK)),\n'
            '    "MDM: 16 sampled grids": (mdm, dict(fill="sample", candidates=16, **CHECK)),\n'
            '}\n'
            'rows = []\n'
            'for name, (program, options) in DECODERS.items():\n'
            '    start = time.perf_counter()\n'
            '    with counting_passes(program) as passes, torch.no_grad():\n'
            '        filled = sudoku.fill_puzzles(program, puzzles, generator=torch.Generator().manual_seed(0),\n'
            '                                     **DECODE, **options)\n'
            '    rows.append({"decoder": name, "passes per puzzle": passes["denoiser"] / PUZZLES,\n'
            '                 "solve rate": sudoku.score(puzzles, filled)["solve_rate"],\n'
            '                 "seconds": time.perf_counter() - start})\n'
            'print(markdown_table(rows, list(rows[0])))\n'
            'fig, ax = plt.subplots(figsize=(6, 3.5))\n'
            'for model in ("VMD", "MDM"):\n'
            '    mine = [r for r in rows if r["decoder"].startswith(model)]\n'
            '    ax.plot([r["passes per puzzle"] for r in mine], [100 * r["solve rate"] for r in mine], "o-",\n'
            '            label=model)\n'
            'ax.set(xscale="log", xlabel="denoiser passes per puzzle (measured)", ylabel="solve rate (%)",\n'
            '       title=f"NFE 5, first {PUZZLES} test puzzles")\n'
            'ax.legend();'),
        new_markdown_cell(
            "## Stopping once the check is confident\n\n"
            "A decoder need not try every candidate. Trying them in order (the VMD's values of `z` "
            "from the most probable; MDM's sampled grids) and stopping at the first whose score "
            "reaches a threshold, or after N, an easy puzzle costs one decode and its check. "
            "`sampling.stop_when_confident` computes what such a decoder keeps and spends from the "
            "candidates and their scores; `experiments/sudoku_stopping.py` traces each decoder's "
            "best solve rate against its mean passes over thresholds and caps. The curves here are "
            "read off the puzzles they are measured on (a best case); `results/sudoku_hard/"
            "stopping/README.md` sets the threshold on other puzzles."),
        new_code_cell(
            'from vmd_pyro.experiment import load_script\n'
            'stopping = load_script("sudoku_stopping")\n'
            'args = stopping.build_parser().parse_args(["--out-dir", "unused", "--thresholds", "40"])\n'
            'ORDERED = {"VMD: values of z, most probable first": (vmd, dict(\n'
            '               fill="argmax", z_strategy="enumerate", z_values=vmd.cfg.components)),\n'
            '           "MDM: 16 sampled grids": (mdm, dict(fill="sample", candidates=16))}\n'
            'fronts = {}\n'
            'for name, (program, options) in ORDERED.items():\n'
            '    grids, scores = [], []\n'
            '    with torch.no_grad():\n'
            '        generate(program, puzzles, select="pseudo-likelihood", check_distinct=True,\n'
            '                 on_candidates=grids.append, on_scores=scores.append,\n'
            '                 generator=torch.Generator().manual_seed(0), **DECODE, **options)\n'
            '    valid = sudoku.valid_candidates(puzzles, grids[0])\n'
            '    fronts[name] = stopping.curve(stopping.settings(\n'
            '        scores[0].double(), stopping.first_copies(grids[0]), valid, args))\n'
            'rows = [{"decoder": name, **{f"at most {b} passes": max(\n'
            '            [p["solve_rate"] for p in front if p["passes"] <= b], default=float("nan"))\n'
            '          for b in (10, 15, 20, 30)}} for name, front in fronts.items()]\n'
            'print(markdown_table(rows, list(rows[0])))\n'
            'fig, ax = plt.subplots(figsize=(6, 3.5))\n'
            'for name, front in fronts.items():\n'
            '    ax.plot([p["passes"] for p in front], [100 * p["solve_rate"] for p in front], ".-", label=name)\n'
            'ax.set(xscale="log", xlabel="mean denoiser passes per puzzle", ylabel="solve rate (%)",\n'
            '       title=f"best threshold and cap at each cost, first {PUZZLES} test puzzles")\n'
            'ax.legend();'),
    ]


def write(path: Path, cells):
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    nbformat.write(nb, path)
    print(f"wrote {path}")


def execute(path: Path, timeout=1800):
    """Run a written notebook in this folder and save it with its outputs."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, path)
    print(f"executed {path}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--execute", action="store_true", help="run them and keep the outputs")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/notebooks"),
                        help="where the notebooks go (default runs/notebooks)")
    notebooks = {"01_latent_priors.ipynb": latent_priors,
                 "02_posterior_diagnostics.ipynb": posterior_diagnostics,
                 "03_guesses_and_checks.ipynb": guesses_and_checks}
    parser.add_argument("--only", nargs="+", choices=list(notebooks), default=list(notebooks),
                        metavar="NAME", help="write (and run) only these notebooks (default: all; "
                                             f"choose from {', '.join(notebooks)})")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.only:
        cells = notebooks[name]()
        write(args.out_dir / name, cells)
        if args.execute:
            execute(args.out_dir / name)
