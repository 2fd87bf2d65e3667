"""From command-line options to a trained program, shared by ``experiments/run.py`` and
``experiments/diagnose.py`` (same options, same defaults, same code): the model, training and
checkpoint options, the program and training configurations they give, and train-or-load.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pyro
import torch
from torch import nn

from vmd_pyro import distributed
from vmd_pyro.checkpoint import (checkpoint_model, init_denoiser, load_program,
                                 randomize_latent_inputs)
from vmd_pyro.networks import Z_CONDITIONINGS, NetConfig
from vmd_pyro.program import ELBOS, ProgramConfig, build_program
from vmd_pyro.registry import GUIDES, PRIORS
from vmd_pyro.sampling import ORDERS
from vmd_pyro.training import OBJECTIVES, TrainConfig, train


def add_program_arguments(p: argparse.ArgumentParser) -> None:
    """The ``model``, ``training`` and ``run`` option groups (all but ``--model`` and ``--out``)."""
    g = p.add_argument_group("model")
    g.add_argument("--prior", default="gaussian",
                   help=f"latent prior for vmd: {', '.join(sorted(PRIORS))} (default gaussian)")
    g.add_argument("--guide", default=None,
                   help=f"guide family: {', '.join(sorted(GUIDES))} (default: the prior's own; "
                        "exact = the model's own posterior over a discrete z, no network)")
    g.add_argument("--elbo", default=None, choices=sorted(ELBOS),
                   help="ELBO estimator (default: the prior's own: analytic KL where possible)")
    g.add_argument("--latent-dim", type=int, default=2, help="dimension of z (default 2)")
    g.add_argument("--components", type=int, default=10,
                   help="K: mixture components (mog) or values of z (discrete) (default 10)")
    g.add_argument("--guide-hidden", type=int, default=None,
                   help="width of the guide's encoder q(z | x0, xt) (default: a quarter of "
                        "--hidden, at least 16; give --hidden for a guide as wide as the denoiser)")
    g.add_argument("--guide-layers", type=int, default=None,
                   help="depth of the guide's encoder: transformer layers, or the MLP's hidden "
                        "layers (default: a third of --layers, at least 1); 0 makes the MLP "
                        "encoder linear (the cheapest guide)")
    g.add_argument("--prior-hidden", type=int, default=None,
                   help="width of a learned prior's network (conditional, block-conditional, "
                        "block-mog; default: --hidden)")
    g.add_argument("--prior-layers", type=int, default=None,
                   help="transformer layers of a learned prior's network (default: --layers)")
    g.add_argument("--z-conditioning", default="input", choices=Z_CONDITIONINGS,
                   help="how z enters the denoiser: input = its projection added to the input "
                        "embedding; film = also a scale and shift of every layer (FiLM in the MLP, "
                        "adaptive layer norm in transformers), starting at no effect; head = only "
                        "a scale and shift of the last hidden features, so one network pass serves "
                        "every value of an enumerated z (--prior discrete) (default input)")
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
                        "is then not a bound; evaluation reports the plain objective; default 0 = off)")
    g.add_argument("--objective", default="joint", choices=OBJECTIVES,
                   help="joint: the original method's objective J (one forward-process draw per "
                        "sequence, weight w(t); for VMD not a likelihood bound); steps: the few-step "
                        "bound B_T of the T-call random-order sampler (one random step per sequence, "
                        "weight T; block models: one step of one block, T calls per block); paths: "
                        "every step of the T-call sampler per sequence with one z for all of them, "
                        "B_T with z fixed as --z-strategy fixed and enumerate decode (VMD, --guide "
                        "exact, one T) (default joint)")
    g.add_argument("--train-nfe", nargs="+", type=int, default=None, metavar="T",
                   help="with --objective steps or paths: the T (steps: or Ts, one drawn per "
                        "sequence) whose bound B_T is trained; block models: calls per block "
                        "(default: the evaluated --nfe values)")
    g.add_argument("--train-order", default="random", choices=ORDERS,
                   help="with --objective steps or paths: the order of the sampler whose steps "
                        "are trained. random: the bound B_T; top-prob / top-prob-margin: the path "
                        "the denoiser's own confidence takes to the data (one extra gradient-free "
                        "call per step; "
                        "for MDM the exact -log p_T of that sampler with sampled tokens, for VMD "
                        "not a bound: z picks the order) (default random)")
    g.add_argument("--init-denoiser", default=None, metavar="CHECKPOINT",
                   help="warm start: begin with the denoiser of this trained checkpoint (e.g. a VMD "
                        "from an MDM of the same network); the weights through which z enters "
                        "start at zero, so training begins from exactly that model")
    g.add_argument("--train-only", nargs="+", default=(), metavar="PREFIX",
                   help="train only the parameters whose names start with these prefixes (e.g. "
                        "prior.head: a new prior on a VMD started with --init-denoiser, its "
                        "denoiser and z embedding kept as they are); default: all")
    g.add_argument("--z-init-std", type=float, default=0.0,
                   help="draw the denoiser's weights that read z from N(0, S^2) at the start "
                        "(after --init-denoiser) instead of leaving those that start at zero "
                        "(FiLM, head, warm start) at zero: with an enumerated z every value then "
                        "predicts differently from the first step (default 0 = as built)")
    g.add_argument("--engine", default="fused", choices=["fused", "svi"],
                   help="fused: one AdamW over elbo.differentiable_loss; svi: pyro.infer.SVI")
    g.add_argument("--eval-every", type=int, default=1000,
                   help="monitor the model on held-out data every N steps: its objective (MDM's "
                        "NELBO; VMD's J, not a bound) and, on Sudoku, the validation solve rate")
    g.add_argument("--time-budget", type=float, default=0.0,
                   help="stop training after this many seconds (equal-time comparisons; 0 = off)")
    g.add_argument("--validate", action=argparse.BooleanOptionalAction, default=False,
                   help="Pyro's distribution and shape validation (slower; off by default)")

    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    g.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: 1 for small networks such as the synthetic "
                        "MLP, else the cores not kept busy by other processes); with several "
                        "model processes, shared between them")
    g.add_argument("--model-processes", type=int, default=None,
                   help="with several --model values: how many train (and are evaluated) at once, "
                        "each in its own process (default: one per model, at most one per core, "
                        "on a CPU; 1 on a GPU or under torchrun; 1 = one after the other)")
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
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def check_program_args(args, parser) -> None:
    """Refuse bad model, training and checkpoint options (``parser.error``: one line, status 2)."""
    if args.prior not in PRIORS:
        parser.error(f"unknown prior {args.prior!r}; available: {', '.join(sorted(PRIORS))}")
    for name in ("steps", "batch_size", "latent_dim", "components", "hidden", "layers", "heads",
                 "guide_hidden", "prior_hidden", "prior_layers", "threads", "model_processes"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.guide_layers is not None and args.guide_layers < 0:
        parser.error("--guide-layers must be >= 0")
    if args.z_init_std < 0:
        parser.error("--z-init-std must be >= 0")
    if args.save_every < 0:
        parser.error("--save-every must be >= 0")
    if args.resume and args.checkpoint:
        parser.error("--resume continues training, --checkpoint skips it: give one of them")
    if args.init_denoiser and args.checkpoint:
        parser.error("--init-denoiser starts training, --checkpoint skips it: give one of them")
    if args.train_nfe is not None and any(t < 1 for t in args.train_nfe):
        parser.error(f"--train-nfe must be >= 1, got {args.train_nfe}")
    if args.train_order != "random" and (args.objective == "joint" or args.block_size):
        parser.error("--train-order sets the order of --objective steps or paths (no blocks); add "
                     "--objective steps")
    if args.train_nfe is not None and args.objective == "joint":
        parser.error("--train-nfe sets the T of --objective steps or paths; add --objective steps")
    if args.block_size < 0:
        parser.error("--block-size must be >= 0")
    if (args.model_processes or 1) > 1 and args.device != "cpu":
        parser.error("--model-processes above 1 is for --device cpu (forked processes cannot "
                     "share a GPU's context)")


def check_checkpoints(args) -> None:
    """A missing, unsafe or wrong checkpoint is refused before any data is built."""
    for model in args.model:
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
    if args.init_denoiser:
        checkpoint_model(args.init_denoiser)  # readable and complete, before any data is built


def program_config(args, model: str, data) -> ProgramConfig:
    """The program of ``model`` for ``data`` (its vocabulary, length and position groups)."""
    if args.block_size and data.seq_len % args.block_size:
        raise ValueError(f"--block-size {args.block_size} does not divide the sequence length "
                         f"{data.seq_len}")
    groups = data.position_groups if args.structure in ("embed", "attend") else ()
    net = NetConfig(vocab_size=data.vocab_size, seq_len=data.seq_len, arch=args.arch,
                    hidden=args.hidden, layers=args.layers, heads=args.heads,
                    block_size=args.block_size, position_groups=groups,
                    attention="groups" if args.structure == "attend" else "full",
                    z_conditioning=args.z_conditioning)
    return ProgramConfig(net=net, model=model, prior=args.prior, guide=args.guide,
                         latent_dim=args.latent_dim, components=args.components, elbo=args.elbo,
                         guide_hidden=args.guide_hidden, guide_layers=args.guide_layers,
                         prior_hidden=args.prior_hidden, prior_layers=args.prior_layers)


def train_config(args, model: str, num_blocks: int = 1, progress_bar: bool = True) -> TrainConfig:
    """The training settings of ``model`` (``--free-nats`` applies to VMD only; MDM trains
    ``paths`` as ``steps``). The ``steps`` and ``paths`` objectives train the evaluated ``--nfe``
    values unless ``--train-nfe`` says otherwise; in block models those are calls per block (NFE 2
    over two blocks is one call each). ``progress_bar`` False keeps the bar off even without
    ``--quiet`` (models trained side by side)."""
    anneal = args.anneal_steps if args.anneal_steps is not None else args.steps // 5
    # without a latent a path's steps are independent: MDM's paths objective is its steps one
    objective = "steps" if args.objective == "paths" and model == "mdm" else args.objective
    train_nfe = args.train_nfe or sorted({max(1, nfe // num_blocks) for nfe in args.nfe})
    return TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                       clip_norm=args.clip_norm, anneal_steps=anneal, eval_every=args.eval_every,
                       seed=args.seed, engine=args.engine, validate=args.validate,
                       progress=progress_bar and not args.quiet, save_every=args.save_every,
                       free_nats=args.free_nats if model == "vmd" else 0.0,
                       time_budget=args.time_budget, objective=objective,
                       train_nfe=tuple(train_nfe), train_order=args.train_order,
                       train_only=tuple(args.train_only))


def checkpoint_path(path: str | None, model: str, models: list[str]) -> str | None:
    if path is None or len(models) == 1:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{model}{p.suffix or '.pt'}"))


class Trained(NamedTuple):
    """A program and how it was trained: read from the checkpoint when one was loaded."""

    program: nn.Module
    history: list[dict]
    train_seconds: float | None
    train_config: dict


def obtain_program(args, model: str, task, device, progress_bar: bool = True) -> Trained:
    """Train ``model`` on ``task`` (a :class:`vmd_pyro.tasks.Task`) or load it with
    ``--checkpoint``, saving it with ``--save`` and resuming with ``--resume``.

    In a multi-process run every rank trains; only ``distributed.is_main_process()`` evaluates."""
    sample, monitor = task.training(model)  # also when loading: it starts the model's streams
    load = checkpoint_path(args.checkpoint, model, args.model)
    if load:
        program, state = load_program(load, map_location=device)
        if program.cfg.model != model:
            raise ValueError(f"checkpoint {load!r} holds a {program.cfg.model} model, not {model}")
        return Trained(program, state.get("history", []), state.get("train_seconds"),
                       state.get("train_config", {}))
    pyro.set_rng_seed(args.seed)  # the initialisation is part of the run: seed it
    program = build_program(program_config(args, model, task.data))
    if args.init_denoiser:
        init_denoiser(program, args.init_denoiser)
    if args.z_init_std and program.has_latent:
        randomize_latent_inputs(program, args.z_init_std)
    program = program.to(device)
    run_info = {"task": task.name, **task.run_info}
    # part of the run: a resume must start from the same weights
    for name in ("init_denoiser", "z_init_std"):
        if getattr(args, name):
            run_info[name] = getattr(args, name)
    resume = checkpoint_path(args.resume, model, args.model)
    cfg = train_config(args, model, program.cfg.net.num_blocks, progress_bar)
    start = time.perf_counter()
    history = train(program, sample, cfg, eval_fn=monitor,
                    log=None if args.quiet else lambda r: print(progress_line(model, r)),
                    save=checkpoint_path(args.save, model, args.model) or resume, resume=resume,
                    run_info=run_info)
    return Trained(program, history, time.perf_counter() - start, cfg.to_dict())


def progress_line(model, record) -> str:
    parts = [f"[{model}] step {record['step']}", f"train loss {record['train_loss']:.3f} nats"]
    if "nelbo_bits" in record:
        parts.append(f"eval NELBO {record['nelbo_bits']:.4f} bits/token")
    if "objective_bits" in record:
        parts.append(f"eval objective {record['objective_bits']:.4f} bits/token")
    parts += [f"{key} {value:.3f}" for key, value in record.items() if key.startswith("val_")]
    return ", ".join(parts)


def model_processes(args, device) -> int:
    """How many of ``args.model`` train at once, each in its own process: ``--model-processes``,
    else one per model (at most one per core) on a CPU in a single-process run, and 1 on a GPU or
    under torchrun (whose ranks already are the processes).

    Why processes: the models are independent, and a machine's scheduler shares its cores between
    runnable processes, so two models side by side finish sooner than one after the other both on
    an idle machine (two cores) and on a busy one (with two other busy processes on two cores, two
    processes get a core between them where one gets two thirds of one)."""
    if args.model_processes is not None:
        return min(args.model_processes, len(args.model))
    if device.type != "cpu" or distributed.rank_and_world()[1] > 1:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(len(args.model), cores or 1))


def train_and_evaluate(args, models: list[str], task, device, progress_bar: bool = True
                       ) -> list[dict]:
    """Train (or load) each of ``models`` on ``task`` in turn and evaluate it: the result rows
    (none on ranks > 0 of a multi-process run, which only train)."""
    rows = []
    for model in models:
        trained = obtain_program(args, model, task, device, progress_bar)
        if distributed.is_main_process():
            rows += task.evaluate(model, trained)
    return rows


def run_models(args, task, device, processes: int) -> list[dict]:
    """The result rows of every ``--model``, in the order given, trained side by side in
    ``processes`` processes (:func:`model_processes`). Each model seeds its own streams (``obtain_program``,
    ``Task.evaluate``), so its rows do not depend on which process ran it or when. The processes
    are forked (they inherit the imported modules and the task's data) and share this process's
    torch threads; their progress bars are off (several bars would overwrite each other), their
    progress lines are printed."""
    if processes == 1:
        return train_and_evaluate(args, args.model, task, device)
    threads = max(1, torch.get_num_threads() // processes)
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"),
                             initializer=torch.set_num_threads, initargs=(threads,)) as pool:
        jobs = [pool.submit(train_and_evaluate, args, [model], task, device, False)
                for model in args.model]
        return [row for job in jobs for row in job.result()]
