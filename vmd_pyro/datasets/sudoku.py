"""Sudoku (DESIGN.md section 2): an exact solver, a puzzle generator, puzzle files and the task.

Grids are lists (or rows of tensors) of 81 cells in row-major order holding ``1..9`` for digits and
``0`` for blanks. As model tokens, digit ``d`` is id ``d - 1`` (vocabulary 9) and the mask is id 9.

* :func:`count_solutions` / :func:`solve`: a bitmask backtracking solver that always branches on
  the blank with the fewest candidates (so forced cells are filled first: constraint propagation by
  "naked singles"), stopping once it has found ``cap`` solutions. A cap of 2 decides uniqueness.
* :func:`random_grid` draws a complete grid by the solver with random digit order; :func:`make_puzzle`
  removes clues from it in random order, keeping each removal only while the solution stays unique,
  until the clue count drawn from the requested range is reached.
* :class:`SudokuTask`: validation / test splits of genuine unique-solution puzzles, and a training
  stream of complete grids (a pool of random grids, each draw transformed by a random
  validity-preserving symmetry) with a random subset of cells as non-maskable clues. No training
  grid ever equals a validation or test grid (checked per draw), and validation and test share none.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

VOCAB = 9
SIZE = 81
MASK_ID = VOCAB
ALL = 0x3FE  # bits 1..9: every digit allowed

ROW = [i // 9 for i in range(SIZE)]
COL = [i % 9 for i in range(SIZE)]
BOX = [(i // 27) * 3 + (i % 9) // 3 for i in range(SIZE)]
DIGITS_OF = {mask: [d for d in range(1, 10) if mask >> d & 1] for mask in range(1 << 10)}
POPCOUNT = [bin(m).count("1") for m in range(1 << 10)]


# ------------------------------------------------------------------------------------- the solver

def _houses(grid):
    """Used-digit bitmasks per row, column and box, or ``None`` if two clues clash."""
    rows, cols, boxes = [0] * 9, [0] * 9, [0] * 9
    for i, d in enumerate(grid):
        if d:
            bit = 1 << d
            if (rows[ROW[i]] | cols[COL[i]] | boxes[BOX[i]]) & bit:
                return None
            rows[ROW[i]] |= bit
            cols[COL[i]] |= bit
            boxes[BOX[i]] |= bit
    return rows, cols, boxes


def _search(grid, rows, cols, boxes, blanks, cap, found, rng):
    """Depth-first search filling ``blanks``; appends solutions to ``found`` until it holds ``cap``."""
    if not blanks:
        found.append(list(grid))
        return
    best, best_mask, best_count = -1, 0, 10
    for k, i in enumerate(blanks):  # most constrained blank first
        mask = ALL & ~(rows[ROW[i]] | cols[COL[i]] | boxes[BOX[i]])
        n = POPCOUNT[mask]
        if n < best_count:
            best, best_mask, best_count = k, mask, n
            if n <= 1:
                break
    if best_count == 0:
        return
    i = blanks[best]
    rest = blanks[:best] + blanks[best + 1:]
    digits = DIGITS_OF[best_mask]
    if rng is not None:
        digits = rng.sample(digits, len(digits))
    r, c, b = ROW[i], COL[i], BOX[i]
    for d in digits:
        bit = 1 << d
        grid[i] = d
        rows[r] |= bit
        cols[c] |= bit
        boxes[b] |= bit
        _search(grid, rows, cols, boxes, rest, cap, found, rng)
        rows[r] ^= bit
        cols[c] ^= bit
        boxes[b] ^= bit
        if len(found) >= cap:
            break
    grid[i] = 0


def _solutions(grid, cap: int, rng=None) -> list[list[int]]:
    grid = check_grid(grid)
    houses = _houses(grid)
    if houses is None:
        return []
    found = []
    _search(grid, *houses, [i for i in range(SIZE) if not grid[i]], cap, found, rng)
    return found


def count_solutions(grid, cap: int = 2) -> int:
    """Number of completions of ``grid`` (0 = blank), counted up to ``cap``."""
    return len(_solutions(grid, cap))


def solve(grid) -> list[int] | None:
    """The unique-or-first completion of ``grid``, or ``None`` if it has none."""
    found = _solutions(grid, 1)
    return found[0] if found else None


def check_grid(grid) -> list[int]:
    grid = [int(d) for d in grid]
    if len(grid) != SIZE or any(not 0 <= d <= 9 for d in grid):
        raise ValueError("a Sudoku grid has 81 cells holding 0 (blank) or 1..9")
    return grid


def is_valid_solution(grid) -> bool:
    """Every row, column and box holds 1..9 exactly once (checked by the rules, not an answer)."""
    grid = list(grid)
    if len(grid) != SIZE or any(not 1 <= d <= 9 for d in grid):
        return False
    return _houses(grid) is not None


def valid_solutions(grids: torch.Tensor) -> torch.Tensor:
    """Vectorised :func:`is_valid_solution` for a (B, 81) tensor of digits 1..9 (or token ids
    0..8 plus one): bool (B,)."""
    g = grids.long().reshape(-1, 9, 9)
    boxes = g.reshape(-1, 3, 3, 3, 3).permute(0, 1, 3, 2, 4).reshape(-1, 9, 9)
    ok = (g >= 1).all((1, 2)) & (g <= 9).all((1, 2))
    for houses in (g, g.transpose(1, 2), boxes):
        onehot = torch.nn.functional.one_hot(houses.clamp(1, 9) - 1, 9).sum(-2)
        ok &= (onehot == 1).all((1, 2))
    return ok


# ----------------------------------------------------------------------------------- generation

def random_grid(rng: random.Random) -> list[int]:
    """A complete grid drawn by the solver with random branching order."""
    return _solutions([0] * SIZE, 1, rng)[0]


def make_puzzle(solution, num_clues: int, rng: random.Random) -> list[int]:
    """Blank cells of ``solution`` in random order while the puzzle keeps a unique solution, until
    ``num_clues`` remain. Raises if no unique puzzle that small is reached (greedy removal reaches
    about 22-26 clues, so ranges above that always succeed)."""
    puzzle = list(solution)
    clues = SIZE
    for i in rng.sample(range(SIZE), SIZE):
        if clues == num_clues:
            return puzzle
        puzzle[i] = 0
        if count_solutions(puzzle, 2) == 1:
            clues -= 1
        else:
            puzzle[i] = solution[i]
    if clues != num_clues:
        raise ValueError(f"could not reach {num_clues} clues with a unique solution (stuck at {clues})")
    return puzzle


def generate_puzzles(count: int, clue_range: tuple[int, int], seed: int, exclude=(),
                     progress: bool = False):
    """``count`` unique-solution puzzles with a clue count uniform in ``clue_range`` (inclusive),
    on distinct grids none of which is in ``exclude`` (a set of 81-digit strings). Returns
    ``(puzzles, solutions)`` as lists of 81-int lists."""
    lo, hi = check_clue_range(clue_range)
    rng = random.Random(seed)
    seen = set(exclude)
    puzzles, solutions = [], []
    bar = tqdm(total=count, desc="puzzles", disable=not progress, leave=False)
    while len(puzzles) < count:
        solution = random_grid(rng)
        key = grid_string(solution)
        if key in seen:
            continue
        seen.add(key)
        puzzles.append(make_puzzle(solution, rng.randint(lo, hi), rng))
        solutions.append(solution)
        bar.update()
    bar.close()
    return puzzles, solutions


def check_clue_range(clue_range) -> tuple[int, int]:
    lo, hi = (int(v) for v in clue_range)
    if not 17 <= lo <= hi <= SIZE:
        raise ValueError(f"clue range must satisfy 17 <= min <= max <= 81, got {lo}-{hi}")
    return lo, hi


def random_symmetry(grids: torch.Tensor, generator=None) -> torch.Tensor:
    """Apply an independent random validity-preserving symmetry to each grid of (B, 81) digits:
    digit relabelling, row permutation within bands and of bands, the same for columns/stacks,
    and a transpose with probability 1/2."""
    b = grids.shape[0]
    g = grids.reshape(b, 9, 9)

    def line_perm():
        band = torch.rand(b, 3, generator=generator).argsort(-1)
        within = torch.rand(b, 3, 3, generator=generator).argsort(-1)
        return (band.unsqueeze(-1) * 3 + within).reshape(b, 9)

    rows, cols = line_perm(), line_perm()
    g = g.gather(1, rows.unsqueeze(-1).expand(b, 9, 9))
    g = g.gather(2, cols.unsqueeze(1).expand(b, 9, 9))
    flip = torch.rand(b, generator=generator) < 0.5
    g = torch.where(flip.view(b, 1, 1), g.transpose(1, 2), g)
    relabel = torch.cat([torch.zeros(b, 1, dtype=torch.long),
                         torch.rand(b, 9, generator=generator).argsort(-1) + 1], 1)
    return relabel.gather(1, g.reshape(b, SIZE))


# ----------------------------------------------------------------------------------- puzzle files

def grid_string(grid) -> str:
    return "".join(str(int(d)) for d in grid)


def parse_puzzle_line(line: str, lineno: int = 0):
    """``(puzzle, solution or None)`` from one line: 81 characters ``1-9`` / ``0`` / ``.``, optionally
    a separator (comma, space, tab, ``;`` or ``|``) and the 81-digit solution."""
    where = f"line {lineno}: " if lineno else ""
    text = line.strip()
    for sep in ",;|\t ":
        text = text.replace(sep, " ")
    fields = text.split()
    if len(fields) not in (1, 2):
        raise ValueError(f"{where}expected an 81-character puzzle, optionally followed by a "
                         f"separator and its 81-digit solution; got {len(fields)} fields")
    puzzle = _parse_cells(fields[0], where + "puzzle", blanks=True)
    if _houses(puzzle) is None:
        raise ValueError(f"{where}the clues contradict each other (a digit repeats in a row, column "
                         f"or box)")
    solution = None
    if len(fields) == 2:
        solution = _parse_cells(fields[1], where + "solution", blanks=False)
        if not is_valid_solution(solution):
            raise ValueError(f"{where}the solution is not a valid Sudoku grid")
        if any(p and p != s for p, s in zip(puzzle, solution)):
            raise ValueError(f"{where}the solution does not agree with the clues")
    return puzzle, solution


def _parse_cells(text: str, what: str, blanks: bool) -> list[int]:
    if len(text) != SIZE:
        raise ValueError(f"{what} has {len(text)} characters, expected 81")
    allowed = "0123456789." if blanks else "123456789"
    bad = [ch for ch in text if ch not in allowed]
    if bad:
        raise ValueError(f"{what} holds {bad[0]!r}; allowed: "
                         f"{'1-9 for clues, 0 or . for blanks' if blanks else 'digits 1-9'}")
    return [0 if ch == "." else int(ch) for ch in text]


def read_puzzles(path):
    """Read a puzzle file (blank lines and lines starting with ``#`` are skipped). Returns
    ``(puzzles, solutions)``; ``solutions`` is ``None`` unless every puzzle carries one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"puzzle file {str(path)!r} does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ValueError(f"cannot read puzzle file {str(path)!r} ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"puzzle file {str(path)!r} is not text: byte {err.object[err.start]:#04x} "
                         f"at offset {err.start} is not UTF-8") from None
    puzzles, solutions = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        puzzle, solution = parse_puzzle_line(line, lineno)
        puzzles.append(puzzle)
        solutions.append(solution)
    if not puzzles:
        raise ValueError(f"puzzle file {str(path)!r} holds no puzzles")
    return puzzles, (solutions if all(s is not None for s in solutions) else None)


def write_puzzles(path, puzzles, solutions=None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [grid_string(p) + ("," + grid_string(s) if solutions is not None else "")
             for p, s in zip(puzzles, solutions if solutions is not None else puzzles)]
    path.write_text("\n".join(lines) + "\n")


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

    def __init__(self, cfg: SudokuConfig = SudokuConfig(), cache_dir="data_cache", progress=False):
        check_clue_range((cfg.clue_min, cfg.clue_max))
        self.cfg = cfg
        data = load_or_build(cfg, cache_dir, progress)
        self.val = (to_tokens(data["val_puzzles"]), to_tokens(data["val_solutions"]))
        self.test = (to_tokens(data["test_puzzles"]), to_tokens(data["test_solutions"]))
        self.pool = torch.tensor(data["train_pool"], dtype=torch.long)
        self.held_out = {_grid_key(s) for s in data["val_solutions"] + data["test_solutions"]}

    def sample(self, batch_size: int, generator=None):
        """``(x0, maskable)``: pool grids under random symmetries, none of them a held-out grid;
        a clue count uniform in the clue range, the clues at random cells (not maskable)."""
        rows = []
        while len(rows) < batch_size:
            idx = torch.randint(len(self.pool), (batch_size,), generator=generator)
            grids = random_symmetry(self.pool[idx], generator)
            rows += [g for g, key in zip(grids, grids.to(torch.uint8).numpy())
                     if key.tobytes() not in self.held_out]
        x0 = torch.stack(rows[:batch_size]) - 1
        clues = torch.randint(self.cfg.clue_min, self.cfg.clue_max + 1, (batch_size, 1),
                              generator=generator)
        rank = torch.rand(batch_size, SIZE, generator=generator).argsort(-1).argsort(-1)
        return x0, rank >= clues


def _grid_key(grid) -> bytes:
    """A hashable key of a grid of digits, cheap to compute for a batch (one byte per cell)."""
    return bytes(int(d) for d in grid)


def load_or_build(cfg: SudokuConfig, cache_dir, progress=False) -> dict:
    """The splits for ``cfg``, built once and cached as JSON under ``cache_dir`` keyed by the config."""
    key = hashlib.sha1(json.dumps(asdict(cfg), sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"sudoku-{key}.json" if cache_dir else None
    if path is not None and path.is_file():
        data, problem = _read_cache(path, cfg)
        if data is not None:
            return data
        print(f"data cache {str(path)!r} {problem}: rebuilding it", file=sys.stderr, flush=True)
    clue_range = (cfg.clue_min, cfg.clue_max)
    if progress:
        print(f"building Sudoku splits ({cfg.num_test} test, {cfg.num_val} validation puzzles, "
              f"{cfg.train_pool} training grids)...", flush=True)
    test_p, test_s = generate_puzzles(cfg.num_test, clue_range, seed=cfg.seed * 3 + 1,
                                      progress=progress)
    val_p, val_s = generate_puzzles(cfg.num_val, clue_range, seed=cfg.seed * 3 + 2,
                                    exclude={grid_string(s) for s in test_s}, progress=progress)
    held_out = {grid_string(s) for s in test_s + val_s}
    rng = random.Random(cfg.seed * 3 + 3)
    pool = []
    while len(pool) < cfg.train_pool:
        grid = random_grid(rng)
        if grid_string(grid) not in held_out:
            pool.append(grid)
    data = {"config": asdict(cfg), "test_puzzles": test_p, "test_solutions": test_s,
            "val_puzzles": val_p, "val_solutions": val_s, "train_pool": pool}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**data, "sha256": _digest(data)}))
        tmp.replace(path)
    return data


def _digest(data: dict) -> str:
    """A checksum of the splits, stored in the cache: a damaged cache is rebuilt, never used."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _read_cache(path: Path, cfg: SudokuConfig):
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
    if data.get("config") != asdict(cfg):
        return None, "was built for another configuration"
    return data, None


# ------------------------------------------------------------------------------ solving by a model

def fill_puzzles(program, puzzles: torch.Tensor, *, nfe: int, order: str, fill: str = "sample",
                 z_strategy: str = "fixed", generator=None, batch_size: int = 500) -> torch.Tensor:
    """Fill the blanks (mask tokens) of ``puzzles`` (B, 81) with the model in ``nfe`` denoiser calls
    per puzzle, ``batch_size`` puzzles at a time; clues are never changed (``generate`` keeps every
    given token)."""
    from vmd_pyro.sampling import generate

    device = next(program.parameters()).device
    out = [generate(program, chunk.to(device), nfe=nfe, order=order, fill=fill,
                    z_strategy=z_strategy, generator=generator)[0].cpu()
           for chunk in puzzles.split(batch_size)]
    return torch.cat(out)


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
