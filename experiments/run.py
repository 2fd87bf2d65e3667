#!/usr/bin/env python
"""Train and evaluate MDM / VMD models: the entry point of vmd-pyro.

With no arguments it runs a small default comparison (MDM against VMD with a Gaussian prior on the
4-token set quad-d1, decoded in 1 and 2 steps) on one torch thread (the thread count follows the
network's size and the machine's load unless ``--threads`` is given), and writes its JSON to
``runs/<time>-<data set>-<models>/result.json`` unless ``--out`` is given
(timings under load: ``results/bench/default_job_under_load.json``):

    python experiments/run.py
    python experiments/run.py --prior mog
    python experiments/run.py --dataset pair-p --p 0.7 --model vmd --nfe 1 --out results/x.json
    python experiments/run.py --task sudoku --steps 4000 --save results/sudoku/model.pt
    python experiments/run.py --dataset quad-d1 --arch transformer --block-size 2 --nfe 2 4
    python experiments/run.py --task text --arch transformer --block-size 4 --model mdm vmd

Block diffusion (``--block-size L'``): autoregressive over blocks, masked diffusion inside a block,
one latent per block; ``--nfe`` counts network calls for the whole sequence, split evenly over the
blocks (at least one per block).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyro  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from models import PRIORS  # noqa: E402
from vmd_pyro import bounds, cli, distributed, metrics  # noqa: E402
from vmd_pyro.blocks import calls_used, nfe_per_block  # noqa: E402
from vmd_pyro.checkpoint import (checkpoint_model, load_program, read_checkpoint,  # noqa: E402
                                 save_checkpoint)
from vmd_pyro.datasets import sudoku, synthetic, text  # noqa: E402
from vmd_pyro.experiment import (choose_threads, markdown_table, provenance,  # noqa: E402
                                 resolve_device, training_step_flops, write_json)
from vmd_pyro.networks import NetConfig  # noqa: E402
from vmd_pyro.program import ELBOS, ProgramConfig, build_program  # noqa: E402
from vmd_pyro.sampling import FILLS, ORDERS, Z_STRATEGIES, all_masked, generate  # noqa: E402
from vmd_pyro.training import OBJECTIVES, TrainConfig, train  # noqa: E402



def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("task")
    g.add_argument("--task", default="synthetic", choices=sorted(RUNNERS),
                   help="which experiment family (default synthetic)")
    g.add_argument("--dataset", default="quad-d1",
                   help=f"synthetic data set: {', '.join(synthetic.NAMES)} (default quad-d1)")
    g.add_argument("--p", type=float, default=0.5,
                   help="dependency strength of pair-p: P(x2 = x1 + 1) beyond chance (default 0.5)")

    g = p.add_argument_group("text (--task text)")
    g.add_argument("--corpus", default="offline", choices=text.SOURCES,
                   help="offline: built from the Python standard library's docstrings and comments; "
                        f"text8: the real file (--data-path; from {text.TEXT8_URL})")
    g.add_argument("--data-path", default=None, help="path to text8 or text8.zip")
    g.add_argument("--seq-len", type=int, default=256, help="characters per sequence (default 256)")
    g.add_argument("--corpus-chars", type=int, default=None,
                   help="use only the first N characters of the offline corpus")
    g.add_argument("--eval-batches", type=int, default=20,
                   help="validation batches for bits per character (default 20)")
    g.add_argument("--show-samples", type=int, default=3, help="samples printed per NFE (text)")

    g = p.add_argument_group("model")
    g.add_argument("--model", nargs="+", default=["mdm", "vmd"], choices=["mdm", "vmd"],
                   help="one or more models to train and compare (default: mdm vmd)")
    g.add_argument("--prior", default="gaussian",
                   help=f"latent prior for vmd: {', '.join(sorted(PRIORS))} (default gaussian)")
    g.add_argument("--guide", default=None, help="guide family (default: the prior's own)")
    g.add_argument("--elbo", default=None, choices=sorted(ELBOS),
                   help="ELBO estimator (default: the prior's own: analytic KL where possible)")
    g.add_argument("--latent-dim", type=int, default=2, help="dimension of z (default 2)")
    g.add_argument("--components", type=int, default=10,
                   help="K: mixture components (mog) or values of z (discrete) (default 10)")
    g.add_argument("--guide-hidden", type=int, default=None,
                   help="width of the guide's encoder q(z | x0, xt) (default: a quarter of "
                        "--hidden, at least 16; give --hidden for a guide as wide as the denoiser)")
    g.add_argument("--guide-layers", type=int, default=None,
                   help="transformer layers of the guide's encoder (default: a third of --layers, "
                        "at least 1)")
    g.add_argument("--arch", default=None, choices=["mlp", "transformer"],
                   help="denoiser network (default: mlp; text: mlp; sudoku: from --sudoku-config)")
    g.add_argument("--hidden", type=int, default=None,
                   help="hidden width (default 128, text 256; sudoku: from --sudoku-config)")
    g.add_argument("--layers", type=int, default=None,
                   help="hidden layers (default 2; sudoku: from --sudoku-config)")
    g.add_argument("--heads", type=int, default=None,
                   help="attention heads (default 4; sudoku: from --sudoku-config)")
    g.add_argument("--structure", default=None, choices=["none", "embed", "attend"],
                   help="transformer knowledge of the task's position groups (Sudoku rows, columns, "
                        "boxes): none; embed = a learned vector per group added to the position "
                        "embedding; attend = embed, and attention only between positions that share "
                        "a group (default none; sudoku: from --sudoku-config)")
    g.add_argument("--block-size", type=int, default=0,
                   help="block diffusion with blocks of this many tokens (needs --arch transformer;"
                        " default 0 = no blocks; the sequence length = one block)")

    g = p.add_argument_group("training")
    g.add_argument("--steps", type=int, default=4000, help="optimisation steps (default 4000)")
    g.add_argument("--batch-size", type=int, default=256)
    g.add_argument("--lr", type=float, default=3e-3)
    g.add_argument("--clip-norm", type=float, default=1.0, help="gradient norm clip (0 = off)")
    g.add_argument("--anneal-steps", type=int, default=None,
                   help="KL annealing length, beta 0 -> 1 (default: a fifth of --steps)")
    g.add_argument("--free-nats", type=float, default=0.0,
                   help="VMD: the first F nats of KL(q || p) per sequence are free, w(t) max(KL, F) "
                        "in place of w(t) KL, against posterior collapse (free bits; the objective "
                        "is then not a bound; reported NELBOs stay the plain ones; default 0 = off)")
    g.add_argument("--objective", default="joint", choices=OBJECTIVES,
                   help="joint: the original method's objective J (one forward-process draw per "
                        "sequence, weight w(t); for VMD not a likelihood bound); steps: the few-step "
                        "bound B_T of the T-call random-order sampler (one random step per sequence, "
                        "weight T; MDM and VMD; not for block models) (default joint)")
    g.add_argument("--train-nfe", nargs="+", type=int, default=None, metavar="T",
                   help="with --objective steps: the T (or Ts, one drawn per sequence) whose bound "
                        "B_T is trained (default: the evaluated --nfe values)")
    g.add_argument("--engine", default="fused", choices=["fused", "svi"],
                   help="fused: one AdamW over elbo.differentiable_loss; svi: pyro.infer.SVI")
    g.add_argument("--eval-every", type=int, default=1000, help="evaluate the NELBO every N steps")
    g.add_argument("--time-budget", type=float, default=0.0,
                   help="stop training after this many seconds (equal-time comparisons; 0 = off)")
    g.add_argument("--validate", action=argparse.BooleanOptionalAction, default=False,
                   help="Pyro's distribution and shape validation (slower; off by default)")

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
    g.add_argument("--z-strategy", default="fixed", choices=Z_STRATEGIES, help="latent per step")
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
    g.add_argument("--bound-iw-samples", type=int, default=128,
                   help="K draws of a continuous z per step in the importance-weighted bound, half "
                        "from the guide and half from the prior (default 128; a discrete z is "
                        "summed exactly)")
    g.add_argument("--bound-orders", type=int, default=None,
                   help="random orders averaged per sequence in B_T (default 4; sudoku, text 1)")
    g.add_argument("--bound-sequences", type=int, default=None,
                   help="sudoku test puzzles / text validation sequences the bound is averaged over "
                        "(synthetic: the whole support, exactly weighted) (default 200 sudoku, "
                        "64 text)")

    g = p.add_argument_group("sudoku")
    g.add_argument("--sudoku-config", default="cpu", choices=sorted(SUDOKU_CONFIGS),
                   help="denoiser: cpu (small, attends along rows, columns and boxes; default) or "
                        "full (~6M parameters, plain transformer as published; for cuda)")
    g.add_argument("--clues", nargs=2, type=int, default=[30, 40], metavar=("MIN", "MAX"),
                   help="clue count range of training and evaluation puzzles (default 30 40)")
    g.add_argument("--test-puzzles", type=int, default=1000,
                   help="unique-solution test puzzles (default 1000)")
    g.add_argument("--val-puzzles", type=int, default=200,
                   help="validation puzzles, monitored during training (default 200)")
    g.add_argument("--train-pool", type=int, default=4000,
                   help="random complete grids that training transforms by symmetries (default 4000)")
    g.add_argument("--data-seed", type=int, default=0, help="seed of the puzzle splits (default 0)")
    g.add_argument("--data-cache", default="data_cache",
                   help="where generated splits are cached (default data_cache/)")

    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    g.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: 1 for small networks such as the synthetic "
                        "MLP, else the cores not kept busy by other processes)")
    g.add_argument("--save", default=None,
                   help="save the trained model and its training state here (PATH-MODEL.pt when "
                        "several models are run)")
    g.add_argument("--save-every", type=int, default=0,
                   help="with --save (or --resume): also checkpoint every N steps (default: only "
                        "at the end)")
    g.add_argument("--resume", default=None,
                   help="continue training from this checkpoint (same configuration required); "
                        "checkpoints go to --save, else back to this path")
    g.add_argument("--checkpoint", default=None,
                   help="load a trained model instead of training (PATH-MODEL.pt as for --save)")
    g.add_argument("--out", default=None,
                   help="write results as JSON to this path (default: "
                        "runs/<time>-<dataset or task>-<models>/result.json)")
    g.add_argument("--samples-out", default=None,
                   help="write the generated sequences (first NFE) here, one per line")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def check_args(args, parser):
    if args.prior not in PRIORS:
        parser.error(f"unknown prior {args.prior!r}; available: {', '.join(sorted(PRIORS))}")
    if args.nfe is not None and any(n < 1 for n in args.nfe):
        parser.error(f"--nfe must be >= 1, got {args.nfe}")
    for name in ("steps", "batch_size", "num_samples", "latent_dim", "components", "hidden",
                 "layers", "heads", "guide_hidden", "guide_layers", "threads", "test_puzzles", "val_puzzles", "train_pool", "seq_len",
                 "eval_batches"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.save_every < 0:
        parser.error("--save-every must be >= 0")
    if args.resume and args.checkpoint:
        parser.error("--resume continues training, --checkpoint skips it: give one of them")
    if args.iw_samples < 0:
        parser.error("--iw-samples must be >= 0")
    for name in ("bound_nfe", "train_nfe"):
        values = getattr(args, name)
        if values is not None and any(t < 1 for t in values):
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {values}")
    if args.train_nfe is not None and args.objective != "steps":
        parser.error("--train-nfe sets the T of --objective steps; add --objective steps")
    if args.objective == "steps" and args.block_size:
        parser.error("--objective steps is not implemented for block models (--block-size); "
                     "use --objective joint")
    for name in ("bound_orders", "bound_sequences", "bound_iw_samples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not 0.0 <= args.p <= 1.0:
        parser.error(f"--p must lie in [0, 1], got {args.p}")
    if not 17 <= args.clues[0] <= args.clues[1] <= 80:
        parser.error(f"--clues needs 17 <= MIN <= MAX <= 80, got {args.clues[0]} {args.clues[1]}")
    if args.task != "sudoku" and args.order is not None and len(args.order) > 1:
        parser.error("several --order values are only supported with --task sudoku")
    if args.task != "synthetic" and args.fill is not None and len(args.fill) > 1:
        parser.error(f"--task {args.task} takes one --fill value")
    defaults = {"sudoku": SUDOKU_DEFAULTS, "text": TEXT_DEFAULTS}.get(args.task, SYNTHETIC_DEFAULTS)
    net = SUDOKU_CONFIGS[args.sudoku_config] if args.task == "sudoku" else {}
    for name, value in {**defaults, **net}.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.block_size < 0:
        parser.error("--block-size must be >= 0")
    if args.block_size and args.arch != "transformer":
        parser.error("--block-size needs the block-causal transformer: add --arch transformer")
    if args.structure != "none" and (args.task != "sudoku" or args.arch != "transformer"):
        parser.error("--structure embed/attend needs --task sudoku (the task with position groups) "
                     "and --arch transformer")
    # The most positions a sequence of the task can have masked; a T above it has no sampler.
    maskable = {"sudoku": 81 - args.clues[0], "text": args.seq_len}.get(
        args.task, 2 if args.dataset.startswith("pair") else 4)
    for name in ("bound_nfe", "train_nfe"):
        values = getattr(args, name)
        if values is not None and max(values) > maskable:
            parser.error(f"--{name.replace('_', '-')} {max(values)} is above the {maskable} maskable "
                         f"positions of a sequence of this task (one step per position at most)")
    for model in args.model:  # a missing, unsafe or wrong checkpoint is refused before any data
        for path in (checkpoint_path(args.checkpoint, model, args.model),
                     checkpoint_path(args.resume, model, args.model)):
            if path and len(args.model) > 1 and not Path(path).exists():
                given = args.checkpoint or args.resume
                raise ValueError(f"with several --model values, {given!r} stands for one file per "
                                 f"model: {path!r} does not exist (pass --model {model} to use "
                                 f"{given!r} itself)")
            found = checkpoint_model(path) if path else model
            if found != model:
                raise ValueError(f"checkpoint {path!r} holds a {found} model, not {model}")


# Per-task defaults of the options whose default is None (explicit flags always win).
SYNTHETIC_DEFAULTS = {"arch": "mlp", "hidden": 128, "layers": 2, "heads": 4, "structure": "none",
                      "nfe": [1, 2], "order": ["random"], "fill": ["sample", "argmax"],
                      "num_samples": 20000, "bound_orders": 4, "bound_sequences": 1}
SUDOKU_DEFAULTS = {"nfe": [5, 10, 20, 50], "order": list(ORDERS), "fill": ["sample"],
                   "num_samples": 20000, "bound_orders": 1, "bound_sequences": 200}
TEXT_DEFAULTS = {"arch": "mlp", "hidden": 256, "layers": 2, "heads": 4, "structure": "none",
                 "order": ["random"], "fill": ["sample"], "num_samples": 64,
                 "bound_orders": 1, "bound_sequences": 64}  # nfe: set from the sequence length
# Denoisers for Sudoku. "full" has about 6M denoiser parameters (12 * hidden^2 per layer) and a
# plain transformer: the scale and architecture of the published anchors. "cpu" is small and
# attends along rows, columns and boxes only: without that structure the small model solves no
# test puzzle after 5000 CPU steps (results/sudoku/ablation_mdm_plain.json); with it, most.
SUDOKU_CONFIGS = {
    "cpu": {"arch": "transformer", "hidden": 64, "layers": 3, "heads": 4, "structure": "attend"},
    "full": {"arch": "transformer", "hidden": 288, "layers": 6, "heads": 8, "structure": "none"},
}


def program_config(args, model: str, task) -> ProgramConfig:
    if args.block_size and task.seq_len % args.block_size:
        raise ValueError(f"--block-size {args.block_size} does not divide the sequence length "
                         f"{task.seq_len}")
    groups = task.position_groups if args.structure in ("embed", "attend") else ()
    net = NetConfig(vocab_size=task.vocab_size, seq_len=task.seq_len, arch=args.arch,
                    hidden=args.hidden, layers=args.layers, heads=args.heads,
                    block_size=args.block_size, position_groups=groups,
                    attention="groups" if args.structure == "attend" else "full")
    return ProgramConfig(net=net, model=model, prior=args.prior, guide=args.guide,
                         latent_dim=args.latent_dim, components=args.components, elbo=args.elbo,
                         guide_hidden=args.guide_hidden, guide_layers=args.guide_layers)


def train_config(args, model: str) -> TrainConfig:
    """The training settings of ``model`` (``--free-nats`` applies to VMD only)."""
    anneal = args.anneal_steps if args.anneal_steps is not None else args.steps // 5
    return TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                       clip_norm=args.clip_norm, anneal_steps=anneal, eval_every=args.eval_every,
                       seed=args.seed, engine=args.engine, validate=args.validate,
                       progress=not args.quiet, save_every=args.save_every,
                       free_nats=args.free_nats if model == "vmd" else 0.0,
                       time_budget=args.time_budget, objective=args.objective,
                       train_nfe=tuple(args.train_nfe or args.nfe))


def evaluate_synthetic(program, task, args, generator) -> list[dict]:
    """Accuracy and KL(p_data || p_model) for each NFE and fill. For NFE = 1 with sampled tokens the
    KL is exact over sequences (given z, one step is a product distribution); otherwise it is a
    plug-in estimate from the generated samples."""
    device = next(program.parameters()).device
    results = []
    for fill in args.fill:
        for nfe in args.nfe:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nfe clamping is reported in the record instead
                x = all_masked(args.num_samples, task.seq_len, program.mask_id, device)
                samples = generate(program, x, nfe=nfe, order=args.order[0], fill=fill,
                                   z_strategy=args.z_strategy, generator=generator)
            record = {"nfe": nfe, "nfe_used": nfe_used(program, nfe), "fill": fill,
                      "accuracy": metrics.accuracy(task, samples),
                      "kl_plugin": metrics.kl_plugin(task, samples), "_samples": samples.cpu()}
            if nfe == 1 and fill == "sample" and not program.block_size:
                probs = metrics.one_step_model_probs(program, task, z_samples=args.z_samples,
                                                     generator=generator)
                record["kl"] = metrics.kl_from_probs(task.dense_probs(), probs)
                record["kl_estimator"] = "exact over sequences" + (
                    "" if not program.has_latent else
                    ", exact sum over z" if program.prior.support == "discrete" else
                    f", Monte Carlo over {args.z_samples} prior draws of z")
            else:
                record["kl"] = record["kl_plugin"]
                record["kl_estimator"] = (f"plug-in from {args.num_samples} samples, "
                                          "+0.5 pseudo-count per support sequence")
            results.append(record)
    return results


def likelihood_bounds(program, args, x0, maskable, weights=None, generator=None) -> list[dict]:
    """B_T and its importance-weighted form at every ``--bound-nfe`` (default: the evaluated NFEs),
    for each ``--bound-z`` generator of a VMD; for MDM also the exact ``-log p_T`` under each
    confidence order in ``--order``. Each entry names the generator it bounds."""
    z_strategies = args.bound_z if program.has_latent else ["resample"]
    orders = ["random"] + ([o for o in args.order if o != "random"] if not program.has_latent
                           else [])
    out = []
    for nfe in args.bound_nfe or args.nfe:
        for order in orders:
            for z_strategy in z_strategies:
                opts = bounds.BoundOptions(nfe=nfe, order=order, z_strategy=z_strategy,
                                           num_orders=args.bound_orders,
                                           iw_samples=args.bound_iw_samples)
                out.append(bounds.evaluate_nll_bounds(program, x0, maskable, opts,
                                                      weights=weights, generator=generator))
    return out


def attach_bounds(rows: list[dict], found: list[dict]) -> None:
    """Give each row the bound of its own NFE (its order where one exists, else random order; the
    first ``--bound-z`` generator) beside the full list under ``bounds``."""
    for row in rows:
        row["bounds"] = found
        same = [b for b in found if b["bound_nfe"] == row["nfe"]]
        match = ([b for b in same if f"order={row.get('order')}," in b["bound_generator"]]
                 or [b for b in same if "order=random," in b["bound_generator"]])
        if match:
            row.update({k: match[0][k] for k in ("nll_bound_bits", "iw_nll_bound_bits",
                                                 "bound_generator")})


def nfe_used(program, nfe: int) -> int:
    """Network calls decoding from all-mask really makes for a requested ``nfe``."""
    net = program.cfg.net
    if program.block_size:
        return calls_used(nfe, net.num_blocks, net.block_size)
    return min(nfe, net.seq_len)


def checkpoint_path(path: str | None, model: str, models: list[str]) -> str | None:
    if path is None or len(models) == 1:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{model}{p.suffix or '.pt'}"))


def obtain_program(args, model: str, task, device, eval_fn=None):
    """Train a program for ``task`` (or load it with ``--checkpoint``), saving it with ``--save``
    and resuming with ``--resume``. Returns ``(program, history, train_seconds)``.

    In a multi-process run every rank trains; a runner should evaluate only where
    ``distributed.is_main_process()``."""
    load = checkpoint_path(args.checkpoint, model, args.model)
    if load:
        program, state = load_program(load, map_location=device)
        if program.cfg.model != model:
            raise ValueError(f"checkpoint {load!r} holds a {program.cfg.model} model, not {model}")
        return program, state.get("history", []), state.get("train_seconds")
    pyro.set_rng_seed(args.seed)  # the initialisation is part of the run: seed it
    program = build_program(program_config(args, model, task)).to(device)
    resume = checkpoint_path(args.resume, model, args.model)
    start = time.perf_counter()
    history = train(program, task.sample, train_config(args, model), eval_fn=eval_fn,
                    log=None if args.quiet else lambda r: print(_progress_line(model, r)),
                    save=checkpoint_path(args.save, model, args.model) or resume, resume=resume,
                    run_info={"task": args.task, "dataset": getattr(task, "name", None),
                              "p": args.p if args.dataset == "pair-p" else None})
    return program, history, time.perf_counter() - start


def run_synthetic(args, device):
    """Train each ``--model`` on a synthetic set; evaluate bounds, accuracy and KL at each NFE."""
    if args.dataset not in synthetic.NAMES:
        raise ValueError(f"unknown dataset {args.dataset!r}; available: {', '.join(synthetic.NAMES)}")
    task = synthetic.make_synthetic(args.dataset, args.p)
    args.nfe = args.nfe or [1, 2]
    limit = task.factorisation_limit()
    entropy = float(-(task.probs * task.probs.log2()).sum()) / task.seq_len
    runs = []
    for model in args.model:
        monitor = torch.Generator(device=device).manual_seed(args.seed + 1)
        bounds = lambda prog: metrics.evaluate_bounds(  # noqa: E731
            prog, task.sample, num_batches=4, iw_samples=0, generator=monitor)
        program, history, train_seconds = obtain_program(args, model, task, device, bounds)
        if not distributed.is_main_process():
            continue
        # Fresh random streams for the final evaluation, so a loaded checkpoint reproduces it.
        pyro.set_rng_seed(args.seed + 2)
        generator = torch.Generator(device=device).manual_seed(args.seed + 2)
        final = metrics.evaluate_bounds(program, task.sample, num_batches=20,
                                        iw_samples=args.iw_samples if program.has_latent else 0,
                                        generator=generator)
        support = task.sequences.to(device)
        found = likelihood_bounds(program, args, support, torch.ones_like(support, dtype=torch.bool),
                                  weights=task.probs, generator=generator)
        rows = []
        for ev in evaluate_synthetic(program, task, args, generator):
            rows.append({
                **ev, "model": model, "prior": program.cfg.prior if program.has_latent else None,
                "dataset": args.dataset, "p": args.p if args.dataset == "pair-p" else None,
                "block_size": args.block_size or task.seq_len,
                "steps": args.steps, **final,
                "factorisation_limit": limit,
                "data_entropy_bits": entropy,
                "order": args.order[0], "z_strategy": args.z_strategy,
                "parameters": program.num_parameters(), "train_seconds": train_seconds,
                "history": history, "config": program.cfg.to_dict(),
                "train_config": train_config(args, model).to_dict()})
        attach_bounds(rows, found)
        runs += rows
    columns = ["model", "prior", "dataset", "block_size", "nfe", "fill", "accuracy", "kl",
               "nll_bound_bits", "iw_nll_bound_bits", "nelbo_bits", "objective_bits"]
    notes = [f"KL floor for one-step factorised decoding (total correlation; I(x1;x2) for pairs): "
             f"{limit:.4f} nats",
             "KL estimators: " + "; ".join(sorted(
                 {f"NFE {r['nfe']} {r['fill']}: {r['kl_estimator']}" for r in runs}))]
    notes.append(f"data entropy {entropy:.4f} bits/token: the floor of every likelihood bound. "
                 "nll_bound_bits: B_T of the T-call sampler, row's NFE (generator in the JSON's "
                 "bound_generator); nelbo_bits: MDM's continuous-time NELBO; objective_bits: VMD's "
                 "training objective J, not a bound (it can fall below the entropy)")
    return runs, columns, notes


def sudoku_task(args, progress=True) -> sudoku.SudokuTask:
    cfg = sudoku.SudokuConfig(clue_min=args.clues[0], clue_max=args.clues[1],
                              num_val=args.val_puzzles, num_test=args.test_puzzles,
                              train_pool=args.train_pool, seed=args.data_seed)
    return sudoku.SudokuTask(cfg, cache_dir=args.data_cache, progress=progress)


def run_sudoku(args, device):
    """Train each ``--model`` on Sudoku (clues kept, blanks masked); report the solve rate and cell
    accuracy on the test split for every ``--order`` and ``--nfe``."""
    task = sudoku_task(args, progress=not args.quiet)
    val_puzzles, val_solutions = task.val

    def val_sample(batch_size, generator):  # validation puzzles: blanks maskable, clues not
        idx = torch.randint(len(val_puzzles), (batch_size,), generator=generator,
                            device=generator.device).cpu()
        return val_solutions[idx].to(device), (val_puzzles[idx] == sudoku.MASK_ID).to(device)

    runs = []
    for model in args.model:
        generator = torch.Generator(device=device).manual_seed(args.seed + 1)
        # Training grids are drawn on the CPU with their own seeded stream, then moved.
        data_generator = torch.Generator().manual_seed(args.seed)

        def on_device(batch_size, _generator):
            x0, maskable = task.sample(batch_size, generator=data_generator)
            return x0.to(device), maskable.to(device)

        def monitor(prog):
            filled = sudoku.fill_puzzles(prog, val_puzzles, nfe=10, order="top-prob-margin",
                                         fill=args.fill[0], z_strategy=args.z_strategy,
                                         generator=generator)
            bounds = metrics.evaluate_bounds(prog, val_sample, num_batches=1,
                                             batch_size=args.val_puzzles, generator=generator)
            return {**bounds, "val_solve_rate_nfe10_margin": sudoku.score(val_puzzles, filled)[
                "solve_rate"]}

        program, history, train_seconds = obtain_program(args, model, _OnDevice(task, on_device),
                                                         device, monitor)
        trained = (read_checkpoint(checkpoint_path(args.checkpoint, model, args.model))[
            "train_config"] if args.checkpoint else train_config(args, model).to_dict())
        final = metrics.evaluate_bounds(program, val_sample, num_batches=5,
                                        batch_size=args.val_puzzles, generator=generator)
        test_puzzles, test_solutions = task.test
        some = slice(0, args.bound_sequences)  # per blank of these test puzzles
        found = likelihood_bounds(program, args, test_solutions[some].to(device),
                                  (test_puzzles[some] == sudoku.MASK_ID).to(device),
                                  generator=generator)
        rows = []
        settings = [(order, nfe) for order in args.order for nfe in args.nfe]
        for order, nfe in tqdm(settings, desc=f"evaluate {model}", disable=args.quiet, leave=False):
            filled = sudoku.fill_puzzles(program, test_puzzles, nfe=nfe, order=order,
                                         fill=args.fill[0], z_strategy=args.z_strategy,
                                         generator=generator)
            rows.append({
                "model": model, "prior": program.cfg.prior if program.has_latent else None,
                "order": order, "nfe": nfe, **sudoku.score(test_puzzles, filled, test_solutions),
                "steps": trained["steps"], "clue_range": list(args.clues),
                **{f"val_{key}": value for key, value in final.items()},
                "fill": args.fill[0], "z_strategy": args.z_strategy if program.has_latent else None,
                "parameters": program.num_parameters(), "train_seconds": train_seconds,
                "history": history, "config": program.cfg.to_dict(), "train_config": trained})
        attach_bounds(rows, found)
        runs += rows
    columns = ["model", "prior", "order", "nfe", "solve_rate", "cell_accuracy", "nll_bound_bits"]
    notes = [f"test split: {args.test_puzzles} unique-solution puzzles with {args.clues[0]}-"
             f"{args.clues[1]} clues (data seed {args.data_seed}); solve rate = valid grid that "
             f"keeps every clue, checked by the rules",
             "training seconds: " + ", ".join(sorted({f"{r['model']} {r['train_seconds']:.0f}"
                                                      for r in runs if r["train_seconds"]})),
             f"nll_bound_bits: B_T per blank on the first {args.bound_sequences} test puzzles "
             "(random order unless the row's order is exact for MDM; generator in the JSON)"]
    return runs, columns, notes


class _OnDevice:
    """A task whose ``sample`` returns tensors on the training device."""

    def __init__(self, task, sample):
        self.task, self.sample = task, sample

    def __getattr__(self, name):  # everything but sample: the task's own
        return getattr(self.task, name)


BITS_NOTE = ("bits_per_char and ppl_bound: the few-step bound B_T at the row's NFE (random order, "
             "sampled tokens, z resampled; generator in the JSON), like for like between MDM and VMD;"
             " nelbo_bits: MDM's continuous-time NELBO; objective_bits: VMD's training objective J, "
             "not a bound")


def run_text(args, device):
    """Character-level language modelling: bits per character and the perplexity bound on the
    validation split (NELBO and importance-weighted), and generation at each NFE with the sample
    character entropy and word validity beside each other."""
    task = text.make_text(args.corpus, data_path=args.data_path, seq_len=args.seq_len,
                          max_chars=args.corpus_chars).to(device)
    args.nfe = args.nfe or [task.seq_len, max(1, task.seq_len // 4)]
    vocabulary = set(text.decode(task.train[:10_000_000]).split(" "))
    valid_entropy = text.char_entropy_bits(task.valid)
    runs, shown = [], []
    for model in args.model:
        generator = torch.Generator(device=device).manual_seed(args.seed + 1)
        bounds = lambda prog: metrics.evaluate_bounds(  # noqa: E731
            prog, task.sample_valid, num_batches=2, batch_size=args.batch_size, iw_samples=0,
            generator=generator)
        program, history, train_seconds = obtain_program(args, model, task, device, bounds)
        if not distributed.is_main_process():
            continue
        final = metrics.evaluate_bounds(
            program, task.sample_valid, num_batches=args.eval_batches, batch_size=args.batch_size,
            iw_samples=args.iw_samples if program.has_latent else 0, generator=generator)
        x0, maskable = task.sample_valid(args.bound_sequences, generator)
        found = likelihood_bounds(program, args, x0, maskable, generator=generator)
        rows = []
        net = program.cfg.net
        for nfe in args.nfe:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                samples = generate(program, all_masked(args.num_samples, task.seq_len,
                                                       program.mask_id, device),
                                   nfe=nfe, order=args.order[0], fill=args.fill[0],
                                   z_strategy=args.z_strategy, generator=generator).cpu()
            texts = [text.decode(row) for row in samples.tolist()]
            shown.append((model, nfe, texts[:args.show_samples]))
            rows.append({
                "model": model, "prior": program.cfg.prior if program.has_latent else None,
                "corpus": args.corpus, "block_size": args.block_size or task.seq_len,
                "seq_len": task.seq_len, "nfe": nfe, "nfe_used": nfe_used(program, nfe),
                "steps_done": history[-1]["step"] if history else None,
                "nfe_per_block": (nfe_per_block(max(nfe, net.num_blocks), net.num_blocks)[0]
                                  if program.block_size else nfe),
                **final, "sample_char_entropy_bits": text.char_entropy_bits(samples),
                "valid_char_entropy_bits": valid_entropy,
                "word_validity": text.word_validity(samples, vocabulary),
                "samples": texts[:8], "steps": args.steps, "corpus_info": task.info,
                "order": args.order[0], "fill": args.fill[0], "z_strategy": args.z_strategy,
                "parameters": program.num_parameters(), "train_seconds": train_seconds,
                "history": history, "config": program.cfg.to_dict(),
                "train_config": train_config(args, model).to_dict()})
        attach_bounds(rows, found)
        for row in rows:  # per character, from B_T at the row's NFE
            if "nll_bound_bits" in row:
                row.update(bits_per_char=row["nll_bound_bits"],
                           ppl_bound=2 ** row["nll_bound_bits"],
                           iw_bits_per_char=row["iw_nll_bound_bits"],
                           iw_ppl_bound=2 ** row["iw_nll_bound_bits"])
        runs += rows
    columns = ["model", "prior", "block_size", "nfe", "bits_per_char", "ppl_bound",
               "iw_bits_per_char", "iw_ppl_bound", "nelbo_bits", "objective_bits",
               "sample_char_entropy_bits", "word_validity"]
    notes = [f"corpus {args.corpus}: {task.info['train_chars']:,} training / "
             f"{task.info['valid_chars']:,} validation characters; validation character entropy "
             f"{valid_entropy:.3f} bits; word validity = share of generated words seen in training"]
    notes.append(BITS_NOTE)
    for model, nfe, texts in shown:
        notes += [f"samples [{model}] NFE {nfe}:"] + [f"  |{t}|" for t in texts]
    return runs, columns, notes


RUNNERS = {"synthetic": run_synthetic, "sudoku": run_sudoku, "text": run_text}


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


def _progress_line(model, record) -> str:
    parts = [f"[{model}] step {record['step']}", f"train loss {record['train_loss']:.3f} nats"]
    if "nelbo_bits" in record:
        parts.append(f"eval NELBO {record['nelbo_bits']:.4f} bits/token")
    if "objective_bits" in record:
        parts.append(f"eval objective {record['objective_bits']:.4f} bits/token")
    parts += [f"{key} {value:.3f}" for key, value in record.items() if key.startswith("val_")]
    return ", ".join(parts)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_args(args, parser)
    except ValueError as err:
        cli.fail(err)
    device = distributed.init_from_env(resolve_device(args.device))
    torch.set_num_threads(args.threads or auto_threads(args))
    reports = distributed.is_main_process()  # ranks > 0 only train; rank 0 reports
    start = time.perf_counter()
    try:
        runs, columns, notes = RUNNERS[args.task](args, device)
    except cli.USER_ERRORS as err:
        return cli.report(err)
    finally:
        distributed.shutdown()
    if not reports:
        return 0
    wall = time.perf_counter() - start
    samples = [r.pop("_samples", None) for r in runs]
    meta = provenance(args.seed)
    for r in runs:
        r.update(wall_seconds=wall, **meta)

    print()
    print(markdown_table(runs, columns))
    for note in notes:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
