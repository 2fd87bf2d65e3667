"""Saving and loading trained programs.

A checkpoint holds the program configuration and every network parameter (denoiser, prior, guide),
so :func:`load_program` rebuilds the exact model without the training script. ``extra`` carries
whatever else the caller wants to keep (training config, metrics, optimiser state).
"""
from __future__ import annotations

import os
from pathlib import Path

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
