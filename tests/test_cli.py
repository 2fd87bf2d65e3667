"""One error style for every command line (vmd_pyro.cli): `error: <one line>` on stderr, exit status
2, no traceback and no usage dump, and inputs checked before any expensive work."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import tiny_program
from vmd_pyro.checkpoint import save_checkpoint

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def script(name):
    spec = importlib.util.spec_from_file_location(f"cli_{name}", EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main(name, argv, capsys):
    try:
        code = script(name).main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.fixture
def vmd_checkpoint(tmp_path):
    path = tmp_path / "vmd.pt"
    save_checkpoint(path, tiny_program(vocab=10, seq_len=4))
    return path


@pytest.mark.parametrize("name, argv, message", [
    ("run", ["--nfe", "0"], "--nfe must be >= 1"),
    ("run", ["--bogus"], "unrecognized arguments: --bogus"),
    ("run", ["--steps", "x"], "invalid int value"),
    ("run", ["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "tpu"],
     "cuda" if not torch.cuda.is_available() else "invalid choice"),
    ("sudoku", [], "required: command"),
    ("sudoku", ["solve", "--checkpoint", "/nonexistent.pt", "--puzzles", "p.txt"], "does not exist"),
    ("sudoku", ["generate", "--count", "0", "--out", "x.txt"], "--count must be >= 1"),
    ("sudoku", ["check", "--puzzles", "/nonexistent.txt"], "does not exist"),
    ("sudoku", ["solve", "--checkpoint", "c.pt", "--puzzles", "p.txt", "--nfe", "5", "10",
                "--json", "x.json"], "--json must hold {nfe}"),
    ("sudoku", ["solve", "--checkpoint", "c.pt", "--puzzles", "p.txt", "--clues", "12", "20"],
     "clue range must satisfy"),
    ("sudoku", ["solve", "--checkpoint", "c.pt", "--puzzles", "p.txt", "--check-distinct"],
     "--check-distinct shares the checks of --select pseudo-likelihood"),
    ("sudoku", ["solve", "--checkpoint", "c.pt", "--puzzles", "p.txt", "--z-values", "2"],
     "--z-values limits --z-strategy enumerate"),
    ("sudoku_report", ["/nonexistent.json"], "cannot read results"),
    ("sudoku_solve_report", ["/nonexistent.json", "--out-dir", "o"], "cannot read results"),
    ("sudoku_oracle_report", ["--out-dir", "o", "--row", "x", "/n1.json", "/n2.json", "/n3.json",
                              "/n4.json"], "/n1.json does not exist"),
    ("diagnose", ["--mask-rates", "2", "--out", "d"], "--mask-rates must lie in"),
    ("diagnose", ["--checkpoint", "/nonexistent.pt", "--out", "d"], "does not exist"),
    ("sweep", [], "required: --out"),
    ("block_synthetic", ["--out-dir", "o", "--steps", "x"], "invalid int value"),
    ("text_results", ["--out-dir", "o", "--bogus"], "unrecognized arguments"),
    ("convert_checkpoint", ["/nonexistent.pt", "new.pt"], "does not exist"),
])
def test_every_cli_fails_with_one_line_and_status_2(name, argv, message, capsys):
    code, err = run_main(name, argv, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_a_wrong_checkpoint_is_refused_before_any_data_is_built(tmp_path, vmd_checkpoint, capsys):
    cache = tmp_path / "cache"
    code, err = run_main("run", ["--task", "sudoku", "--checkpoint", str(vmd_checkpoint),
                                 "--model", "mdm", "--data-cache", str(cache), "--quiet"], capsys)
    assert code == 2 and "holds a vmd model, not mdm" in err and err.count("\n") == 1
    assert not cache.exists(), "the Sudoku splits were built before the refusal"


def test_an_unsafe_checkpoint_is_refused_through_the_real_command_line(tmp_path):
    """The whole path a user takes: a v1-style pickle refused in one line naming the converter."""
    torch.save({"format": "vmd-pyro-checkpoint-v1"}, tmp_path / "old.pt")
    proc = subprocess.run([sys.executable, str(EXPERIMENTS / "run.py"), "--checkpoint",
                           str(tmp_path / "old.pt"), "--model", "vmd", "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "convert_checkpoint.py" in proc.stderr, proc.stderr


def test_convert_refuses_what_it_cannot_convert(tmp_path, vmd_checkpoint, capsys):
    code, err = run_main("convert_checkpoint", [str(vmd_checkpoint), str(tmp_path / "n.pt")], capsys)
    assert code == 2 and "already a vmd-pyro-checkpoint-v2" in err
    torch.save([1, 2], tmp_path / "list.pt")
    code, err = run_main("convert_checkpoint", [str(tmp_path / "list.pt"), str(tmp_path / "n.pt")],
                         capsys)
    assert code == 2 and "not a vmd-pyro-checkpoint-v1" in err
    assert not (tmp_path / "n.pt").exists()
