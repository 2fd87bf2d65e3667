"""Fault injection: the machinery behind the reliability tests and ``experiments/reliability.py``.

* :func:`survive_kills`: train in a forked child process that SIGKILLs itself at a chosen point
  (during a training step, during evaluation, halfway through writing a checkpoint, or after the
  checkpoint's bytes are on disk but before the rename), resume in a fresh child, and so on until a
  last child finishes. The caller compares the result with an uninterrupted run.
* :func:`mutations` / :func:`random_blobs`: seeded damaged inputs for the file readers, and
  :func:`classify`, which accepts only a correct parse or a one-line ``ValueError``.

Kills are real (``os.kill(os.getpid(), SIGKILL)``: no cleanup, no ``finally``, no flush) and
self-inflicted at a seeded point, so a failure reproduces exactly.
"""
from __future__ import annotations

import os
import random
import signal
import traceback
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pyro

from vmd_pyro import checkpoint
from vmd_pyro.networks import NetConfig
from vmd_pyro.program import ProgramConfig, build_program

KILL_POINTS = ("step", "eval", "mid-write", "before-rename")


@dataclass(frozen=True)
class Kill:
    """SIGKILL at the ``nth`` (1-based, counted in the process) event of kind ``point``; for
    ``mid-write`` after ``fraction`` of the checkpoint file's bytes are written."""
    point: str
    nth: int
    fraction: float = 0.5


# The four kinds of model the reliability checks train: tiny, so that a kill cycle takes well under
# a second. All fit a task of vocabulary 10 and length 4 (synthetic quad-d1).
def _config(model="vmd", prior="gaussian", arch="mlp", block_size=0) -> ProgramConfig:
    net = NetConfig(vocab_size=10, seq_len=4, arch=arch, hidden=16, layers=1, heads=2,
                    block_size=block_size)
    return ProgramConfig(net=net, model=model, prior=prior, latent_dim=3, components=3)


MODELS = {"mdm": _config(model="mdm"),
          "gaussian-vmd": _config(),
          "discrete-vmd": _config(prior="discrete"),   # its guide is enumerated, not sampled
          "block-vmd": _config(arch="transformer", block_size=2)}


def make_program(name: str, seed: int = 0):
    pyro.set_rng_seed(seed)  # the same initialisation every time
    return build_program(MODELS[name])


def random_kills(rng: random.Random, count: int, max_nth: int = 2) -> list[Kill]:
    """``count`` kill points, every kind once before any repeats, in random order."""
    points = []
    while len(points) < count:
        points += rng.sample(KILL_POINTS, len(KILL_POINTS))
    return [Kill(p, rng.randint(1, max_nth + (p == "step")), round(rng.uniform(0.05, 0.95), 3))
            for p in points[:count]]


def run_child(train_once, kill: Kill | None) -> int:
    """Run ``train_once(wrap_sample, wrap_eval)`` in a forked child armed with ``kill``. Returns the
    signal number that ended it (``SIGKILL`` when the kill point was reached), or ``0`` when it
    finished first; raises if the child failed."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's stack
        status = 1
        try:
            with ExitStack() as stack:
                wrap = _arm(kill, stack)
                train_once(wrap("step"), wrap("eval"))
            status = 0
        except BaseException:  # noqa: BLE001 - reported to the parent through the exit status
            traceback.print_exc()
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status)
    if os.WEXITSTATUS(status) != 0:
        raise RuntimeError(f"the training child failed (exit status {os.WEXITSTATUS(status)})")
    return 0


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(kill: Kill | None, stack: ExitStack):
    """Install the kill point; returns ``wrap(kind)``, which arms a step or eval function."""
    counts = dict.fromkeys(KILL_POINTS, 0)

    def hit(point) -> bool:
        counts[point] += 1
        return kill is not None and kill.point == point and counts[point] == kill.nth

    if kill is not None and kill.point == "mid-write":
        real_open = open

        class PartialFile:
            def __init__(self, f):
                self.f = f

            def write(self, data):
                if not hit("mid-write"):
                    return self.f.write(data)
                self.f.write(data[:int(len(data) * kill.fraction)])
                self.f.flush()
                os.fsync(self.f.fileno())
                _die()

            def __getattr__(self, name):
                return getattr(self.f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self.f.__exit__(*exc)

        stack.enter_context(mock.patch.object(
            checkpoint, "open", lambda *a, **k: PartialFile(real_open(*a, **k)), create=True))
    if kill is not None and kill.point == "before-rename":
        real_replace = os.replace

        def replace(src, dst):
            if hit("before-rename"):
                _die()
            return real_replace(src, dst)

        stack.enter_context(mock.patch.object(checkpoint.os, "replace", replace))

    def wrap(kind):
        def arm(fn):
            if fn is None:
                return None

            def armed(*args, **kwargs):
                if hit(kind):
                    _die()
                return fn(*args, **kwargs)
            return armed
        return arm
    return wrap


def survive_kills(train_once, save: Path, kills: list[Kill]) -> list[dict]:
    """Kill and resume through ``kills``, then finish in a last child. ``train_once(resume,
    wrap_sample, wrap_eval)`` trains (resuming from ``resume`` when it is not ``None``) and saves
    to ``save``. Returns one record per child: the kill point, whether it was reached, and the step
    of the checkpoint it left (``None`` if there was none)."""
    records = []
    for kill in [*kills, None]:
        resume = save if save.exists() else None  # killed before the first save: start afresh
        signal_number = run_child(lambda s, e: train_once(resume, s, e), kill)
        record = {"kill": None if kill is None else vars(kill),
                  "reached": signal_number == signal.SIGKILL, "checkpoint_step": None}
        records.append(record)
        try:
            if save.exists():
                record["checkpoint_step"] = checkpoint.read_checkpoint(save)["training_state"]["step"]
        except ValueError as err:  # the kill destroyed the checkpoint: nothing to resume from
            record["unreadable"] = str(err)
            break
        if kill is not None and not record["reached"]:
            break  # training finished before the kill point: nothing left to interrupt
    return records


# --- damaged inputs ----------------------------------------------------------------------------
def mutations(data: bytes, rng: random.Random, count: int):
    """``count`` near-valid variants of ``data``: bit flips, truncations, overwritten, inserted,
    deleted and duplicated bytes, each different from ``data`` (a byte overwritten with its own
    value, a truncation at the end or a duplicate of nothing is drawn again: it would be no
    mutation, and a checker rightly accepts it). Yields ``(kind, bytes)``."""
    kinds = ("flip", "truncate", "overwrite", "insert", "delete", "duplicate")
    for i in range(count):
        kind = kinds[i % len(kinds)]
        b = _mutate(bytearray(data), kind, rng)
        while data and bytes(b) == data:
            b = _mutate(bytearray(data), kind, rng)
        yield kind, bytes(b)


def _mutate(b: bytearray, kind: str, rng: random.Random) -> bytearray:
    """One draw of mutation ``kind`` on ``b`` (in place; returned)."""
    at = rng.randrange(len(b) + 1)
    if kind == "flip" and b:
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del b[at:]
    elif kind == "overwrite":
        for _ in range(rng.randint(1, 8)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == "insert":
        b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    elif kind == "delete":
        del b[at:at + rng.randint(1, 8)]
    elif kind == "duplicate":
        b[at:at] = b[max(0, at - 16):at]
    return b


def random_blobs(rng: random.Random, count: int, max_len: int = 400):
    """``count`` random byte strings, from empty to ``max_len`` bytes; every fourth one drawn from
    the printable characters, the rest from all 256 byte values."""
    for i in range(count):
        n = rng.randrange(max_len + 1)
        if i % 4 == 0:
            yield bytes(rng.choice(b"0123456789.,;| \t\n#abcxyz") for _ in range(n))
        else:
            yield bytes(rng.randrange(256) for _ in range(n))


def classify(parse, *args) -> tuple[str, object]:
    """``("parsed", result)`` or ``("refused", message)`` for a one-line ``ValueError``; anything
    else (another exception type, an empty or multi-line message) propagates as a failure."""
    try:
        return "parsed", parse(*args)
    except ValueError as err:
        message = str(err)
        if not message or "\n" in message:
            raise AssertionError(f"unclear refusal: {message!r}") from err
        return "refused", message
