"""Multi-process data-parallel training on ``torch.distributed`` (gloo on CPU, NCCL on GPU).

Launch any entry point with ``torchrun --nproc_per_node=N``; :func:`init_from_env` reads the
variables torchrun sets. Every rank draws the same *global* batch from a shared seed and keeps its
own slice of rows (see ``training.draw_batch``), so N processes see exactly the examples, times and
masks of one process with the same global batch.

Why gradients are all-reduced by hand instead of wrapping networks in ``DistributedDataParallel``:
the loss is a Pyro ELBO whose model and guide call three networks (denoiser, prior, guide) at
places Pyro decides (a discrete guide is enumerated, broadcasting the denoiser over values of
``z``). DDP hooks one ``forward`` per backward and renames parameters (``module.``), which would leak
into the Pyro parameter store and into checkpoints. The ELBO is a *sum* over examples, so summing
the per-rank gradients gives exactly the gradient of the global batch: one ``all_reduce`` of one
flat buffer per step, before clipping and the optimiser step, with nothing about the networks or
the Pyro program changed.
"""
from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1); returns the device
    this rank should use (``cuda:LOCAL_RANK`` on GPUs). A no-op for a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def finish() -> None:
    """Wait until every rank is done; call it after a run that completed, before :func:`shutdown`.

    Why: rank 0 evaluates every model after its last training step while the other ranks
    have nothing left to do. A rank that tore down its gloo connections and exited while its peer
    was still busy was seen to abort in the interpreter's shutdown, after its last line of Python
    (SIGABRT, "terminate called without an active exception"; 2 runs in 231 on a loaded 2-core
    machine, none in about 250 with this barrier: suggestive, not conclusive at that rate, hence
    also :func:`exit_process`), failing a run that had succeeded.
    Not called on an error path: a failed rank never reaches the barrier, and torchrun stops the
    others."""
    if not dist.is_initialized():
        return
    if dist.get_backend() == "nccl":  # name this rank's GPU, or NCCL guesses one and warns
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def exit_process(code: int = 0) -> None:
    """End a rank of a multi-process run once it has left the process group and closed its files:
    flush its output and exit at once, without the interpreter's teardown (as ``multiprocessing``'s
    forked children do). Every rank calls it, rank 0 after writing its results.

    Why: torch's C++ threads can abort that teardown, after the last line of Python and after
    ``destroy_process_group`` (SIGABRT, "terminate called without an active exception"), turning a
    run that succeeded into a failed one. It was seen first in ranks > 0 (see :func:`finish`), and
    then once in rank 0 of a CI run, after the barrier, the group's destruction and its own last
    file: so no rank goes through that teardown."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the one that logs, evaluates and saves."""
    return rank_and_world()[0] == 0


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters (the seeded initialisation already agrees; this makes
    agreement a fact rather than an assumption)."""
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=0)


def all_reduce_gradients(parameters, *scalars: float | torch.Tensor) -> list[float]:
    """Sum the gradients and ``scalars`` (the loss, flags) over ranks in one collective; returns
    the summed scalars.

    Parameters without a gradient are skipped: every rank runs the same program, so the set is the
    same on all of them (filling zeros instead would make AdamW decay their moments)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    extra = torch.stack([torch.as_tensor(s, dtype=grads[0].dtype).detach().to(grads[0].device)
                         for s in scalars])
    flat = torch.cat([g.reshape(-1) for g in grads] + [extra])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
    return flat[offset:].tolist()


def gather_objects(obj) -> list:
    """Every rank's ``obj``, in rank order (a one-element list in a single process)."""
    rank, world = rank_and_world()
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out
