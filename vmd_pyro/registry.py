"""The tables a :class:`~vmd_pyro.program.DiffusionProgram` is built from, filled by the packages
that define their entries.

Imports run one way: ``models`` and ``guides`` import ``vmd_pyro``, never the reverse. Importing
``models`` fills all three tables: every module of ``models`` registers its priors (``PRIORS``,
through ``models.registry.register_prior``) and its Pyro model functions paired with their guide
functions (``PAIRS``), and ``models`` imports ``guides``, which registers the guide families
(``GUIDES``). So an entry point (a script in ``experiments/``, ``tests/conftest.py``, a notebook)
does ``import models`` once; building a program before that is refused with a message that says so.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

PRIORS: dict[str, type] = {}   # --prior NAME -> models.registry.Prior subclass
GUIDES: dict[str, type] = {}   # --guide NAME -> guide family (an nn.Module with distribution())


class Pair(NamedTuple):
    """A Pyro model function and the guide function that goes with it."""

    model: Callable
    guide: Callable


PAIRS: dict[str, Pair] = {}    # "mdm", "vmd", "block-mdm", "block-vmd" -> its model and guide


def register(table: dict, name: str, entry) -> None:
    if table.get(name, entry) is not entry:
        raise ValueError(f"{name!r} is registered twice")
    table[name] = entry


def lookup(table: dict, name: str, what: str):
    """``table[name]``, or a one-line error naming what is available (or what to import)."""
    if not table:
        raise RuntimeError(f"no {what} is registered: `import models` first (it registers the "
                           "priors, guides and Pyro models that vmd_pyro builds programs from)")
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; available: {', '.join(sorted(table))}") from None
