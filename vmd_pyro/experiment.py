"""Helpers shared by the experiment scripts: provenance, JSON output and markdown tables."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import pyro
import torch

from vmd_pyro.cli import fail

REPO = Path(__file__).resolve().parent.parent


def git_commit() -> str:
    """The current commit (with ``-dirty`` if the work tree has changes), or ``unknown``.
    ``$VMD_PYRO_COMMIT``, where set, wins: a copy of the work tree on another machine can carry
    no ``.git``, or an older one, and its caller knows what it sent."""
    if os.environ.get("VMD_PYRO_COMMIT"):
        return os.environ["VMD_PYRO_COMMIT"]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# Read when the process starts (this module is imported first thing), so that a long run records
# the code it ran even if the work tree moves on before it writes its results.
COMMIT_AT_START = git_commit()


def provenance(seed: int | None) -> dict:
    return {"seed": seed, "git_commit": COMMIT_AT_START, "command": " ".join([sys.executable.split("/")[-1]] + sys.argv),
            "torch": torch.__version__, "pyro": pyro.__version__, "threads": torch.get_num_threads()}


def load_script(name: str, folder: str = "experiments") -> ModuleType:
    """``FOLDER/NAME.py`` as a module (``sweep`` calls ``run.main``). The scripts are not a
    package: this loads one by its path instead of putting ``FOLDER`` on ``sys.path``."""
    path = REPO / folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resolve_device(name: str) -> torch.device:
    """The torch device for ``--device``; a one-line error (exit status 2) when it cannot be used."""
    if name not in ("cpu", "cuda"):
        fail(f"unknown device {name!r}; choose cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        fail("--device cuda requested but CUDA is not available on this machine")
    return torch.device(name)


# Below this many FLOPs per training step (about 30 ms of one core), the work per operator is too
# small for intra-op threads to pay for their synchronisation, and on a shared machine a second
# thread mostly waits for a core: the default synthetic MLP (about 0.2 GFLOP) runs on one thread.
SMALL_STEP_FLOPS = 1e9


def training_step_flops(arch: str, hidden: int, layers: int, seq_len: int, vocab: int,
                        batch_size: int) -> float:
    """Rough FLOPs of one denoiser training step (forward and backward, 3x the forward's
    multiply-adds x 2), enough to tell a small network from a large one."""
    if arch == "transformer":
        per_sequence = seq_len * layers * (12 * hidden * hidden + 2 * seq_len * hidden)
    else:
        per_sequence = seq_len * hidden * hidden + layers * hidden * hidden
    per_sequence += seq_len * hidden * vocab
    return 6.0 * batch_size * per_sequence


def choose_threads(step_flops: float) -> int:
    """Torch CPU threads for a training step of ``step_flops``: 1 for a small step, else the cores
    this process may use minus those other processes keep busy (1-minute load average), at
    least 1. More threads than free cores make every thread wait for the others at each operator
    (a busy 2-core machine ran the default job 3x slower with 2 threads than with 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if step_flops < SMALL_STEP_FLOPS:
        return 1
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores or 1, round((cores or 1) - busy)))


def write_json(path: str | os.PathLike, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike) -> dict:
    """A JSON file this project wrote, or a ValueError that says what is wrong with it."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        raise ValueError(f"cannot read {str(path)!r}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(path)!r} is not JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{str(path)!r} holds a JSON {type(data).__name__}, not an object")
    return data


def result_runs(data: dict) -> list[dict]:
    """The result rows of a ``run.py`` JSON: a file of one row holds it at the top level, a file of
    several holds them under ``runs``."""
    return data["runs"] if "runs" in data else [data]


def _jsonable(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def run_commands(commands: list[list[str]], log_paths: list[Path], jobs: int = 1) -> list[int]:
    """Run experiment commands (``jobs`` at a time, each its own process), stdout+stderr to its
    log; returns the exit codes. For sweeps of ``experiments/run.py``."""
    def one(item):
        cmd, log = item
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as f:
            return subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT).returncode

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(one, zip(commands, log_paths)))
