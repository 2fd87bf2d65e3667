#!/usr/bin/env python
"""Sudoku puzzle files: generate them, check them, solve them with a trained checkpoint, and ask a
VMD checkpoint whether it uses its latent.

A puzzle file has one puzzle per line: 81 characters, 1-9 for clues and 0 or . for blanks,
optionally followed by a separator (comma, space, tab, ; or |) and the 81-digit solution.

    python experiments/sudoku.py generate --count 100 --clues 30 40 --out puzzles.txt
    python experiments/sudoku.py generate --per-clue-count 20 --clues 17 29 --out hard.txt
    python experiments/sudoku.py check --puzzles hard.txt --against puzzles.txt
    python experiments/sudoku.py solve --checkpoint results/sudoku/cpu-mdm.pt --puzzles puzzles.txt \\
        --nfe 20 --order top-prob-margin --out solved.txt

``check`` says how many puzzles of a file have a unique solution (and the file's), how many are
minimal (no clue can go), how many distinct solution grids they hold, and how many of those grids
(and puzzles) other files and the splits of ``run.py --task sudoku`` (``--data-seeds``) share.

``solve`` writes one 81-digit line per puzzle and, when the file carries solutions, reports the
solve rate (valid grid keeping every clue, checked by the rules) and the cell accuracy, over all
puzzles and per clue count (``by_clues`` in the JSON). Several ``--nfe`` values solve the file at
each in one run (``--json 'solved_nfe{nfe}.json'``: one file per value, each as a run with that
value alone; ``experiments/sudoku_solve_report.py`` tables and plots them). With
``--without-latent`` a VMD fills the puzzles with the denoiser's ``z`` input cut off (``z = 0`` in
every call, :func:`vmd_pyro.latent_usage.without_latent`): if the solve rate does not move, the
model does not use its latent. ``--z-strategy oracle`` draws ``z`` before every call from the
guide given the file's solution, ``q(z | solution, xt)``: not a solver but a ceiling on what any
prior could make of this denoiser's latent. ``--z-strategy enumerate`` (a discrete z) decodes
every puzzle once per value of z and keeps the grid the model itself scores highest
(``--select``); ``--candidates N`` does the same with N decodes of any model (e.g. an MDM with
``--fill sample``), the control that costs as many network passes. The JSON records the passes
per puzzle that each decoder made (``network_passes_per_puzzle``).

``solve --json`` also keeps each puzzle's outcome (``per_puzzle``: solved, and with several
decodes whether any offered a valid grid), so that ``compare`` can set two decoders of the same
file side by side puzzle by puzzle: the difference of their solve rates with its paired standard
error (smaller than the error of two independent rates when both solve mostly the same puzzles),
the puzzles only one of them solves, and the exact McNemar test.

    python experiments/sudoku.py compare vmd.json mdm.json --json vmd_vs_mdm.json

    python experiments/sudoku.py latent --checkpoint results/sudoku/cpu-gaussian.pt \\
        --puzzles puzzles.txt --json latent.json

``latent`` asks whether a VMD model uses its latent on Sudoku: the blanks of each puzzle (with its
solution as ``x0``) are masked at each ``--mask-rates`` value and the guide ``q(z | x0, xt)`` is
compared with the prior: KL per coordinate, active units and ``I(z; x)`` (vmd_pyro.latent_usage).
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

import models  # noqa: F401 (registers the priors, guides and Pyro models: vmd_pyro.registry)
from vmd_pyro import cli
from vmd_pyro.checkpoint import load_program
from vmd_pyro.datasets import sudoku
from vmd_pyro.latent_usage import latent_usage, without_latent
from vmd_pyro.experiment import provenance, read_json, resolve_device, write_json
from vmd_pyro.masking import corrupt
from vmd_pyro.metrics import paired_difference
from vmd_pyro.sampling import DIAGNOSTIC_Z_STRATEGIES, FILLS, ORACLE, ORDERS, counting_passes
from vmd_pyro.tasks.sudoku import add_focus_arguments


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write unique-solution puzzles (with solutions) to a file")
    g.add_argument("--count", type=int, default=100, help="number of puzzles (default 100)")
    g.add_argument("--clues", nargs=2, type=int, default=[30, 40], metavar=("MIN", "MAX"),
                   help="clue count range, inclusive (default 30 40)")
    g.add_argument("--per-clue-count", type=int, default=None, metavar="N",
                   help="instead of --count: up to N puzzles for every clue count of --clues, "
                        "searched below greedy removal's reach (about 22 clues) within "
                        "--search-grids grids; prints the counts reached (e.g. --clues 17 29)")
    g.add_argument("--search-grids", type=int, default=1000,
                   help="with --per-clue-count: complete grids tried (default 1000)")
    g.add_argument("--search-moves", type=int, default=200,
                   help="with --per-clue-count: swap moves per grid (default 200)")
    add_focus_arguments(g)
    g.add_argument("--seed", type=int, default=0,
                   help="seed of this command's own grid stream, which no training or test split "
                        "of run.py --task sudoku draws from (default 0)")
    g.add_argument("--shared-seed-stream", action="store_true",
                   help="draw from the integer stream --seed that run.py's Sudoku splits also use "
                        "(data seed d: 3d+1 test, 3d+2 validation, 3d+3 training pool, 3d+4 few-"
                        "clue split), as generate did before this flag; only to reproduce files "
                        "made then (results/sudoku_hard/low_clues/, "
                        "results/sudoku/latent_puzzles.txt)")
    g.add_argument("--no-solutions", action="store_true", help="write the puzzles only")
    g.add_argument("--out", required=True, help="puzzle file to write")

    s = sub.add_parser("solve", help="fill every puzzle of a file with a trained model")
    s.add_argument("--checkpoint", required=True, help="a model saved by run.py --task sudoku --save")
    s.add_argument("--puzzles", required=True,
                   help="puzzle file to solve (or a published list whose first line names its "
                        "columns, e.g. quizzes,solutions or id,puzzle,solution,clues,difficulty)")
    s.add_argument("--clues", nargs=2, type=int, default=None, metavar=("MIN", "MAX"),
                   help="solve only the puzzles with MIN-MAX clues (default: all)")
    s.add_argument("--per-clue-count", type=int, default=None, metavar="N",
                   help="solve only the first N puzzles of each clue count (e.g. a test split "
                        "out of a list of millions)")
    s.add_argument("--nfe", type=int, nargs="+", default=[20],
                   help="denoiser calls per puzzle (default 20); several values solve the file "
                        "once per value, each as a run with that value alone would, and then "
                        "--out and --json name one file per value with {nfe}")
    s.add_argument("--order", default="top-prob-margin", choices=ORDERS,
                   help="which blanks to fill first (default top-prob-margin)")
    s.add_argument("--fill", default="sample", choices=FILLS, help="sample or argmax")
    s.add_argument("--z-strategy", default="fixed", choices=DIAGNOSTIC_Z_STRATEGIES,
                   help=f"latent per step ({cli.Z_STRATEGY_HELP}; oracle: z redrawn every call "
                        "from the guide given the solution, a ceiling that reads the answer and "
                        "needs solutions in the file) (default fixed)")
    cli.add_decoding_arguments(s, unit="puzzle")
    s.add_argument("--without-latent", action="store_true",
                   help="VMD only: decode with the denoiser's z input cut off (z = 0 in every "
                        "call); where the solve rate does not move, the model does not use z")
    s.add_argument("--failures", action="store_true",
                   help="also say why the unsolved puzzles fail: clashes between cells filled in "
                        "the same call (which the denoiser cannot see, the latent's case) or with "
                        "cells it could see (needs solutions in the puzzle file)")
    s.add_argument("--batch-size", type=int, default=500, help="puzzles per batch (default 500)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    s.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    s.add_argument("--out", default=None,
                   help="write the filled grids here, one per line ({nfe} is replaced by the NFE)")
    s.add_argument("--json", default=None,
                   help="write the scores as JSON here ({nfe} is replaced by the NFE)")

    c = sub.add_parser("check", help="are a file's puzzles unique, minimal, distinct, and new to "
                                     "other files and to run.py's splits")
    c.add_argument("--puzzles", required=True, help="puzzle file to check")
    c.add_argument("--against", nargs="+", default=[], metavar="FILE",
                   help="other puzzle files: the solution grids and puzzles shared with each")
    c.add_argument("--data-seeds", nargs="*", type=int, default=[0], metavar="SEED",
                   help="run.py --task sudoku data seeds whose test, validation and training-pool "
                        "grids (at run.py's defaults: 30-40 clues, 1000 test, 200 validation "
                        "puzzles, 4000 training grids; built into --data-cache if not there) are "
                        "matched exactly (default 0; none to skip)")
    c.add_argument("--data-cache", default="data_cache",
                   help="where those splits are cached (default data_cache/)")
    c.add_argument("--json", default=None, help="write the report as JSON here")

    u = sub.add_parser("latent", help="how much a VMD model's guide departs from its prior")
    u.add_argument("--checkpoint", required=True, help="a VMD model saved by run.py --task sudoku")
    u.add_argument("--puzzles", required=True, help="puzzle file with solutions")
    u.add_argument("--mask-rates", nargs="+", type=float, default=[0.1, 0.25, 0.5, 0.75, 1.0],
                   help="fractions of each puzzle's blanks masked (default 0.1 0.25 0.5 0.75 1)")
    u.add_argument("--seed", type=int, default=0)
    u.add_argument("--json", default=None, help="write the report as JSON here")

    m = sub.add_parser("compare", help="two solve --json files of one puzzle file, puzzle by "
                                       "puzzle: the difference and its paired error")
    m.add_argument("first", help="a solve --json file")
    m.add_argument("second", help="another, of the same puzzle file")
    m.add_argument("--json", default=None, help="write the comparison as JSON here")
    return p


def load_sudoku_program(path: str, device="cpu"):
    program, _ = load_program(path, map_location=device)
    net = program.cfg.net
    if (net.vocab_size, net.seq_len) != (sudoku.VOCAB, sudoku.SIZE):
        raise ValueError(f"checkpoint {path!r} is not a Sudoku model "
                         f"(vocabulary {net.vocab_size}, length {net.seq_len})")
    return program


def generate_stream(seed: int, shared: bool = False) -> int | str:
    """The ``random.Random`` seed of ``generate --seed seed``. The Sudoku splits of ``run.py`` seed
    their streams with small integers (3 x data seed + 1 to 4), so an integer seed here would start
    on the first grid of some split, a training pool among them (``--seed 3``: data seed 0's). A
    string seed names a stream of its own (``random`` hashes it with SHA-512, the same on every
    platform and Python 3 version); ``shared`` gives the integer stream that generate used before."""
    return seed if shared else f"sudoku.py generate {seed}"


def generate_command(args) -> int:
    if args.search_focus_moves < 0:
        raise ValueError(f"--search-focus-moves must be >= 0, got {args.search_focus_moves}")
    for name in ("count", "per_clue_count", "search_grids"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    seed = generate_stream(args.seed, args.shared_seed_stream)
    if args.per_clue_count is None:
        puzzles, solutions = sudoku.generate_puzzles(args.count, tuple(args.clues), seed=seed,
                                                     progress=True)
    else:
        puzzles, solutions = sudoku.generate_puzzles_by_clue_count(
            args.per_clue_count, tuple(args.clues), seed=seed, max_grids=args.search_grids,
            moves=args.search_moves, progress=True, focus_moves=args.search_focus_moves,
            focus_at=args.search_focus_at)
        counts = sudoku.clue_counts(puzzles)
        print("puzzles per clue count: " + ", ".join(
            f"{c}: {counts.count(c)}" for c in range(args.clues[0], args.clues[1] + 1)))
    sudoku.write_puzzles(args.out, puzzles, None if args.no_solutions else solutions)
    print(f"wrote {len(puzzles)} puzzles ({args.clues[0]}-{args.clues[1]} clues) to {args.out}")
    return 0


def solve_command(args) -> int:
    if any(nfe < 1 for nfe in args.nfe):
        raise ValueError(f"--nfe must be >= 1, got {args.nfe}")
    if args.per_clue_count is not None and args.per_clue_count < 1:
        raise ValueError(f"--per-clue-count must be >= 1, got {args.per_clue_count}")
    clue_range = None if args.clues is None else sudoku.check_clue_range(args.clues)
    if not args.temperature > 0:
        raise ValueError(f"--temperature must be > 0, got {args.temperature}")
    if args.temperature != 1 and args.fill != "sample":
        raise ValueError("--temperature is for --fill sample (argmax is its limit at 0)")
    if error := cli.decoding_argument_error(args):
        raise ValueError(error)
    for name in ("out", "json"):
        path = getattr(args, name)
        if path and len(args.nfe) > 1 and "{nfe}" not in path:
            raise ValueError(f"with several --nfe values, --{name} must hold {{nfe}} (one file "
                             f"per NFE, e.g. solved_nfe{{nfe}}.json), got {path!r}")
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    program = load_sudoku_program(args.checkpoint, device)
    if args.without_latent:
        program = without_latent(program)
    puzzles, solutions = sudoku.read_puzzles(args.puzzles, clue_range, args.per_clue_count)
    for asked, needs in ((args.failures, "--failures"),
                         (args.z_strategy == ORACLE, "--z-strategy oracle")):
        if asked and solutions is None:
            raise ValueError(f"{needs} needs the solutions, and {args.puzzles!r} has none")
    tokens = sudoku.to_tokens(puzzles)
    reference = None if solutions is None else sudoku.to_tokens(solutions)
    for nfe in args.nfe:
        solve_at(program, tokens, reference, nfe, args, device)
    return 0


def solve_at(program, tokens, reference, nfe: int, args, device) -> None:
    """Fill the puzzles in ``nfe`` calls, print the scores and write the files asked for. The
    sampler is seeded afresh for each NFE, so a run with several ``--nfe`` values gives each the
    result of a run with that value alone."""
    generator = torch.Generator(device=device).manual_seed(args.seed)
    start = time.perf_counter()
    answers = reference if args.z_strategy == ORACLE else None
    offered = []  # every candidate grid, when several are decoded and one kept
    with counting_passes(program) as passes:  # what this decoder costs, whatever its z strategy
        filled, calls = sudoku.fill_puzzles(program, tokens, nfe=nfe, order=args.order,
                                            fill=args.fill, z_strategy=args.z_strategy,
                                            generator=generator, batch_size=args.batch_size,
                                            return_calls=True, solutions=answers,
                                            candidates=args.candidates, select=args.select,
                                            check_groups=args.check_groups,
                                            check_distinct=args.check_distinct,
                                            temperature=args.temperature,
                                            z_values=args.z_values,
                                            on_candidates=lambda grids: offered.append(grids.cpu()))
    seconds = time.perf_counter() - start
    result = {"puzzles": args.puzzles, "checkpoint": args.checkpoint, "nfe": nfe,
              "order": args.order, "fill": args.fill, "z_strategy": args.z_strategy,
              "candidates": args.candidates, "select": args.select,
              "check_groups": args.check_groups, "check_distinct": args.check_distinct,
              "temperature": args.temperature, "z_values": args.z_values,
              "network_passes_per_puzzle": {net: n / len(tokens) for net, n in passes.items()},
              "without_latent": args.without_latent, "seconds": seconds,
              **sudoku.score(tokens, filled, reference),
              "by_clues": sudoku.score_by_clues(tokens, filled, reference), **provenance(args.seed)}
    # per puzzle, in file order, so that two decoders of one file can be compared pairwise (compare)
    result["per_puzzle"] = {"solved": bit_string(sudoku.solved(tokens, filled))}
    if offered:
        grids = torch.cat(offered)
        result["candidates_offered"] = sudoku.candidate_coverage(tokens, grids)
        result["per_puzzle"]["valid_offered"] = bit_string(
            sudoku.valid_candidates(tokens, grids).any(-1))
    if args.failures:
        result["failures"] = sudoku.failure_kinds(tokens, filled, calls, reference)
    if args.out:
        out = args.out.replace("{nfe}", str(nfe))
        sudoku.write_puzzles(out, sudoku.to_digits(filled).tolist())
        print(f"wrote {len(tokens)} grids to {out}")
    print(f"{len(tokens)} puzzles, NFE {nfe}, order {args.order}: solve rate "
          f"{result['solve_rate']:.4f}" + (f", cell accuracy {result['cell_accuracy']:.4f}"
                                           if "cell_accuracy" in result else "")
          + f", {result['network_passes_per_puzzle'].get('denoiser', 0):.1f} denoiser passes "
          f"per puzzle ({seconds:.1f} s)")
    if offered:
        c = result["candidates_offered"]
        print(f"  {c['distinct_candidates']:.1f} different grids per puzzle "
              f"({c['distinct_wrong_candidates']:.1f} different wrong ones); at least one solves "
              f"{c['any_candidate_solves']:.4f} of the puzzles (what a perfect check would keep)")
    if args.failures:
        f = result["failures"]
        print(f"{f['failed']} unsolved: {f['with_same_call_conflict']} with a clash inside one call "
              f"({f['only_same_call_conflicts']} with no other clash); the first wrong call has "
              f"such a clash in {f['first_error_in_same_call_conflict']}")
    if args.json:
        write_json(args.json.replace("{nfe}", str(nfe)), result)


def bit_string(flags: torch.Tensor) -> str:
    """One character per puzzle, ``1`` where ``flags`` is true: compact in JSON, read back by
    :func:`compare_command`."""
    return "".join("1" if f else "0" for f in flags.tolist())


def per_puzzle_outcomes(path: str) -> tuple[dict, list[bool]]:
    """A ``solve --json`` file and its per-puzzle solved flags."""
    result = read_json(path)
    if "solved" not in result.get("per_puzzle", {}):
        raise ValueError(f"{path} holds no per-puzzle results (solved before solve recorded "
                         f"them): solve the file again with its recorded command")
    return result, [c == "1" for c in result["per_puzzle"]["solved"]]


def compare_command(args) -> int:
    (first, a), (second, b) = map(per_puzzle_outcomes, (args.first, args.second))
    if (first.get("puzzles"), len(a)) != (second.get("puzzles"), len(b)):
        raise ValueError(f"the two files solved different puzzles: {first.get('puzzles')} "
                         f"({len(a)}) against {second.get('puzzles')} ({len(b)})")
    r = {"first": args.first, "second": args.second, "puzzles": first.get("puzzles"),
         **paired_difference(a, b)}
    print(f"{r['items']} puzzles of {r['puzzles']}: {100 * r['rate_a']:.1f}% against "
          f"{100 * r['rate_b']:.1f}%, difference {100 * r['difference']:+.1f} points, standard "
          f"error {100 * r['paired_standard_error']:.2f} paired ({100 * r['unpaired_standard_error']:.2f} "
          f"as if independent); solved by the first only {r['a_only']}, by the second only "
          f"{r['b_only']}; exact McNemar p = {r['mcnemar_p']:.2g}")
    if args.json:
        write_json(args.json, r)
    return 0


def check_command(args) -> int:
    puzzles, solutions = sudoku.read_puzzles(args.puzzles)
    unique = [sudoku.count_solutions(p, 2) == 1 for p in puzzles]
    solved = [sudoku.solve(p) if u else None for p, u in zip(puzzles, unique)]
    grids, keys = grid_strings(solved), grid_strings(puzzles)
    counts = sudoku.clue_counts(puzzles)
    result = {"puzzles": args.puzzles, "num_puzzles": len(puzzles),
              "clue_counts": {str(c): counts.count(c) for c in sorted(set(counts))},
              "unique": sum(unique),
              "solution_agrees": None if solutions is None else sum(
                  g == s for g, s in zip(solved, solutions)),
              "minimal": sum(sudoku.is_minimal(p) for p, u in zip(puzzles, unique) if u),
              "distinct_grids": len(grids), "against": {}, "data_splits": {}}
    for path in args.against:
        other, other_solutions = sudoku.read_puzzles(path)
        other_grids = grid_strings(other_solutions or [sudoku.solve(p) for p in other])
        result["against"][path] = {"shared_grids": len(grids & other_grids),
                                   "shared_puzzles": len(keys & grid_strings(other))}
    for seed in args.data_seeds:
        split = sudoku.load_or_build(sudoku.SudokuConfig(seed=seed), args.data_cache, progress=True)
        result["data_splits"][str(seed)] = {
            name: len(grids & grid_strings(split[key]))
            for name, key in (("test", "test_solutions"), ("validation", "val_solutions"),
                              ("training_pool", "train_pool"))}
    result.update(provenance(None))  # nothing random here
    by_count = ", ".join(f"{k} clues: {v}" for k, v in result["clue_counts"].items())
    print(f"{len(puzzles)} puzzles ({by_count}): {result['unique']} with a unique solution"
          + ("" if solutions is None else f" ({result['solution_agrees']} the file's)")
          + f", {result['minimal']} minimal, {len(grids)} distinct grids")
    for path, shared in result["against"].items():
        print(f"  shared with {path}: {shared['shared_grids']} grids, "
              f"{shared['shared_puzzles']} puzzles")
    for seed, shared in result["data_splits"].items():
        print(f"  grids in data seed {seed}'s splits: "
              + ", ".join(f"{name} {n}" for name, n in shared.items()))
    if args.json:
        write_json(args.json, result)
    return 0


def grid_strings(grids) -> set[str]:
    """The 81-digit strings of ``grids``, leaving out ``None`` (a puzzle without one solution)."""
    return {sudoku.grid_string(g) for g in grids if g is not None}


@torch.no_grad()
def latent_command(args) -> int:
    if not args.mask_rates or any(not 0.0 < t <= 1.0 for t in args.mask_rates):
        raise ValueError(f"--mask-rates must lie in (0, 1], got {args.mask_rates}")
    program = load_sudoku_program(args.checkpoint)
    if not program.has_latent:
        raise ValueError(f"checkpoint {args.checkpoint!r} is an MDM: it has no latent")
    puzzles, solutions = sudoku.read_puzzles(args.puzzles)
    if solutions is None:
        raise ValueError(f"{args.puzzles} has no solutions: the guide needs x0")
    rates = torch.tensor(args.mask_rates, dtype=torch.get_default_dtype())
    x0 = sudoku.to_tokens(solutions).repeat(len(rates), 1)
    blanks = (sudoku.to_tokens(puzzles) == sudoku.MASK_ID).repeat(len(rates), 1)
    generator = torch.Generator().manual_seed(args.seed)
    batch = corrupt(x0, program.mask_id, maskable=blanks, generator=generator,
                    t=rates.repeat_interleave(len(puzzles)))
    usage = latent_usage(program, batch, generator=generator)
    result = {"puzzles": args.puzzles, "checkpoint": args.checkpoint, "prior": program.cfg.prior,
              "latent_dim": program.cfg.latent_dim, **usage, **provenance(args.seed)}
    print(f"{len(puzzles)} puzzles, {program.cfg.prior} prior: KL(q || p) {usage['kl_total']:.3f} "
          f"nats, {usage['active_units']} of {usage['units']} units active")
    for r in usage["per_mask_rate"]:
        print(f"  mask rate {r['mask_rate']:.2f}: KL {r['kl_total']:.3f} nats, "
              f"I(z; x) {r['mutual_information']:.3f} nats, {r['active_units']} active")
    if args.json:
        write_json(args.json, result)
    return 0


COMMANDS = {"generate": generate_command, "solve": solve_command, "check": check_command,
            "latent": latent_command, "compare": compare_command}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except cli.USER_ERRORS as err:
        return cli.report(err)


if __name__ == "__main__":
    sys.exit(main())
