"""Tasks: what ``experiments/run.py --task NAME`` trains on and how it is scored.

:mod:`vmd_pyro.tasks.base` defines the protocol (:class:`Task`: options, defaults, data, monitor,
evaluation to rows) and the registry :data:`TASKS`; each task is one module here, imported below so
that it registers itself. :mod:`vmd_pyro.tasks.runner` turns the shared options into a trained
program (used by ``run.py`` and ``diagnose.py`` alike).
"""
# Each module registers its task; this order is the order of their option groups in --help.
from vmd_pyro.tasks import synthetic, sudoku, text  # noqa: F401, I001
from vmd_pyro.tasks.base import TASKS, Task, attach_bounds, register_task

__all__ = ["TASKS", "Task", "attach_bounds", "register_task"]
