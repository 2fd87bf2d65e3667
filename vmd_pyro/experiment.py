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
    """The current commit (with ``-dirty`` if the work tree has changes), or ``unknown``."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(seed: int) -> dict:
    return {"seed": seed, "git_commit": git_commit(), "command": " ".join([sys.executable.split("/")[-1]] + sys.argv),
            "torch": torch.__version__, "pyro": pyro.__version__, "threads": torch.get_num_threads()}


def load_script(name: str) -> ModuleType:
    """``experiments/NAME.py`` as a module (``sweep`` calls ``run.main``). The scripts are not a
    package: this loads one by its path instead of putting ``experiments/`` on ``sys.path``."""
    path = REPO / "experiments" / f"{name}.py"
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


def write_json(path: str | os.PathLike, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")


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
