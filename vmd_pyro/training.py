"""The training loop: SVI on the Pyro model and guide of a :class:`DiffusionProgram`.

Two engines compute the same loss from the same model and guide:

* ``fused`` (default): ``elbo.differentiable_loss`` and one ``torch.optim.AdamW`` over all networks,
  with gradient clipping on the global norm. Pyro's own optimisers hold one torch optimiser per
  tensor and ``ClippedAdam`` clamps elementwise, so a global norm clip needs this route.
* ``svi``: ``pyro.infer.SVI`` with ``pyro.optim.Adam`` (per-tensor norm clipping).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import pyro
import torch
from tqdm.auto import tqdm



@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.0
    clip_norm: float = 1.0
    anneal_steps: int = 500        # KL annealing: beta rises linearly from 0 to 1 over these steps
    eval_every: int = 500          # 0: only at the end
    eval_batches: int = 4
    seed: int = 0
    engine: str = "fused"          # "fused" or "svi"
    validate: bool = True          # Pyro's distribution/shape validation (slower; off for long runs)
    antithetic: bool = True        # stratified diffusion times across the batch
    progress: bool = True
    time_budget: float = 0.0       # seconds; stop early once training has run this long (0 = off)

    def to_dict(self) -> dict:
        return asdict(self)


def kl_weight(step: int, anneal_steps: int) -> float:
    """beta for KL annealing: linear 0 -> 1 over ``anneal_steps``, then 1."""
    if anneal_steps <= 0:
        return 1.0
    return min(1.0, max(step, 1) / anneal_steps)  # Pyro refuses a scale of exactly 0


class NonFiniteLoss(RuntimeError):
    pass


def train(program, sample_fn, cfg: TrainConfig, *, eval_fn=None, log=None) -> list[dict]:
    """Train ``program`` on batches from ``sample_fn(batch_size, generator) -> (x0, maskable)``.

    Returns the history: one record per evaluation with the step, the running training loss (nats
    per sequence, at the current beta) and whatever ``eval_fn(program)`` returns.
    """
    if cfg.engine not in ("fused", "svi"):
        raise ValueError(f"unknown engine {cfg.engine!r}; choose 'fused' or 'svi'")
    device = next(program.parameters()).device
    pyro.set_rng_seed(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    pyro.enable_validation(cfg.validate)
    elbo = program.make_elbo()
    if cfg.engine == "fused":
        optimizer = torch.optim.AdamW(program.parameters(), lr=cfg.lr,
                                      weight_decay=cfg.weight_decay)
    else:
        optim = pyro.optim.Adam({"lr": cfg.lr, "weight_decay": cfg.weight_decay},
                                {"clip_norm": cfg.clip_norm} if cfg.clip_norm else None)
        svi = pyro.infer.SVI(program.model, program.guide, optim, loss=elbo)

    history, running = [], None
    bar = tqdm(range(1, cfg.steps + 1), disable=not cfg.progress, desc="train", leave=False)
    start = time.perf_counter()
    for step in bar:
        program.train()
        beta = kl_weight(step, cfg.anneal_steps)
        x0, maskable = sample_fn(cfg.batch_size, generator)
        batch = program.corrupt(x0, maskable, antithetic=cfg.antithetic, generator=generator)
        if cfg.engine == "fused":
            optimizer.zero_grad(set_to_none=True)
            loss = elbo.differentiable_loss(program.model, program.guide, batch, beta)
            loss.backward()
            if cfg.clip_norm:
                torch.nn.utils.clip_grad_norm_(program.parameters(), cfg.clip_norm)
            optimizer.step()
            loss = float(loss.detach())
        else:
            loss = svi.step(batch, beta)
        if not math.isfinite(loss):
            raise NonFiniteLoss(f"loss became {loss} at step {step}; lower the learning rate or "
                                f"raise --anneal-steps")
        per_seq = loss / len(batch)
        running = per_seq if running is None else 0.98 * running + 0.02 * per_seq
        bar.set_postfix(loss=f"{running:.3f}", beta=f"{beta:.2f}")
        out_of_time = bool(cfg.time_budget) and time.perf_counter() - start >= cfg.time_budget
        if step == cfg.steps or out_of_time or (cfg.eval_every and step % cfg.eval_every == 0):
            record = {"step": step, "train_loss": running, "beta": beta,
                      "elapsed": time.perf_counter() - start}
            if eval_fn is not None:
                program.eval()
                record.update(eval_fn(program))
            history.append(record)
            if log is not None:
                log(record)
        if out_of_time:  # equal-time comparisons: the history's last record says how far it got
            break
    program.eval()
    return history
