"""The rules of Sudoku and a puzzle generator.

Grids are lists (or rows of tensors) of 81 cells in row-major order holding ``1..9`` for digits and
``0`` for blanks.

* :func:`solve`: a bitmask backtracking solver that always branches on the blank with the fewest
  candidates (so forced cells are filled first); :func:`count_solutions` counts completions up to
  ``cap`` with naked- and hidden-single propagation between branches. A cap of 2 decides
  uniqueness.
* :func:`is_valid_solution` / :func:`valid_solutions`: a complete grid checked by the rules.
* :func:`random_grid` draws a complete grid by the solver with random digit order; :func:`make_puzzle`
  removes clues from it in random order, keeping each removal only while the solution stays unique,
  until the clue count drawn from the requested range is reached; below about 22-26 clues greedy
  removal gets stuck, and :func:`search_puzzle` / :func:`generate_puzzles_by_clue_count` go lower
  by local search with a budget; :func:`random_symmetry` maps grids to equally valid ones.
"""
from __future__ import annotations

import random

import torch
from tqdm.auto import tqdm

SIZE = 81
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


HOUSES = ([[i for i in range(SIZE) if ROW[i] == r] for r in range(9)]
          + [[i for i in range(SIZE) if COL[i] == c] for c in range(9)]
          + [[i for i in range(SIZE) if BOX[i] == b] for b in range(9)])
PEERS_OF = [sorted({j for house in HOUSES if i in house for j in house} - {i}) for i in range(SIZE)]


def count_solutions(grid, cap: int = 2) -> int:
    """Number of completions of ``grid`` (0 = blank), counted up to ``cap``.

    Counting needs no particular solution, so it propagates before it branches: a cell with one
    candidate left is set and its digit struck from its peers (naked singles), and a digit with one
    place left in a row, column or box is put there (hidden singles). On 19-20-clue puzzles this
    decides uniqueness in 0.067x the time of :func:`_search`
    (``results/sudoku_hard/search_speed.json``), the backtracking that
    :func:`solve` and :func:`random_grid` use (whose order of solutions, and so the grids a seed
    draws, stay as they were); the counts are the same (``tests/test_sudoku.py``).
    """
    grid = check_grid(grid)
    candidates, done, todo = [ALL] * SIZE, [False] * SIZE, []  # clashing clues: no candidates
    for i, d in enumerate(grid):
        if d:
            candidates[i] = 1 << d
            todo.append(i)
    if not _propagate(candidates, done, todo):
        return 0
    return _count(candidates, done, cap)


def is_minimal(puzzle) -> bool:
    """Whether ``puzzle`` has a unique solution that no smaller puzzle keeps: taking away any one
    clue leaves more than one completion."""
    puzzle = list(check_grid(puzzle))
    if count_solutions(puzzle, 2) != 1:
        return False
    for i in [i for i in range(SIZE) if puzzle[i]]:
        digit, puzzle[i] = puzzle[i], 0
        unique = count_solutions(puzzle, 2) == 1
        puzzle[i] = digit
        if unique:
            return False
    return True


def _propagate(candidates, done, todo) -> bool:
    """Settle the cells in ``todo`` (one candidate each) and every single they force, in place;
    False on a contradiction (a cell without candidates, a digit without a place)."""
    while True:
        while todo:
            i = todo.pop()
            if done[i]:
                continue
            done[i] = True
            bit = candidates[i]
            for j in PEERS_OF[i]:
                c = candidates[j]
                if c & bit:
                    c ^= bit
                    if not c:
                        return False
                    candidates[j] = c
                    if c & (c - 1) == 0:  # one candidate left: a naked single
                        todo.append(j)
        for house in HOUSES:  # hidden singles: digits with exactly one place left in a house
            once = twice = 0
            for i in house:
                twice |= once & candidates[i]
                once |= candidates[i]
            if once != ALL:
                return False
            only = once & ~twice
            for i in house if only else ():
                hit = candidates[i] & only
                if hit and not done[i]:
                    if hit & (hit - 1):
                        return False  # two digits that each have only this cell
                    candidates[i] = hit
                    todo.append(i)
        if not todo:
            return True


def _count(candidates, done, cap: int) -> int:
    """Completions of a propagated state, up to ``cap``: branch on a cell with fewest candidates."""
    best, fewest = -1, 10
    for i in range(SIZE):
        if not done[i] and POPCOUNT[candidates[i]] < fewest:
            best, fewest = i, POPCOUNT[candidates[i]]
            if fewest == 2:
                break
    if best < 0:
        return 1
    total = 0
    for d in DIGITS_OF[candidates[best]]:
        branch, settled = list(candidates), list(done)
        branch[best] = 1 << d
        if _propagate(branch, settled, [best]):
            total += _count(branch, settled, cap - total)
            if total >= cap:
                break
    return total


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


def grid_string(grid) -> str:
    return "".join(str(int(d)) for d in grid)



# ----------------------------------------------------------------------------------- generation

def random_grid(rng: random.Random) -> list[int]:
    """A complete grid drawn by the solver with random branching order."""
    return _solutions([0] * SIZE, 1, rng)[0]


def remove_clues(puzzle, solution, num_clues: int, rng: random.Random) -> int:
    """Blank the clues of ``puzzle`` (in place) in random order, keeping each removal only while
    the solution stays unique, until ``num_clues`` remain or no clue can go. Returns the clue count
    reached."""
    clues = [i for i in range(SIZE) if puzzle[i]]
    count = len(clues)
    for i in rng.sample(clues, len(clues)):
        if count == num_clues:
            break
        puzzle[i] = 0
        if count_solutions(puzzle, 2) == 1:
            count -= 1
        else:
            puzzle[i] = solution[i]
    return count


def make_puzzle(solution, num_clues: int, rng: random.Random) -> list[int]:
    """Blank cells of ``solution`` in random order while the puzzle keeps a unique solution, until
    ``num_clues`` remain. Raises if no unique puzzle that small is reached (greedy removal reaches
    about 22-26 clues, so ranges above that always succeed; :func:`search_puzzle` goes lower)."""
    puzzle = list(solution)
    clues = remove_clues(puzzle, solution, num_clues, rng)
    if clues != num_clues:
        raise ValueError(f"could not reach {num_clues} clues with a unique solution (stuck at {clues})")
    return puzzle


def search_puzzle(solution, num_clues: int, rng: random.Random, moves: int,
                  focus_moves: int = 0, focus_at: int = 21) -> list[int]:
    """A unique-solution puzzle of ``solution`` with as few clues as a local search finds, stopping
    at ``num_clues``: greedy removal, then up to ``moves`` swaps (one clue blanked, one blank given
    back, kept if the solution stays unique, followed by greedy removal again), each of which can
    step from one minimal puzzle to another that allows further removals. A grid whose search has
    come down to ``focus_at`` clues or fewer gets ``focus_moves`` more swaps: the few grids that
    reach 21 clues are where 20 and 19 are found, so the budget goes there. The result may have
    more than ``num_clues`` clues (count them); every puzzle it returns has a unique solution."""
    puzzle = list(solution)
    count = remove_clues(puzzle, solution, num_clues, rng)
    count = _swap_search(puzzle, solution, count, num_clues, rng, moves)
    if focus_moves and num_clues < count <= focus_at:
        _swap_search(puzzle, solution, count, num_clues, rng, focus_moves)
    return puzzle


def _swap_search(puzzle, solution, count: int, num_clues: int, rng: random.Random,
                 moves: int) -> int:
    """Up to ``moves`` swaps of :func:`search_puzzle` on ``puzzle`` (in place); the count reached."""
    for _ in range(moves):
        if count <= num_clues:
            break
        given = rng.choice([i for i in range(SIZE) if puzzle[i]])
        blank = rng.choice([i for i in range(SIZE) if not puzzle[i]])
        puzzle[given], puzzle[blank] = 0, solution[blank]
        if count_solutions(puzzle, 2) == 1:
            count = remove_clues(puzzle, solution, num_clues, rng)
        else:
            puzzle[given], puzzle[blank] = solution[given], 0
    return count


def add_clues(puzzle, solution, num_clues: int, rng: random.Random) -> list[int]:
    """``puzzle`` with random blanks given back from ``solution`` until it has ``num_clues`` clues
    (a unique solution stays unique)."""
    puzzle = list(puzzle)
    blanks = [i for i in range(SIZE) if not puzzle[i]]
    extra = num_clues - (SIZE - len(blanks))
    if extra < 0:
        raise ValueError(f"the puzzle already has more than {num_clues} clues")
    for i in rng.sample(blanks, extra):
        puzzle[i] = solution[i]
    return puzzle


def generate_puzzles_by_clue_count(per_count: int, clue_range: tuple[int, int], seed: int | str,
                                   max_grids: int, moves: int = 300, exclude=(),
                                   progress: bool = False, focus_moves: int = 0,
                                   focus_at: int = 21):
    """Up to ``per_count`` unique-solution puzzles for every clue count in ``clue_range``, on
    distinct grids none of which is in ``exclude``, within a budget of ``max_grids`` grids.

    Each grid is searched (:func:`search_puzzle`, ``moves`` swaps, ``focus_moves`` more for a grid
    down to ``focus_at`` clues) towards the smallest count still
    short of puzzles; the puzzle found is used at the smallest short count at or above its own
    clue count, with random clues given back to reach it (never relabelled: every puzzle has
    exactly the clue count it is filed under). Low counts (below about 21) are rare, so some may
    stay short or empty: the result says which counts were reached. Deterministic given the
    arguments. Returns ``(puzzles, solutions)`` as lists of 81-int lists, sorted by clue count."""
    lo, hi = check_clue_range(clue_range)
    if per_count < 1 or max_grids < 1 or moves < 0 or focus_moves < 0:
        raise ValueError("need per_count >= 1, max_grids >= 1, moves >= 0 and focus_moves >= 0")
    rng = random.Random(seed)
    seen = set(exclude)
    found = {count: [] for count in range(lo, hi + 1)}
    bar = tqdm(total=per_count * len(found), desc="puzzles", disable=not progress, leave=False)
    for _ in range(max_grids):
        short = [count for count, got in found.items() if len(got) < per_count]
        if not short:
            break
        solution = random_grid(rng)
        key = grid_string(solution)
        if key in seen:
            continue
        seen.add(key)
        puzzle = search_puzzle(solution, short[0], rng, moves, focus_moves, focus_at)
        clues = sum(1 for d in puzzle if d)
        target = next((count for count in short if count >= clues), None)
        if target is None:
            continue
        found[target].append((add_clues(puzzle, solution, target, rng), solution))
        bar.update()
    bar.close()
    pairs = [pair for count in sorted(found) for pair in found[count]]
    return [p for p, _ in pairs], [s for _, s in pairs]


def clue_counts(puzzles) -> list[int]:
    """The number of clues (non-zero cells) of each puzzle."""
    return [sum(1 for d in p if d) for p in puzzles]


def generate_puzzles(count: int, clue_range: tuple[int, int], seed: int | str, exclude=(),
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
