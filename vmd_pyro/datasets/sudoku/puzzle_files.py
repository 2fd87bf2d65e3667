"""Puzzle files: one puzzle per line, 81 characters ``1-9`` / ``0`` / ``.``, optionally followed by
a separator and the 81-digit solution; blank lines and ``#`` comments are skipped."""
from __future__ import annotations

from pathlib import Path

from vmd_pyro.datasets.sudoku.rules import SIZE, _houses, grid_string, is_valid_solution


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
