#!/usr/bin/env python
"""Posterior diagnostics of a VMD model: how close is the guide q(z | x0, xt) to the posterior?

Trains a small VMD model on a synthetic set (or loads one saved by `experiments/run.py --save`),
with run.py's model and training options and defaults (the same code builds it), then writes to --out: diagnostics.json (PSIS k-hat per example, guide vs reference posterior, KL to
the prior per latent coordinate, active units, mutual information, each per mask rate),
inference_data.nc (ArviZ: guide draws in `posterior`, reference draws in `reference_posterior`)
and PNG plots.

    python experiments/diagnose.py --dataset quad-d1 --prior gaussian --threads 1 --out runs/diagnostics/gaussian
    python experiments/diagnose.py --checkpoint model.pt --out diag/
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

import models  # noqa: E402,F401 (registers the priors, guides and Pyro models: vmd_pyro.registry)
from vmd_pyro import cli, diagnostic_plots  # noqa: E402
from vmd_pyro.diagnostics import DiagnosticsConfig, diagnose  # noqa: E402
from vmd_pyro.experiment import provenance, resolve_device, write_json  # noqa: E402
from vmd_pyro.tasks.runner import (add_program_arguments, check_checkpoints,  # noqa: E402
                                   check_program_args, obtain_program)
from vmd_pyro.tasks.synthetic import Synthetic  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory")
    Synthetic.add_arguments(p)
    add_program_arguments(p)  # run.py's model, training and checkpoint options
    p.set_defaults(task=Synthetic.name, model=["vmd"])
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
    return p


def check_args(args, parser):
    check_program_args(args, parser)
    Synthetic.check(args, parser)
    if any(not 0.0 < t <= 1.0 for t in args.mask_rates):
        parser.error(f"--mask-rates must lie in (0, 1], got {args.mask_rates}")
    for name in ("examples_per_rate", "population_per_rate", "guide_draws", "chains", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.population_per_rate < 2:
        parser.error("--population-per-rate must be >= 2 (activity is a variance over examples)")
    Synthetic.fill_defaults(args)


def trained_vmd(args, task, device):
    """The VMD to diagnose, trained or loaded as run.py would: ``(program, training record)``."""
    check_checkpoints(args)
    trained = obtain_program(args, "vmd", task, device)
    if args.checkpoint:
        net = trained.program.cfg.net
        if (net.vocab_size, net.seq_len) != (task.data.vocab_size, task.data.seq_len):
            raise ValueError(f"checkpoint {args.checkpoint!r} was trained for vocabulary "
                             f"{net.vocab_size} and length {net.seq_len}, not {args.dataset}")
        return trained.program, {"checkpoint": args.checkpoint, "history": trained.history}
    return trained.program, {"train_config": trained.train_config,
                             "train_seconds": trained.train_seconds,
                             "final_train_loss": trained.history[-1]["train_loss"]}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(args, parser)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    cfg = DiagnosticsConfig(mask_rates=tuple(args.mask_rates),
                            examples_per_rate=args.examples_per_rate,
                            population_per_rate=args.population_per_rate,
                            guide_draws=args.guide_draws, chains=args.chains,
                            warmup=args.warmup, samples=args.samples, seed=args.seed)
    try:
        task = Synthetic(args, device)
        program, training = trained_vmd(args, task, device)
        diag_start = time.perf_counter()
        diagnosis = diagnose(program, task.data, cfg, progress=not args.quiet)
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
