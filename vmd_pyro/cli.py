"""The one error style of every command line in experiments/: ``error: <one line>`` on stderr and
exit status 2, for bad arguments and for anything found wrong later (a bad checkpoint, a full disk,
a diverging run). Scripts check their inputs before any expensive work and report through
:func:`fail`; :data:`USER_ERRORS` are the exceptions that mean "the input or the environment is
wrong" rather than "the program has a bug" (those keep their traceback)."""
from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from vmd_pyro.checkpoint import CheckpointWriteError
from vmd_pyro.training import NonFiniteLoss

EXIT_CODE = 2
USER_ERRORS = (ValueError, NonFiniteLoss, CheckpointWriteError)


def one_line(message) -> str:
    return " ".join(str(message).split())


def report(message) -> int:
    """Print the error line; returns the exit status, for a ``main`` that returns its status."""
    print(f"error: {one_line(message)}", file=sys.stderr)
    return EXIT_CODE


def fail(message) -> NoReturn:
    raise SystemExit(report(message))


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage stays under ``--help``)."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see {self.prog} --help)")
