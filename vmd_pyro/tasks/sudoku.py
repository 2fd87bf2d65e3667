"""``--task sudoku``: fill the blanks of puzzles (clues kept, blanks masked); scored by the solve
rate and cell accuracy on the test split for every ``--order`` and ``--nfe``, and the likelihood
bound per blank; with ``--test-clues`` also on a few-clue split, per clue count."""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from vmd_pyro import metrics
from vmd_pyro.datasets import sudoku
from vmd_pyro.sampling import ORDERS
from vmd_pyro.tasks.base import Task, attach_bounds, model_record, register_task

# Denoisers for Sudoku. "full" has about 6M denoiser parameters (12 * hidden^2 per layer) and a
# plain transformer: the scale and architecture of the published anchors. "cpu" is small and
# attends along rows, columns and boxes only: without that structure the small model solves no
# test puzzle after 5000 CPU steps (results/sudoku/ablation_mdm_plain.json); with it, most.
SUDOKU_CONFIGS = {
    "cpu": {"arch": "transformer", "hidden": 64, "layers": 3, "heads": 4, "structure": "attend"},
    "full": {"arch": "transformer", "hidden": 288, "layers": 6, "heads": 8, "structure": "none"},
}


@register_task
class Sudoku(Task):
    name = "sudoku"
    columns = ["model", "prior", "split", "order", "nfe", "solve_rate", "cell_accuracy",
               "nll_bound_bits"]
    several_orders = True
    has_position_groups = True

    @staticmethod
    def add_arguments(parser):
        g = parser.add_argument_group("sudoku (--task sudoku)")
        g.add_argument("--sudoku-config", default="cpu", choices=sorted(SUDOKU_CONFIGS),
                       help="denoiser: cpu (small, attends along rows, columns and boxes; default) "
                            "or full (~6M parameters, plain transformer as published; for cuda)")
        g.add_argument("--clues", nargs=2, type=int, default=[30, 40], metavar=("MIN", "MAX"),
                       help="clue count range of the validation and test puzzles, and of training "
                            "unless --train-clues (default 30 40)")
        g.add_argument("--train-clues", nargs=2, type=int, default=None, metavar=("MIN", "MAX"),
                       help="clue count range of the training grids (random clue cells; default: "
                            "--clues), e.g. 17 40 to cover --test-clues")
        g.add_argument("--test-clues", nargs=2, type=int, default=None, metavar=("MIN", "MAX"),
                       help="also evaluate on a few-clue test split: unique-solution puzzles with "
                            "each clue count in this range (e.g. 17 29), searched with a budget "
                            "(--per-clue-count, --search-grids); solve rate and cell accuracy are "
                            "reported per clue count (rows with split 'test-clues', field by_clues)")
        g.add_argument("--per-clue-count", type=int, default=100,
                       help="puzzles wanted per clue count of --test-clues (default 100)")
        g.add_argument("--search-grids", type=int, default=1000,
                       help="budget of the --test-clues search: complete grids tried (default "
                            "1000, minutes on one core; counts below about 21 stay short unless "
                            "--search-focus-moves)")
        g.add_argument("--search-moves", type=int, default=200,
                       help="swap moves of the local search per grid (default 200)")
        add_focus_arguments(g)
        g.add_argument("--only-test-clues", action="store_true",
                       help="evaluate on the --test-clues split only (skip the --clues test split "
                            "and the likelihood bounds)")
        g.add_argument("--test-puzzles", type=int, default=1000,
                       help="unique-solution test puzzles (default 1000)")
        g.add_argument("--val-puzzles", type=int, default=200,
                       help="validation puzzles, monitored during training (default 200)")
        g.add_argument("--train-pool", type=int, default=4000,
                       help="random complete grids that training transforms by symmetries "
                            "(default 4000)")
        g.add_argument("--data-seed", type=int, default=0, help="seed of the puzzle splits (default 0)")
        g.add_argument("--data-cache", default="data_cache",
                       help="where generated splits are cached (default data_cache/)")

    @classmethod
    def defaults(cls, args) -> dict:
        return {"nfe": [5, 10, 20, 50], "order": list(ORDERS), "fill": ["sample"],
                "num_samples": 20000, "bound_orders": 1, "bound_sequences": 200, "bound_iw_samples": 16,
                **SUDOKU_CONFIGS[args.sudoku_config]}

    @classmethod
    def check(cls, args, parser):
        for name in ("test_puzzles", "val_puzzles", "train_pool"):
            if getattr(args, name) < 1:
                parser.error(f"--{name.replace('_', '-')} must be >= 1")
        for name in ("clues", "train_clues", "test_clues"):
            value = getattr(args, name)
            if value is not None and not 17 <= value[0] <= value[1] <= 80:
                parser.error(f"--{name.replace('_', '-')} needs 17 <= MIN <= MAX <= 80, got "
                             f"{value[0]} {value[1]}")
        for name in ("per_clue_count", "search_grids"):
            if getattr(args, name) < 1:
                parser.error(f"--{name.replace('_', '-')} must be >= 1")
        if args.search_moves < 0 or args.search_focus_moves < 0:
            parser.error("--search-moves and --search-focus-moves must be >= 0")
        if args.only_test_clues and args.test_clues is None:
            parser.error("--only-test-clues needs --test-clues MIN MAX")

    @classmethod
    def maskable(cls, args) -> int:
        fewest = min(r[0] for r in (args.clues, args.train_clues, args.test_clues) if r)
        return sudoku.SIZE - fewest

    def __init__(self, args, device):
        super().__init__(args, device)
        self.data = data_split(args, progress=not args.quiet)
        self.val_puzzles, self.val_solutions = self.data.val

    def val_sample(self, batch_size, generator):
        """Validation puzzles: blanks maskable, clues not."""
        idx = torch.randint(len(self.val_puzzles), (batch_size,), generator=generator,
                            device=generator.device).cpu()
        return (self.val_solutions[idx].to(self.device),
                (self.val_puzzles[idx] == sudoku.MASK_ID).to(self.device))

    def training(self, model):
        args = self.args
        generator = torch.Generator(device=self.device).manual_seed(args.seed + 1)  # the monitor's
        # Training grids are drawn on the CPU with their own seeded stream, then moved.
        data_generator = torch.Generator().manual_seed(args.seed)

        def sample(batch_size, _generator):
            x0, maskable = self.data.sample(batch_size, generator=data_generator)
            return x0.to(self.device), maskable.to(self.device)

        def monitor(program):
            filled = sudoku.fill_puzzles(program, self.val_puzzles, nfe=10, order="top-prob-margin",
                                         fill=args.fill[0], generator=generator, **self.decoding())
            found = metrics.evaluate_bounds(program, self.val_sample, num_batches=1,
                                            batch_size=args.val_puzzles, generator=generator)
            return {**found, "val_solve_rate_nfe10_margin": sudoku.score(
                self.val_puzzles, filled)["solve_rate"]}

        return sample, monitor

    def evaluate(self, model, trained) -> list[dict]:
        args, program = self.args, trained.program
        rows = []
        if not args.only_test_clues:
            rows += self.evaluate_split(model, trained, "test", *self.data.test, args.clues)
            final = metrics.evaluate_bounds(program, self.val_sample, num_batches=5,
                                            batch_size=args.val_puzzles,
                                            generator=self.evaluation_generator())
            test_puzzles, test_solutions = self.data.test
            some = slice(0, args.bound_sequences)  # per blank of these test puzzles
            found = self.likelihood_bounds(program, test_solutions[some].to(self.device),
                                           (test_puzzles[some] == sudoku.MASK_ID).to(self.device))
            for row in rows:
                row.update({f"val_{key}": value for key, value in final.items()})
            attach_bounds(rows, found)
        if args.test_clues:
            rows += self.evaluate_split(model, trained, "test-clues", *self.data.hard,
                                        args.test_clues, by_clues=True)
        return rows

    def evaluate_split(self, model, trained, split, puzzles, solutions, clue_range,
                       by_clues=False) -> list[dict]:
        """One row per ``--order`` and ``--nfe``: solve rate and cell accuracy on ``puzzles``,
        ``by_clues`` also per clue count. Each row is decoded from a fresh stream, as `sudoku.py
        solve` decodes each NFE: the row of a run with several values is that of a run with one."""
        args, program = self.args, trained.program
        rows = []
        settings = [(order, nfe) for order in args.order for nfe in args.nfe]
        for order, nfe in tqdm(settings, desc=f"evaluate {model} ({split})", disable=args.quiet,
                               leave=False):
            filled = sudoku.fill_puzzles(program, puzzles, nfe=nfe, order=order,
                                         fill=args.fill[0], generator=self.evaluation_generator(),
                                         **self.decoding())
            rows.append({
                **model_record(model, trained), "split": split, "order": order, "nfe": nfe,
                **sudoku.score(puzzles, filled, solutions), "clue_range": list(clue_range),
                **({"by_clues": sudoku.score_by_clues(puzzles, filled, solutions)}
                   if by_clues else {}),
                "fill": args.fill[0], **self.decoding(),
                "z_strategy": args.z_strategy if program.has_latent else None})
        return rows

    def notes(self, runs):
        args = self.args
        standard = [f"test split: {args.test_puzzles} unique-solution puzzles with "
                    f"{args.clues[0]}-{args.clues[1]} clues (data seed {args.data_seed}); solve "
                    "rate = valid grid that keeps every clue, checked by the rules",
                    f"nll_bound_bits: B_T per blank on the first {args.bound_sequences} test "
                    "puzzles (random order unless the row's order is exact for MDM; generator in "
                    "the JSON)"]
        return ((standard if not args.only_test_clues else [])
                + ["training seconds: " + ", ".join(sorted({f"{r['model']} {r['train_seconds']:.0f}"
                                                            for r in runs if r["train_seconds"]}))]
                + ([self.test_clues_note()] if args.test_clues else []))

    def test_clues_note(self) -> str:
        counts = (self.data.hard[0] != sudoku.MASK_ID).sum(-1)
        found = ", ".join(f"{c}: {int((counts == c).sum())}" for c in counts.unique().tolist())
        lo, hi = self.args.test_clues
        return (f"test-clues split ({lo}-{hi} clues wanted, {self.args.per_clue_count} per count; "
                f"search {self.data.hard_seconds:.0f} s): puzzles per clue count {found}")


def add_focus_arguments(group) -> None:
    """The options that spend more of the few-clue search on the grids that got furthest
    (``run.py --task sudoku --test-clues`` and ``sudoku.py generate --per-clue-count``)."""
    group.add_argument("--search-focus-moves", type=int, default=0,
                       help="swap moves more for a grid whose search came down to "
                            "--search-focus-at clues (default 0: none); e.g. 3000 finds 20- and "
                            "19-clue puzzles many times faster (results/sudoku_hard)")
    group.add_argument("--search-focus-at", type=int, default=21,
                       help="clue count at or below which a grid gets --search-focus-moves "
                            "(default 21)")


def data_split(args, progress=True) -> sudoku.SudokuTask:
    """The puzzle splits the options ``--clues``, ``--*-puzzles``, ``--train-pool``, ``--data-seed``
    and ``--data-cache`` name (generated once, then read from the cache)."""
    cfg = sudoku.SudokuConfig(clue_min=args.clues[0], clue_max=args.clues[1],
                              num_val=args.val_puzzles, num_test=args.test_puzzles,
                              train_pool=args.train_pool, seed=args.data_seed)
    hard = None
    if args.test_clues:
        hard = sudoku.HardSplitConfig(clue_min=args.test_clues[0], clue_max=args.test_clues[1],
                                      per_count=args.per_clue_count, max_grids=args.search_grids,
                                      moves=args.search_moves, seed=args.data_seed,
                                      focus_moves=args.search_focus_moves,
                                      focus_at=args.search_focus_at)
    return sudoku.SudokuTask(cfg, cache_dir=args.data_cache, progress=progress,
                             train_clues=args.train_clues, hard=hard)
