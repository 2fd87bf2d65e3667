"""Saving and loading trained programs, and resuming training.

A checkpoint holds the program configuration and every network parameter (denoiser, prior, guide),
so :func:`load_program` rebuilds the exact model without the training script. ``extra`` carries
whatever else the caller wants to keep (training config, metrics, history).

Checkpoints written by :func:`vmd_pyro.training.train` also hold a ``training_state`` (step,
optimiser state, running loss and the random number generator states of every rank), so that
``train(..., resume=PATH)`` continues bit for bit where the run stopped. :func:`check_resumable`
refuses a checkpoint written under a different configuration.
"""
from __future__ import annotations

import os
from pathlib import Path

import pyro.util
import torch

from vmd_pyro.program import ProgramConfig, build_program

FORMAT = "vmd-pyro-checkpoint-v1"


def save_checkpoint(path: str | os.PathLike, program, **extra) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "program_config": program.cfg.to_dict(),
             "state_dict": program.state_dict(), **extra}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a crash mid-write never leaves a half checkpoint


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise ValueError(f"{str(path)!r} is not a readable vmd-pyro checkpoint ({err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a vmd-pyro checkpoint (format {FORMAT})")
    return state


def load_program(path: str | os.PathLike, map_location="cpu"):
    """Rebuild a trained program from a checkpoint; returns ``(program, checkpoint_dict)``."""
    state = read_checkpoint(path, map_location)
    program = build_program(ProgramConfig.from_dict(state["program_config"]))
    program.load_state_dict(state["state_dict"])
    program.eval()
    return program.to(map_location), state


# --- resuming ---------------------------------------------------------------------------------
def rng_state(generator: torch.Generator) -> dict:
    """Every random stream training draws from: torch (and CUDA), Python, NumPy (Pyro's
    ``get_rng_state``) and the training batch generator."""
    state = {**pyro.util.get_rng_state(), "generator": generator.get_state()}
    if generator.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(generator.device)
    return state


def set_rng_state(state: dict, generator: torch.Generator) -> None:
    pyro.util.set_rng_state({k: state[k] for k in ("torch", "random", "numpy")})
    generator.set_state(state["generator"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], generator.device)


def check_resumable(path, state: dict, expected: dict) -> dict:
    """Refuse to resume from a checkpoint whose configuration differs from this run's.

    ``expected`` maps checkpoint keys (``program_config``, ``train_config``, anything the caller
    stores such as ``task``) to this run's values; a dict value is compared only on its own keys,
    so a training config may leave out fields that do not change the trajectory (e.g. ``steps``).
    Returns the checkpoint's ``training_state``.
    """
    if "training_state" not in state:
        raise ValueError(f"{str(path)!r} holds a trained model but no training state, so training "
                         "cannot resume from it (it was not written by train())")
    differences = []
    for key, value in expected.items():
        saved = state.get(key)
        if isinstance(value, dict) and isinstance(saved, dict):
            differences += [f"{key}.{k}: checkpoint {saved.get(k)!r}, this run {v!r}"
                            for k, v in _flatten(value).items() if _flatten(saved).get(k) != v]
        elif saved != value:
            differences.append(f"{key}: checkpoint {saved!r}, this run {value!r}")
    if differences:
        raise ValueError(f"cannot resume from {str(path)!r}: it was written by a different "
                         "configuration (" + "; ".join(differences) + ")")
    return state["training_state"]


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
