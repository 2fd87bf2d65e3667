"""The task protocol and registry: ``experiments/run.py --task NAME`` picks a :class:`Task`.

A task is one experiment family: its own command-line options and the defaults it gives the shared
ones, the data it builds, how a model is monitored while it trains, and how a trained model is
evaluated into result rows. Adding a task is one file under ``vmd_pyro/tasks/`` with a subclass
decorated with :func:`register_task`, imported in ``vmd_pyro/tasks/__init__.py``.
"""
from __future__ import annotations

import argparse
from typing import Callable

import pyro
import torch

from vmd_pyro import bounds
from vmd_pyro.registry import register


class Task:
    """Base class of tasks. ``__init__(args, device)`` builds ``self.data``: the data set the
    program is sized by (``vocab_size``, ``seq_len``, ``position_groups``)."""

    name: str = ""
    columns: list[str] = []       # the printed table
    several_orders: bool = False  # --order may list several orders, each evaluated
    several_fills: bool = False   # --fill may list several fills, each evaluated
    has_position_groups: bool = False  # --structure embed / attend has groups to use

    # --- before any data: options, defaults, checks (class methods) ---------------------------
    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Add the task's own option group (run.py adds every task's)."""

    @classmethod
    def defaults(cls, args) -> dict:
        """Values for the shared options left at ``None`` (explicit flags always win)."""
        return {}

    @classmethod
    def fill_defaults(cls, args) -> None:
        for name, value in cls.defaults(args).items():
            if getattr(args, name, None) is None:
                setattr(args, name, value)

    @classmethod
    def check(cls, args, parser) -> None:
        """Refuse bad values of the task's own options (run for every task: each checks its own)."""

    @classmethod
    def maskable(cls, args) -> int:
        """The most positions a sequence can have masked: no sampler has more steps than that."""
        raise NotImplementedError

    # --- with data ------------------------------------------------------------------------------
    def __init__(self, args, device: torch.device):
        self.args, self.device = args, device
        self.data = None

    @property
    def run_info(self) -> dict:
        """Facts about the run stored in checkpoints and checked on ``--resume``."""
        return {"dataset": getattr(self.data, "name", None), "p": None}

    def training(self, model: str) -> tuple[Callable, Callable | None]:
        """``(sample, monitor)`` for training ``model``: the batch sampler
        ``sample(batch_size, generator) -> (x0, maskable)`` on the device, and the evaluation run
        every ``--eval-every`` steps, ``monitor(program) -> dict``."""
        raise NotImplementedError

    def evaluate(self, model: str, trained) -> list[dict]:
        """Result rows of a trained model (:class:`vmd_pyro.tasks.runner.Trained`)."""
        raise NotImplementedError

    def notes(self, runs: list[dict]) -> list[str]:
        """Lines printed under the table."""
        return []

    # --- shared by the tasks' evaluate ----------------------------------------------------------
    def evaluation_generator(self) -> torch.Generator:
        """A fresh seeded stream (and Pyro's) for one part of the final evaluation: the part then
        gives the same numbers whether it follows training or a loaded ``--checkpoint``, and
        whatever was evaluated before it (other NFE values, other splits)."""
        pyro.set_rng_seed(self.args.seed + 2)
        return torch.Generator(device=self.device).manual_seed(self.args.seed + 2)

    def decoding(self) -> dict:
        """The sampler's latent and selection options from the command line, as
        :func:`vmd_pyro.sampling.generate` takes them: ``z_strategy``, ``candidates``, ``select``,
        ``check_groups``, ``check_distinct``, ``temperature``, ``z_values``."""
        return {name: getattr(self.args, name)
                for name in ("z_strategy", "candidates", "select", "check_groups", "check_distinct",
                             "temperature", "z_values")}

    def likelihood_bounds(self, program, x0, maskable, weights=None) -> list[dict]:
        """B_T and its importance-weighted form at every ``--bound-nfe`` (default: the evaluated
        NFEs), for each ``--bound-z`` generator of a VMD; for MDM also the exact ``-log p_T`` under
        each confidence order in ``--order``. Each entry names the generator it bounds and is
        estimated from its own fresh stream, whichever others are asked for."""
        args = self.args
        z_strategies = args.bound_z if program.has_latent else ["resample"]
        orders = ["random"] + ([o for o in args.order if o != "random"]
                               if not program.has_latent else [])
        out = []
        for nfe in args.bound_nfe or args.nfe:
            for order in orders:
                for z_strategy in z_strategies:
                    opts = bounds.BoundOptions(nfe=nfe, order=order, z_strategy=z_strategy,
                                               num_orders=args.bound_orders,
                                               iw_samples=args.bound_iw_samples)
                    out.append(bounds.evaluate_nll_bounds(program, x0, maskable, opts,
                                                          weights=weights,
                                                          generator=self.evaluation_generator()))
        return out


def attach_bounds(rows: list[dict], found: list[dict]) -> None:
    """Give each row the bound of its own NFE (its order where one exists, else random order; the
    first ``--bound-z`` generator) beside the full list under ``bounds``."""
    for row in rows:
        row["bounds"] = found
        same = [b for b in found if b["bound_nfe"] == row["nfe"]]
        match = ([b for b in same if b["bound_order"] == row.get("order")]
                 or [b for b in same if b["bound_order"] == "random"])
        if match:
            row.update({k: match[0][k] for k in ("nll_bound_bits", "iw_nll_bound_bits",
                                                 "nll_bound_bits_se", "iw_nll_bound_bits_se",
                                                 "bound_generator")})


def model_record(model: str, trained) -> dict:
    """What every row says about the model: read from the program's own configuration and the
    training record (a loaded checkpoint's, not the command line's)."""
    program = trained.program
    return {"model": model, "prior": program.cfg.prior if program.has_latent else None,
            "block_size": program.cfg.net.block_size or program.cfg.net.seq_len,
            "steps": trained.train_config.get("steps"),
            "parameters": program.num_parameters(), "train_seconds": trained.train_seconds,
            "history": trained.history, "config": program.cfg.to_dict(),
            "train_config": trained.train_config}


TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} must set a class attribute `name`")
    register(TASKS, cls.name, cls)
    return cls
