"""Sudoku: solver, generator, puzzle files, splits, model solving and the CLIs."""
import functools
import itertools
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import tiny_program
from vmd_pyro.checkpoint import read_checkpoint, save_checkpoint
from vmd_pyro.datasets import sudoku
from vmd_pyro.experiment import load_script
from vmd_pyro.tasks.runner import program_config

REPO = Path(__file__).resolve().parent.parent

# A valid grid written out by hand (the classic shifted-rows pattern), independent of the solver.
BASE = [int(ch) for ch in
        "123456789456789123789123456234567891567891234891234567345678912678912345912345678"]


def brute_force_count(puzzle):
    """Solutions of ``puzzle`` by trying every digit in every blank (few blanks only), each candidate
    checked by the row/column/box rules alone."""
    blanks = [i for i, d in enumerate(puzzle) if d == 0]
    fills = torch.tensor(list(itertools.product(range(1, 10), repeat=len(blanks))))
    grids = torch.tensor(puzzle).repeat(len(fills), 1)
    grids[:, blanks] = fills
    return int(sudoku.valid_solutions(grids).sum())


def test_rule_checks_agree_on_valid_and_broken_grids():
    assert sudoku.is_valid_solution(BASE)
    broken = list(BASE)
    broken[0], broken[1] = broken[1], broken[0]  # rows still fine, columns and boxes not
    assert not sudoku.is_valid_solution(broken)
    rng = random.Random(1)
    grids = [list(BASE)] + [[rng.randint(1, 9) for _ in range(81)] for _ in range(20)]
    for k in range(10):  # swaps of two cells: valid only if the digits are equal
        g = list(BASE)
        i, j = rng.sample(range(81), 2)
        g[i], g[j] = g[j], g[i]
        grids.append(g)
    vectorised = sudoku.valid_solutions(torch.tensor(grids)).tolist()
    assert vectorised == [sudoku.is_valid_solution(g) for g in grids]
    assert vectorised[0] and not any(vectorised[1:21])


def test_solver_matches_brute_force_on_small_cases():
    rng = random.Random(0)
    for _ in range(3):
        puzzle = list(BASE)
        for i in rng.sample(range(81), 4):
            puzzle[i] = 0
        assert sudoku.count_solutions(puzzle, cap=10) == brute_force_count(puzzle) == 1
        assert sudoku.solve(puzzle) == BASE
    # A "deadly rectangle": two rows of one band and two columns in different stacks holding
    # a b / b a. Blanking it leaves exactly two solutions (the brute force confirms it).
    rng = random.Random(0)
    while True:
        grid = sudoku.random_grid(rng)
        corners = [(9 * r1 + c1, 9 * r1 + c2, 9 * r2 + c1, 9 * r2 + c2)
                   for r1, r2 in itertools.combinations(range(9), 2) if r1 // 3 == r2 // 3
                   for c1, c2 in itertools.combinations(range(9), 2) if c1 // 3 != c2 // 3]
        corners = [c for c in corners if grid[c[0]] == grid[c[3]] and grid[c[1]] == grid[c[2]]]
        if corners:
            break
    puzzle = list(grid)
    for i in corners[0]:
        puzzle[i] = 0
    assert brute_force_count(puzzle) == 2
    assert sudoku.count_solutions(puzzle, cap=2) == 2
    assert sudoku.count_solutions(puzzle, cap=1) == 1
    # Contradicting clues and an unfillable blank: no solution.
    clash = [0] * 81
    clash[0] = clash[8] = 5
    assert sudoku.count_solutions(clash) == 0 and sudoku.solve(clash) is None
    stuck = list(BASE)
    stuck[0] = 0
    stuck[1] = 0
    stuck[2] = BASE[1]  # the digit of cell 1 moved to cell 2: cells 0..1 cannot both be filled
    assert sudoku.count_solutions(stuck) == brute_force_count(stuck) == 0


def test_solver_fills_empty_and_sparse_grids_validly():
    assert sudoku.is_valid_solution(sudoku.solve([0] * 81))
    grid = sudoku.random_grid(random.Random(3))
    assert sudoku.is_valid_solution(grid)
    assert sudoku.count_solutions([0] * 81, cap=2) == 2


def test_generator_gives_unique_puzzles_in_clue_range():
    puzzles, solutions = sudoku.generate_puzzles(6, (30, 34), seed=5)
    assert len({sudoku.grid_string(s) for s in solutions}) == 6
    for puzzle, solution in zip(puzzles, solutions):
        assert 30 <= sum(d > 0 for d in puzzle) <= 34
        assert sudoku.is_valid_solution(solution)
        assert all(p in (0, s) for p, s in zip(puzzle, solution))
        assert sudoku.count_solutions(puzzle, cap=2) == 1
    assert sudoku.generate_puzzles(6, (30, 34), seed=5) == (puzzles, solutions)  # seeded
    with pytest.raises(ValueError, match="clue range"):
        sudoku.generate_puzzles(1, (10, 20), seed=0)


def test_clue_count_search_files_each_puzzle_under_its_own_count():
    # 17-20 clues are out of reach of this tiny budget: those counts must stay empty, never be
    # filled with relabelled puzzles.
    puzzles, solutions = sudoku.generate_puzzles_by_clue_count(2, (17, 27), seed=4, max_grids=6,
                                                               moves=10)
    counts = sudoku.clue_counts(puzzles)
    assert counts == [23, 24, 24, 25, 25, 26]  # each grid filed at its count, none relabelled
    assert all(counts.count(c) <= 2 for c in set(counts))
    assert len({sudoku.grid_string(s) for s in solutions}) == 6
    for puzzle, solution in zip(puzzles, solutions):
        assert sudoku.is_valid_solution(solution)
        assert all(p in (0, s) for p, s in zip(puzzle, solution))
        assert sudoku.count_solutions(puzzle, cap=2) == 1
    assert sudoku.generate_puzzles_by_clue_count(2, (17, 27), seed=4, max_grids=6, moves=10) == (
        puzzles, solutions)  # seeded
    # below greedy removal's reach the swap search still returns a unique puzzle
    grid = sudoku.random_grid(random.Random(7))
    low = sudoku.search_puzzle(grid, 17, random.Random(7), moves=5)
    assert sudoku.count_solutions(low, cap=2) == 1 and sum(d > 0 for d in low) >= 17
    more = sudoku.add_clues(low, grid, 40, random.Random(0))
    assert sum(d > 0 for d in more) == 40 and sudoku.solve(more) == grid
    with pytest.raises(ValueError, match="clue range"):
        sudoku.generate_puzzles_by_clue_count(1, (16, 20), seed=0, max_grids=1)


def test_counting_with_propagation_agrees_with_plain_backtracking():
    # count_solutions propagates naked and hidden singles before branching; _solutions is the
    # plain backtracking solve() uses. Same counts on unique puzzles (19-29 clues), the same with a
    # clue removed (often several solutions), with a wrong digit added (often none), and on empty
    # and nearly empty grids, for caps 1 to 3.
    from vmd_pyro.datasets.sudoku.rules import _solutions
    rng = random.Random(2)
    grids = [[0] * 81]
    for count in (19, 20, 23, 26, 29):
        solution = sudoku.random_grid(rng)
        puzzle = sudoku.search_puzzle(solution, count, rng, moves=20)
        grids.append(sudoku.add_clues(puzzle, solution, max(count, sum(d > 0 for d in puzzle)), rng))
    for puzzle in list(grids[1:]):
        fewer = list(puzzle)
        fewer[rng.choice([i for i in range(81) if fewer[i]])] = 0
        wrong = list(puzzle)
        wrong[rng.choice([i for i in range(81) if not wrong[i]])] = rng.randint(1, 9)
        grids += [fewer, wrong]
    sparse = [0] * 81
    sparse[0], sparse[40] = 5, 5  # a clash-free grid with two clues: many solutions
    grids.append(sparse)
    for grid in grids:
        for cap in (1, 2, 3):
            assert sudoku.count_solutions(grid, cap) == len(_solutions(grid, cap))
    assert sudoku.count_solutions(grids[1]) == 1 and sudoku.count_solutions([0] * 81, 3) == 3


def test_focused_search_continues_the_same_search_on_grids_that_got_far():
    # focus_moves only adds swaps after the plain search, so with the same random stream it never
    # ends with more clues; a grid above focus_at gets none, and focus_moves 0 is the plain search.
    grid = sudoku.random_grid(random.Random(3))
    plain = sudoku.search_puzzle(grid, 17, random.Random(5), moves=5)
    focused = sudoku.search_puzzle(grid, 17, random.Random(5), moves=5, focus_moves=40, focus_at=80)
    skipped = sudoku.search_puzzle(grid, 17, random.Random(5), moves=5, focus_moves=40, focus_at=17)
    assert skipped == plain and sudoku.count_solutions(focused, cap=2) == 1
    assert sum(d > 0 for d in focused) < sum(d > 0 for d in plain)
    assert all(p in (0, s) for p, s in zip(focused, grid))
    # the new fields leave the cache key of existing splits as it was, unless they are set
    default = sudoku.task.cache_config(sudoku.HardSplitConfig())
    assert "focus_moves" not in default and "focus_at" not in default and "moves" in default
    focused = sudoku.task.cache_config(sudoku.HardSplitConfig(focus_moves=30))
    assert focused["focus_moves"] == 30 and focused != sudoku.task.cache_config(
        sudoku.HardSplitConfig(focus_moves=30, focus_at=22))


def test_hard_split_holds_unique_puzzles_of_the_requested_counts(tmp_path):
    hard = sudoku.HardSplitConfig(clue_min=23, clue_max=26, per_count=2, max_grids=20, moves=20)
    task = small_task(tmp_path, hard=hard, train_clues=(17, 25))
    puzzles, solutions = (sudoku.to_digits(t).tolist() for t in task.hard)
    assert sudoku.clue_counts(puzzles) == [23, 23, 24, 24, 25, 25, 26, 26]
    assert all(sudoku.count_solutions(p, cap=2) == 1 and sudoku.solve(p) == s
               for p, s in zip(puzzles, solutions))
    assert {sudoku.grid_string(s) for s in solutions} <= {
        sudoku.grid_string(g) for g in task.held_out}  # training never draws them
    assert small_task(tmp_path, hard=hard).hard[0].equal(task.hard[0])  # read from the cache
    assert len(list(tmp_path.glob("sudoku-hard-*.json"))) == 1
    _, maskable = task.sample(64, torch.Generator().manual_seed(0))
    clues = 81 - maskable.sum(-1)
    assert clues.min() >= 17 and clues.max() <= 25 and clues.min() < 30  # the training range


def test_scores_by_clue_count_match_a_hand_count():
    solution = sudoku.to_tokens([BASE])[0]
    blanks_a, blanks_c = torch.arange(81) < 51, torch.arange(81) < 50  # 30 and 31 clues
    puzzles = torch.stack([solution.masked_fill(b, sudoku.MASK_ID)
                           for b in (blanks_a, blanks_a, blanks_c)])
    wrong = solution.clone()
    wrong[[0, 1]] = wrong[[1, 0]]  # two blanks swapped: invalid grid, 49 of 51 blanks right
    filled = torch.stack([solution, wrong, solution])
    found = sudoku.score_by_clues(puzzles, filled, solution.repeat(3, 1))
    assert list(found) == ["30", "31"]
    assert found["30"] == {"solve_rate": 0.5, "num_puzzles": 2,
                           "cell_accuracy": pytest.approx(100 / 102)}
    assert found["31"] == {"solve_rate": 1.0, "num_puzzles": 1, "cell_accuracy": 1.0}


def test_symmetries_keep_grids_valid_and_vary_them():
    grids = torch.tensor([BASE] * 64)
    out = sudoku.random_symmetry(grids, torch.Generator().manual_seed(0))
    assert all(sudoku.is_valid_solution(g) for g in out.tolist())
    assert len({tuple(g) for g in out.tolist()}) == 64


GOOD = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
GOOD_SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def test_reader_accepts_good_files_and_refuses_bad_lines_with_line_number(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text(f"# a comment\n{GOOD}\n\n{GOOD.replace('.', '0')};{GOOD_SOLUTION}\n")
    puzzles, solutions = sudoku.read_puzzles(path)
    assert len(puzzles) == 2 and puzzles[0] == puzzles[1] and solutions is None
    assert puzzles[0][:3] == [5, 3, 0]
    path.write_text(f"{GOOD},{GOOD_SOLUTION}\n{GOOD} {GOOD_SOLUTION}\n")
    assert sudoku.read_puzzles(path)[1][0] == [int(c) for c in GOOD_SOLUTION]

    clash = "55" + GOOD[2:]
    wrong_solution = GOOD_SOLUTION[:-2] + GOOD_SOLUTION[-1] + GOOD_SOLUTION[-2]
    blank_first = GOOD.replace("5", ".", 1) + "," + GOOD_SOLUTION  # fine: a blank agrees
    bad = {GOOD[:-1]: "80 characters", GOOD[:-1] + "x": "'x'", clash: "contradict",
           f"{GOOD},{wrong_solution}": "not a valid", f"{GOOD},{GOOD_SOLUTION},1": "3 fields",
           f"{GOOD},{sudoku.grid_string(BASE)}": "does not agree"}
    for line, message in bad.items():
        path.write_text(f"{GOOD}\n{blank_first}\n{line}\n")
        with pytest.raises(ValueError, match=f"line 3: .*{message}"):
            sudoku.read_puzzles(path)
    with pytest.raises(ValueError, match="does not exist"):
        sudoku.read_puzzles(tmp_path / "missing.txt")


def test_reader_takes_published_tables_and_picks_puzzles_by_clue_count(tmp_path):
    puzzles, solutions = sudoku.generate_puzzles(12, (30, 33), seed=6)
    plain = tmp_path / "plain.txt"
    sudoku.write_puzzles(plain, puzzles, solutions)
    # The two layouts of published lists: a header naming the columns, extra columns, . or 0.
    rows = [f"{i},{sudoku.grid_string(p).replace('0', '.')},{sudoku.grid_string(s)},"
            f"{sum(d > 0 for d in p)},1.5" for i, (p, s) in enumerate(zip(puzzles, solutions))]
    wide = tmp_path / "wide.csv"
    wide.write_text("id,puzzle,solution,clues,difficulty\n" + "\n".join(rows) + "\n")
    assert sudoku.read_puzzles(wide) == (puzzles, solutions)
    kaggle = tmp_path / "kaggle.csv"
    kaggle.write_text("quizzes,solutions\n" + plain.read_text())
    assert sudoku.read_puzzles(kaggle) == (puzzles, solutions)
    only = tmp_path / "only.csv"
    only.write_text("Puzzle\n" + "\n".join(sudoku.grid_string(p) for p in puzzles) + "\n")
    assert sudoku.read_puzzles(only) == (puzzles, None)
    wide.write_text("id,puzzle,solution,clues,difficulty\n" + rows[0] + "\n" + rows[1][:-4] + "\n")
    with pytest.raises(ValueError, match="line 3: the header names 5 columns, this line has 4"):
        sudoku.read_puzzles(wide)

    # Selection, checked against counting the clues of the list by hand.
    counts = [sum(d > 0 for d in p) for p in puzzles]
    for clue_range, per_count in [((31, 32), None), ((31, 32), 1), (None, 2), ((33, 33), 5)]:
        want = [i for i, c in enumerate(counts)
                if (clue_range is None or clue_range[0] <= c <= clue_range[1])
                and (per_count is None or counts[:i].count(c) < per_count)]
        assert sudoku.read_puzzles(kaggle, clue_range, per_count) == (
            [puzzles[i] for i in want], [solutions[i] for i in want]), (clue_range, per_count)
    with pytest.raises(ValueError, match="no puzzles with 20-25 clues"):
        sudoku.read_puzzles(plain, (20, 25))
    plain.write_text(plain.read_text() + GOOD[:-1] + "\n")  # too short to count: still refused
    with pytest.raises(ValueError, match="80 characters"):
        sudoku.read_puzzles(plain, (31, 32))


def small_task(tmp_path, hard=None, train_clues=None, **kw):
    cfg = sudoku.SudokuConfig(clue_min=30, clue_max=40, num_val=4, num_test=6, train_pool=8, **kw)
    return sudoku.SudokuTask(cfg, cache_dir=tmp_path, hard=hard, train_clues=train_clues)


def test_splits_share_no_grid_and_training_stream_avoids_held_out(tmp_path, monkeypatch):
    task = small_task(tmp_path)
    val = {sudoku.grid_string(g) for g in sudoku.to_digits(task.val[1]).tolist()}
    test = {sudoku.grid_string(g) for g in sudoku.to_digits(task.test[1]).tolist()}
    pool = {sudoku.grid_string(g) for g in task.pool.tolist()}
    assert len(val) == 4 and len(test) == 6 and not val & test and not pool & (val | test)
    assert small_task(tmp_path).test[0].equal(task.test[0])  # reloaded from the cache
    assert len(list(tmp_path.glob("sudoku-*.json"))) == 1

    x0, maskable = task.sample(32, torch.Generator().manual_seed(0))
    assert x0.shape == (32, 81) and sudoku.valid_solutions(x0 + 1).all()
    assert ((81 - maskable.sum(-1)) >= 30).all() and ((81 - maskable.sum(-1)) <= 40).all()
    # With symmetries switched off and held-out grids planted in the pool, the filter must still
    # return only the one legitimate grid.
    monkeypatch.setattr(sudoku.task, "random_symmetry", lambda grids, generator=None: grids)
    task.pool = torch.cat([sudoku.to_digits(task.test[1]), task.pool[:1]])
    x0, _ = task.sample(16, torch.Generator().manual_seed(0))
    assert (x0 + 1 == task.pool[-1]).all()


def minimal_by_one_pass(solution):
    """A clue goes, in cell order, while the solution stays unique. A clue kept was needed with more
    clues around it, so it is still needed at the end: the result is minimal."""
    puzzle = list(solution)
    for i in range(81):
        digit, puzzle[i] = puzzle[i], 0
        if sudoku.count_solutions(puzzle, 2) != 1:
            puzzle[i] = digit
    return puzzle


def test_minimality(tmp_path):
    solution = sudoku.random_grid(random.Random(3))
    puzzle = minimal_by_one_pass(solution)
    assert sudoku.is_minimal(puzzle)
    more = list(puzzle)
    more[puzzle.index(0)] = solution[puzzle.index(0)]  # a clue that can go again
    assert not sudoku.is_minimal(more)
    fewer = list(puzzle)
    fewer[next(i for i, d in enumerate(puzzle) if d)] = 0  # no longer unique
    assert sudoku.count_solutions(fewer, 2) == 2 and not sudoku.is_minimal(fewer)


def test_check_command_reports_what_the_puzzles_are_built_to_be(tmp_path, monkeypatch):
    small = functools.partial(sudoku.SudokuConfig, num_val=4, num_test=6, train_pool=8)
    monkeypatch.setattr(sudoku, "SudokuConfig", small)  # run.py's splits, made small
    split = sudoku.load_or_build(small(seed=0), tmp_path)
    solution = sudoku.random_grid(random.Random("check"))  # Random(3) is the pool's first grid
    minimal = minimal_by_one_pass(solution)
    more = list(minimal)
    more[minimal.index(0)] = solution[minimal.index(0)]
    from_pool = sudoku.make_puzzle(split["train_pool"][0], 40, random.Random(0))
    puzzles = [minimal, more, from_pool, split["test_puzzles"][0]]
    solutions = [solution, solution, split["train_pool"][0], split["test_solutions"][0]]
    sudoku.write_puzzles(tmp_path / "p.txt", puzzles, solutions)
    sudoku.write_puzzles(tmp_path / "other.txt", [more])  # no solution: it is solved
    main = load_script("sudoku").main
    assert main(["check", "--puzzles", str(tmp_path / "p.txt"), "--against",
                 str(tmp_path / "other.txt"), "--data-cache", str(tmp_path),
                 "--json", str(tmp_path / "c.json")]) == 0
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["num_puzzles"] == 4 and report["unique"] == 4 and report["solution_agrees"] == 4
    assert report["distinct_grids"] == 3  # minimal and more share a grid
    assert report["minimal"] == sum(sudoku.is_minimal(p) for p in puzzles) >= 1
    assert report["against"][str(tmp_path / "other.txt")] == {"shared_grids": 1,
                                                              "shared_puzzles": 1}
    assert report["data_splits"] == {"0": {"test": 1, "validation": 0, "training_pool": 1}}
    # A puzzle with two solutions has no grid to compare and is neither unique nor minimal.
    fewer = list(minimal)
    fewer[next(i for i, d in enumerate(minimal) if d)] = 0
    sudoku.write_puzzles(tmp_path / "q.txt", [fewer, minimal])
    assert main(["check", "--puzzles", str(tmp_path / "q.txt"), "--data-seeds",
                 "--json", str(tmp_path / "q.json")]) == 0
    report = json.loads((tmp_path / "q.json").read_text())
    assert (report["unique"], report["minimal"], report["distinct_grids"]) == (1, 1, 1)
    assert report["solution_agrees"] is None and report["data_splits"] == {}


def test_generate_command_draws_no_grid_of_the_task_splits(tmp_path):
    # Data seed 0 seeds its test split with 1 and its training pool with 3: with the old shared
    # stream, `generate --seed 1` / `--seed 3` begin on those splits' first grids; by default not.
    task = small_task(tmp_path)
    test = [sudoku.grid_string(g) for g in sudoku.to_digits(task.test[1]).tolist()]
    pool = [sudoku.grid_string(g) for g in task.pool.tolist()]
    main = load_script("sudoku").main

    def generated(seed, *flags):
        out = tmp_path / f"gen{seed}{len(flags)}.txt"
        assert main(["generate", "--count", "6", "--clues", "30", "40", "--seed", str(seed),
                     "--out", str(out), *flags]) == 0
        return [sudoku.grid_string(s) for s in sudoku.read_puzzles(out)[1]]

    assert generated(1, "--shared-seed-stream")[0] == test[0]
    assert generated(3, "--shared-seed-stream")[0] == pool[0]
    fresh = generated(1) + generated(3)
    assert len(set(fresh)) == 12 and not set(fresh) & set(test + pool)
    assert generated(3) == fresh[6:]  # still seeded


@pytest.mark.slow  # trains a small Sudoku model
def test_model_solving_never_changes_a_clue(tmp_path):
    program = tiny_program(model="vmd", vocab=9, seq_len=81, arch="transformer")
    puzzles, solutions = sudoku.generate_puzzles(3, (30, 40), seed=2)
    tokens = sudoku.to_tokens(puzzles)
    for order in ("random", "top-prob", "top-prob-margin"):
        filled = sudoku.fill_puzzles(program, tokens, nfe=5, order=order,
                                     generator=torch.Generator().manual_seed(0))
        clues = tokens != sudoku.MASK_ID
        assert filled[clues].equal(tokens[clues]) and (filled != sudoku.MASK_ID).all()
    # The reference solution scores 1, a broken one 0.
    solution_tokens = sudoku.to_tokens(solutions)
    assert sudoku.score(tokens, solution_tokens, solution_tokens) == {
        "solve_rate": 1.0, "num_puzzles": 3, "cell_accuracy": 1.0}
    broken = solution_tokens.clone()
    broken[:, tokens[0] == sudoku.MASK_ID] = (broken[:, tokens[0] == sudoku.MASK_ID] + 1) % 9
    assert sudoku.score(tokens[:1], broken[:1])["solve_rate"] == 0.0
    wrong_clue = solution_tokens.clone()  # a valid grid that differs from a clue does not count
    wrong_clue[0] = sudoku.to_tokens(sudoku.random_symmetry(torch.tensor([solutions[0]])))[0]
    assert sudoku.valid_solutions(sudoku.to_digits(wrong_clue)).all()
    assert sudoku.score(tokens[:1], wrong_clue[:1])["solve_rate"] == 0.0

    # The solve CLI: one 81-digit line per puzzle, clues kept, solve rate reported.
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, program)
    sudoku.write_puzzles(tmp_path / "p.txt", puzzles, solutions)
    out = subprocess.run([sys.executable, "experiments/sudoku.py", "solve", "--checkpoint", str(ckpt),
                          "--puzzles", str(tmp_path / "p.txt"), "--nfe", "3", "--order", "top-prob",
                          "--out", str(tmp_path / "s.txt")], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert "solve rate" in out and "cell accuracy" in out
    assert "3.0 denoiser passes per puzzle" in out  # one decode of 3 calls
    lines = (tmp_path / "s.txt").read_text().split()
    assert len(lines) == 3 and all(len(line) == 81 for line in lines)
    for line, puzzle in zip(lines, puzzles):
        assert all(p in (0, int(c)) for p, c in zip(puzzle, line)) and "0" not in line
    cut = subprocess.run([sys.executable, "experiments/sudoku.py", "solve", "--checkpoint",
                          str(ckpt), "--puzzles", str(tmp_path / "p.txt"), "--nfe", "3",
                          "--without-latent", "--failures", "--json", str(tmp_path / "cut.json")],
                         cwd=REPO, capture_output=True, text=True, check=True)
    report = json.loads((tmp_path / "cut.json").read_text())
    assert report["without_latent"] is True, cut.stdout
    assert report["failures"]["failed"] == round(3 * (1 - report["solve_rate"]))
    bad = subprocess.run([sys.executable, "experiments/sudoku.py", "solve", "--checkpoint",
                          str(ckpt), "--puzzles", str(tmp_path / "missing.txt")], cwd=REPO,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
    # Several NFE values in one run: each gets the files of a run with that value alone.
    main = load_script("sudoku").main
    solve = ["solve", "--checkpoint", str(ckpt), "--puzzles", str(tmp_path / "p.txt")]
    assert main(solve + ["--nfe", "2", "3", "--out", str(tmp_path / "multi{nfe}.txt"),
                         "--json", str(tmp_path / "multi{nfe}.json")]) == 0
    assert main(solve + ["--nfe", "3", "--out", str(tmp_path / "alone.txt")]) == 0
    assert (tmp_path / "multi3.txt").read_text() == (tmp_path / "alone.txt").read_text()
    multi = [json.loads((tmp_path / f"multi{n}.json").read_text()) for n in (2, 3)]
    assert [m["nfe"] for m in multi] == [2, 3]
    assert [m["network_passes_per_puzzle"]["denoiser"] for m in multi] == [2, 3]  # one per call
    assert main(solve + ["--nfe", "2", "3", "--json", str(tmp_path / "one.json")]) == 2
    # the oracle reads the solutions: it runs with them and is refused without
    assert main(solve + ["--z-strategy", "oracle", "--json", str(tmp_path / "oracle.json")]) == 0
    assert json.loads((tmp_path / "oracle.json").read_text())["z_strategy"] == "oracle"
    sudoku.write_puzzles(tmp_path / "bare.txt", puzzles)
    assert main(["solve", "--checkpoint", str(ckpt), "--puzzles", str(tmp_path / "bare.txt"),
                 "--z-strategy", "oracle"]) == 2
    # tempered sampled tokens are recorded; argmax has no temperature
    assert main(solve + ["--temperature", "0.5", "--json", str(tmp_path / "cold.json")]) == 0
    assert json.loads((tmp_path / "cold.json").read_text())["temperature"] == 0.5
    assert main(solve + ["--fill", "argmax", "--temperature", "0.5"]) == 2
    assert main(solve + ["--temperature", "0"]) == 2
    # several decodes: what they offered the check is recorded, the kept grid among them
    assert main(solve + ["--candidates", "3", "--json", str(tmp_path / "three.json")]) == 0
    three = json.loads((tmp_path / "three.json").read_text())
    offered = three["candidates_offered"]
    assert 1 <= offered["distinct_candidates"] <= 3
    assert three["solve_rate"] <= offered["any_candidate_solves"] <= 1
    assert "candidates_offered" not in multi[0]  # one decode offers no choice
    # a selection by clue count
    assert main(solve + ["--clues", "36", "39", "--json", str(tmp_path / "picked.json")]) == 0
    picked = json.loads((tmp_path / "picked.json").read_text())
    inside = [c for c in sudoku.clue_counts(puzzles) if 36 <= c <= 39]
    assert 0 < picked["num_puzzles"] == len(inside) < len(puzzles)
    assert sorted(picked["by_clues"]) == sorted(str(c) for c in inside)
    assert not (tmp_path / "one.json").exists()


def test_solve_records_each_puzzle_and_compare_pairs_two_files(tmp_path, capsys):
    program = tiny_program(model="mdm", vocab=9, seq_len=81, arch="transformer")
    save_checkpoint(tmp_path / "tiny.pt", program)
    puzzles, solutions = sudoku.generate_puzzles(4, (76, 79), seed=3)  # 2-5 blanks
    puzzles[1] = solutions[1]  # nothing to fill: solved by any decoder
    sudoku.write_puzzles(tmp_path / "p.txt", puzzles, solutions)
    main = load_script("sudoku").main
    solve = ["solve", "--checkpoint", str(tmp_path / "tiny.pt"), "--puzzles", str(tmp_path / "p.txt"),
             "--nfe", "2", "--candidates", "3"]
    assert main(solve + ["--out", str(tmp_path / "s.txt"), "--json", str(tmp_path / "a.json")]) == 0
    a = json.loads((tmp_path / "a.json").read_text())
    # the flags agree with the rules applied to the written grids, puzzle by puzzle
    grids = [[int(c) for c in line] for line in (tmp_path / "s.txt").read_text().split()]
    by_rules = "".join("1" if sudoku.is_valid_solution(g) and g == s else "0"
                       for g, s in zip(grids, solutions))
    assert by_rules[1] == "1"
    assert a["per_puzzle"]["solved"] == by_rules and a["solve_rate"] == by_rules.count("1") / 4
    offered = a["per_puzzle"]["valid_offered"]
    assert all(o >= s for o, s in zip(offered, by_rules))  # the kept grid is one of those offered
    assert offered.count("1") / 4 == a["candidates_offered"]["any_candidate_solves"]

    # compare, on files whose outcomes are known: 1100 against 0101
    for name, bits in (("x", "1100"), ("y", "0101")):
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {**a, "per_puzzle": {"solved": bits}}))
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "x.json"), str(tmp_path / "y.json"),
                 "--json", str(tmp_path / "xy.json")]) == 0
    assert "difference +0.0 points" in capsys.readouterr().out
    xy = json.loads((tmp_path / "xy.json").read_text())
    assert (xy["a_only"], xy["b_only"], xy["mcnemar_p"]) == (1, 1, 1.0)
    # differences 1, 0, 0, -1: sample variance 2/3, over 4 puzzles
    assert xy["paired_standard_error"] == pytest.approx((2 / 3 / 4) ** 0.5)
    # refused: a file solved before per-puzzle results were kept, and files of other puzzles
    old = {k: v for k, v in a.items() if k != "per_puzzle"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert main(["compare", str(tmp_path / "old.json"), str(tmp_path / "a.json")]) == 2
    assert "no per-puzzle results" in capsys.readouterr().err
    (tmp_path / "other.json").write_text(json.dumps({**a, "puzzles": "other.txt"}))
    assert main(["compare", str(tmp_path / "other.json"), str(tmp_path / "a.json")]) == 2
    assert "different puzzles" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "missing.json"), str(tmp_path / "a.json")]) == 2


def test_candidate_coverage_counts_valid_and_different_grids():
    """Two puzzles, three candidates each: the first offers the solution twice and a broken grid,
    the second a valid grid that changes a clue and the broken grid, so no valid answer."""
    solution = sudoku.to_tokens([BASE])
    puzzle = solution.clone()
    puzzle[0, :20] = sudoku.MASK_ID
    broken = solution.clone()
    broken[0, [0, 1]] = broken[0, [1, 0]]  # two blanks swapped: rows still fine, columns not
    moved = sudoku.to_tokens(sudoku.random_symmetry(torch.tensor([BASE]),
                                                    torch.Generator().manual_seed(0)))
    assert sudoku.valid_solutions(sudoku.to_digits(moved)).all()
    assert not sudoku.solved(puzzle, moved).any() and not sudoku.solved(puzzle, broken).any()
    candidates = torch.stack([torch.cat([solution, broken, solution]),
                              torch.cat([moved, broken, broken])])
    coverage = sudoku.candidate_coverage(puzzle.repeat(2, 1), candidates)
    assert coverage == {"any_candidate_solves": 0.5, "solving_candidates": 1.0,
                        "distinct_candidates": 2.0, "distinct_wrong_candidates": 1.5}


def test_failure_kinds_tell_clashes_inside_one_call_from_clashes_in_sight():
    # BASE is valid: cell 0 holds 1, cell 1 holds 2, cell 27 (column 0) 2, cell 73 (column 1) 1.
    # A puzzle blanks cells 0, 1, 27 and 73 (filled in call 0), 9 (call 1) and 80 (call 2).
    solution = sudoku.to_tokens([BASE])
    puzzle = solution.clone()
    blanks = [0, 1, 27, 73, 9, 80]
    puzzle[0, blanks] = sudoku.MASK_ID
    calls = torch.full_like(puzzle, -1)
    calls[0, blanks] = torch.tensor([0, 0, 0, 0, 1, 2])
    # (a) cells 0 and 1 swapped: 0 clashes with 27 and 1 with 73, all filled in call 0.
    a = solution.clone()
    a[0, [0, 1]] = a[0, [1, 0]]
    # (b) cell 9 (call 1) gets cell 0's digit, a peer filled in call 0: a clash in sight. Cell 80
    # (call 2) gets cell 72's digit: a clash with a clue. Its first wrong call is 1.
    b = solution.clone()
    b[0, 9] = b[0, 0]
    b[0, 80] = b[0, 72]
    # (c) solved: counts nothing
    grids = torch.cat([a, b, solution])
    kinds = sudoku.failure_kinds(puzzle.repeat(3, 1), grids, calls.repeat(3, 1),
                                 solution.repeat(3, 1))
    assert kinds == {"failed": 2, "puzzles": 3, "with_same_call_conflict": 1,
                     "only_same_call_conflicts": 1, "first_error_in_same_call_conflict": 1,
                     "first_error_call": {"0": 1, "1": 1}}
    # the peer table: 20 peers per cell, symmetric, cell 0's are row 0, column 0 and box 0
    assert (sudoku.PEERS.sum(1) == 20).all() and sudoku.PEERS.equal(sudoku.PEERS.T)
    assert sorted(torch.nonzero(sudoku.PEERS[0]).flatten().tolist()) == sorted(
        set(range(1, 9)) | set(range(9, 81, 9)) | {10, 11, 19, 20})


def test_fill_records_the_call_that_filled_each_cell():
    program = tiny_program(model="mdm", vocab=9, seq_len=81, arch="transformer")
    puzzles, _ = sudoku.generate_puzzles(4, (30, 40), seed=3)
    tokens = sudoku.to_tokens(puzzles)
    filled, calls = sudoku.fill_puzzles(program, tokens, nfe=5, order="top-prob-margin",
                                        generator=torch.Generator().manual_seed(0),
                                        return_calls=True, batch_size=3)
    blanks = tokens == sudoku.MASK_ID
    assert (calls[~blanks] == -1).all() and ((calls[blanks] >= 0) & (calls[blanks] < 5)).all()
    # the even split of generate: call k fills about a fifth of each puzzle's blanks
    for row, n in zip(calls, blanks.sum(-1).tolist()):
        counts = torch.bincount(row[row >= 0], minlength=5)
        assert counts.sum() == n and counts.max() - counts.min() <= 1
    again = sudoku.fill_puzzles(program, tokens, nfe=5, order="top-prob-margin",
                                generator=torch.Generator().manual_seed(0), batch_size=3)
    assert again.equal(filled)  # recording changes nothing


def test_failures_report_tables_and_plots_the_solve_json(tmp_path):
    report = load_script("sudoku_failures_report")
    base = {"nfe": 5, "solve_rate": 0.6, "without_latent": False,
            "failures": {"failed": 4, "puzzles": 10, "with_same_call_conflict": 3,
                         "only_same_call_conflicts": 1, "first_error_in_same_call_conflict": 2,
                         "first_error_call": {"0": 4}}}
    (tmp_path / "a.json").write_text(json.dumps({**base, "checkpoint": "x/mdm.pt"}))
    (tmp_path / "b.json").write_text(json.dumps({"checkpoint": "x/vmd.pt", "solve_rate": 0.5}))
    assert report.main([str(tmp_path / "a.json"), "--out-dir", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "failures.md").read_text()
    assert "| mdm | 5 | 60.0% | 4 | 3 (75%) | 1 (25%) | 2 (50%) |" in text
    assert (tmp_path / "out" / "failures.png").stat().st_size > 0
    with pytest.raises(SystemExit) as err:
        report.main([str(tmp_path / "b.json"), "--out-dir", str(tmp_path / "out")])
    assert err.value.code == 2


def test_solve_report_counts_solved_puzzles_per_decoder_nfe_and_clue_count(tmp_path):
    report = load_script("sudoku_solve_report")

    def solve_json(name, checkpoint, nfe, by_clues, puzzles="low.txt", fill="argmax"):
        total = sum(n for _, n in by_clues.values())
        result = {"puzzles": puzzles, "checkpoint": checkpoint, "nfe": nfe, "order": "top-prob-margin",
                  "fill": fill, "z_strategy": "fixed", "num_puzzles": total,
                  "solve_rate": sum(k for k, _ in by_clues.values()) / total,
                  "by_clues": {c: {"solve_rate": k / n, "num_puzzles": n}
                               for c, (k, n) in by_clues.items()}}
        (tmp_path / name).write_text(json.dumps(result))
        return str(tmp_path / name)

    files = [solve_json("m5.json", "r/mdm.pt", 5, {"18": (0, 3), "19": (1, 7)}),
             solve_json("m50.json", "r/mdm.pt", 50, {"18": (1, 3), "19": (3, 7)}),
             solve_json("v5.json", "r/vmd.pt", 5, {"19": (2, 7)}, fill="sample")]
    assert report.main([*files, "--out-dir", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "table.md").read_text()
    assert "| mdm | argmax | fixed | 1 / 10 (10.0%) | 4 / 10 (40.0%) |" in text
    assert "| vmd | sample | fixed | 2 / 7 (28.6%) | - |" in text
    eighteen = text[text.index("**18 clues**"):text.index("**19 clues**")]
    assert "| mdm | argmax | fixed | 0 / 3 (0.0%) | 1 / 3 (33.3%) |" in eighteen
    assert "| vmd | sample | fixed | - | - |" in eighteen  # no 18-clue puzzle in its file
    assert (tmp_path / "out" / "solve_rate.png").stat().st_size > 0
    # a copy of the puzzle file elsewhere is the same file; a cut-off z is its own row
    moved = solve_json("moved.json", "r/vmd.pt", 10, {"19": (3, 7)}, puzzles="/tmp/x/low.txt")
    cut = json.loads((tmp_path / "v5.json").read_text())
    (tmp_path / "cut.json").write_text(json.dumps({**cut, "without_latent": True}))
    assert report.main([*files, moved, str(tmp_path / "cut.json"), "--out-dir",
                        str(tmp_path / "out2")]) == 0
    text = (tmp_path / "out2" / "table.md").read_text()
    assert "| vmd | sample | fixed, z cut off | 2 / 7 (28.6%) | - |" in text
    # several decodes with one kept are rows of their own, each with the passes it measured
    many = {**cut, "z_strategy": "enumerate", "candidates": 1, "select": "pseudo-likelihood",
            "network_passes_per_puzzle": {"denoiser": 80.0, "prior": 0.0, "guide": 0.0}}
    (tmp_path / "many.json").write_text(json.dumps(many))
    (tmp_path / "best8.json").write_text(json.dumps({**cut, "candidates": 8, "select": "path"}))
    (tmp_path / "cold8.json").write_text(json.dumps({**cut, "candidates": 8, "select": "path",
                                                     "temperature": 0.5}))
    assert report.main([*files, str(tmp_path / "many.json"), str(tmp_path / "best8.json"),
                        str(tmp_path / "cold8.json"), "--out-dir", str(tmp_path / "out3")]) == 0
    text = (tmp_path / "out3" / "table.md").read_text()
    assert "| vmd | sample | enumerate, kept by pseudo-likelihood | 2 / 7 (28.6%) | - |" in text
    assert "| vmd | sample | fixed, 8 decodes kept by path | 2 / 7 (28.6%) | - |" in text
    assert "| vmd | sample T=0.5 | fixed, 8 decodes kept by path | 2 / 7 (28.6%) | - |" in text
    cost = text[text.index("**Denoiser passes per puzzle**"):text.index("**18 clues**")]
    assert "| vmd | sample | enumerate, kept by pseudo-likelihood | 80 | - |" in cost
    assert "| mdm | argmax | fixed | - | - |" in cost  # files without the key
    for bad in ([files[0], solve_json("o.json", "r/vmd.pt", 5, {"19": (0, 1)}, puzzles="other")],
                [files[0], solve_json("again.json", "r/mdm.pt", 5, {"19": (0, 1)})],
                [files[0], solve_json("fewer.json", "r/vmd.pt", 5, {"19": (0, 6)})]):
        with pytest.raises(SystemExit) as err:
            report.main([*bad, "--out-dir", str(tmp_path / "out")])
        assert err.value.code == 2


def test_cost_report_puts_each_file_at_the_passes_it_measured(tmp_path):
    report = load_script("sudoku_cost_report")

    def write(name, passes, rate, puzzles="runs/test.txt", **fields):
        result = {"puzzles": puzzles, "checkpoint": f"r/{name}.pt", "nfe": 5, "fill": "argmax",
                  "z_strategy": "fixed", "solve_rate": rate,
                  "network_passes_per_puzzle": {"denoiser": passes, "prior": 0.0, "guide": 0.0},
                  **fields}
        (tmp_path / f"{name}.json").write_text(json.dumps(result))
        return str(tmp_path / f"{name}.json")

    mdm = [write("m1", 5.0, 0.72), write("m8", 80.0, 0.761, fill="sample", candidates=8,
                                        select="pseudo-likelihood", temperature=0.75),
           write("m24", 150.0, 0.87, fill="sample", candidates=24, select="pseudo-likelihood",
                 check_distinct=True)]
    vmd = [write("v8", 80.0, 0.857, z_strategy="enumerate", select="pseudo-likelihood"),
           write("v2", 20.0, 0.75, z_strategy="enumerate", select="pseudo-likelihood", z_values=2)]
    assert report.main(["--out-dir", str(tmp_path / "out"), "--series", "MDM", *mdm,
                        "--series", "VMD", *vmd]) == 0
    text = (tmp_path / "out" / "table.md").read_text()
    assert "| MDM | m1 | NFE 5, argmax, z fixed | 5 | - | 72.0% | `m1.json` |" in text
    assert ("| MDM | m8 | NFE 5, sample T=0.75, 8 kept by pseudo-likelihood | 80 | - | 76.1% |"
            in text)
    assert "| VMD | v8 | NFE 5, argmax, every z kept by pseudo-likelihood | 80 | - | 85.7% |" in text
    assert ("| VMD | v2 | NFE 5, argmax, the 2 most probable z kept by pseudo-likelihood | 20 | - "
            "| 75.0% |") in text
    assert ("| MDM | m24 | NFE 5, sample, 24 kept by pseudo-likelihood, each different grid "
            "checked once | 150 | - | 87.0% |") in text
    assert (tmp_path / "out" / "cost.png").stat().st_size > 0
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"puzzles": "runs/test.txt", "solve_rate": 0.5}))
    for bad in (["--series", "MDM", *mdm, "--series", "other", write("o", 5.0, 0.1, puzzles="x")],
                ["--series", "MDM", str(old)], ["--series", "empty"]):
        with pytest.raises(SystemExit) as err:
            report.main(["--out-dir", str(tmp_path / "bad"), *bad])
        assert err.value.code == 2


def test_oracle_report_gives_each_vmd_its_gaps_to_the_control(tmp_path):
    report = load_script("sudoku_oracle_report")

    def write(name, **fields):
        result = {"puzzles": "runs/p.txt", "nfe": 5, "order": "top-prob-margin", "fill": "argmax",
                  "num_puzzles": 500, "z_strategy": "fixed", **fields}
        (tmp_path / name).write_text(json.dumps(result))
        return str(tmp_path / name)

    latent = tmp_path / "latent.json"
    latent.write_text(json.dumps({"per_mask_rate": [{"mask_rate": 0.5, "mutual_information": 0.1},
                                                    {"mask_rate": 1.0, "mutual_information": 1.29}]}))
    row = ["K 8", write("f.json", solve_rate=0.574), write("o.json", solve_rate=0.844,
           z_strategy="oracle"), write("c.json", solve_rate=0.726), str(latent)]
    assert report.main(["--out-dir", str(tmp_path / "out"), "--row", *row]) == 0
    text = (tmp_path / "out" / "table.md").read_text()
    assert "| 1 | K 8 | 500 (p.txt) | 1.29 | 5 | 57.4% (fixed) | 84.4% | 72.6% | -15.2 | +11.8 |" \
        in text
    assert (tmp_path / "out" / "oracle.png").stat().st_size > 0
    other_nfe = write("c10.json", solve_rate=0.9, nfe=10)
    for bad in ([*row[:3], other_nfe, row[4]], [row[0], row[2], row[1], *row[3:]]):
        with pytest.raises(SystemExit) as err:
            report.main(["--out-dir", str(tmp_path / "out"), "--row", *bad])
        assert err.value.code == 2


def test_fill_report_pairs_each_argmax_run_with_the_same_models_sampled_run(tmp_path):
    report = load_script("sudoku_fill_report")

    def row(fill, nfe, rate, z="fixed", loss=1.0, model="vmd"):
        # the wall time differs between runs that train the same model (a retrained checkpoint)
        history = [{"step": 10, "train_loss": loss, "elapsed": 60.0 if fill == "argmax" else 7.0}]
        return {"model": model, "prior": "gaussian" if model == "vmd" else None,
                "order": "top-prob-margin", "nfe": nfe, "solve_rate": rate, "fill": fill,
                "z_strategy": z if model == "vmd" else None, "history": history}

    argmax = tmp_path / "argmax.json"
    argmax.write_text(json.dumps({"command": "run.py --fill argmax --checkpoint ck/a.pt",
                                  "runs": [row("argmax", 5, 0.7), row("argmax", 10, 0.9)]}))
    mdm = tmp_path / "argmax_mdm.json"
    mdm.write_text(json.dumps({"command": "run.py --checkpoint ck/m.pt",
                               "runs": [row("argmax", 5, 0.8, model="mdm")]}))
    sampled = [tmp_path / "other.json", tmp_path / "train.json"]
    # another model (other history) and the right one with another z strategy come first
    sampled[0].write_text(json.dumps({"runs": [row("sample", 5, 0.1, loss=2.0)]}))
    sampled[1].write_text(json.dumps({"runs": [row("sample", 5, 0.2, z="resample"),
                                               row("sample", 5, 0.5), row("sample", 10, 0.6)]}))
    sampled.append(tmp_path / "one_row.json")  # a file of one row keeps it at the top level
    sampled[2].write_text(json.dumps(row("sample", 5, 0.4, model="mdm")))
    out = tmp_path / "out"
    assert report.main([str(argmax), str(mdm), "--sampled", *map(str, sampled),
                        "--out-dir", str(out)]) == 0
    text = (out / "fill.md").read_text()
    assert "| `ck/a.pt` | VMD gaussian | fixed | 50.0% | 60.0% | 70.0% | 90.0% |" in text
    assert "| `ck/m.pt` | MDM | - | 40.0% | - | 80.0% | - |" in text  # no NFE 10 rows: dashes
    assert json.loads((out / "fill.json").read_text())[0]["sampled_file"] == str(sampled[1])
    assert (out / "fill.png").stat().st_size > 0
    with pytest.raises(SystemExit) as err:  # a training run is not a --checkpoint evaluation
        report.main([str(sampled[1]), "--out-dir", str(out)])
    assert err.value.code == 2


def test_full_config_builds_and_takes_a_training_step():
    run = load_script("run")
    from vmd_pyro.masking import corrupt
    from vmd_pyro.program import build_program

    parser = run.build_parser()
    args = parser.parse_args(["--task", "sudoku", "--sudoku-config", "full"])
    run.check_args(args, parser)
    program = build_program(program_config(args, "mdm", sudoku.SudokuTask))
    assert program.cfg.net.attention == "full" and not program.cfg.net.position_groups
    assert 5.5e6 < program.num_parameters() < 6.5e6
    x0 = torch.tensor([BASE, BASE]) - 1
    batch = corrupt(x0, program.mask_id, generator=torch.Generator().manual_seed(0))
    loss = program.make_elbo().differentiable_loss(program.model, program.guide, batch, 1.0)
    loss.backward()
    assert torch.isfinite(loss) and program.denoiser.out.weight.grad.abs().sum() > 0


@pytest.mark.slow  # two subprocesses, each training two tiny models
def test_run_cli_trains_and_reports_sudoku(tmp_path):
    out = tmp_path / "r.json"
    cmd = [sys.executable, "experiments/run.py", "--task", "sudoku", "--model", "mdm", "vmd",
           "--steps", "2", "--batch-size", "4", "--hidden", "16", "--layers", "1",
           "--test-puzzles", "3", "--val-puzzles", "2", "--train-pool", "4", "--nfe", "2",
           "--order", "top-prob-margin", "--data-cache", str(tmp_path), "--quiet",
           "--threads", "1", "--out", str(out), "--save", str(tmp_path / "m.pt")]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)
    import json
    runs = json.loads(out.read_text())["runs"]
    assert [(r["model"], r["nfe"], r["order"]) for r in runs] == [
        ("mdm", 2, "top-prob-margin"), ("vmd", 2, "top-prob-margin")]
    assert all(0 <= r["solve_rate"] <= 1 and 0 <= r["cell_accuracy"] <= 1 for r in runs)
    assert (tmp_path / "m-mdm.pt").is_file() and (tmp_path / "m-vmd.pt").is_file()
    # The checkpoint evaluated with another NFE first gives the VMD's row again, z draws and
    # bounds included: every part of the evaluation has its own fresh stream.
    again = [arg for arg in cmd if arg not in ("mdm", "--save", str(tmp_path / "m.pt"))]
    again[again.index("--nfe") + 1:again.index("--nfe") + 2] = ["1", "2"]
    again[again.index("--out") + 1] = str(tmp_path / "again.json")
    subprocess.run(again + ["--checkpoint", str(tmp_path / "m-vmd.pt")], cwd=REPO, check=True,
                   capture_output=True, text=True)
    reloaded = json.loads((tmp_path / "again.json").read_text())["runs"]
    assert [r["nfe"] for r in reloaded] == [1, 2]
    for key in ("solve_rate", "cell_accuracy", "nll_bound_bits", "iw_nll_bound_bits",
                "val_objective_bits"):
        assert reloaded[1][key] == runs[1][key], key
    bad = subprocess.run(cmd[:4] + ["--clues", "40", "30"], cwd=REPO, capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "--clues" in bad.stderr


def test_run_cli_reports_the_few_clue_split_by_clue_count(tmp_path):
    out = tmp_path / "r.json"
    cmd = [sys.executable, "experiments/run.py", "--task", "sudoku", "--model", "mdm",
           "--steps", "2", "--batch-size", "4", "--hidden", "16", "--layers", "1",
           "--test-puzzles", "3", "--val-puzzles", "2", "--train-pool", "4", "--nfe", "2",
           "--order", "top-prob-margin", "--data-cache", str(tmp_path), "--quiet",
           "--threads", "1", "--train-clues", "17", "40", "--test-clues", "23", "26",
           "--per-clue-count", "1", "--search-grids", "8", "--search-moves", "10",
           "--only-test-clues", "--out", str(out)]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)
    (row,) = [json.loads(out.read_text())]
    assert row["split"] == "test-clues" and row["clue_range"] == [23, 26]
    by_clues = row["by_clues"]
    assert sum(c["num_puzzles"] for c in by_clues.values()) == row["num_puzzles"] == 4
    assert list(by_clues) == ["23", "24", "25", "26"]
    solved = sum(c["solve_rate"] * c["num_puzzles"] for c in by_clues.values())
    assert solved == pytest.approx(row["solve_rate"] * row["num_puzzles"])
    for bad, flag in ((["--test-clues", "10", "20"], "--test-clues"),
                      (["--only-test-clues"], "--only-test-clues"),
                      (["--train-clues", "17", "90"], "--train-clues")):
        done = subprocess.run(cmd[:4] + bad, cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 2 and flag in done.stderr


def test_report_tables_each_model_and_z_strategy(tmp_path):
    sudoku_report = load_script("sudoku_report")

    def run(model, prior, order, nfe, solve, z):
        return {"model": model, "prior": prior, "order": order, "nfe": nfe, "solve_rate": solve,
                "cell_accuracy": 0.5, "num_puzzles": 10, "clue_range": [30, 40], "fill": "sample",
                "z_strategy": z, "parameters": 100, "steps": 7, "train_config": {"batch_size": 4},
                "train_seconds": 60.0, "val_nelbo_bits": 0.25}

    fixed = [run("mdm", None, "random", 5, 0.1, None), run("vmd", "gaussian", "random", 5, 0.2, "fixed"),
             run("vmd", "gaussian", "top-prob-margin", 5, 0.3, "fixed")]
    files = [tmp_path / "a.json", tmp_path / "b.json"]
    files[0].write_text(json.dumps({"runs": fixed, "git_commit": "abc"}))
    files[1].write_text(json.dumps({**run("vmd", "gaussian", "top-prob-margin", 5, 0.4, "resample"),
                                    "git_commit": "def"}))
    free = run("vmd", "gaussian", "top-prob-margin", 5, 0.5, "fixed")
    free["train_config"] = {"batch_size": 4, "free_nats": 2.0}
    del free["val_nelbo_bits"]  # files since the rename: the objective under its own name
    free["val_objective_bits"] = 0.5
    files.append(tmp_path / "c.json")
    files[2].write_text(json.dumps({"runs": [free], "git_commit": "abc"}))
    assert sudoku_report.main([*map(str, files), "--out-dir", str(tmp_path)]) == 0
    text = (tmp_path / "table.md").read_text()
    assert "| random | 5 | 10.0% | 50.0% | 20.0% | 50.0% |" in text
    assert ("| NFE | VMD (gaussian prior) | VMD (gaussian prior, z resample) | "
            "VMD (gaussian prior, 2 free nats) |") in text
    assert "| 5 | 30.0% | 40.0% | 50.0% |" in text
    # one budget row per trained model, not per decoding strategy
    assert text.count("| VMD (gaussian prior) | 100 | 7 | 4 | 1.0 min | 0.250 |") == 1
    assert "| VMD (gaussian prior, 2 free nats) | 100 | 7 | 4 | 1.0 min | 0.500 |" in text
    assert "NELBO (bits" not in text and "VMD's J is not a bound" in text
    assert "commit abc, def" in text and (tmp_path / "solve_rate.png").stat().st_size > 0


def test_report_tables_the_few_clue_split_by_clue_count(tmp_path):
    sudoku_report = load_script("sudoku_report")

    def run(nfe, rates):  # rates: solve rate per clue count, 2 puzzles of 22 clues, 3 of 25
        sizes = {"22": 2, "25": 3}
        return {"model": "mdm", "prior": None, "split": "test-clues", "order": "top-prob-margin",
                "nfe": nfe, "num_puzzles": 5, "clue_range": [17, 29], "fill": "sample",
                "z_strategy": None, "parameters": 100, "steps": 7, "train_seconds": 60.0,
                "train_config": {"batch_size": 4}, "cell_accuracy": 0.9,
                "solve_rate": sum(rates[c] * n for c, n in sizes.items()) / 5,
                "by_clues": {c: {"solve_rate": rates[c], "num_puzzles": n, "cell_accuracy": 0.9}
                             for c, n in sizes.items()}}

    path = tmp_path / "hard.json"
    path.write_text(json.dumps({"runs": [run(10, {"22": 0.5, "25": 1.0}),
                                         run(5, {"22": 0.0, "25": 1 / 3})], "git_commit": "abc"}))
    assert sudoku_report.main([str(path), "--names", "MDM 17-40", "--out-dir", str(tmp_path)]) == 0
    text = (tmp_path / "table.md").read_text()
    assert "| model | order | NFE | 22 (2) | 25 (3) | all (5) | all: cell acc. |" in text
    # all = (2 * 0.5 + 3 * 1.0) / 5 = 80%; at NFE 5 (0 + 1) / 5 = 20%; NFE 5 sorts first
    assert text.index("| MDM 17-40 | Top-Prob-Margin | 5 | 0.0% | 33.3% | 20.0% | 90.0% |") < \
        text.index("| MDM 17-40 | Top-Prob-Margin | 10 | 50.0% | 100.0% | 80.0% | 90.0% |")
    assert (tmp_path / "solve_rate_by_clues.png").stat().st_size > 0
    assert not (tmp_path / "solve_rate.png").exists()  # no rows of the standard split
    with pytest.raises(SystemExit) as bad:
        sudoku_report.main([str(path), "--names", "a", "b", "--out-dir", str(tmp_path)])
    assert bad.value.code == 2


@pytest.mark.slow  # a subprocess training a Sudoku VMD
def test_latent_cli_reports_the_closed_form_kl_of_the_guide(tmp_path):
    from vmd_pyro.masking import corrupt

    program = tiny_program(model="vmd", vocab=9, seq_len=81, arch="transformer", latent_dim=2)
    ckpt, puzzle_file, report = tmp_path / "vmd.pt", tmp_path / "p.txt", tmp_path / "latent.json"
    save_checkpoint(ckpt, program)
    puzzles, solutions = sudoku.generate_puzzles(4, (30, 40), seed=3)
    sudoku.write_puzzles(puzzle_file, puzzles, solutions)
    subprocess.run([sys.executable, "experiments/sudoku.py", "latent", "--checkpoint", str(ckpt),
                    "--puzzles", str(puzzle_file), "--mask-rates", "0.5", "1.0", "--seed", "7",
                    "--json", str(report)], cwd=REPO, check=True, capture_output=True, text=True)
    result = json.loads(report.read_text())
    # The same batch by hand: solutions as x0, only the blanks maskable, 4 puzzles per rate.
    blanks = (sudoku.to_tokens(puzzles) == sudoku.MASK_ID).repeat(2, 1)
    batch = corrupt(sudoku.to_tokens(solutions).repeat(2, 1), program.mask_id, maskable=blanks,
                    generator=torch.Generator().manual_seed(7),
                    t=torch.tensor([0.5, 1.0]).repeat_interleave(4))
    with torch.no_grad():
        q = program.guide_dist(batch.x0, batch.masked)
    mu, var = q.mean, q.variance  # KL(N(mu, var) || N(0, 1)), summed over the 2 coordinates
    kl = 0.5 * (mu ** 2 + var - 1 - var.log()).sum(-1)
    for rate, rows in zip(result["per_mask_rate"], (slice(0, 4), slice(4, 8))):
        assert rate["kl_total"] == pytest.approx(float(kl[rows].mean()), rel=1e-4)
    assert result["kl_total"] == pytest.approx(float(kl.mean()), rel=1e-4)

    mdm = tmp_path / "mdm.pt"
    save_checkpoint(mdm, tiny_program(model="mdm", vocab=9, seq_len=81, arch="transformer"))
    bad = subprocess.run([sys.executable, "experiments/sudoku.py", "latent", "--checkpoint", str(mdm),
                          "--puzzles", str(puzzle_file)], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and "no latent" in bad.stderr


# --- damaged caches and fuzzed puzzle files ---


@pytest.mark.parametrize("damage", ["flip a digit", "truncate", "garbage", "no checksum"])
def test_a_damaged_data_cache_is_detected_and_rebuilt(tmp_path, damage, capsys):
    task = small_task(tmp_path)
    cache = next(tmp_path.glob("sudoku-*.json"))
    text = cache.read_text()
    if damage == "flip a digit":  # still valid JSON of the right shape: only the checksum sees it
        at = text.index("[[", text.index('"test_puzzles"')) + 2
        text = text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1:]
    elif damage == "truncate":
        text = text[:len(text) // 2]
    elif damage == "garbage":
        text = "\x00\xff" * 10
    else:
        data = json.loads(text)
        del data["sha256"]
        text = json.dumps(data)
    cache.write_text(text, encoding="latin-1")
    capsys.readouterr()
    again = small_task(tmp_path)
    assert "rebuilding it" in capsys.readouterr().err
    assert again.test[0].equal(task.test[0]) and again.val[1].equal(task.val[1])
    assert again.pool.equal(task.pool)
    small_task(tmp_path)  # the rebuilt cache is intact: read without a word
    assert capsys.readouterr().err == ""


def _check_parse(parsed):
    puzzles, solutions = parsed
    for i, puzzle in enumerate(puzzles):
        assert len(puzzle) == 81 and all(0 <= d <= 9 for d in puzzle)
        assert sudoku.rules._houses(puzzle) is not None
        if solutions is not None:
            assert sudoku.is_valid_solution(solutions[i])
            assert all(p in (0, s) for p, s in zip(puzzle, solutions[i]))


def test_fuzzed_puzzle_files_parse_correctly_or_fail_with_one_line(tmp_path):
    from vmd_pyro import faults

    rng = random.Random(15)
    puzzles, solutions = sudoku.generate_puzzles(3, (30, 40), seed=1)
    sudoku.write_puzzles(tmp_path / "good.txt", puzzles, solutions)
    good = (tmp_path / "good.txt").read_bytes()
    assert sudoku.read_puzzles(tmp_path / "good.txt") == (puzzles, solutions)
    cases = list(faults.random_blobs(rng, 600)) + [m for _, m in faults.mutations(good, rng, 900)]
    outcomes = {"parsed": 0, "refused": 0}
    for i, data in enumerate(cases):  # a new file each time: rewriting one is slow on ext4
        (tmp_path / f"case{i}.txt").write_bytes(data)
        outcome, value = faults.classify(sudoku.read_puzzles, tmp_path / f"case{i}.txt")
        outcomes[outcome] += 1
        if outcome == "parsed":
            _check_parse(value)
    assert outcomes["parsed"] > 0 and outcomes["refused"] > 1000, outcomes


@pytest.mark.slow  # the whole prepared published-scale script at its CPU smoke scale (about 2 min)
def test_published_scale_script_runs_its_recipe_end_to_end_at_smoke_scale(tmp_path):
    """CI has no GPU (the script ran on one in session 26), so ``experiments/
    sudoku_published_scale.sh``'s smoke scale runs every step here: the four trainings with the
    recipe they name, the decodes that the comparison needs, and the archive that comes back."""
    out = tmp_path / "out"
    out.mkdir()
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "PYTHON": sys.executable,
           "SCALE": "smoke", "DEVICE": "cpu", "RUN_DIR": str(tmp_path / "run"),
           "DATA_CACHE": str(tmp_path / "cache"), "OUT": str(out), "HOME": str(tmp_path)}
    subprocess.run(["bash", "experiments/sudoku_published_scale.sh"], cwd=REPO, env=env,
                   check=True, capture_output=True, text=True)
    run = tmp_path / "run"
    trained = {name: json.loads((run / f"train_{name}.json").read_text())
               for name in ("mdm", "vmd", "vmd-paths", "mdm-ft")}
    assert [trained[n]["train_config"]["objective"] for n in ("vmd", "vmd-paths", "mdm-ft")] == \
        ["steps", "paths", "steps"]
    assert trained["vmd-paths"]["config"]["components"] == 16
    every_z = json.loads((run / "test_enumerate_nfe5.json").read_text())
    assert (every_z["z_strategy"], every_z["select"], every_z["check_distinct"]) == \
        ("enumerate", "pseudo-likelihood", True)
    mdm = json.loads((run / "few_candidates25_nfe5.json").read_text())
    assert (mdm["candidates"], mdm["fill"], mdm["check_distinct"]) == (25, "sample", True)
    packed = subprocess.run(["tar", "tzf", str(out / "sudoku_published_scale_all.tgz")],
                            check=True, capture_output=True, text=True).stdout.split()
    assert {"latent_vmd-paths.json", "compare_test_candidates16.txt", "cost_few/cost.png",
            "test_argmax_nfe50.json", "train_mdm-ft.json"} <= set(packed)
    # every checkpoint comes back as a float16 copy without its training state
    assert {p.name for p in out.glob("*.pt")} == {f"{n}-fp16.pt" for n in trained}
    small = read_checkpoint(out / "vmd-paths-fp16.pt")
    assert "training_state" not in small and small["exported"]["dtype"] == "float16"


def test_published_scale_script_packs_what_is_done_when_a_step_fails(tmp_path):
    """A device lease is short: a failed step must still send back what the run has written."""
    out = tmp_path / "out"
    out.mkdir()
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "PYTHON": sys.executable,
           "SCALE": "smoke", "DEVICE": "cpu", "RUN_DIR": str(tmp_path / "run"), "STAGE": "decode",
           "OUT": str(out), "HOME": str(tmp_path)}
    # decoding with no checkpoints fails at its first step, after the smoke scale's puzzle files
    done = subprocess.run(["bash", "experiments/sudoku_published_scale.sh"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert done.returncode != 0 and "vmd-paths.pt" in done.stderr
    packed = subprocess.run(["tar", "tzf", str(out / "sudoku_published_scale_decode.tgz")],
                            check=True, capture_output=True, text=True).stdout.split()
    assert set(packed) == {"test.txt", "few.txt"}
