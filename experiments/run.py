#!/usr/bin/env python
"""Train and evaluate MDM / VMD models: the entry point of vmd-pyro.

With no arguments it runs a small default comparison (MDM against VMD with a Gaussian prior on the
4-token set quad-d1, decoded in 1 and 2 steps), the two models side by side in two processes
(``--model-processes``) on one torch thread each (the thread count follows the network's size and
the machine's load unless ``--threads`` is given), and writes its JSON to
``runs/<time>-<data set>-<models>/result.json`` unless ``--out`` is given
(timings under load: ``results/bench/default_job_under_load.json``):

    python experiments/run.py
    python experiments/run.py --prior mog
    python experiments/run.py --dataset pair-p --p 0.7 --model vmd --nfe 1 --out runs/x.json
    python experiments/run.py --task sudoku --steps 4000 --save runs/sudoku/model.pt
    python experiments/run.py --dataset quad-d1 --arch transformer --block-size 2 --nfe 2 4
    python experiments/run.py --task text --arch transformer --block-size 4 --model mdm vmd

Block diffusion (``--block-size L'``): autoregressive over blocks, masked diffusion inside a block,
one latent per block; ``--nfe`` counts network calls for the whole sequence, split evenly over the
blocks (at least one per block).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import models  # noqa: F401 (registers the priors, guides and Pyro models: vmd_pyro.registry)
from vmd_pyro import bounds, cli, distributed
from vmd_pyro.experiment import (choose_threads, markdown_table, provenance, resolve_device,
                                 training_step_flops, write_json)
from vmd_pyro.registry import PRIORS
from vmd_pyro.sampling import EVERY_Z, FILLS, ORDERS, Z_STRATEGIES
from vmd_pyro.tasks import TASKS
from vmd_pyro.tasks.runner import (add_program_arguments, check_checkpoints, check_program_args,
                                   model_processes, run_models)


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="synthetic", choices=sorted(TASKS),
                   help="which experiment family (default synthetic)")
    p.add_argument("--model", nargs="+", default=["mdm", "vmd"], choices=["mdm", "vmd"],
                   help="one or more models to train and compare (default: mdm vmd)")
    for task in TASKS.values():
        task.add_arguments(p)
    add_program_arguments(p)

    g = p.add_argument_group("sampling and evaluation")
    g.add_argument("--nfe", nargs="+", type=int, default=None,
                   help="network calls per generated sequence; several values allowed (default: "
                        "1 2 synthetic; 5 10 20 50 sudoku; the sequence length and a quarter of "
                        "it for text)")
    g.add_argument("--order", nargs="+", default=None, choices=ORDERS,
                   help="which positions to reveal; sudoku accepts several "
                        "(default random; sudoku: all three)")
    g.add_argument("--fill", nargs="+", default=None, choices=FILLS,
                   help="how a revealed token is chosen given z: sample (float64 Gumbel) and/or "
                        "argmax; with a latent, argmax still gives diverse sequences "
                        "(default: both for synthetic, sample for sudoku)")
    g.add_argument("--z-strategy", default="fixed", choices=Z_STRATEGIES,
                   help=f"latent per step ({cli.Z_STRATEGY_HELP}) (default fixed)")
    cli.add_decoding_arguments(g)
    g.add_argument("--num-samples", type=int, default=None,
                   help="generated sequences per evaluation (default 20000 synthetic, 64 text)")
    g.add_argument("--z-samples", type=int, default=2000,
                   help="prior draws for the exact-over-sequences one-step KL (default 2000)")
    g.add_argument("--iw-samples", type=int, default=16,
                   help="K for the importance-weighted forms (default 16; 0 = skip the one of the "
                        "training objective)")
    g.add_argument("--bound-nfe", nargs="+", type=int, default=None, metavar="T",
                   help="NFEs at which to compute the few-step likelihood bound B_T (nll_bound_bits, "
                        "iw_nll_bound_bits: bits per token / blank / character; random order, "
                        "sampled tokens) (default: the evaluated --nfe values)")
    g.add_argument("--bound-z", nargs="+", default=["resample"], choices=bounds.BOUND_Z_STRATEGIES,
                   help="VMD generator the bound is for: resample (fresh z ~ p(z | x^(k)) every "
                        "step; also 'prior') and/or fixed (one z per sequence) (default resample)")
    g.add_argument("--bound-iw-samples", type=int, default=None,
                   help="K draws of a continuous z per step in the importance-weighted bound, half "
                        "from the guide and half from the prior (default 512 synthetic, 16 sudoku, "
                        "32 text; a discrete z is summed exactly)")
    g.add_argument("--bound-orders", type=int, default=None,
                   help="random orders per sequence in B_T, drawn in up to 4 groups whose spread "
                        "gives the Monte Carlo standard error *_se (default 32; sudoku, text 1)")
    g.add_argument("--bound-sequences", type=int, default=None,
                   help="sudoku test puzzles / text validation sequences the bound is averaged over "
                        "(synthetic: the whole support, exactly weighted) (default 200 sudoku, "
                        "64 text)")

    g = p.add_argument_group("output")
    g.add_argument("--out", default=None,
                   help="write results as JSON to this path (default: "
                        "runs/<time>-<dataset or task>-<models>/result.json)")
    g.add_argument("--samples-out", default=None,
                   help="write the generated sequences (first NFE) here, one per line")
    return p


def check_args(args, parser):
    """Refuse bad options before any data is built; fill in the task's defaults."""
    task = TASKS[args.task]
    check_program_args(args, parser)
    for other in TASKS.values():  # each task checks its own options
        other.check(args, parser)
    if args.nfe is not None and any(n < 1 for n in args.nfe):
        parser.error(f"--nfe must be >= 1, got {args.nfe}")
    if (args.z_strategy == "prior" and "vmd" in args.model
            and not PRIORS[args.prior].depends_on_xt):  # else sampling refuses it after training
        parser.error(f"--z-strategy prior needs a prior that depends on xt (e.g. conditional); "
                     f"prior {args.prior!r} does not: use resample")
    if args.z_strategy == "mode" and "vmd" in args.model and not PRIORS[args.prior].has_mode:
        parser.error(f"--z-strategy mode needs a prior with a closed-form mode; prior "
                     f"{args.prior!r} is a mixture: use fixed")
    for name in ("candidates", "check_groups"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not args.temperature > 0:
        parser.error(f"--temperature must be > 0, got {args.temperature}")
    if error := cli.decoding_argument_error(args):
        parser.error(error)
    if args.select == "pseudo-likelihood" and args.block_size:
        parser.error("--select pseudo-likelihood is for models without blocks (no --block-size)")
    if args.z_strategy == "enumerate" and args.candidates > 1:
        parser.error("--z-strategy enumerate makes the values of z the candidates: leave "
                     "--candidates at 1")
    if args.num_samples is not None and args.num_samples < 1:
        parser.error("--num-samples must be >= 1")
    if args.iw_samples < 0:
        parser.error("--iw-samples must be >= 0")
    if args.bound_nfe is not None and any(t < 1 for t in args.bound_nfe):
        parser.error(f"--bound-nfe must be >= 1, got {args.bound_nfe}")
    for name in ("bound_orders", "bound_sequences", "bound_iw_samples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not task.several_orders and args.order is not None and len(args.order) > 1:
        parser.error(f"several --order values are only supported with --task "
                     f"{tasks_with('several_orders')}")
    if not task.several_fills and args.fill is not None and len(args.fill) > 1:
        parser.error(f"--task {args.task} takes one --fill value")
    task.fill_defaults(args)
    if args.temperature != 1 and "sample" not in args.fill:
        parser.error("--temperature is for --fill sample (argmax is its limit at 0)")
    if args.z_strategy in EVERY_Z and "vmd" in args.model:  # else sampling refuses it after training
        if PRIORS[args.prior].support != "discrete":
            parser.error(f"--z-strategy {args.z_strategy} tries every value of z and needs a "
                         f"discrete prior; prior {args.prior!r} is continuous")
        if args.z_strategy == "enumerate" and args.block_size:
            parser.error("--z-strategy enumerate is for models without blocks (no --block-size)")
        if args.z_strategy == "map" and args.fill != ["argmax"]:
            parser.error(f"--z-strategy map needs --fill argmax (got {' '.join(args.fill)})")
    if args.block_size and args.arch != "transformer":
        parser.error("--block-size needs the block-causal transformer: add --arch transformer")
    if args.structure != "none" and not (task.has_position_groups and args.arch == "transformer"):
        parser.error(f"--structure embed/attend needs --task {tasks_with('has_position_groups')} "
                     "(the task with position groups) and --arch transformer")
    maskable = task.maskable(args)  # a T above it has no sampler
    for name in ("bound_nfe", "train_nfe"):
        values = getattr(args, name)
        if values is not None and max(values) > maskable:
            parser.error(f"--{name.replace('_', '-')} {max(values)} is above the {maskable} maskable "
                         f"positions of a sequence of this task (one step per position at most)")
    check_checkpoints(args)


def auto_threads(args) -> int:
    """Threads for this run when ``--threads`` is not given: from the network's size and the load
    of the machine (``vmd_pyro.experiment.choose_threads``)."""
    seq_len = {"sudoku": 81, "text": args.seq_len}.get(args.task, 4)  # 4: the longest synthetic set
    vocab = {"sudoku": 9, "text": 27}.get(args.task, 10)
    return choose_threads(training_step_flops(args.arch, args.hidden, args.layers, seq_len, vocab,
                                              args.batch_size))


def default_out(args) -> str:
    """Without ``--out``: ``runs/<time>-<task>-<models>/result.json`` (untracked), so that every
    run leaves its numbers somewhere without touching the committed ``results/``."""
    what = args.dataset if args.task == "synthetic" else args.task
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return str(Path("runs") / f"{stamp}-{what}-{'-'.join(args.model)}" / "result.json")


def tasks_with(flag: str) -> str:
    """The tasks whose class sets ``flag``, for error messages."""
    return " / ".join(name for name, task in sorted(TASKS.items()) if getattr(task, flag))


def run_task(args, device, processes: int):
    """Train (or load) each ``--model`` on the task and evaluate it, ``processes`` models at a
    time: ``(rows, task)``."""
    task = TASKS[args.task](args, device)
    return run_models(args, task, device, processes), task


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_args(args, parser)
    except ValueError as err:
        cli.fail(err)
    device = distributed.init_from_env(resolve_device(args.device))
    torch.set_num_threads(args.threads or auto_threads(args))
    rank, world = distributed.rank_and_world()
    reports = rank == 0  # rank 0 reports
    processes = model_processes(args, device)
    start = time.perf_counter()
    try:
        runs, task = run_task(args, device, processes)
        distributed.finish()
    except cli.USER_ERRORS as err:
        return cli.report(err)
    finally:
        distributed.shutdown()
    if not reports:  # a rank > 0 of torchrun: done, nothing to write
        distributed.exit_process(0)
    wall = time.perf_counter() - start
    samples = [r.pop("_samples", None) for r in runs]
    meta = provenance(args.seed)
    for r in runs:
        r.update(wall_seconds=wall, model_processes=processes, **meta)

    print()
    print(markdown_table(runs, task.columns))
    for note in task.notes(runs):
        print(note)
    print(f"wall time {wall:.1f} s, seed {args.seed}, commit {meta['git_commit']}")
    out = args.out or default_out(args)
    write_json(out, runs[0] if len(runs) == 1 else {"runs": runs, **meta, "wall_seconds": wall})
    print(f"wrote {out}")
    if args.samples_out and samples[0] is not None:
        Path(args.samples_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.samples_out).write_text(
            "".join(" ".join(map(str, row)) + "\n" for row in samples[0].tolist()))
        print(f"wrote {args.samples_out}")
    if world > 1:  # rank 0 of torchrun, its files closed: skip the teardown that can abort
        distributed.exit_process(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
