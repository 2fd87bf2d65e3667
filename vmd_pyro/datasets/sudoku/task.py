"""Sudoku as a masked-diffusion task: tokens, the data splits (cached), the training stream, and
filling and scoring puzzles with a model.

As model tokens, digit ``d`` is id ``d - 1`` (vocabulary 9) and the mask is id 9.
:class:`SudokuTask` holds validation / test splits of genuine unique-solution puzzles, and a training
stream of complete grids (a pool of random grids, each draw transformed by a random
validity-preserving symmetry) with a random subset of cells as non-maskable clues. No training grid
ever equals a validation or test grid (checked per draw), and validation and test share none.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from vmd_pyro.datasets.sudoku.rules import (BOX, COL, PEERS_OF, ROW, SIZE, check_clue_range,
                                            clue_counts, generate_puzzles,
                                            generate_puzzles_by_clue_count, grid_string, random_grid,
                                            random_symmetry, valid_solutions)
from vmd_pyro.sampling import generate

VOCAB = 9
MASK_ID = VOCAB


# ---------------------------------------------------------------------------------------- tokens

def to_tokens(puzzles) -> torch.Tensor:
    """Grids of 0..9 (0 blank) -> token ids: digit d -> d - 1, blank -> mask (9)."""
    g = torch.as_tensor(puzzles, dtype=torch.long).reshape(-1, SIZE)
    return torch.where(g == 0, torch.full_like(g, MASK_ID), g - 1)


def to_digits(tokens: torch.Tensor) -> torch.Tensor:
    """Token ids -> digits 1..9 (mask -> 0)."""
    return torch.where(tokens == MASK_ID, torch.zeros_like(tokens), tokens + 1)


def solved(puzzles: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
    """Bool per puzzle: ``filled`` (token ids) is a valid grid and keeps every clue of ``puzzles``."""
    clues = puzzles != MASK_ID
    keeps = ((filled == puzzles) | ~clues).all(-1)
    return keeps & valid_solutions(to_digits(filled))


# ------------------------------------------------------------------------------------------ task

@dataclass
class SudokuConfig:
    clue_min: int = 30
    clue_max: int = 40
    num_val: int = 200
    num_test: int = 1000
    train_pool: int = 4000     # random grids that the training stream transforms by symmetries
    seed: int = 0


class SudokuTask:
    """Sudoku as a masked-diffusion task: 81 cells, vocabulary 9, clues never masked."""

    vocab_size = VOCAB
    seq_len = SIZE
    name = "sudoku"
    position_groups = (tuple(ROW), tuple(COL), tuple(BOX))  # the three constraints of every cell

    def __init__(self, cfg: SudokuConfig = SudokuConfig(), cache_dir="data_cache", progress=False,
                 train_clues=None, hard: HardSplitConfig | None = None):
        """``train_clues``: the clue count range of training grids (default: the splits' range);
        ``hard``: also hold the few-clue test split of that config (``self.hard``)."""
        self.cfg = cfg
        check_clue_range((cfg.clue_min, cfg.clue_max))
        self.train_clues = check_clue_range(train_clues or (cfg.clue_min, cfg.clue_max))
        data = load_or_build(cfg, cache_dir, progress)
        self.val = (to_tokens(data["val_puzzles"]), to_tokens(data["val_solutions"]))
        self.test = (to_tokens(data["test_puzzles"]), to_tokens(data["test_solutions"]))
        self.pool = torch.tensor(data["train_pool"], dtype=torch.long)
        held_out = data["val_solutions"] + data["test_solutions"]
        self.hard = self.hard_seconds = None
        if hard is not None:
            check_clue_range((hard.clue_min, hard.clue_max))
            found = load_or_build_hard(hard, cache_dir, progress)
            self.hard = (to_tokens(found["puzzles"]), to_tokens(found["solutions"]))
            self.hard_seconds = found["seconds"]
            held_out += found["solutions"]
        self.held_out = {_grid_key(s) for s in held_out}

    def sample(self, batch_size: int, generator=None):
        """``(x0, maskable)``: pool grids under random symmetries, none of them a held-out grid;
        a clue count uniform in the training clue range, the clues at random cells (not
        maskable)."""
        rows = []
        while len(rows) < batch_size:
            idx = torch.randint(len(self.pool), (batch_size,), generator=generator)
            grids = random_symmetry(self.pool[idx], generator)
            rows += [g for g, key in zip(grids, grids.to(torch.uint8).numpy())
                     if key.tobytes() not in self.held_out]
        x0 = torch.stack(rows[:batch_size]) - 1
        clues = torch.randint(self.train_clues[0], self.train_clues[1] + 1, (batch_size, 1),
                              generator=generator)
        rank = torch.rand(batch_size, SIZE, generator=generator).argsort(-1).argsort(-1)
        return x0, rank >= clues


def _grid_key(grid) -> bytes:
    """A hashable key of a grid of digits, cheap to compute for a batch (one byte per cell)."""
    return bytes(int(d) for d in grid)


def load_or_build(cfg: SudokuConfig, cache_dir, progress=False) -> dict:
    """The splits for ``cfg``, built once and cached as JSON under ``cache_dir`` keyed by the config."""
    def build():
        clue_range = (cfg.clue_min, cfg.clue_max)
        if progress:
            print(f"building Sudoku splits ({cfg.num_test} test, {cfg.num_val} validation puzzles, "
                  f"{cfg.train_pool} training grids)...", flush=True)
        test_p, test_s = generate_puzzles(cfg.num_test, clue_range, seed=cfg.seed * 3 + 1,
                                          progress=progress)
        val_p, val_s = generate_puzzles(cfg.num_val, clue_range, seed=cfg.seed * 3 + 2,
                                        exclude={grid_string(s) for s in test_s},
                                        progress=progress)
        held_out = {grid_string(s) for s in test_s + val_s}
        rng = random.Random(cfg.seed * 3 + 3)
        pool = []
        while len(pool) < cfg.train_pool:
            grid = random_grid(rng)
            if grid_string(grid) not in held_out:
                pool.append(grid)
        return {"test_puzzles": test_p, "test_solutions": test_s,
                "val_puzzles": val_p, "val_solutions": val_s, "train_pool": pool}

    return _cached("sudoku", cfg, build, cache_dir)


@dataclass
class HardSplitConfig:
    """A test split with few clues, filed by clue count: up to ``per_count`` unique-solution
    puzzles for every count in ``clue_min..clue_max``, searched within ``max_grids`` grids of
    ``moves`` swaps each (:func:`~vmd_pyro.datasets.sudoku.rules.generate_puzzles_by_clue_count`;
    counts below about 21 are rare and may stay short)."""
    clue_min: int = 17
    clue_max: int = 29
    per_count: int = 100
    max_grids: int = 1000
    moves: int = 200
    seed: int = 0
    # Swaps more for a grid down to focus_at clues (rules.search_puzzle). Added after splits were
    # cached: at 0 they leave the cache key as it was (cache_config).
    focus_moves: int = field(default=0, metadata={"cache_key_if_set": True})
    focus_at: int = field(default=21, metadata={"cache_key_if_set": True})


def cache_config(cfg) -> dict:
    """``cfg`` as its cache knows it: a field added after caches were written (metadata
    ``cache_key_if_set``) counts only away from its default, so those caches stay valid."""
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)
            if not (f.metadata.get("cache_key_if_set") and getattr(cfg, f.name) == f.default)}


def load_or_build_hard(cfg: HardSplitConfig, cache_dir, progress=False) -> dict:
    """The split of ``cfg`` (cached like :func:`load_or_build`): ``puzzles``, ``solutions`` and the
    ``seconds`` its search took."""
    def build():
        if progress:
            print(f"searching Sudoku puzzles with {cfg.clue_min}-{cfg.clue_max} clues "
                  f"({cfg.per_count} per count, at most {cfg.max_grids} grids)...", flush=True)
        start = time.perf_counter()
        puzzles, solutions = generate_puzzles_by_clue_count(
            cfg.per_count, (cfg.clue_min, cfg.clue_max), seed=cfg.seed * 3 + 4,
            max_grids=cfg.max_grids, moves=cfg.moves, progress=progress,
            focus_moves=cfg.focus_moves, focus_at=cfg.focus_at)
        return {"puzzles": puzzles, "solutions": solutions,
                "seconds": time.perf_counter() - start}

    return _cached("sudoku-hard", cfg, build, cache_dir)


def _cached(name: str, cfg, build, cache_dir) -> dict:
    """``build()`` plus the config, cached as JSON under ``cache_dir`` keyed by ``name`` and the
    config (a damaged or foreign cache is rebuilt, never used)."""
    key = hashlib.sha1(json.dumps(cache_config(cfg), sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"{name}-{key}.json" if cache_dir else None
    if path is not None and path.is_file():
        data, problem = _read_cache(path, cfg)
        if data is not None:
            return data
        print(f"data cache {str(path)!r} {problem}: rebuilding it", file=sys.stderr, flush=True)
    data = {"config": cache_config(cfg), **build()}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**data, "sha256": _digest(data)}))
        tmp.replace(path)
    return data


def _digest(data: dict) -> str:
    """A checksum of the splits, stored in the cache: a damaged cache is rebuilt, never used."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _read_cache(path: Path, cfg):
    """``(data, None)`` for an intact cache of ``cfg``, else ``(None, what is wrong)``."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        return None, f"is unreadable ({type(err).__name__})"
    if not isinstance(data, dict) or "sha256" not in data:
        return None, "has no checksum (an older version wrote it) or is not a cache"
    stored = data.pop("sha256")
    if stored != _digest(data):
        return None, "is damaged (its checksum does not match)"
    if data.get("config") != cache_config(cfg):
        return None, "was built for another configuration"
    return data, None


# ------------------------------------------------------------------------------ solving by a model

def fill_puzzles(program, puzzles: torch.Tensor, *, nfe: int, order: str, fill: str = "sample",
                 z_strategy: str = "fixed", generator=None, batch_size: int = 500,
                 return_calls: bool = False, solutions: torch.Tensor | None = None,
                 **selection):
    """Fill the blanks (mask tokens) of ``puzzles`` (B, 81) with the model in ``nfe`` denoiser calls
    per puzzle, ``batch_size`` puzzles at a time; clues are never changed (``generate`` keeps every
    given token). With ``return_calls`` also the call that filled each cell ``(B, 81)``, from 0
    (-1 for clues): the input of :func:`failure_kinds`. ``solutions`` (B, 81): read only by the
    diagnostic z strategy ``oracle``. ``selection``: ``candidates``, ``select``, ``check_groups``,
    ``check_distinct``, ``temperature`` and ``z_values`` of :func:`vmd_pyro.sampling.generate`
    (several decodes, one kept)."""
    device = next(program.parameters()).device
    out, calls = [], []
    chunks = puzzles.split(batch_size)
    answers = [None] * len(chunks) if solutions is None else solutions.split(batch_size)
    for chunk, answer in zip(chunks, answers):
        call = torch.full(chunk.shape, -1, dtype=torch.long)

        def record(step, reveal, call=call):
            call[reveal.cpu()] = step

        out.append(generate(program, chunk.to(device), nfe=nfe, order=order, fill=fill,
                            z_strategy=z_strategy, generator=generator,
                            reference=None if answer is None else answer.to(device),
                            on_reveal=record if return_calls else None, **selection)[0].cpu())
        calls.append(call)
    return (torch.cat(out), torch.cat(calls)) if return_calls else torch.cat(out)


# rules.PEERS_OF as an (81, 81) mask: True where two cells share a row, column or box.
PEERS = torch.zeros((SIZE, SIZE), dtype=torch.bool)
PEERS[[i for i, peers in enumerate(PEERS_OF) for _ in peers],
      [j for peers in PEERS_OF for j in peers]] = True


def failure_kinds(puzzles: torch.Tensor, filled: torch.Tensor, calls: torch.Tensor,
                  solutions: torch.Tensor) -> dict:
    """Why the unsolved puzzles fail, from the call that filled each cell (``fill_puzzles(...,
    return_calls=True)``; token ids throughout). A failed grid breaks a rule: two peers (same row,
    column or box) hold the same digit. A conflict between two cells filled in the **same** call is
    one the denoiser could not see (it predicts the cells of one call independently, the case a
    latent is for); a conflict with a clue or an earlier cell is a mistake made in plain sight.

    Counts over the failed puzzles: ``with_same_call_conflict`` (at least one such pair),
    ``only_same_call_conflicts`` (every conflicting pair is one), and for the **first** call that
    put a wrong digit (against ``solutions``): ``first_error_in_same_call_conflict``, where a wrong
    digit of that call clashes with another cell of the same call, and ``first_error_call``, the
    histogram of that call's index."""
    failed = ~solved(puzzles, filled)
    conflict = (filled[:, :, None] == filled[:, None, :]) & PEERS
    filled_by_model = calls >= 0
    same_call = (conflict & (calls[:, :, None] == calls[:, None, :])
                 & filled_by_model[:, :, None])
    wrong = (filled != solutions) & filled_by_model
    big = torch.iinfo(torch.long).max
    first = torch.where(wrong, calls, torch.full_like(calls, big)).min(-1).values    # (B,)
    in_first = wrong & (calls == first[:, None])
    first_clash = (same_call & in_first[:, :, None]).any((1, 2))
    only_same = conflict.any((1, 2)) & ~(conflict & ~same_call).any((1, 2))
    return {"failed": int(failed.sum()), "puzzles": int(puzzles.shape[0]),
            "with_same_call_conflict": int((failed & same_call.any((1, 2))).sum()),
            "only_same_call_conflicts": int((failed & only_same).sum()),
            "first_error_in_same_call_conflict": int((failed & first_clash).sum()),
            "first_error_call": {str(c): int(((first == c) & failed).sum())
                                 for c in first[failed].unique().tolist()}}


def score(puzzles: torch.Tensor, filled: torch.Tensor, solutions: torch.Tensor | None = None) -> dict:
    """Solve rate (valid grid keeping the clues: checked by the rules) and, with reference
    ``solutions``, the accuracy over the blank cells (for unique-solution puzzles every valid grid
    is the reference one)."""
    out = {"solve_rate": float(solved(puzzles, filled).double().mean()),
           "num_puzzles": int(puzzles.shape[0])}
    if solutions is not None:
        blanks = puzzles == MASK_ID
        out["cell_accuracy"] = float(((filled == solutions) & blanks).sum() / blanks.sum())
    return out


def valid_candidates(puzzles: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """(B, C) bool: which of each puzzle's ``candidates`` (B, C, 81) are valid grids keeping its
    clues (:func:`solved` for every candidate)."""
    batch, count = candidates.shape[:2]
    return solved(puzzles.repeat_interleave(count, 0), candidates.flatten(0, 1)).view(batch, count)


def candidate_coverage(puzzles: torch.Tensor, candidates: torch.Tensor) -> dict:
    """What the several decodes of each puzzle offered a check to choose from (``candidates``
    (B, C, 81) token ids, from ``generate(..., on_candidates=...)``): ``any_candidate_solves``, the
    share of puzzles with at least one valid grid among them (what a check that knew the rules
    would solve: the ceiling of any selection), ``solving_candidates``, the mean number of valid
    ones, ``distinct_candidates``, the mean number of different grids per puzzle, and
    ``distinct_wrong_candidates``, of different invalid grids (the valid grids of a puzzle with
    one solution are all the same grid, so repeats among the wrong ones are the wasted guesses)."""
    batch = candidates.shape[0]
    ok = valid_candidates(puzzles, candidates)
    distinct = torch.tensor([[len(grids.unique(dim=0)), len(grids[~valid].unique(dim=0))]
                             for grids, valid in zip(candidates, ok)], dtype=torch.float64)
    mean = distinct.mean(0) if batch else torch.zeros(2, dtype=torch.float64)
    return {"any_candidate_solves": float(ok.any(-1).double().mean()),
            "solving_candidates": float(ok.double().sum(-1).mean()),
            "distinct_candidates": float(mean[0]), "distinct_wrong_candidates": float(mean[1])}


def score_by_clues(puzzles: torch.Tensor, filled: torch.Tensor,
                   solutions: torch.Tensor | None = None) -> dict[str, dict]:
    """:func:`score` for the puzzles of each clue count separately, keyed by the count (a string,
    as JSON keys are), in increasing order."""
    counts = (puzzles != MASK_ID).sum(-1)
    return {str(int(c)): score(puzzles[counts == c], filled[counts == c],
                               None if solutions is None else solutions[counts == c])
            for c in counts.unique().tolist()}
