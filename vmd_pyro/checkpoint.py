"""Saving and loading trained programs, and resuming training.

A checkpoint holds the program configuration and every network parameter (denoiser, prior, guide),
so :func:`load_program` rebuilds the exact model without the training script. ``extra`` carries
whatever else the caller wants to keep (training config, metrics, history).

Checkpoints written by :func:`vmd_pyro.training.train` also hold a ``training_state`` (step,
optimiser state, running loss and the random number generator states of every rank), so that
``train(..., resume=PATH)`` continues bit for bit where the run stopped. :func:`check_resumable`
refuses a checkpoint written under a different configuration.

The file (format v2, docs/checkpoints.md) is a two-line text header, then the bytes of a
``torch.save`` of the checkpoint dict::

    vmd-pyro-checkpoint-v2
    sha256=<hex digest of the payload> bytes=<payload length>
    <payload>

Loading checks the length and the digest before anything is unpickled (a truncated or damaged
file is refused in one line), then unpickles with ``torch.load(..., weights_only=True)``, which
builds only tensors and plain containers: a crafted file cannot run code. The digest detects
accidents, not forgery; safety comes from ``weights_only``. Everything stored is therefore a
tensor or a plain value: the NumPy random state is kept as a tensor, not an array.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import random
import re
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from vmd_pyro.networks import LATENT_INPUTS, NetConfig, latent_input_weights
from vmd_pyro.program import ProgramConfig, build_program

FORMAT = "vmd-pyro-checkpoint-v2"
LEGACY_FORMAT = "vmd-pyro-checkpoint-v1"
MAGIC = FORMAT.encode() + b"\n"
_HASH_LINE = re.compile(rb"sha256=([0-9a-f]{64}) bytes=([0-9]{1,15})\n")
CONVERT_COMMAND = "python experiments/convert_checkpoint.py OLD.pt NEW.pt"


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, permissions); the previous one is intact."""


def save_checkpoint(path: str | os.PathLike, program, **extra) -> None:
    write_state(path, {"format": FORMAT, "program_config": program.cfg.to_dict(),
                       "state_dict": program.state_dict(), **extra})


def write_state(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` as a v2 checkpoint, atomically: the file at ``path`` is either the previous
    one or the complete new one, whatever happens meanwhile (a kill, a full disk)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        payload = buffer.getvalue()
        _check_loadable(payload)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(frame(payload))
            f.flush()
            os.fsync(f.fileno())  # on disk before it replaces the old one (power loss, not kills)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise CheckpointWriteError(f"could not write checkpoint {str(path)!r} "
                                   f"({err.strerror or err}); the previous file there, if any, is "
                                   "unchanged") from None


def _check_loadable(payload: bytes) -> None:
    """Refuse now what could never be loaded safely, not when someone needs the file."""
    try:
        torch.load(io.BytesIO(payload), weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError("a checkpoint may hold only tensors and plain values (dict, list, tuple, "
                         f"str, numbers, None): {_first_line(err)}") from None


def frame(payload: bytes) -> bytes:
    """The bytes of a v2 file holding ``payload`` (the header, then the payload)."""
    digest = hashlib.sha256(payload).hexdigest().encode()
    return MAGIC + b"sha256=%s bytes=%d\n" % (digest, len(payload)) + payload


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """The checkpoint dict, or a one-line :class:`ValueError` saying why the file is refused."""
    path = Path(path)
    name = repr(str(path))
    if not path.is_file():
        raise ValueError(f"checkpoint {name} does not exist")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ValueError(f"cannot read checkpoint {name} ({err.strerror or err})") from None
    state = _unpickle(_payload(data, name), name, map_location)
    _check_structure(state, name)
    return state


def _payload(data: bytes, name: str) -> bytes:
    """The payload of a v2 file after its length and digest are checked."""
    if not data:
        raise ValueError(f"checkpoint {name} is empty (0 bytes)")
    if not data.startswith(MAGIC):
        if data.startswith(b"PK\x03\x04"):  # a zip: how torch.save wrote v1 checkpoints
            raise ValueError(f"{name} is not a {FORMAT} file (a v1 checkpoint or another torch "
                             "file; v1 files are not loaded because unpickling them could run "
                             f"code): if you trust its source, convert it with `{CONVERT_COMMAND}`")
        raise ValueError(f"{name} is not a vmd-pyro checkpoint (no {FORMAT} header)")
    rest = data[len(MAGIC):]
    match = _HASH_LINE.match(rest)
    if match is None:
        raise ValueError(f"checkpoint {name} is damaged: its header line is malformed")
    payload, expected = rest[match.end():], int(match.group(2))
    if len(payload) != expected:
        what = "truncated" if len(payload) < expected else "longer than written"
        raise ValueError(f"checkpoint {name} is {what}: {len(payload):,} payload bytes, the "
                         f"header says {expected:,}")
    if hashlib.sha256(payload).hexdigest().encode() != match.group(1):
        raise ValueError(f"checkpoint {name} is damaged: its content does not match the sha256 "
                         "in its header")
    return payload


def _unpickle(payload: bytes, name: str, map_location):
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"refusing checkpoint {name}: it holds objects other than tensors and "
                         f"plain values ({_first_line(err)})") from None
    except Exception as err:  # noqa: BLE001 - whatever the zip/unpickler raises: unreadable
        raise ValueError(f"checkpoint {name} cannot be read ({type(err).__name__}: "
                         f"{_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(err).__name__


# What every checkpoint holds, and what a resumable one holds besides.
REQUIRED = {"format": str, "program_config": dict, "state_dict": dict}
RESUMABLE = {"history": list, "train_seconds": (int, float), "train_config": dict}
TRAINING_STATE = {"step": int, "running": (int, float, type(None)), "rng": list,
                  "optimizer": dict}
RNG_STATE = {"torch": torch.Tensor, "random": tuple, "numpy": tuple, "generator": torch.Tensor}


def _check_structure(state, name: str) -> None:
    if not isinstance(state, dict):
        raise ValueError(f"{name} is not a vmd-pyro checkpoint (it holds a "
                         f"{type(state).__name__}, not a dict)")
    _require(state, REQUIRED, name, "")
    if state["format"] != FORMAT:
        raise ValueError(f"{name} has format {state['format']!r}, expected {FORMAT!r}")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor)
               for k, v in state["state_dict"].items()):
        raise ValueError(f"checkpoint {name} is malformed: state_dict must map names to tensors")
    for key in ("program_config", "train_config"):
        if key in state and not _plain(state[key]):
            raise ValueError(f"checkpoint {name} is malformed: {key} holds more than plain values")
    if "training_state" in state:
        _require(state, RESUMABLE, name, "")
        training = state["training_state"]
        if not isinstance(training, dict):
            raise ValueError(f"checkpoint {name} is malformed: training_state is not a dict")
        _require(training, TRAINING_STATE, name, "training_state.")
        if not training["rng"]:
            raise ValueError(f"checkpoint {name} is malformed: training_state.rng is empty")
        for rank, rng in enumerate(training["rng"]):
            if not isinstance(rng, dict):
                raise ValueError(f"checkpoint {name} is malformed: training_state.rng[{rank}] is "
                                 "not a dict")
            _require(rng, RNG_STATE, name, f"training_state.rng[{rank}].")


def _plain(value) -> bool:
    """Only str-keyed dicts, lists, tuples, strings, numbers, booleans and None (a config)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def _require(d: dict, spec: dict, name: str, prefix: str) -> None:
    for key, kind in spec.items():
        if key not in d:
            raise ValueError(f"checkpoint {name} lacks {prefix}{key!s}: not a complete vmd-pyro "
                             "checkpoint")
        if not isinstance(d[key], kind) or (kind is int and isinstance(d[key], bool)):
            raise ValueError(f"checkpoint {name} is malformed: {prefix}{key} is a "
                             f"{type(d[key]).__name__}")


def load_program(path: str | os.PathLike, map_location="cpu"):
    """Rebuild a trained program from a checkpoint; returns ``(program, checkpoint_dict)``."""
    state = read_checkpoint(path, map_location)
    name = repr(str(path))
    try:
        program = build_program(ProgramConfig.from_dict(state["program_config"]))
    except Exception as err:  # noqa: BLE001 - any failure to build is a bad stored configuration
        raise ValueError(f"checkpoint {name} holds an unusable program configuration "
                         f"({type(err).__name__}: {_first_line(err)})") from None
    try:
        program.load_state_dict(state["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"checkpoint {name}: its parameters do not fit its configuration "
                         f"({_first_line(err)})") from None
    program.eval()
    return program.to(map_location), state


def export_weights(src: str | os.PathLike, dst: str | os.PathLike,
                   dtype: torch.dtype = torch.float16) -> dict:
    """Write a copy of the checkpoint ``src`` that holds what decoding needs: its configuration,
    its parameters (the floating ones stored as ``dtype``) and its training record, but not the
    optimiser and random states that only resuming reads. A 6M-parameter checkpoint shrinks from
    about 72 MB to 12 MB in float16, small enough to come back from a device lease. Loading casts
    the parameters back to the program's own dtype, so the copy decodes like the original up to
    that rounding. Returns the copy as read back with the safe loader."""
    state = read_checkpoint(src)
    state.pop("training_state", None)
    state["state_dict"] = {k: v.to(dtype) if v.is_floating_point() else v
                           for k, v in state["state_dict"].items()}
    state["exported"] = {"from": str(src), "dtype": str(dtype).removeprefix("torch.")}
    write_state(dst, state)
    return read_checkpoint(dst)


def init_denoiser(program, path: str | os.PathLike) -> None:
    """Warm start: copy the denoiser of the checkpoint at ``path`` (an MDM or a VMD) into the fresh
    ``program``. The two networks must agree in everything but how they read ``z``. Weights that
    feed ``z`` and that the checkpoint lacks (an MDM has none) are set to zero, so the program
    starts out computing exactly what the trained denoiser computes, whatever ``z`` is, and
    training gives ``z`` a use only where a use pays: on the trained denoiser's remaining errors.

    From a VMD, the prior's weights whose names and shapes fit are copied too (the embedding of a
    discrete ``z``, its probabilities): with a prior that extends the checkpoint's (e.g.
    ``discrete-features`` from ``discrete``) the program starts as that VMD exactly."""
    state = read_checkpoint(path)
    name = repr(str(path))
    source, target = NetConfig(**state["program_config"]["net"]), program.cfg.net
    differ = [f.name for f in fields(NetConfig) if f.name not in ("latent_dim", "z_conditioning")
              and getattr(source, f.name) != getattr(target, f.name)]
    if differ:
        found = "; ".join(f"{d} {getattr(source, d)!r} against {getattr(target, d)!r}"
                          for d in differ)
        raise ValueError(f"cannot start the denoiser from {name}: its network differs in {found}")
    own = program.denoiser.state_dict()
    # z weights (LATENT_INPUTS: the only ones a warm start may lack) of another latent size, or
    # of a latent this program lacks, cannot be reused
    weights = {key: value for key, value in _saved_part(state, "denoiser").items()
               if not key.startswith(LATENT_INPUTS) or _fits(own, key, value)}
    missing, unexpected = program.denoiser.load_state_dict(weights, strict=False)
    wrong = [key for key in missing if not key.startswith(LATENT_INPUTS)] + unexpected
    if wrong:
        raise ValueError(f"checkpoint {name}'s denoiser weights do not fit: {', '.join(wrong)}")
    with torch.no_grad():
        for key in missing:
            program.denoiser.get_parameter(key).zero_()
    if program.prior is not None:
        own = program.prior.state_dict()
        program.prior.load_state_dict({key: value for key, value in
                                       _saved_part(state, "prior").items()
                                       if _fits(own, key, value)}, strict=False)


def _saved_part(state: dict, module: str) -> dict:
    """The saved weights of the program's submodule ``module``, named as within it."""
    return {key.removeprefix(module + "."): value for key, value in state["state_dict"].items()
            if key.startswith(module + ".")}


def _fits(own: dict, key: str, value: torch.Tensor) -> bool:
    """Whether the saved ``value`` can be loaded as ``own[key]`` (present, same shape)."""
    return key in own and own[key].shape == value.shape


def randomize_latent_inputs(program, std: float) -> None:
    """Draw the weights through which ``z`` enters the denoiser from ``N(0, std^2)``. They start
    at zero in FiLM, head and warm-started networks, so that ``z`` begins with no effect; for an
    enumerated ``z`` that makes every value's prediction identical at the start, a symmetric
    point that training leaves only slowly. Biases are left as they are."""
    with torch.no_grad():
        for weight in latent_input_weights(program.denoiser):
            weight.normal_(0.0, std)


def checkpoint_model(path: str | os.PathLike) -> str:
    """Which model (``mdm`` / ``vmd``) a checkpoint holds: for checks before any expensive work."""
    config = read_checkpoint(path)["program_config"]
    if config.get("model") not in ("mdm", "vmd"):
        raise ValueError(f"checkpoint {str(path)!r} names no known model ({config.get('model')!r})")
    return config["model"]


# --- resuming ---------------------------------------------------------------------------------
def rng_state(generator: torch.Generator) -> dict:
    """Every random stream training draws from, as tensors and plain values: torch (and CUDA),
    Python, NumPy and the training batch generator."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "random": random.getstate(),
             "numpy": (str(name), torch.from_numpy(keys.astype(np.int64)), int(pos),
                       int(has_gauss), float(cached)),
             "generator": generator.get_state()}
    if generator.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(generator.device)
    return state


def set_rng_state(state: dict, generator: torch.Generator) -> None:
    try:
        name, keys, pos, has_gauss, cached = state["numpy"]
        numpy_state = (name, np.asarray(keys.numpy(), dtype=np.uint32), pos, has_gauss, cached)
        np.random.set_state(numpy_state)
        random.setstate(state["random"])
        torch.set_rng_state(state["torch"])
        generator.set_state(state["generator"])
        if "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], generator.device)
    except (TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise ValueError(f"the checkpoint's random number generator state is unusable "
                         f"({type(err).__name__}: {_first_line(err)})") from None


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
                            for k, v in _flatten(value).items() if not _equal(_flatten(saved).get(k), v)]
        elif not _equal(saved, value):
            differences.append(f"{key}: checkpoint {saved!r}, this run {value!r}")
    if differences:
        raise ValueError(f"cannot resume from {str(path)!r}: it was written by a different "
                         "configuration (" + "; ".join(differences) + ")")
    return state["training_state"]


def _equal(saved, value) -> bool:
    """``saved == value`` for a stored value of any type (a tensor never equals a setting)."""
    if isinstance(saved, torch.Tensor) or isinstance(value, torch.Tensor):
        return False
    try:
        return bool(saved == value)
    except Exception:  # noqa: BLE001 - containers of tensors and other oddities: not equal
        return False


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
