"""The training loop: SVI on the Pyro model and guide of a :class:`DiffusionProgram`.

Two engines compute the same loss from the same model and guide:

* ``fused`` (default): ``elbo.differentiable_loss`` and one ``torch.optim.AdamW`` over all networks,
  with gradient clipping on the global norm. Pyro's own optimisers hold one torch optimiser per
  tensor and ``ClippedAdam`` clamps elementwise, so a global norm clip needs this route.
* ``svi``: ``pyro.infer.SVI`` with ``pyro.optim.Adam`` (per-tensor norm clipping).

``train`` also writes resumable checkpoints (``save``, every ``cfg.save_every`` steps and at the
end), continues from one bit for bit (``resume``), stops on a non-finite loss before it reaches the
parameters, and trains data-parallel over the ranks of ``torch.distributed`` (fused engine): see
:mod:`vmd_pyro.distributed`.
"""
from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import asdict, dataclass, fields

import pyro
import torch
from tqdm.auto import tqdm

from vmd_pyro import distributed
from vmd_pyro.checkpoint import (CheckpointWriteError, check_resumable, read_checkpoint,
                                 rng_state, save_checkpoint, set_rng_state)
from vmd_pyro.masking import DiffusionBatch, path_batch
from vmd_pyro.sampling import ORDERS, sampler_scores


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 256          # the global batch: split across ranks in multi-process runs
    lr: float = 2e-3
    weight_decay: float = 0.0
    clip_norm: float = 1.0
    anneal_steps: int = 500        # KL annealing: beta rises linearly from 0 to 1 over these steps
    eval_every: int = 500          # 0: only at the end
    eval_batches: int = 4
    seed: int = 0
    engine: str = "fused"          # "fused" or "svi"
    validate: bool = False         # Pyro's distribution/shape validation (slower; tests turn it on)
    antithetic: bool = True        # stratified diffusion times across the batch
    progress: bool = True
    save_every: int = 0            # with a save path: checkpoint every N steps (0: only at the end)
    time_budget: float = 0.0       # seconds; stop early once training has run this long (0 = off)
    free_nats: float = 0.0         # KL free nats per sequence (0 = the ELBO); see free_nats_penalty
    # "joint": the original method's objective J (one forward-process draw per sequence, weight
    # w(t)); "steps": the few-step bound B_T (one random step of the T-call sampler per sequence,
    # weight T, vmd_pyro.masking.step_batch), T drawn from train_nfe; "paths": every step of the
    # T-call sampler's path per sequence with one z for all of them (B_T with z fixed, the decoder
    # that holds z through its calls; vmd_pyro.masking.path_batch), one T.
    objective: str = "joint"
    train_nfe: tuple[int, ...] = (1,)
    # "steps" and "paths": the order of the sampler whose steps are trained. "random" gives B_T; a
    # confidence order follows the denoiser's own path to x0 (vmd_pyro.masking.step_batch), one
    # extra gradient-free call per step up to the drawn one.
    train_order: str = "random"
    # Names of the parameters trained, by prefix (e.g. "prior.head"); every other one stays as
    # it is (requires_grad_only). Empty: all of them. For probes of one part of a trained model.
    train_only: tuple[str, ...] = ()

    def __post_init__(self):
        self.train_nfe = tuple(int(t) for t in self.train_nfe)  # a list after a round trip
        self.train_only = tuple(self.train_only)

    def to_dict(self) -> dict:
        return asdict(self)


# The fields that determine the optimisation trajectory: resuming requires the same values. The
# others (steps, evaluation, progress, validation, checkpoint interval) may change between runs.
TRAJECTORY_FIELDS = ("batch_size", "lr", "weight_decay", "clip_norm", "anneal_steps", "seed",
                     "engine", "antithetic", "free_nats", "objective", "train_nfe", "train_order",
                     "train_only")
OBJECTIVES = ("joint", "steps", "paths")


def kl_weight(step: int, anneal_steps: int) -> float:
    """beta for KL annealing: linear 0 -> 1 over ``anneal_steps``, then 1."""
    if anneal_steps <= 0:
        return 1.0
    return min(1.0, max(step, 1) / anneal_steps)  # Pyro refuses a scale of exactly 0


@contextlib.contextmanager
def requires_grad_only(program, prefixes):
    """Within the block, only the parameters whose names start with one of ``prefixes`` require
    gradients (none with an empty tuple); the flags are restored afterwards. A frozen network
    builds no autograd graph, so a probe that trains a small head on a large trained model pays
    for the head's backward pass only."""
    params = list(program.named_parameters())
    names = [name for name, _ in params]
    unmatched = [p for p in prefixes if not any(n.startswith(p) for n in names)]
    if unmatched:
        tops = sorted({n.split(".")[0] for n in names})
        raise ValueError(f"no parameter's name starts with {', '.join(map(repr, unmatched))}; "
                         f"this model's parameters begin with {', '.join(tops)} (e.g. {names[-1]!r})")
    flags = [p.requires_grad for _, p in params]
    for name, p in params:
        p.requires_grad_(any(name.startswith(prefix) for prefix in prefixes))
    try:
        with warnings.catch_warnings():  # pyro.module's note on each fixed parameter: intended
            warnings.filterwarnings("ignore", message=".*not registered in the param store")
            yield program
    finally:
        for (_, p), flag in zip(params, flags):
            p.requires_grad_(flag)


class NonFiniteLoss(RuntimeError):
    pass


def free_nats_penalty(program, batch: DiffusionBatch, free_nats: float) -> torch.Tensor:
    """``sum_b w(t_b) relu(free_nats - KL(q(z | x0_b, xt_b) || p(z | xt_b)))``.

    Added to the SVI loss it turns each sequence's KL term ``w(t) KL`` into
    ``w(t) max(KL, free_nats)`` ("free bits", Kingma et al. 2016): the first ``free_nats`` nats of
    information in ``z`` cost nothing, so the guide is not pulled onto the prior (posterior
    collapse). The result is no longer a bound; evaluation still reports the plain objective. Needs a
    closed-form KL (Normal guide with a Gaussian or conditional prior, or a discrete latent).
    """
    q, p = program.guide_dist(batch.guide_tokens, batch.masked), program.batch_prior(batch)
    try:
        kl = torch.distributions.kl_divergence(q, p)
    except NotImplementedError:
        raise ValueError(f"free nats need a closed-form KL(q || p); the {program.cfg.prior!r} "
                         "prior has none") from None
    return (batch.weight * torch.relu(free_nats - kl) * batch.latent_used()).sum()


def check_paths(program, cfg: TrainConfig) -> None:
    """The ``paths`` objective needs one latent per sequence that a guide can infer from a whole
    path: a VMD without blocks, a guide that reads paths (the exact posterior), one ``T``."""
    if not program.has_latent or program.block_size:
        raise ValueError("--objective paths trains a VMD without blocks (one z for a path); "
                         "MDM's paths objective equals steps")
    if not getattr(program.guide_net, "reads_paths", False):
        raise ValueError(f"--objective paths needs a guide that reads a whole path (--guide "
                         f"exact), not {program.cfg.guide or program.prior.default_guide!r}")
    if len(cfg.train_nfe) != 1:
        raise ValueError(f"--objective paths trains one T, got --train-nfe {list(cfg.train_nfe)}")
    if cfg.free_nats:
        raise ValueError("free nats are for the joint and steps objectives")


def draw_batch(sample_fn, program, cfg: TrainConfig, generator) -> DiffusionBatch:
    """This rank's share of one global training batch.

    Every rank draws the whole global batch (data, times, masks) from the same generator and keeps
    its own contiguous rows, so the union over ranks is exactly the batch a single process draws
    (drawing tokens and masks is cheap next to the networks)."""
    x0, maskable = sample_fn(cfg.batch_size, generator)
    order_scores = (None if cfg.train_order == "random"
                    else sampler_scores(program, cfg.train_order, generator))
    if cfg.objective == "steps":
        batch = program.step_batch(x0, cfg.train_nfe, maskable, generator=generator,
                                   order_scores=order_scores)
    elif cfg.objective == "paths":
        batch = path_batch(x0, program.mask_id, cfg.train_nfe[0], maskable=maskable,
                           generator=generator, order_scores=order_scores)
    else:
        batch = program.corrupt(x0, maskable, antithetic=cfg.antithetic, generator=generator)
    rank, world = distributed.rank_and_world()
    if world == 1:
        return batch
    return batch.select(slice(rank * len(batch) // world, (rank + 1) * len(batch) // world))


def train(program, sample_fn, cfg: TrainConfig, *, eval_fn=None, log=None, save=None,
          resume=None, run_info: dict | None = None) -> list[dict]:
    """Train ``program`` on batches from ``sample_fn(batch_size, generator) -> (x0, maskable)``.

    Returns the history: one record per evaluation with the step, the running training loss (nats
    per sequence, at the current beta) and whatever ``eval_fn(program)`` returns. Evaluation runs
    on a fork of the random state, so it never changes the training trajectory.

    ``save``: checkpoint path, written every ``cfg.save_every`` steps and at the end (rank 0 only).
    ``resume``: continue from this checkpoint (refused if it was written under another program
    config, trajectory fields of ``cfg``, ``run_info`` or number of ranks). ``run_info``: facts
    about the run (task, data set) stored in every checkpoint and checked on resume.
    ``cfg.train_only``: train only the parameters with these name prefixes; the rest stay fixed.
    """
    if cfg.engine not in ("fused", "svi"):
        raise ValueError(f"unknown engine {cfg.engine!r}; choose 'fused' or 'svi'")
    if cfg.objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {cfg.objective!r}; choose from {', '.join(OBJECTIVES)}")
    if cfg.objective in ("steps", "paths"):
        if not cfg.train_nfe or min(cfg.train_nfe) < 1:
            raise ValueError(f"--train-nfe must be >= 1, got {list(cfg.train_nfe)}")
    if cfg.objective == "paths":
        check_paths(program, cfg)
    if cfg.train_order not in ORDERS:
        raise ValueError(f"unknown training order {cfg.train_order!r}; choose from {', '.join(ORDERS)}")
    if cfg.train_order != "random" and (cfg.objective == "joint" or program.block_size):
        raise ValueError("a training order other than random needs --objective steps or paths "
                         "and a model without blocks")
    if cfg.free_nats < 0:
        raise ValueError(f"free nats must be >= 0, got {cfg.free_nats}")
    if cfg.free_nats and (cfg.engine != "fused" or not program.has_latent or program.block_size):
        raise ValueError("free nats need the fused engine and a VMD model without blocks")
    rank, world = distributed.rank_and_world()
    if world > 1 and cfg.engine != "fused":
        raise ValueError("multi-process training needs the fused engine (SVI steps the optimiser "
                         "before gradients could be averaged across ranks)")
    if cfg.batch_size % world:
        raise ValueError(f"the global batch size {cfg.batch_size} must be divisible by the number "
                         f"of processes ({world})")
    with requires_grad_only(program, cfg.train_only) if cfg.train_only else contextlib.nullcontext():
        return _optimise(program, sample_fn, cfg, eval_fn, log, save, resume, run_info)


def _optimise(program, sample_fn, cfg, eval_fn, log, save, resume, run_info) -> list[dict]:
    """:func:`train`'s loop, after its checks."""
    rank, world = distributed.rank_and_world()
    device = next(program.parameters()).device
    # Data and masks come from one shared stream (see draw_batch); the latent noise Pyro draws
    # from torch's global generator is independent across ranks.
    pyro.set_rng_seed(cfg.seed + rank)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    pyro.enable_validation(cfg.validate)
    elbo = program.make_elbo()
    if cfg.engine == "fused":
        # fused: one kernel over all parameters instead of a Python loop over tensors (15-20%
        # of a synthetic MLP step, 4-5% of a transformer step: results/bench/profile.json);
        # same update rule.
        optimizer = torch.optim.AdamW(program.parameters(), lr=cfg.lr,
                                      weight_decay=cfg.weight_decay,
                                      fused=device.type in ("cpu", "cuda"))
    else:
        optim = pyro.optim.Adam({"lr": cfg.lr, "weight_decay": cfg.weight_decay},
                                {"clip_norm": cfg.clip_norm} if cfg.clip_norm else None)
        svi = pyro.infer.SVI(program.model, program.guide, optim, loss=elbo)
    if world > 1:
        distributed.broadcast_parameters(program)

    run_info = dict(run_info or {})
    expected = {"program_config": program.cfg.to_dict(), **run_info,
                "train_config": {k: getattr(cfg, k) for k in TRAJECTORY_FIELDS}}
    history, running, first_step, elapsed_before, last_good = [], None, 1, 0.0, None
    if resume is not None:
        state = read_checkpoint(resume)
        try:  # configs saved before a field existed get its default (what they were made with)
            state["program_config"] = type(program.cfg).from_dict(state["program_config"]).to_dict()
            if "train_config" in state:
                state["train_config"] = TrainConfig(**state["train_config"]).to_dict()
        except (TypeError, KeyError) as err:
            raise ValueError(f"cannot resume from {str(resume)!r}: its configuration is not one "
                             f"this version knows ({type(err).__name__}: {err})") from None
        resumed = check_resumable(resume, state, expected)
        if len(resumed["rng"]) != world:
            raise ValueError(f"cannot resume from {str(resume)!r}: it was written by "
                             f"{len(resumed['rng'])} process(es), this run has {world}")
        try:
            program.load_state_dict(state["state_dict"])
            if cfg.engine == "fused":
                optimizer.load_state_dict(resumed["optimizer"])
            else:
                optim.set_state(resumed["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"cannot resume from {str(resume)!r}: its parameters or optimiser "
                             f"state do not fit this run ({type(err).__name__})") from None
        set_rng_state(resumed["rng"][rank], generator)
        history, running = state["history"], resumed["running"]
        first_step, elapsed_before = resumed["step"] + 1, state["train_seconds"]
        last_good = (resume, resumed["step"])

    start = time.perf_counter()
    clock = lambda: time.perf_counter() - start  # noqa: E731
    over_budget = lambda: bool(cfg.time_budget) and clock() >= cfg.time_budget  # noqa: E731

    def write_checkpoint(step):
        rngs = distributed.gather_objects(rng_state(generator))  # a collective: every rank calls
        if rank == 0:
            save_checkpoint(save, program, **run_info, train_config=cfg.to_dict(),
                            history=history, train_seconds=elapsed_before + clock(),
                            training_state={
                                "step": step, "running": running, "rng": rngs,
                                "optimizer": (optimizer.state_dict() if cfg.engine == "fused"
                                              else optim.get_state())})

    bar = tqdm(range(first_step, cfg.steps + 1), initial=first_step - 1, total=cfg.steps,
               disable=not cfg.progress or rank > 0, desc="train", leave=False)
    program.train()
    for step in bar:
        beta = kl_weight(step, cfg.anneal_steps)
        batch = draw_batch(sample_fn, program, cfg, generator)
        if cfg.engine == "fused":
            optimizer.zero_grad(set_to_none=True)
            loss = elbo.differentiable_loss(program.model, program.guide, batch, beta)
            if cfg.free_nats:
                loss = loss + beta * free_nats_penalty(program, batch, cfg.free_nats)
            loss.backward()
            out_of_time = over_budget()
            if world > 1:  # one collective: the gradients, the loss, and whether any rank is late
                # (ranks must stop at the same step, or one would wait forever in the next step's
                # collective while the other writes its checkpoint)
                loss, late = distributed.all_reduce_gradients(program.parameters(), loss,
                                                              float(out_of_time))
                out_of_time = late > 0
            else:
                loss = float(loss.detach())
            if math.isfinite(loss):  # checked before the step: a bad batch never reaches params
                if cfg.clip_norm:
                    torch.nn.utils.clip_grad_norm_(program.parameters(), cfg.clip_norm)
                optimizer.step()
        else:
            loss = svi.step(batch, beta)
            out_of_time = over_budget()
        if not math.isfinite(loss):
            raise NonFiniteLoss(f"loss became {loss} at step {step}; {_kept(last_good)}. Lower "
                                "the learning rate or raise --anneal-steps")
        per_seq = loss / cfg.batch_size
        running = per_seq if running is None else 0.98 * running + 0.02 * per_seq
        # refresh=False: the bar redraws at its own pace instead of on every step
        # beta weighs the KL term, so a model without z (MDM) has none to report
        kl_weight_shown = {"beta": beta} if program.has_latent else {}
        bar.set_postfix(loss=f"{running:.3f}", **{k: f"{v:.2f}" for k, v in kl_weight_shown.items()},
                        refresh=False)
        if step == cfg.steps or out_of_time or (cfg.eval_every and step % cfg.eval_every == 0):
            record = {"step": step, "train_loss": running, **kl_weight_shown,
                      "elapsed": elapsed_before + clock()}
            if eval_fn is not None and rank == 0:
                program.eval()
                with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                    record.update(eval_fn(program))
                program.train()
            history.append(record)
            if log is not None and rank == 0:
                log(record)
        if save is not None and (step == cfg.steps or out_of_time or (cfg.save_every and
                                                                      step % cfg.save_every == 0)):
            try:
                write_checkpoint(step)
            except CheckpointWriteError as err:  # stop: going on would train with nothing saved
                raise CheckpointWriteError(f"{err}; training stopped at step {step}, "
                                           f"{_kept(last_good)}") from None
            last_good = (save, step)
        if out_of_time:  # equal-time comparisons: the history's last record says how far it got
            break
    program.eval()
    return history


def _kept(last_good) -> str:
    if last_good is None:
        return "no checkpoint was written"
    return f"the last good checkpoint (step {last_good[1]}) is kept at {str(last_good[0])!r}"
