"""Sudoku (docs/sudoku.md), in three parts: the rules and a puzzle generator (:mod:`.rules`:
solver, validity, generation, symmetries), puzzle files (:mod:`.puzzle_files`) and the task
(:mod:`.task`: tokens, cached splits, the training stream, filling and scoring with a model). The
names below are the public ones, importable from here."""
from vmd_pyro.datasets.sudoku import puzzle_files, rules, task  # noqa: F401
from vmd_pyro.datasets.sudoku.puzzle_files import parse_puzzle_line, read_puzzles, write_puzzles
from vmd_pyro.datasets.sudoku.rules import (BOX, COL, ROW, SIZE, add_clues, check_clue_range,
                                            check_grid,
                                            clue_counts, count_solutions, generate_puzzles,
                                            generate_puzzles_by_clue_count, grid_string,
                                            is_minimal, is_valid_solution, make_puzzle,
                                            random_grid,
                                            random_symmetry, search_puzzle, solve,
                                            valid_solutions)
from vmd_pyro.datasets.sudoku.task import (MASK_ID, PEERS, VOCAB, HardSplitConfig,
                                           SudokuConfig, SudokuTask, candidate_coverage,
                                           failure_kinds, fill_puzzles,
                                           load_or_build, load_or_build_hard, score,
                                           score_by_clues, solved, to_digits, to_tokens,
                                           valid_candidates)

__all__ = ["BOX", "COL", "MASK_ID", "PEERS", "ROW", "SIZE", "VOCAB", "HardSplitConfig",
           "SudokuConfig", "SudokuTask", "add_clues", "candidate_coverage", "check_clue_range",
           "check_grid", "clue_counts", "count_solutions", "failure_kinds", "fill_puzzles",
           "generate_puzzles", "generate_puzzles_by_clue_count", "grid_string", "is_minimal",
           "is_valid_solution", "load_or_build", "load_or_build_hard", "make_puzzle",
           "parse_puzzle_line", "random_grid", "random_symmetry", "read_puzzles", "score",
           "score_by_clues", "search_puzzle", "solve", "solved", "to_digits", "to_tokens",
           "valid_candidates", "valid_solutions", "write_puzzles"]
