"""The one error style of every command line in experiments/: ``error: <one line>`` on stderr and
exit status 2, for bad arguments and for anything found wrong later (a bad checkpoint, a full disk,
a diverging run). Scripts check their inputs before any expensive work and report through
:func:`fail`; :data:`USER_ERRORS` are the exceptions that mean "the input or the environment is
wrong" rather than "the program has a bug" (those keep their traceback)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

from vmd_pyro.checkpoint import CheckpointWriteError
from vmd_pyro.sampling import SELECTIONS
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


def read_result_files(parser: argparse.ArgumentParser, paths, load):
    """``load()`` for a report script whose inputs are the result files ``paths``: each must exist,
    and a file that is not what ``load`` expects (``ValueError``, a missing key, broken JSON) is a
    one-line usage error instead of a traceback."""
    for path in paths:
        if not Path(path).is_file():
            parser.error(f"{path} does not exist")
    try:
        return load()
    except (ValueError, KeyError, json.JSONDecodeError) as err:
        parser.error(str(err) if type(err) is ValueError else f"{type(err).__name__}: {err}")


# The generators of ``--z-strategy`` (vmd_pyro.sampling), for the help of every script that decodes.
Z_STRATEGY_HELP = ("fixed: one draw from the prior, held; mode: the prior's most probable value "
                   "given the input, held; map: the call's joint mode over a discrete z, one "
                   "network run per value of z; needs --fill argmax; enumerate: one decode per "
                   "value of a discrete z, held fixed, and --select keeps one")


def add_decoding_arguments(parser, unit: str = "sequence") -> None:
    """``--temperature`` of sampled tokens, and ``--candidates``, ``--select``, ``--check-groups``,
    ``--check-distinct`` and ``--z-values``: several decodes of every ``unit`` (a sequence, a
    puzzle), one kept by the model (``vmd_pyro.sampling.generate``)."""
    parser.add_argument("--temperature", type=float, default=1.0, metavar="T",
                        help="with --fill sample: draw each token from softmax(logits / T); "
                             "below 1 the draws lie nearer the argmax but still differ between "
                             "candidates (default 1: the model's own distribution)")
    parser.add_argument("--candidates", type=int, default=1, metavar="N",
                        help=f"decode every {unit} N times in one batch and keep the one --select "
                             "scores highest (default 1; with --z-strategy enumerate the values "
                             "of z are the candidates)")
    parser.add_argument("--select", default="path", choices=SELECTIONS,
                        help="how one of several decodes is kept, by the model alone: path (the "
                             "log-probability of its own draws, free) or pseudo-likelihood (its "
                             "filled positions masked again in --check-groups random groups, "
                             "each scored given the rest: one pass per group and candidate) "
                             "(default path)")
    parser.add_argument("--check-groups", type=int, default=5, metavar="G",
                        help="groups of --select pseudo-likelihood (default 5)")
    parser.add_argument("--check-distinct", action="store_true",
                        help="with --select pseudo-likelihood: check each different decode of a "
                             f"{unit} once (identical decodes share one check and its passes; "
                             "with --z-strategy enumerate it runs under the most probable value "
                             "of z that decodes it); off by default, as in the committed results")
    parser.add_argument("--z-values", type=int, default=0, metavar="M",
                        help="with --z-strategy enumerate: decode only the M values of z that the "
                             f"prior finds most probable for each {unit} (with a prior that reads "
                             "the input, its own short list per input; default 0: every value)")


def decoding_argument_error(args) -> str | None:
    """What is wrong with the ``--check-distinct`` and ``--z-values`` of parsed ``args`` (from
    :func:`add_decoding_arguments` beside ``--select`` and ``--z-strategy``), or ``None``: one
    check for every script that decodes, before any model is built or loaded."""
    if args.check_distinct and args.select != "pseudo-likelihood":
        return "--check-distinct shares the checks of --select pseudo-likelihood"
    if args.z_values < 0 or (args.z_values and args.z_strategy != "enumerate"):
        return (f"--z-values limits --z-strategy enumerate and must be >= 0, got --z-values "
                f"{args.z_values} with --z-strategy {args.z_strategy}")
    return None
