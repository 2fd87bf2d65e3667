#!/usr/bin/env python
"""Inject faults into training, checkpoints, data caches and file readers; count what survived.

    python experiments/reliability.py --out runs/reliability

Writes ``reliability.json`` (every scenario with its counts) and ``README.md`` (the table, this
command, the commit and the wall time) into ``--out``. Faults (see vmd_pyro/faults.py):

* SIGKILL at seeded random points of training (mid-step, mid-evaluation, halfway through writing a
  checkpoint, after writing but before the rename), resumed each time, for MDM, a Gaussian VMD, an
  enumerated discrete VMD and a block VMD; and SIGKILL of a real ``experiments/run.py`` process
  from outside at random moments, resumed with ``--resume``. Survived: the end equals an
  uninterrupted run (parameters, optimiser state, history). Data lost: a completed checkpoint gone
  or unreadable after a kill, or an end that differs.
* A save that fails with ENOSPC (in serialisation, at fsync, at the rename). Survived: training
  stops with a one-line error and the previous checkpoint is byte for byte intact.
* A NaN loss injected mid-training. Survived: training stops, the parameters are those before the
  bad step and the last checkpoint is intact.
* Damaged and crafted checkpoint files (empty, truncated, bit flips, random bytes, v1 pickles, code
  that would write a marker file). Survived: refused with one line; no code ran.
* Damaged data caches (Sudoku splits, offline corpus). Survived: detected and rebuilt identical.
* Fuzzed readers (puzzle files, text8 files, checkpoints). Survived: a parse or a one-line
  ValueError, never another exception.
"""
from __future__ import annotations

import errno
import io
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from contextlib import redirect_stderr
from pathlib import Path
from unittest import mock

import torch

import models  # noqa: F401 (registers the priors, guides and Pyro models: vmd_pyro.registry)
from vmd_pyro import checkpoint, cli, faults
from vmd_pyro.checkpoint import (CheckpointWriteError, frame, load_program,
                                 read_checkpoint)
from vmd_pyro.datasets import sudoku, synthetic, text
from vmd_pyro.experiment import COMMIT_AT_START, write_json
from vmd_pyro.training import NonFiniteLoss, TrainConfig, train

TASK = synthetic.make_synthetic("quad-d1")


def config(**kw) -> TrainConfig:
    return TrainConfig(**{"steps": 12, "batch_size": 16, "anneal_steps": 5, "eval_every": 4,
                          "save_every": 4, "progress": False, **kw})


def probe(program):
    return {"probe": float(torch.rand(()))}  # a draw from the global stream: must replay exactly


def same_run(a: dict, b: dict) -> bool:
    def equal(x, y):
        if isinstance(x, torch.Tensor):
            return isinstance(y, torch.Tensor) and torch.equal(x, y)
        if isinstance(x, dict):
            return isinstance(y, dict) and x.keys() == y.keys() and all(equal(x[k], y[k]) for k in x)
        if isinstance(x, (list, tuple)):
            return len(x) == len(y) and all(equal(u, v) for u, v in zip(x, y))
        return x == y
    timeless = [[{k: v for k, v in r.items() if k != "elapsed"} for r in c["history"]] for c in (a, b)]
    return (equal(a["state_dict"], b["state_dict"]) and timeless[0] == timeless[1]
            and equal(a["training_state"]["optimizer"], b["training_state"]["optimizer"]))


def row(fault, where, injected, survived, data_lost, detail="") -> dict:
    return {"fault": fault, "where": where, "injected": injected, "survived": survived,
            "data_lost": data_lost, "detail": detail}


# --- training ----------------------------------------------------------------------------------
def kills(work: Path, rng: random.Random, per_model: int) -> list[dict]:
    # enough steps that every planned kill lands before training ends (about 5 steps per kill)
    cfg = config(steps=8 * per_model, save_every=3, eval_every=5, anneal_steps=10)
    rows = []
    for name in faults.MODELS:
        train(faults.make_program(name), TASK.sample, cfg, eval_fn=probe,
              save=work / f"{name}-whole.pt")
        ck = work / f"{name}-killed.pt"

        def train_once(resume, wrap_sample, wrap_eval, name=name, ck=ck):
            train(faults.make_program(name), wrap_sample(TASK.sample), cfg,
                  eval_fn=wrap_eval(probe), save=ck, resume=resume)

        planned = faults.random_kills(rng, per_model, max_nth=3)
        records = faults.survive_kills(train_once, ck, planned)
        reached = [r for r in records if r["reached"]]
        steps = [r["checkpoint_step"] or 0 for r in records]
        lost = sum(later < earlier for earlier, later in zip(steps, steps[1:]))
        lost += sum("unreadable" in r for r in records)
        ok = not lost and same_run(read_checkpoint(work / f"{name}-whole.pt"), read_checkpoint(ck))
        points = sorted({r["kill"]["point"] for r in reached})
        rows.append(row("SIGKILL, then resume", name, len(reached), len(reached) if ok else 0,
                        lost + (not ok), f"kill points: {', '.join(points)}; "
                        f"checkpoint steps after each kill: {steps[:-1]}"))
    return rows


def external_kills(work: Path, rng: random.Random, count: int) -> list[dict]:
    """SIGKILL a real ``experiments/run.py`` process from outside at a random moment (checkpoints
    every step, so many kills land mid-save), resume it, repeat; compare with an uninterrupted run."""
    command = [sys.executable, str(Path(__file__).with_name("run.py")), "--dataset", "quad-d1",
               "--model", "vmd", "--hidden", "8", "--layers", "1", "--latent-dim", "2",
               "--batch-size", "16", "--steps", "300", "--save-every", "1", "--eval-every", "0",
               "--nfe", "1", "--num-samples", "20", "--z-samples", "5", "--iw-samples", "0",
               "--threads", "1", "--quiet"]
    began = time.perf_counter()
    subprocess.run(command + ["--save", str(work / "cli-whole.pt")], check=True,
                   stdout=subprocess.DEVNULL)
    duration = time.perf_counter() - began
    ck, reached, steps = work / "cli-killed.pt", 0, []
    for _ in range(count):
        resume = ["--resume", str(ck)] if ck.exists() else []
        before = ck.stat().st_mtime_ns if ck.exists() else None
        proc = subprocess.Popen(command + ["--save", str(ck)] + resume, stdout=subprocess.DEVNULL)
        # once training runs (a new checkpoint appeared), kill at a random moment soon after
        while proc.poll() is None and (ck.stat().st_mtime_ns if ck.exists() else None) == before:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.1) * duration)
        if proc.poll() is None:
            proc.kill()  # SIGKILL
            reached += 1
        proc.wait()
        try:
            steps.append(read_checkpoint(ck)["training_state"]["step"] if ck.exists() else 0)
        except ValueError:
            steps.append(-1)  # unreadable: counted as lost
    subprocess.run(command + ["--save", str(ck)] + (["--resume", str(ck)] if ck.exists() else []),
                   check=True, stdout=subprocess.DEVNULL)
    lost = sum(b < a for a, b in zip([0] + steps, steps))
    ok = not lost and same_run(read_checkpoint(work / "cli-whole.pt"), read_checkpoint(ck))
    return [row("SIGKILL from outside at a random time, then --resume",
                "experiments/run.py (Gaussian VMD, a checkpoint every step)", reached,
                reached if ok else 0, lost + (not ok),
                f"checkpoint steps after each kill: {steps}")]


def failed_saves(work: Path) -> list[dict]:
    targets = {"torch.save": (checkpoint.torch, "save"), "fsync": (checkpoint.os, "fsync"),
               "rename": (checkpoint.os, "replace")}
    rows = []
    for where, (module, attr) in targets.items():
        survived = lost = 0
        for name in faults.MODELS:
            ck, calls, before = work / f"{name}-{where}.pt", [], {}
            real = getattr(module, attr)

            def disk_full(*args, real=real, calls=calls, before=before, ck=ck, **kwargs):
                calls.append(1)
                if len(calls) == 2:  # the second checkpoint: no space left
                    before["bytes"] = ck.read_bytes()
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real(*args, **kwargs)

            try:
                with mock.patch.object(module, attr, disk_full):
                    train(faults.make_program(name), TASK.sample, config(), save=ck)
                stopped = False
            except CheckpointWriteError as err:
                stopped = "\n" not in str(err) and "training stopped at step 8" in str(err)
            intact = ck.is_file() and ck.read_bytes() == before.get("bytes")
            survived += stopped and intact and not ck.with_name(ck.name + ".tmp").exists()
            lost += not intact
        rows.append(row("save fails (ENOSPC)", f"{where}, 4 models", len(faults.MODELS), survived,
                        lost, "training stops in one line; the step-4 checkpoint stays"))
    return rows


def nan_losses(work: Path, rng: random.Random) -> list[dict]:
    survived = lost = 0
    for name in faults.MODELS:
        program, ck, at = faults.make_program(name), work / f"{name}-nan.pt", rng.randint(5, 12)
        real_corrupt, calls, before = program.corrupt, [], {}

        def poisoned(*args, real_corrupt=real_corrupt, calls=calls, before=before, at=at,
                     program=program, **kwargs):
            batch = real_corrupt(*args, **kwargs)
            calls.append(1)
            if len(calls) == at:
                before.update({k: v.clone() for k, v in program.state_dict().items()})
                batch.weight = batch.weight * float("nan")
            return batch

        program.corrupt = poisoned
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pyro warns about the NaN it is handed
                train(program, TASK.sample, config(), save=ck)
            stopped = False
        except NonFiniteLoss:
            stopped = True
        untouched = all(torch.equal(v, before[k]) for k, v in program.state_dict().items())
        kept = read_checkpoint(ck)["training_state"]["step"] == (at - 1) // 4 * 4  # saves: 4, 8
        survived += stopped and untouched and kept
        lost += not (untouched and kept)
    return [row("NaN loss mid-training", "4 models, random step 5-12", len(faults.MODELS),
                survived, lost, "stops before the optimiser step; last checkpoint kept")]


# --- files -------------------------------------------------------------------------------------
class WritesMarker:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('code ran')",)


def damaged_checkpoints(work: Path, rng: random.Random) -> list[dict]:
    ck = work / "good.pt"
    train(faults.make_program("gaussian-vmd"), TASK.sample, config(steps=4), save=ck)
    good = ck.read_bytes()
    marker = work / "marker"
    evil, v1 = pickle.dumps(WritesMarker(marker)), io.BytesIO()
    torch.save({"format": checkpoint.LEGACY_FORMAT, "program_config": WritesMarker(marker)}, v1)
    kinds = {"empty": [b""],
             "truncated": [good[:rng.randrange(len(good))] for _ in range(20)],
             "bit flip": [m for _, m in faults.mutations(good, rng, 120)][::6],
             "random bytes": list(faults.random_blobs(rng, 20, 4000)),
             "crafted pickle (code)": [evil, v1.getvalue(), frame(evil), frame(v1.getvalue())]}
    rows = []
    for kind, blobs in kinds.items():
        refused = 0
        for i, data in enumerate(blobs):
            path = work / f"bad-{kind.split()[0]}-{i}.pt"
            path.write_bytes(data)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outcome, _ = faults.classify(load_program, path)
            refused += outcome == "refused" and not marker.exists()
        rows.append(row("damaged or crafted checkpoint", kind, len(blobs), refused, 0,
                        "refused in one line" + ("; the marker file never appeared"
                                                 if "crafted" in kind else "")))
    return rows


def damaged_caches(work: Path) -> list[dict]:
    cfg = sudoku.SudokuConfig(num_val=4, num_test=6, train_pool=8)
    reference = sudoku.load_or_build(cfg, work / "sudoku")
    path = next((work / "sudoku").glob("sudoku-*.json"))
    corpus = "the offline corpus stands in here " * 30
    damages = {"truncated": lambda b: b[:len(b) // 2], "bit flip": lambda b: _flip_digit(b),
               "garbage": lambda b: b"\xff\x00" * 20, "no checksum": None}
    rows = []
    survived = 0
    for kind, damage in damages.items():
        if damage is None:
            data = json.loads(path.read_text())
            del data["sha256"]
            path.write_text(json.dumps(data))
        else:
            path.write_bytes(damage(path.read_bytes()))
        with redirect_stderr(io.StringIO()) as err:
            rebuilt = sudoku.load_or_build(cfg, work / "sudoku")
        survived += rebuilt == reference and "rebuilding" in err.getvalue()
    rows.append(row("damaged data cache", "Sudoku splits (JSON)", len(damages), survived, 0,
                    "detected by its sha256 and rebuilt identical"))
    survived = 0
    with mock.patch.object(text, "build_offline_corpus", lambda max_chars=None: corpus):
        text.offline_corpus(work / "text")
        cached = next((work / "text").glob("stdlib-docs-*.txt"))
        for kind, damage in damages.items():
            if damage is None:
                cached.with_name(cached.name + ".sha256").unlink()
            else:
                cached.write_bytes(damage(cached.read_bytes()) if kind != "bit flip"
                                   else corpus.replace("corpus", "corpse", 1).encode())
            with redirect_stderr(io.StringIO()) as err:
                rebuilt = text.offline_corpus(work / "text")
            survived += rebuilt == corpus and "afresh" in err.getvalue()
    rows.append(row("damaged data cache", "offline text corpus", len(damages), survived, 0,
                    "detected by its .sha256 file and rebuilt identical"))
    return rows


def _flip_digit(data: bytes) -> bytes:
    """Change one digit of the test puzzles: still valid JSON, only the checksum notices."""
    at = data.index(b"[[", data.index(b'"test_puzzles"')) + 2
    return data[:at] + str((int(chr(data[at])) + 1) % 10).encode() + data[at + 1:]


def fuzzing(work: Path, rng: random.Random, cases: int) -> list[dict]:
    puzzles, solutions = sudoku.generate_puzzles(3, (30, 40), seed=1)
    sudoku.write_puzzles(work / "puzzles.txt", puzzles, solutions)
    letters = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz ") for _ in range(300))
    with zipfile.ZipFile(work / "text8.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("text8", letters)
    ck = work / "fuzz.pt"
    train(faults.make_program("discrete-vmd"), TASK.sample, config(steps=2), save=ck)
    payload = ck.read_bytes().split(b"\n", 2)[2]
    readers = {
        "puzzle file loader": (lambda p: sudoku.read_puzzles(p), work / "puzzles.txt", None),
        "text8 loader (zip)": (lambda p: text.read_text8(p, len(letters)), work / "text8.zip", None),
        "checkpoint reader": (load_program, ck, payload)}
    rows = []
    for where, (read, good_path, inner) in readers.items():
        good = good_path.read_bytes()
        blobs = list(faults.random_blobs(rng, cases // 3))
        blobs += [m for _, m in faults.mutations(good, rng, cases // 3)]
        blobs += ([frame(m) for _, m in faults.mutations(inner, rng, cases - 2 * (cases // 3))]
                  if inner is not None else
                  [m for _, m in faults.mutations(good, rng, cases - 2 * (cases // 3))])
        counts = {"parsed": 0, "refused": 0, "other": 0}
        for i, data in enumerate(blobs):  # a new file each time: rewriting one is slow on ext4
            path = work / f"fuzz-{where.split()[0]}-{i}{good_path.suffix}"
            path.write_bytes(data)
            try:
                outcome, _ = faults.classify(read, path)
            except Exception:  # noqa: BLE001 - the failure this scenario counts
                outcome = "other"
            counts[outcome] += 1
        rows.append(row("fuzzed input (seeded random bytes, near-valid mutations)", where,
                        len(blobs), counts["parsed"] + counts["refused"], 0,
                        f"{counts['parsed']} parsed, {counts['refused']} refused in one line, "
                        f"{counts['other']} other errors"))
    return rows


# --- report ------------------------------------------------------------------------------------
def markdown(report: dict) -> str:
    lines = ["# Reliability: faults injected, survived, data lost", "",
             f"Command: `{report['command']}`  ", f"Commit: `{report['git_commit']}`  ",
             f"Wall time: {report['wall_seconds']:.0f} s (2 shared CPU cores), seed "
             f"{report['seed']}", "",
             "| fault | where | injected | survived | data lost | notes |", "|---|---|---|---|---|---|"]
    for r in report["scenarios"]:
        lines.append(f"| {r['fault']} | {r['where']} | {r['injected']} | {r['survived']} | "
                     f"{r['data_lost']} | {r['detail']} |")
    total = {k: sum(r[k] for r in report["scenarios"]) for k in ("injected", "survived",
                                                                  "data_lost")}
    lines += [f"| **total** | | **{total['injected']}** | **{total['survived']}** | "
              f"**{total['data_lost']}** | |", "",
              "Survived: the fault was handled as specified (see the docstring of "
              "`experiments/reliability.py`). Data lost: a completed checkpoint gone, changed or "
              "unreadable, or a resumed run that ends anywhere but where an uninterrupted one "
              "does. The same faults, smaller, run in the test suite (tests/test_training.py, "
              "tests/test_checkpoint.py, tests/test_sudoku.py, tests/test_text.py).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = cli.ArgumentParser(description=__doc__,
                                formatter_class=cli.argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for reliability.json and README.md")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per model (default 20)")
    parser.add_argument("--external-kills", type=int, default=6,
                        help="SIGKILLs of a real run.py process (default 6)")
    parser.add_argument("--fuzz-cases", type=int, default=1500,
                        help="fuzzed inputs per reader (default 1500)")
    args = parser.parse_args(argv)
    if args.kills < 1 or args.external_kills < 1 or args.fuzz_cases < 3:
        cli.fail("--kills and --external-kills must be >= 1, --fuzz-cases >= 3")
    torch.set_num_threads(1)
    start, rng = time.perf_counter(), random.Random(args.seed)
    scenarios = []
    with tempfile.TemporaryDirectory(prefix="vmd-reliability-") as tmp:
        work = Path(tmp)
        for step in (lambda: kills(work, rng, args.kills),
                     lambda: external_kills(work, rng, args.external_kills),
                     lambda: failed_saves(work),
                     lambda: nan_losses(work, rng), lambda: damaged_checkpoints(work, rng),
                     lambda: damaged_caches(work), lambda: fuzzing(work, rng, args.fuzz_cases)):
            scenarios += step()
            print(f"{scenarios[-1]['fault']}: done ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    report = {"command": "python experiments/reliability.py " + " ".join(
                  sys.argv[1:] if argv is None else argv),
              "git_commit": COMMIT_AT_START, "seed": args.seed,
              "wall_seconds": time.perf_counter() - start, "scenarios": scenarios}
    out = Path(args.out)
    write_json(out / "reliability.json", report)
    (out / "README.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
