"""Parallel decoding: fill the masked positions of ``x`` in exactly ``nfe`` denoiser calls.

Per step (docs/method.md, "Sampling"):

1. get ``p(x0^i | xt, z)`` for every position from one denoiser call;
2. draw a candidate token for each masked position (``argmax``, or a sample with float64 Gumbel
   noise: float32 noise lowers the effective temperature; ``temperature`` samples from
   ``softmax(logits / temperature)``: below 1 sharper, between a sample and the argmax, above 1
   flatter);
3. reveal ``ceil(remaining / steps_left)`` masked positions per sequence, chosen by ``order``:
   ``random`` (vanilla), ``top-prob`` (largest max-probability) or ``top-prob-margin`` (largest gap
   between the two most likely tokens).

Given tokens (anything in ``x`` that is not the mask token) are never changed. The latent ``z`` is
handled by ``z_strategy``: ``fixed`` draws it once from the prior, ``mode`` holds it at the prior's
most probable value given ``x`` (a discrete prior's argmax, a Gaussian's mean; for a prior that
reads the input, the value it picks for this sequence), ``resample`` redraws it from the
prior every step, ``posterior`` redraws it from the guide ``q(z | x0_hat, xt)`` with ``x0_hat`` the
current denoised estimate, and ``prior`` redraws it from a learned prior ``p(z | xt)`` given what
has been decoded so far. ``map`` (argmax tokens, a discrete ``z``) takes each call at its joint
mode: every value of ``z`` proposes its own argmax step, and the step whose revealed tokens with
that ``z`` are most probable, ``log p(z | xt) + sum log p(x0^i | xt, z)``, is kept. It runs the
network once per value of ``z`` in every call (K passes per call; :func:`counting_passes`
measures what a decoder costs). ``enumerate`` (a discrete ``z``) decodes every sequence once per
value of ``z``, each held fixed through all calls, and keeps the one candidate that ``select``
scores highest (below); ``z_values=M`` limits it to the ``M`` values most probable under
``p(z | x)``, per sequence (for a prior that reads the input, its own short list).

Several candidates: with ``candidates=N`` every sequence is decoded ``N`` times (its copies draw
their own ``z`` and tokens) and one decode is kept; ``enumerate`` makes the ``K`` values of ``z``
the candidates. ``select`` says how the model itself picks one, without an answer: ``path``, the
log-probability of the decode's own draws, ``sum_calls sum_revealed log p(x0^i | xt, z)``, free;
``pseudo-likelihood``, which masks the filled positions again in ``check_groups`` random groups
and scores each group given all the rest, ``sum_g log p(x0_g | x0_{-g}, z)``, one pass per group
(:func:`pseudo_log_likelihood`): a token that clashes with one filled in the same call, which that
call could not see, is now scored with it in view. Both add ``log p(z | x)`` for an enumerated
``z``. The candidates run as one batch, so the decoder's sequential calls do not grow, but its
network passes are ``N`` (or ``K``) times as many, plus the checks.

``oracle`` is not a generator but a ceiling for diagnostics: it redraws ``z`` before every call from
the guide given the answer, ``q(z | reference, xt)``, so it shows how well the denoiser would
decode if a prior knew what the posterior knows. It reads ``reference`` (the true ``x0``).
"""
from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from functools import partial
from typing import NamedTuple

import pyro.distributions
import torch

from vmd_pyro.blocks import block_of, nfe_per_block
from vmd_pyro.masking import reveal_count, reveal_mask
from vmd_pyro.networks import SequenceEncoder

ORDERS = ("random", "top-prob", "top-prob-margin")
FILLS = ("sample", "argmax")
Z_STRATEGIES = ("fixed", "mode", "resample", "posterior", "prior", "map", "enumerate")
EVERY_Z = ("map", "enumerate")  # try every value of a discrete z
SELECTIONS = ("path", "pseudo-likelihood")  # how one of several candidates is kept
ORACLE = "oracle"  # z from q(z | reference, xt): a diagnostic that reads the answer, not a generator
DIAGNOSTIC_Z_STRATEGIES = Z_STRATEGIES + (ORACLE,)  # what generate takes; samplers offer Z_STRATEGIES


def gumbel_argmax(logits: torch.Tensor, generator=None) -> torch.Tensor:
    """Exact categorical sample via the Gumbel-max trick, in float64."""
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float64, device=logits.device)
    gumbel = -torch.log(-torch.log(u.clamp_min(1e-300)))
    return (logits.double() + gumbel).argmax(-1)


def position_scores(probs: torch.Tensor, order: str, generator=None) -> torch.Tensor:
    """Higher score = revealed earlier. ``probs`` has shape (B, L, V)."""
    if order == "random":
        return torch.rand(probs.shape[:-1], generator=generator, device=probs.device)
    if order == "top-prob":
        return probs.max(-1).values
    if order == "top-prob-margin":
        top2 = probs.topk(2, dim=-1).values
        return top2[..., 0] - top2[..., 1]
    raise ValueError(f"unknown order {order!r}; choose from {', '.join(ORDERS)}")


def sampler_scores(program, order: str, generator=None):
    """``xt -> (B, L)``: the position scores the sampler uses in ``order`` at ``xt``, from one
    gradient-free denoiser call (a VMD's with ``z`` drawn from the prior, as ``resample`` draws
    it). The ``steps`` objective trains along the path these choose."""
    @torch.no_grad()
    def scores(xt: torch.Tensor) -> torch.Tensor:
        z = _draw_prior(program, xt, generator) if program.has_latent else None
        return position_scores(program.logits(xt, z).double().softmax(-1), order, generator)
    return scores


@contextmanager
def counting_passes(program):
    """Count the network passes made inside the ``with`` block, in sequences (a call on ``B``
    sequences with ``K`` values of ``z`` broadcast is ``K * B``), by network: ``denoiser`` (runs of
    its trunk, wherever they come from: the sampler, a prior that reads the denoiser's features,
    the exact guide), ``prior`` and ``guide`` (runs of their own encoders). Yields the dict, filled
    as the passes happen; divided by the number of sequences decoded it is the cost of a decoder
    per sequence. Measured rather than derived from the z strategy, so that a new prior or
    strategy cannot make a decoder look cheaper than it is. Models without blocks (cached block
    decoding runs the trunk's layers one by one)."""
    if program.block_size:
        raise ValueError("counting_passes counts the passes of models without blocks")
    counts = {"denoiser": 0, "prior": 0, "guide": 0}
    denoiser = getattr(program.denoiser, "trunk", program.denoiser)     # output (*S, B, L, H)
    watched = [("denoiser", denoiser, 2)]
    for name, owner in (("prior", program.prior), ("guide", program.guide_net)):
        if owner is not None:                                           # output (*S, B, D)
            watched += [(name, m, 1) for m in owner.modules() if isinstance(m, SequenceEncoder)]

    def counter(name, per_sequence_dims):
        def hook(module, inputs, output):
            counts[name] += output.shape[:-per_sequence_dims].numel()
        return hook

    handles = [module.register_forward_hook(counter(name, dims)) for name, module, dims in watched]
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()


def check_tokens(x: torch.Tensor, vocab_size: int, seq_len: int, name: str = "x"):
    """Refuse token tensors of the wrong shape or with ids outside ``0..V`` (V = mask)."""
    if x.dim() != 2 or x.shape[1] != seq_len:
        raise ValueError(f"{name} must have shape (batch, {seq_len}), got {tuple(x.shape)}")
    if x.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{name} must hold integer token ids, got dtype {x.dtype}")
    if x.numel() and (x.min() < 0 or x.max() > vocab_size):
        raise ValueError(f"{name} holds token ids outside 0..{vocab_size} "
                         f"({vocab_size} is the mask): min {int(x.min())}, max {int(x.max())}")


class Decoded(NamedTuple):
    """A decode: the tokens ``x`` (B, L), the log-probability of its own draws ``path_log_prob``
    (B,), ``sum_calls sum_revealed log p(x0^i | xt, z)`` (float64), and the ``z`` of its last call
    (``None`` without a latent)."""
    x: torch.Tensor
    path_log_prob: torch.Tensor
    z: torch.Tensor | None


@torch.no_grad()
def generate(program, x: torch.Tensor, *, nfe: int, order: str = "random", fill: str = "sample",
             z_strategy: str = "fixed", generator=None, cache: bool = True, on_reveal=None,
             reference: torch.Tensor | None = None, candidates: int = 1, select: str = "path",
             check_groups: int = 5, check_distinct: bool = False, temperature: float = 1.0,
             z_values: int = 0, on_candidates=None, on_scores=None) -> tuple[torch.Tensor, int]:
    """Fill every mask token of ``x`` (B, L) in ``nfe`` denoiser calls. Returns ``(samples,
    calls)``: the new tensor and the denoiser calls really made, which callers record. ``cache``:
    block models keep the decoded blocks' keys and values instead of recomputing them every call
    (:func:`generate_blocks`; the same logits up to float rounding). ``on_reveal(call, reveal)``,
    if given, is told after each call which positions (bool ``(B, L)``) it filled; ``call``
    counts from 0 (in block models, from 0 inside each block). ``reference``: the true ``x0`` of
    every row, read by z strategy ``oracle`` only. ``candidates``, ``select``, ``check_groups``
    and ``check_distinct``: decode each row several times and keep one (module docstring;
    ``on_reveal`` then hears the kept candidate's calls, after all of them are decoded;
    ``on_candidates(grids)``, if given, is told every candidate, ``(B, candidates, L)``, before
    one is kept: how many differ, and whether a better check could have found a better one;
    ``on_scores(scores)`` likewise every candidate's selection score, ``(B, candidates)``, the
    one that keeps the highest).
    ``temperature``: fill ``sample`` draws each token from ``softmax(logits / temperature)``
    (argmax ignores it: it is the limit at 0); the order's confidence scores and the path's
    log-probability stay the model's own. ``z_values``: with ``enumerate``, decode only the
    ``z_values`` values of ``z`` most probable under ``p(z | x)`` (0: every value).

    This is the one place ``nfe`` is clamped, with a warning: to the largest number of masked
    positions (a step that reveals nothing would waste a call), and in block models to at least
    one call per block, each block's share capped by its own masks (:func:`generate_blocks`).
    """
    net = program.cfg.net
    check_tokens(x, net.vocab_size, net.seq_len)
    if not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"nfe must be an integer >= 1, got {nfe!r}")
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; choose from {', '.join(ORDERS)}")
    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; choose from {', '.join(FILLS)}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not 0 < temperature < math.inf:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if z_strategy not in DIAGNOSTIC_Z_STRATEGIES:
        raise ValueError(f"unknown z strategy {z_strategy!r}; choose from "
                         f"{', '.join(DIAGNOSTIC_Z_STRATEGIES)}")
    check_selection(program, candidates, select, check_groups, check_distinct)
    if isinstance(z_values, bool) or not isinstance(z_values, int) or z_values < 0:
        raise ValueError(f"z_values must be an integer >= 0 (0: every value), got {z_values!r}")
    if z_values and z_strategy != "enumerate":
        raise ValueError(f"z_values limits z strategy 'enumerate'; z strategy {z_strategy!r} "
                         f"decodes no list of values")
    if z_strategy == ORACLE:
        check_reference(program, x, reference)
    if z_strategy in EVERY_Z and program.has_latent:
        if program.prior.support != "discrete":
            raise ValueError(f"z strategy {z_strategy!r} tries every value of z and needs a "
                             f"discrete prior (e.g. 'discrete'); prior {program.prior.name!r} is "
                             f"continuous")
        if z_strategy == "map" and fill != "argmax":
            raise ValueError("z strategy 'map' takes the joint mode of a call and needs fill 'argmax'")
        if z_strategy == "enumerate" and candidates > 1:
            raise ValueError("z strategy 'enumerate' makes the values of z the candidates; "
                             f"leave candidates at 1 (got {candidates})")
        if z_strategy == "enumerate" and program.block_size:
            raise ValueError("z strategy 'enumerate' is for models without blocks")
        if z_strategy == "enumerate" and z_values > program.cfg.components:
            raise ValueError(f"z_values {z_values} is above the {program.cfg.components} values "
                             f"of z")
    if z_strategy == "prior" and program.has_latent and not program.prior.depends_on_xt \
            and not program.block_size:
        raise ValueError(f"z strategy 'prior' needs a prior that depends on xt (e.g. 'conditional');"
                         f" prior {program.prior.name!r} does not: use 'resample'")
    if several_decodes(program, z_strategy, candidates):
        return best_candidate(program, x, nfe=nfe, order=order, fill=fill, z_strategy=z_strategy,
                              generator=generator, cache=cache, on_reveal=on_reveal,
                              reference=reference, candidates=candidates, select=select,
                              check_groups=check_groups, check_distinct=check_distinct,
                              temperature=temperature, z_values=z_values,
                              on_candidates=on_candidates, on_scores=on_scores)
    decoded, calls = decode(program, x, nfe=nfe, order=order, fill=fill, z_strategy=z_strategy,
                            generator=generator, cache=cache, on_reveal=on_reveal,
                            reference=reference, temperature=temperature)
    return decoded.x, calls


def several_decodes(program, z_strategy: str, candidates: int) -> bool:
    """Whether :func:`generate` decodes each row several times and keeps one (``candidates > 1``,
    or ``enumerate`` over a latent): then a row is not a draw of the plain generator."""
    return candidates > 1 or (z_strategy == "enumerate" and program.has_latent)


def check_selection(program, candidates, select: str, check_groups,
                    check_distinct: bool = False) -> None:
    """Refuse bad ``candidates``, ``select``, ``check_groups`` or ``check_distinct`` arguments of
    :func:`generate`."""
    if not isinstance(candidates, int) or candidates < 1:
        raise ValueError(f"candidates must be an integer >= 1, got {candidates!r}")
    if select not in SELECTIONS:
        raise ValueError(f"unknown selection {select!r}; choose from {', '.join(SELECTIONS)}")
    if not isinstance(check_groups, int) or check_groups < 1:
        raise ValueError(f"check_groups must be an integer >= 1, got {check_groups!r}")
    if check_distinct and select != "pseudo-likelihood":
        raise ValueError(f"check_distinct shares the checks of selection 'pseudo-likelihood'; "
                         f"selection {select!r} makes none")
    if select == "pseudo-likelihood" and program.block_size:
        raise ValueError("selection 'pseudo-likelihood' is for models without blocks (a block "
                         "model reads its input as the clean copy too); use 'path'")


def decode(program, x: torch.Tensor, *, nfe: int, order: str, fill: str, z_strategy: str,
           generator=None, cache: bool = True, on_reveal=None, reference=None,
           z=None, temperature: float = 1.0) -> tuple[Decoded, int]:
    """One decode of every row of ``x`` (arguments validated by :func:`generate`): ``(Decoded,
    calls)``. ``z``: the latent of the first call (default: drawn from the prior)."""
    if program.block_size:
        return generate_blocks(program, x, nfe=nfe, order=order, fill=fill,
                               z_strategy=z_strategy, generator=generator, cache=cache,
                               on_reveal=on_reveal, temperature=temperature)
    x = x.clone()
    masked = x == program.mask_id
    max_masked = int(masked.sum(-1).max()) if x.numel() else 0
    if max_masked == 0:
        return Decoded(x, x.new_zeros(x.shape[0], dtype=torch.float64), z), 0
    if nfe > max_masked:
        warnings.warn(f"nfe={nfe} exceeds the {max_masked} masked positions; using nfe={max_masked}")
        nfe = max_masked
    return decode_steps(program, x, masked, nfe, order=order, fill=fill, z_strategy=z_strategy,
                        generator=generator, on_reveal=on_reveal, reference=reference, z=z,
                        temperature=temperature), nfe


def best_candidate(program, x: torch.Tensor, *, candidates: int, select: str, check_groups: int,
                   z_strategy: str, check_distinct: bool = False, z_values: int = 0,
                   generator=None, on_reveal=None, reference=None, on_candidates=None,
                   on_scores=None, **decode_args) -> tuple[torch.Tensor, int]:
    """Decode every row ``candidates`` times (``enumerate``: once per value of a discrete ``z``,
    held fixed, or per each of its ``z_values`` most probable values given the row) in one batch
    and keep, per row, the candidate that ``select`` scores highest (module docstring). Returns
    ``(samples, calls)`` like :func:`generate`, which validates the arguments."""
    batch, z, log_prior = x.shape[0], None, None
    if z_strategy == "enumerate" and program.has_latent:
        log_prior = program.prior_dist(x).logits.double()           # (B, K), normalised
        if z_values:
            log_prior, values = log_prior.topk(z_values, -1)            # (B, M), most probable
        else:
            values = torch.arange(log_prior.shape[-1], device=x.device).expand_as(log_prior)
        candidates = log_prior.shape[-1]
        z = values.reshape(-1)
        z_strategy = "fixed"
    rows = x.repeat_interleave(candidates, 0)
    heard = []
    decoded, calls = decode(program, rows, z_strategy=z_strategy, generator=generator,
                            on_reveal=None if on_reveal is None else
                            lambda call, reveal: heard.append((call, reveal)),
                            reference=None if reference is None else
                            reference.repeat_interleave(candidates, 0), z=z, **decode_args)
    if on_candidates is not None:
        on_candidates(decoded.x.view(batch, candidates, -1))
    if select == "path":
        score = decoded.path_log_prob
    elif check_distinct:
        score = pseudo_log_likelihood_once(program, rows, decoded, candidates, check_groups,
                                           generator, None if log_prior is None else
                                           log_prior.reshape(-1))
    else:
        score = pseudo_log_likelihood(program, rows, decoded.x, decoded.z, check_groups, generator)
    if log_prior is not None:
        score = score + log_prior.reshape(-1)
    if on_scores is not None:
        on_scores(score.view(batch, candidates))
    best = score.view(batch, candidates).argmax(-1)

    def kept(t: torch.Tensor) -> torch.Tensor:
        return t.view(batch, candidates, *t.shape[1:])[torch.arange(batch, device=x.device), best]

    for call, reveal in heard:
        on_reveal(call, kept(reveal))
    return kept(decoded.x), calls


def passes_after_each_try(grids: torch.Tensor, *, decode_passes: int,
                          check_passes: int) -> torch.Tensor:
    """(B, C): the passes a decoder has spent on a row once it has tried its first 1, 2, ..., C
    candidates ``grids`` (B, C, L) in order: ``decode_passes`` for each, and ``check_passes`` for
    each that repeats no earlier grid of its row (a repeat shares the earlier check)."""
    count = grids.shape[1]
    same = (grids.unsqueeze(2) == grids.unsqueeze(1)).all(-1)              # (B, C, C)
    new = ~same.tril(-1).any(-1)                                           # repeats no earlier one
    return decode_passes * torch.arange(1, count + 1, device=grids.device) \
        + check_passes * new.long().cumsum(-1)


def stop_when_confident(scores: torch.Tensor, grids: torch.Tensor, threshold: float, *,
                        decode_passes: int, check_passes: int,
                        max_candidates: int | None = None, give_up_after: int | None = None,
                        give_up_below: float = float("-inf"),
                        spent: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """What a decoder that tries a row's candidates one at a time, in the given order, would keep
    and spend if it stopped at the first whose selection score reaches ``threshold``, or after
    ``max_candidates`` (None: all): the budget goes to the rows whose early candidates the check
    doubts, and the cap keeps a check that stays unsure from spending it all. ``scores`` (B, C) and
    ``grids`` (B, C, L), as :func:`generate` tells ``on_scores`` and ``on_candidates``. Each
    candidate tried costs ``decode_passes``, and one that repeats no earlier grid of its row
    ``check_passes`` more (a repeat shares the earlier check, as ``check_distinct`` does). Returns
    ``(kept, passes)``, both (B,): the index of the best-scoring candidate tried (all ``C`` when
    none reaches ``threshold``) and the passes spent. With ``give_up_after`` k, a row whose first
    k candidates all score below ``give_up_below`` stops after them: a puzzle whose early
    candidates all look hopeless no longer spends the cap. ``spent``: :func:`passes_after_each_try`
    of these grids, when a caller that tries many settings has it already."""
    if spent is None:
        spent = passes_after_each_try(grids, decode_passes=decode_passes, check_passes=check_passes)
    scores, spent = scores[:, :max_candidates], spent[:, :max_candidates]
    count = scores.shape[1]
    reached = scores >= threshold
    stop = torch.where(reached.any(-1), reached.long().argmax(-1), count - 1)
    if give_up_after is not None and give_up_after < count:
        hopeless = scores[:, :give_up_after].max(-1).values < give_up_below
        stop = torch.where(hopeless, stop.clamp(max=give_up_after - 1), stop)
    tried = torch.arange(count, device=scores.device) <= stop.unsqueeze(-1)
    kept = scores.masked_fill(~tried, float("-inf")).argmax(-1)
    return kept, spent.gather(-1, stop.unsqueeze(-1)).squeeze(-1)


def pseudo_log_likelihood(program, x: torch.Tensor, filled: torch.Tensor, z=None,
                          groups: int = 5, generator=None) -> torch.Tensor:
    """``sum_g log p(filled_g | filled_{-g}, z)`` (B,), float64: the masked positions of ``x``
    are split at random into ``groups`` groups of near-equal size (per row), and each group is
    masked again in ``filled`` and scored given everything else, one network pass per group. It
    checks a decode after the fact: every filled token is scored with all the others in view,
    those filled in its own call included."""
    blank = x == program.mask_id
    keys = torch.rand(blank.shape, generator=generator, device=x.device).masked_fill(~blank, 2.0)
    rank = keys.argsort(-1).argsort(-1)               # the blanks come first, in random order
    group = torch.where(blank, rank % groups, -1)
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for g in range(min(groups, int(blank.sum(-1).max()) if x.numel() else 0)):
        held_out = group == g
        log_probs = program.logits(torch.where(held_out, program.mask_id, filled), z)
        log_probs = log_probs.double().log_softmax(-1).gather(-1, filled.unsqueeze(-1)).squeeze(-1)
        total += torch.where(held_out, log_probs, 0.0).sum(-1)
    return total


def pseudo_log_likelihood_once(program, rows: torch.Tensor, decoded: Decoded, candidates: int,
                               groups: int, generator=None, priority=None) -> torch.Tensor:
    """:func:`pseudo_log_likelihood` of every candidate (``rows``: each input row repeated
    ``candidates`` times), computed once per *different* sequence of a row and shared by its
    copies: a sampler that often decodes the same sequence twice pays for its check once. The
    check runs under the ``z`` of the copy that ``priority`` (one number per candidate) ranks
    highest, the first copy on ties or without it: for an enumerated ``z`` its ``log p(z | x)``,
    so a sequence that several values of ``z`` decode is checked under the most probable of
    them, which is the copy that selection keeps. The copies then share one draw of the random
    groups, where scoring each would give them several."""
    n = rows.shape[0]
    unit = torch.arange(n, device=rows.device) // candidates
    key = torch.cat([unit[:, None].double(), decoded.x.double()], -1)
    order = torch.arange(n, device=rows.device) if priority is None else \
        torch.argsort(-priority, stable=True)
    unique, inverse = torch.unique(key[order], dim=0, return_inverse=True)
    first = order[torch.full((len(unique),), n, device=rows.device).scatter_reduce(
        0, inverse, torch.arange(n, device=rows.device), "amin")]  # the copy checked
    shared = torch.empty_like(inverse)
    shared[order] = inverse
    z = None if decoded.z is None else decoded.z[first]
    return pseudo_log_likelihood(program, rows[first], decoded.x[first], z, groups,
                                 generator)[shared]


def check_reference(program, x: torch.Tensor, reference) -> None:
    """Refuse z strategy ``oracle`` without an answer that fits ``x``, or in a block model."""
    if program.block_size:
        raise ValueError("z strategy 'oracle' is for models without blocks")
    if reference is None:
        raise ValueError("z strategy 'oracle' reads the answer: pass reference (the true x0)")
    check_tokens(reference, program.cfg.net.vocab_size, program.cfg.net.seq_len, "reference")
    given = x != program.mask_id
    if reference.shape != x.shape or (reference == program.mask_id).any() \
            or not torch.equal(reference[given], x[given]):
        raise ValueError("reference must be x with every mask token filled in (same shape, same "
                         "given tokens, no mask tokens)")


def decode_steps(program, x: torch.Tensor, masked: torch.Tensor, steps: int, *, order: str,
                 fill: str, z_strategy: str, generator=None, denoise=None,
                 on_reveal=None, reference=None, z=None, temperature: float = 1.0) -> Decoded:
    """Fill the ``masked`` positions of ``x`` in ``steps`` denoiser calls (arguments already
    validated). ``z`` (default: drawn from the prior given ``x``) is the first call's, and then
    follows ``z_strategy``. ``denoise(x, z)``: the logits ``(B, L, V)``, of the masked positions
    at least (default ``program.logits``). Shared by :func:`decode` and block-by-block decoding,
    which calls it once per block."""
    denoise = denoise or program.logits
    if z is None and program.has_latent and z_strategy not in ("map", ORACLE):
        z = _prior_mode(program, x) if z_strategy == "mode" else _draw_prior(program, x, generator)
    path = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for step in range(steps):
        if z_strategy == ORACLE and program.has_latent:
            z = _draw(program.guide_dist(reference, masked), generator)
        count = reveal_count(masked.sum(-1), steps - step)
        if z_strategy == "map" and program.has_latent:
            candidate, reveal, z, log_prob = _joint_mode_step(program, denoise, x, masked, count,
                                                              order, generator)
        else:
            logits = denoise(x, z)
            probs = logits.double().softmax(-1)
            candidate = (gumbel_argmax(logits.double() / temperature, generator) if fill == "sample"
                         else logits.argmax(-1))
            reveal = reveal_mask(position_scores(probs, order, generator), masked, count)
            log_prob = logits.double().log_softmax(-1).gather(-1, candidate.unsqueeze(-1))[..., 0]
        path += torch.where(reveal, log_prob, 0.0).sum(-1)
        x = torch.where(reveal, candidate, x)
        masked = masked & ~reveal
        if on_reveal is not None:
            on_reveal(step, reveal)
        if program.has_latent and step + 1 < steps:
            if z_strategy in ("resample", "prior"):
                z = _draw_prior(program, x, generator)
            elif z_strategy == "posterior":
                x0_hat = torch.where(masked, logits.argmax(-1), x)
                z = _draw(program.guide_dist(x0_hat, masked), generator)
    return Decoded(x, path, z)


def _joint_mode_step(program, denoise, x, masked, count, order, generator=None):
    """One call of z strategy ``map``: ``(candidate, reveal, z, log_prob)`` of the value ``z`` of
    a discrete latent whose argmax step is jointly most probable, ``log p(z | xt) + sum_{i revealed} max_v log p(x0^i
    = v | xt, z)``, chosen per sequence. Every value proposes a step with the same number of
    positions (``count``); in random order they share one draw of the positions' scores.
    ``log_prob`` (B, L): every candidate token's ``log p(x0^i | xt, z)`` at the kept ``z``."""
    log_prior = program.prior_dist(x).logits                      # (B, K), normalised
    shared_scores = (torch.rand(masked.shape, generator=generator, device=x.device)
                     if order == "random" else None)
    best_score = torch.full(log_prior.shape[:1], float("-inf"), dtype=torch.float64,
                            device=x.device)
    best_candidate, best_reveal = x, torch.zeros_like(masked)
    best_z = torch.zeros(log_prior.shape[:1], dtype=torch.long, device=x.device)
    best_log_prob = torch.zeros(masked.shape, dtype=torch.float64, device=x.device)
    for k in range(log_prior.shape[-1]):
        z = torch.full(log_prior.shape[:1], k, dtype=torch.long, device=x.device)
        log_probs = denoise(x, z).double().log_softmax(-1)
        top_log_prob, candidate = log_probs.max(-1)
        scores = shared_scores if shared_scores is not None else \
            position_scores(log_probs.exp(), order, generator)
        reveal = reveal_mask(scores, masked, count)
        score = log_prior[:, k].double() + torch.where(reveal, top_log_prob, 0.0).sum(-1)
        better = score > best_score
        best_score = torch.where(better, score, best_score)
        best_candidate = torch.where(better.unsqueeze(-1), candidate, best_candidate)
        best_reveal = torch.where(better.unsqueeze(-1), reveal, best_reveal)
        best_z = torch.where(better, z, best_z)
        best_log_prob = torch.where(better.unsqueeze(-1), top_log_prob, best_log_prob)
    return best_candidate, best_reveal, best_z, best_log_prob


def generate_blocks(program, x: torch.Tensor, *, nfe: int, order: str, fill: str, z_strategy: str,
                    generator=None, cache: bool = True, on_reveal=None,
                    temperature: float = 1.0) -> tuple[Decoded, int]:
    """Block-by-block decoding: block ``b`` is filled in its share of the ``nfe`` calls
    (:func:`nfe_per_block`, at least one per block), conditioned on the decoded earlier blocks.
    ``z_b`` follows ``z_strategy`` inside the block: ``fixed`` draws it once from
    ``p(z_b | x^{<b})``, ``resample`` redraws it every step, ``posterior`` draws it from
    ``q(z_b | x0_hat, mask)``. With ``cache`` a call runs the network on block ``b``'s noisy
    tokens only, attending to the kept keys and values of the clean blocks before it (each
    computed once, when its block is decoded), instead of on the whole ``[x ; x]``. Called by
    :func:`decode`, after :func:`generate` validates the arguments; returns ``(Decoded, calls)``
    (its ``path_log_prob`` summed over the blocks, its ``z`` the last block's)."""
    net = program.cfg.net
    if z_strategy == "prior":
        raise ValueError("z strategy 'prior' is for priors p(z | xt) without blocks; in block "
                         "models use 'fixed' or 'resample' (a block prior already sees x^{<b})")
    if nfe < net.num_blocks:
        warnings.warn(f"nfe={nfe} is below the {net.num_blocks} blocks; using one call per block")
        nfe = net.num_blocks
    mask_id, x = program.mask_id, x.clone()
    blk = block_of(net.seq_len, net.block_size, x.device)
    used, past = 0, None
    path, z = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device), None
    for b, calls in enumerate(nfe_per_block(nfe, net.num_blocks)):
        masked = (x == mask_id) & (blk == b)
        steps = min(calls, int(masked.sum(-1).max()))
        # logits(x, z) reads x as the clean copy too: only its blocks < b are attended to
        denoise = partial(_cached_block_logits, program, b, past) if cache else None
        x, block_path, z = decode_steps(program, x, masked, steps, order=order, fill=fill,
                                        z_strategy=z_strategy, generator=generator,
                                        denoise=denoise, on_reveal=on_reveal,
                                        temperature=temperature)
        path += block_path
        used += steps
        if cache and b + 1 < net.num_blocks:
            past = program.denoiser.extend_past(x[:, blk == b], b, past)
    return Decoded(x, path, z), used


def _cached_block_logits(program, block: int, past, x: torch.Tensor, z) -> torch.Tensor:
    """``program.logits(x, z)`` where the sampler reads it, block ``block``, from the cache
    ``past``; the other positions, which the sampler does not read, get zeros."""
    in_block = block_of(x.shape[-1], program.block_size, x.device) == block
    block_logits = program.next_block_logits(x[:, in_block], z, block, past)
    logits = block_logits.new_zeros((*x.shape, block_logits.shape[-1]))
    logits[:, in_block] = block_logits
    return logits


def _draw_prior(program, x, generator):
    return _draw(program.prior_dist(x), generator)


def _prior_mode(program, x):
    """The most probable value of ``p(z | x)`` per sequence (z strategy ``mode``)."""
    if not program.prior.has_mode:
        raise ValueError(f"z strategy 'mode' needs a prior with a closed-form mode (discrete, "
                         f"gaussian, conditional); prior {program.prior.name!r} has none")
    return program.prior_dist(x).mode


NORMALS = (torch.distributions.Normal, pyro.distributions.Normal)


def _draw(distribution, generator, sample_shape=()):
    """``distribution.sample(sample_shape)`` drawn from ``generator`` (``None``: the global stream),
    without touching the global stream."""
    if generator is None:
        return distribution.sample(sample_shape)
    base = distribution
    while isinstance(base, torch.distributions.Independent):
        base = base.base_dist
    if type(base) in NORMALS and base.loc.device == generator.device:
        # loc + scale * noise from the generator itself: no fork needed
        shape = torch.Size(sample_shape) + distribution.batch_shape + distribution.event_shape
        noise = torch.randn(shape, generator=generator,
                            dtype=base.loc.dtype, device=base.loc.device)
        with torch.no_grad():
            return base.loc + base.scale * noise
    # Other Pyro/torch distributions take no generator; fork the RNG so a seeded ``generator``
    # still makes the whole sampler reproducible. (Forking and seeding cost about 1% of a VMD
    # decoding run of the synthetic MLP, whose Normal prior takes the path above.)
    seed = int(torch.randint(0, 2 ** 62, (), generator=generator, device=generator.device))
    cuda = [generator.device] if generator.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        # The streams torch.manual_seed seeds, without its cost: on a machine without CUDA it
        # also queues a seed for a later CUDA start, with a formatted stack trace (about 1 ms a
        # call, a VMD sampler's largest cost beyond MDM's on the synthetic MLP, results/bench).
        torch.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.manual_seed_all(seed)
        return distribution.sample(sample_shape)


def all_masked(num: int, seq_len: int, mask_id: int, device=None) -> torch.Tensor:
    return torch.full((num, seq_len), mask_id, dtype=torch.long, device=device)


def steps_schedule(num_masked: int, nfe: int) -> list[int]:
    """How many positions each step reveals for a sequence with ``num_masked`` masks (for docs and
    tests): an even split of the remaining positions over the remaining steps."""
    counts, remaining = [], num_masked
    for step in range(nfe):
        k = math.ceil(remaining / (nfe - step))
        counts.append(k)
        remaining -= k
    return counts
