"""Puzzle files: one puzzle per line, 81 characters ``1-9`` / ``0`` / ``.``, optionally followed by
a separator and the 81-digit solution; blank lines and ``#`` comments are skipped. Published lists
that open with a line naming their columns (``quizzes,solutions``; ``id,puzzle,solution,clues,
difficulty``) are read as tables of those columns."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from vmd_pyro.datasets.sudoku.rules import SIZE, _houses, grid_string, is_valid_solution


def parse_puzzle_line(line: str, lineno: int = 0):
    """``(puzzle, solution or None)`` from one line: 81 characters ``1-9`` / ``0`` / ``.``, optionally
    a separator (comma, space, tab, ``;`` or ``|``) and the 81-digit solution."""
    return _parse_fields(_split(line), f"line {lineno}: " if lineno else "")


def _parse_fields(fields: list[str], where: str):
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


def _split(line: str) -> list[str]:
    """The fields of a line, between any of the separators comma, space, tab, ``;`` and ``|``."""
    for sep in ",;|":
        line = line.replace(sep, " ")
    return line.split()  # and any whitespace


# Names that published lists give their columns (lower case): the puzzle, then the solution.
PUZZLE_COLUMNS = ("puzzle", "puzzles", "quizzes", "quiz")
SOLUTION_COLUMNS = ("solution", "solutions")


def _header_columns(line: str) -> tuple[int, int | None, int] | None:
    """``(puzzle column, solution column or None, number of columns)`` when ``line`` names its
    columns with one of :data:`PUZZLE_COLUMNS`, else ``None``."""
    names = [name.lower() for name in _split(line)]
    puzzle = next((i for i, name in enumerate(names) if name in PUZZLE_COLUMNS), None)
    if puzzle is None:
        return None
    solution = next((i for i, name in enumerate(names) if name in SOLUTION_COLUMNS), None)
    return puzzle, solution, len(names)


def _parse_cells(text: str, what: str, blanks: bool) -> list[int]:
    if len(text) != SIZE:
        raise ValueError(f"{what} has {len(text)} characters, expected 81")
    allowed = "0123456789." if blanks else "123456789"
    bad = [ch for ch in text if ch not in allowed]
    if bad:
        raise ValueError(f"{what} holds {bad[0]!r}; allowed: "
                         f"{'1-9 for clues, 0 or . for blanks' if blanks else 'digits 1-9'}")
    return [0 if ch == "." else int(ch) for ch in text]


def read_puzzles(path, clue_range: tuple[int, int] | None = None,
                 per_clue_count: int | None = None):
    """Read a puzzle file (blank lines and lines starting with ``#`` are skipped). Returns
    ``(puzzles, solutions)``; ``solutions`` is ``None`` unless every puzzle carries one.

    A first line that names its columns, one of them in :data:`PUZZLE_COLUMNS`, makes the file a
    table: each line must have that many fields, and only the puzzle column and the solution column
    (:data:`SOLUTION_COLUMNS`, if there is one) are read. ``clue_range=(lo, hi)`` keeps the puzzles
    with ``lo``-``hi`` clues and ``per_clue_count=N`` the first ``N`` of each clue count: published
    lists hold up to millions of puzzles, so a puzzle left out is only counted, not checked (a line
    too malformed to count its clues is still refused), and with both limits reading stops once
    every clue count of the range is full."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"puzzle file {str(path)!r} does not exist")
    if per_clue_count is not None and per_clue_count < 1:
        raise ValueError(f"per_clue_count must be >= 1, got {per_clue_count}")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ValueError(f"cannot read puzzle file {str(path)!r} ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"puzzle file {str(path)!r} is not text: byte {err.object[err.start]:#04x} "
                         f"at offset {err.start} is not UTF-8") from None
    puzzles, solutions, kept = [], [], Counter()
    selecting = clue_range is not None or per_clue_count is not None
    # with both limits the list can end early, once every clue count of the range is full
    enough = None if clue_range is None or per_clue_count is None else (
        per_clue_count * (clue_range[1] - clue_range[0] + 1))
    table = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if len(puzzles) == enough:
            break
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if table is None:  # the first line read says whether the file is a table
            table = _header_columns(line) or False
            if table:
                continue
        fields = _split(line)
        if table:
            puzzle_col, solution_col, width = table
            if len(fields) != width:
                raise ValueError(f"line {lineno}: the header names {width} columns, this line has "
                                 f"{len(fields)} fields")
            fields = [fields[puzzle_col]] + ([] if solution_col is None else [fields[solution_col]])
        if selecting and fields and len(fields[0]) == SIZE:
            clues = SIZE - sum(ch in "0." for ch in fields[0])
            outside = clue_range is not None and not clue_range[0] <= clues <= clue_range[1]
            if outside or (per_clue_count is not None and kept[clues] >= per_clue_count):
                continue
            kept[clues] += 1
        puzzle, solution = _parse_fields(fields, f"line {lineno}: ")
        puzzles.append(puzzle)
        solutions.append(solution)
    if not puzzles:
        chosen = "" if clue_range is None else f" with {clue_range[0]}-{clue_range[1]} clues"
        raise ValueError(f"puzzle file {str(path)!r} holds no puzzles{chosen}")
    return puzzles, (solutions if all(s is not None for s in solutions) else None)


def write_puzzles(path, puzzles, solutions=None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [grid_string(p) + ("," + grid_string(s) if solutions is not None else "")
             for p, s in zip(puzzles, solutions if solutions is not None else puzzles)]
    path.write_text("\n".join(lines) + "\n")
