#!/usr/bin/env python
"""Convert a v1 vmd-pyro checkpoint (a plain ``torch.save`` pickle) to the safe v2 format, or
write a small copy of a v2 one for decoding only (``--weights-only``).

    python experiments/convert_checkpoint.py OLD.pt NEW.pt
    python experiments/convert_checkpoint.py --weights-only RUN.pt SMALL.pt

Reading a v1 file unpickles it with ``weights_only=False``, which can run any code the file holds:
convert only files you trust (ones you wrote, or the ones committed to this repository). The new
file holds the same configuration, parameters, optimiser state and history; NumPy arrays (the
NumPy random state) become tensors, so it loads with ``weights_only=True``. NEW is written
atomically and read back with the safe loader before the command reports success. See
docs/checkpoints.md.

``--weights-only`` (``vmd_pyro.checkpoint.export_weights``): the v2 checkpoint's configuration,
parameters in float16 and training record, without the optimiser and random states; it decodes
but cannot resume training. A 6M-parameter Sudoku model goes from about 72 MB to 12 MB.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from vmd_pyro import cli
from vmd_pyro.checkpoint import (FORMAT, LEGACY_FORMAT, MAGIC, CheckpointWriteError,
                                 export_weights, read_checkpoint, write_state)


def plain(value):
    """``value`` with NumPy arrays and scalars turned into tensors and Python numbers."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.astype(np.int64) if value.dtype.kind == "u" else value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return type(value)((k, plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def convert(old: Path, new: Path) -> dict:
    if not old.is_file():
        raise ValueError(f"{str(old)!r} does not exist")
    if old.read_bytes()[:len(MAGIC)] == MAGIC:
        raise ValueError(f"{str(old)!r} is already a {FORMAT} checkpoint")
    try:  # the one place a checkpoint is fully unpickled: the user vouched for this file
        state = torch.load(old, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - anything the unpickler raises: not convertible
        raise ValueError(f"{str(old)!r} is not a readable torch file ({type(err).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != LEGACY_FORMAT:
        raise ValueError(f"{str(old)!r} is not a {LEGACY_FORMAT} checkpoint")
    write_state(new, {**plain(state), "format": FORMAT})
    return read_checkpoint(new)  # proves the result loads safely


def main(argv=None) -> int:
    parser = cli.ArgumentParser(description=__doc__,
                                formatter_class=cli.argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", help="v1 checkpoint you trust (with --weights-only: a v2 one)")
    parser.add_argument("new", help="where to write the v2 checkpoint (may equal OLD)")
    parser.add_argument("--weights-only", action="store_true",
                        help="write a float16 copy of a v2 checkpoint that decodes but cannot "
                             "resume (no optimiser or random state)")
    args = parser.parse_args(argv)
    try:
        if args.weights_only:  # read_checkpoint refuses a missing or foreign OLD
            export_weights(Path(args.old), Path(args.new))
            print(f"wrote {args.new} ({Path(args.new).stat().st_size / 1e6:.1f} MB, float16 "
                  f"parameters, no training state)")
            return 0
        state = convert(Path(args.old), Path(args.new))
    except (ValueError, CheckpointWriteError) as err:
        cli.fail(str(err))
    step = state.get("training_state", {}).get("step")
    print(f"wrote {args.new} ({FORMAT}" + (f", training state at step {step}" if step else "")
          + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
