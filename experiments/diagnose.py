#!/usr/bin/env python
"""Posterior diagnostics of a VMD model: how close is the guide q(z | x0, xt) to the posterior?

Trains a small VMD model on a synthetic set (or loads one saved by `experiments/run.py --save`),
then writes to --out: diagnostics.json (PSIS k-hat per example, guide vs reference posterior, KL to
the prior per latent coordinate, active units, mutual information, each per mask rate),
inference_data.nc (ArviZ: guide draws in `posterior`, reference draws in `reference_posterior`)
and PNG plots.

    python experiments/diagnose.py --dataset quad-d1 --prior gaussian --threads 1 --out results/diagnostics/gaussian
    python experiments/diagnose.py --checkpoint model.pt --out diag/
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pyro  # noqa: E402
import torch  # noqa: E402

from models import PRIORS  # noqa: E402
from vmd_pyro import cli, diagnostic_plots  # noqa: E402
from vmd_pyro.checkpoint import load_program, save_checkpoint  # noqa: E402
from vmd_pyro.datasets import synthetic  # noqa: E402
from vmd_pyro.diagnostics import DiagnosticsConfig, diagnose  # noqa: E402
from vmd_pyro.experiment import provenance, write_json  # noqa: E402
from vmd_pyro.networks import NetConfig  # noqa: E402
from vmd_pyro.program import ProgramConfig, build_program  # noqa: E402
from vmd_pyro.training import TrainConfig, train  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="quad-d1", help=f"synthetic set: {', '.join(synthetic.NAMES)}")
    p.add_argument("--p", type=float, default=0.5, help="dependency strength of pair-p")
    p.add_argument("--prior", default="gaussian", help=f"latent prior: {', '.join(sorted(PRIORS))}")
    p.add_argument("--checkpoint", default=None,
                   help="load this trained model (from run.py --save) instead of training")
    p.add_argument("--save", default=None, help="save the trained model here")
    p.add_argument("--out", required=True, help="output directory")
    g = p.add_argument_group("model and training (ignored with --checkpoint)")
    g.add_argument("--latent-dim", type=int, default=8)
    g.add_argument("--components", type=int, default=10, help="K of mog / discrete")
    g.add_argument("--hidden", type=int, default=128)
    g.add_argument("--layers", type=int, default=2)
    g.add_argument("--steps", type=int, default=2500)
    g.add_argument("--batch-size", type=int, default=256)
    g.add_argument("--lr", type=float, default=2e-3)
    g = p.add_argument_group("diagnostics")
    g.add_argument("--mask-rates", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    g.add_argument("--examples-per-rate", type=int, default=10,
                   help="held-out pairs per mask rate judged against the reference posterior")
    g.add_argument("--population-per-rate", type=int, default=500,
                   help="pairs per mask rate for KL per dim, active units and MI")
    g.add_argument("--guide-draws", type=int, default=1000)
    g.add_argument("--chains", type=int, default=4, help="NUTS chains (run one after another)")
    g.add_argument("--warmup", type=int, default=300)
    g.add_argument("--samples", type=int, default=500, help="NUTS draws per chain")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def check_args(args, parser):
    if args.checkpoint is None and args.prior not in PRIORS:
        parser.error(f"unknown prior {args.prior!r}; available: {', '.join(sorted(PRIORS))}")
    if args.dataset not in synthetic.NAMES:
        parser.error(f"unknown dataset {args.dataset!r}; available: {', '.join(synthetic.NAMES)}")
    if any(not 0.0 < t <= 1.0 for t in args.mask_rates):
        parser.error(f"--mask-rates must lie in (0, 1], got {args.mask_rates}")
    for name in ("latent_dim", "components", "hidden", "steps", "batch_size", "examples_per_rate",
                 "population_per_rate", "guide_draws", "chains", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.population_per_rate < 2:
        parser.error("--population-per-rate must be >= 2 (activity is a variance over examples)")


def obtain_program(args, task):
    """Returns ``(program, training record)``."""
    if args.checkpoint:
        program, state = load_program(args.checkpoint)
        if not program.has_latent:
            raise ValueError(f"checkpoint {args.checkpoint!r} holds an MDM: nothing to diagnose")
        net = program.cfg.net
        if (net.vocab_size, net.seq_len) != (task.vocab_size, task.seq_len):
            raise ValueError(f"checkpoint {args.checkpoint!r} was trained for vocabulary "
                             f"{net.vocab_size} and length {net.seq_len}, not {args.dataset}")
        return program, {"checkpoint": args.checkpoint, "history": state.get("history", [])}
    pyro.set_rng_seed(args.seed)  # the networks' initial weights come from the global RNG
    net = NetConfig(vocab_size=task.vocab_size, seq_len=task.seq_len, hidden=args.hidden,
                    layers=args.layers)
    program = build_program(ProgramConfig(net=net, model="vmd", prior=args.prior,
                                          latent_dim=args.latent_dim,
                                          components=args.components))
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      anneal_steps=args.steps // 5, eval_every=0, seed=args.seed,
                      validate=False, progress=not args.quiet)
    start = time.perf_counter()
    history = train(program, task.sample, cfg)
    seconds = time.perf_counter() - start
    if args.save:
        save_checkpoint(args.save, program, history=history, train_seconds=seconds,
                        train_config=cfg.to_dict(), task="synthetic", dataset=args.dataset)
    return program, {"train_config": cfg.to_dict(), "train_seconds": seconds,
                     "final_train_loss": history[-1]["train_loss"]}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(args, parser)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    task = synthetic.make_synthetic(args.dataset, args.p)
    cfg = DiagnosticsConfig(mask_rates=tuple(args.mask_rates),
                            examples_per_rate=args.examples_per_rate,
                            population_per_rate=args.population_per_rate,
                            guide_draws=args.guide_draws, chains=args.chains,
                            warmup=args.warmup, samples=args.samples, seed=args.seed)
    try:
        program, training = obtain_program(args, task)
        diag_start = time.perf_counter()
        diagnosis = diagnose(program, task, cfg, progress=not args.quiet)
    except cli.USER_ERRORS as err:
        return cli.report(err)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"dataset": args.dataset, "prior": program.cfg.prior,
              "latent_dim": program.cfg.latent_dim, "components": program.cfg.components,
              "program_config": program.cfg.to_dict(), "training": training,
              **diagnosis.report,
              "diagnose_seconds": time.perf_counter() - diag_start}
    diagnosis.idata.to_netcdf(str(out / "inference_data.nc"))
    plots = diagnostic_plots.save_all(diagnosis, program, out)
    report.update(wall_seconds=time.perf_counter() - start, **provenance(args.seed),
                  files=["diagnostics.json", "inference_data.nc"] + [Path(p).name for p in plots])
    write_json(out / "diagnostics.json", report)

    k = report["psis_khat_summary"]
    print(f"PSIS k-hat: median {k['median']:.3f}, max {k['max']:.3f}, "
          f"{100 * k['fraction_above_0.7']:.0f}% above 0.7")
    ref = report["reference"]
    if "rhat_max" in ref:
        print(f"reference NUTS: R-hat max {ref['rhat_max']:.3f}, bulk ESS min "
              f"{ref['ess_bulk_min']:.0f}, divergences {ref['divergences']}")
    print(f"active units {report['active_units']} of {report['latent_usage']['units']}; "
          f"KL per dim {[round(x, 3) for x in report['kl_per_dim']]}")
    for r in report["latent_usage"]["per_mask_rate"]:
        print(f"  t = {r['mask_rate']:.2f}: total KL {r['kl_total']:.3f}, "
              f"I(z; x) {r['mutual_information']:.3f} nats, active {r['active_units']}")
    print(f"wrote {out}/ ({', '.join(report['files'])}) in {report['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
