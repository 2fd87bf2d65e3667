#!/usr/bin/env python
"""Speed of the Pyro formulation: ratios of step times measured in one run, interleaved.

Compares, on the same networks and the same batches:

(a) a Pyro training step (fused engine: ``elbo.differentiable_loss`` + AdamW) against a hand-written
    PyTorch step computing the same training objective and gradients (checked to agree before
    timing), for the synthetic MLP network (seq_len 4) and a Sudoku-scale transformer (seq_len
    81, vocab 9);
(b) a VMD training step against an MDM training step (both Pyro; and both hand-written, to separate
    the cost of VMD's extra guide network from Pyro's), with the default small guide encoder and,
    for reference, with a guide as wide and deep as the denoiser;
(c) VMD sampling against MDM sampling at the same number of denoiser calls (NFE); block-by-block
    decoding with the clean blocks' keys and values kept against recomputing the whole
    ``[x ; x]`` every call, for the block transformers of ``experiments/text_results.py`` and
    ``experiments/block_synthetic.py`` (MDM and VMD);
(a') the library's mean-field ELBO (``vmd_pyro.elbo.MeanFieldELBO``) against Pyro's
    ``TraceMeanField_ELBO``, which it replaces (same loss and gradients, fewer densities computed);
(d) step time as the sequence length and the batch grow (Pyro and hand-written);
(e) the achieved GFLOP/s of the MDM and VMD training steps (FLOPs counted by FlopCounterMode)
    against the float32 matmul peak of this machine and thread count, measured interleaved.

Each comparison alternates the two contenders inside every repeat (the machine may be shared and
noisy), and reports the median ratio with its interquartile range over repeats. Writes JSON and a
plot to ``--out`` (default ``runs/bench/``; results/bench/ was made with ``--out results/bench``).

    python benchmarks/bench_speed.py --threads 1
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import pyro
import torch
import torch.nn.functional as F
from pyro.infer import TraceMeanField_ELBO
from torch.distributions import Normal, kl_divergence
from tqdm.auto import tqdm

import models  # noqa: F401 (registers the priors, guides and Pyro models: vmd_pyro.registry)
from vmd_pyro.experiment import provenance, write_json
from vmd_pyro.masking import corrupt
from vmd_pyro.networks import NetConfig
from vmd_pyro.program import ProgramConfig, build_program
from vmd_pyro.sampling import all_masked, generate

NETWORKS = {
    "mlp-synthetic": NetConfig(vocab_size=10, seq_len=4, arch="mlp", hidden=256, layers=2),
    # Sudoku-scale: 81 cells, 9 digits, 6 layers; hidden 128 (not 384) so that one-thread CPU
    # timing with repeats fits in minutes.
    "transformer-sudoku": NetConfig(vocab_size=9, seq_len=81, arch="transformer", hidden=128,
                                    layers=6, heads=4),
}
BATCH = {"mlp-synthetic": 256, "transformer-sudoku": 16}
STEPS = {"mlp-synthetic": 6, "transformer-sudoku": 2}  # timed pairs of steps per repeat
# Scaling sweeps: sequence length at batch 4, batch size at sequence length 81.
SCALING_NET = NetConfig(vocab_size=9, seq_len=64, arch="transformer", hidden=128, layers=2, heads=4)
LATENT_DIM = 8
# Block decoding: (network, sequences, NFE) as in experiments/text_results.py (blocks of 4, one
# call per block) and experiments/block_synthetic.py (quad-d1, blocks of 2, NFE 2).
BLOCK_DECODING = {
    "transformer-block-text": (NetConfig(vocab_size=27, seq_len=32, arch="transformer", hidden=64,
                                         layers=2, heads=4, block_size=4), 64, 8),
    "transformer-block-synthetic": (NetConfig(vocab_size=10, seq_len=4, arch="transformer",
                                              hidden=64, layers=2, heads=4, block_size=2), 5000, 2),
}


# --- the hand-written reference: the same loss as the Pyro model and guide --------------------
def reference_loss(program, batch, beta=1.0) -> torch.Tensor:
    """The training objective J of models/vmd.py + guides/amortized.py (Gaussian prior, Normal
    guide, analytic KL, as ``TraceMeanField_ELBO`` computes it; not a bound for VMD) or MDM's
    NELBO (models/mdm.py), written in plain PyTorch."""
    z, kl = None, 0.0
    if program.has_latent:
        loc, raw_scale = program.guide_net.encoder(batch.x0, batch.masked).chunk(2, dim=-1)
        q = Normal(loc, F.softplus(raw_scale) + 1e-4)
        z = q.rsample()
        kl = beta * kl_divergence(q, Normal(torch.zeros_like(loc), 1.0)).sum(-1)
        kl = kl * batch.latent_used()  # z is left out where no token is scored, as in the model
    logp = program.logits(batch.xt, z).log_softmax(-1)
    token = logp.gather(-1, batch.x0.unsqueeze(-1)).squeeze(-1)
    return (batch.weight * (kl - (token * batch.masked).sum(-1))).sum()


def pyro_loss(program, batch, beta=1.0, elbo=None) -> torch.Tensor:
    return elbo.differentiable_loss(program.model, program.guide, batch, beta)


class Stepper:
    """One optimisation step (zero_grad, loss, backward, global clip, AdamW) with a given loss.
    AdamW is fused by default, as in ``vmd_pyro.training``."""

    def __init__(self, program, loss_fn, batch, optimizer_kwargs=None):
        self.program, self.loss_fn, self.batch = program, loss_fn, batch
        self.optimizer = torch.optim.AdamW(program.parameters(), lr=1e-4,
                                           **(optimizer_kwargs or {"fused": True}))

    def __call__(self):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.program, self.batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.program.parameters(), 1.0)
        self.optimizer.step()


def make_program(net: NetConfig, model: str, seed: int = 0, guide: str = "small"):
    """``guide``: "small" is the library's default guide encoder (ProgramConfig.guide_hidden /
    guide_layers left to their defaults); "full" is as wide and deep as the denoiser; "linear" is
    the small width with no hidden layer (``--guide-layers 0``, MLP only)."""
    pyro.set_rng_seed(seed)
    sizes = {"small": {}, "full": {"guide_hidden": net.hidden, "guide_layers": net.layers},
             "linear": {"guide_layers": 0}}[guide]
    return build_program(ProgramConfig(net=net, model=model, prior="gaussian",
                                       latent_dim=LATENT_DIM, **sizes))


def step_flops(step) -> int:
    """Floating-point operations of one call of ``step``, counted by torch's FlopCounterMode
    (matrix products and attention, forward and backward: the operations that bound a step)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


class Matmul:
    """A float32 ``n x n`` matrix product: the reference for the peak of this machine and thread
    count, timed interleaved with the training step so both see the same load."""

    def __init__(self, n: int = 1024):
        g = torch.Generator().manual_seed(0)
        self.a, self.b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
        self.out, self.flops = torch.empty(n, n), 2 * n ** 3

    def __call__(self):
        torch.mm(self.a, self.b, out=self.out)


def throughput(step, *, repeats: int, steps: int) -> dict:
    """Achieved GFLOP/s of ``step`` and its share of the matmul peak measured in the same run;
    the share is computed per repeat (step and matmul timed in adjacent pairs)."""
    flops, matmul = step_flops(step), Matmul()
    r = compare(step, matmul, repeats=repeats, steps=steps)
    shares = [flops / matmul.flops / ratio for ratio in r["ratios"]]
    return {"step_flops": flops, "step_seconds_median": r["a_seconds_median"],
            "achieved_gflops": flops / r["a_seconds_median"] / 1e9,
            "matmul_peak_gflops": matmul.flops / r["b_seconds_median"] / 1e9,
            "matmul_size": matmul.a.shape[0], "share_of_peak_median": statistics.median(shares),
            "share_of_peak_iqr": iqr(shares), "repeats": repeats, "steps": steps}


def make_batch(net: NetConfig, batch_size: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randint(0, net.vocab_size, (batch_size, net.seq_len), generator=g)
    return corrupt(x0, net.mask_id, generator=g)


def pyro_stepper(program, batch, optimizer_kwargs=None, elbo=None):
    """The library's step; ``elbo`` replaces the one the program asks for."""
    elbo = elbo or program.make_elbo()
    return Stepper(program, lambda p, b: pyro_loss(p, b, elbo=elbo), batch, optimizer_kwargs)


def agreement(program, batch) -> dict:
    """Largest differences between the Pyro and the hand-written loss and gradients, from the
    same random state (the same draw of z)."""
    out = {}
    for name, fn in (("pyro", lambda: pyro_loss(program, batch, 0.7, program.make_elbo())),
                     ("torch", lambda: reference_loss(program, batch, 0.7))):
        program.zero_grad(set_to_none=True)
        torch.manual_seed(123)
        loss = fn()
        loss.backward()
        out[name] = (loss.detach(), [p.grad.clone() for p in program.parameters()])
    (la, ga), (lb, gb) = out["pyro"], out["torch"]
    program.zero_grad(set_to_none=True)
    return {"loss": float(la), "loss_abs_diff": float((la - lb).abs()),
            "grad_max_abs_diff": max(float((a - b).abs().max()) for a, b in zip(ga, gb)),
            "grad_max_abs": max(float(a.abs().max()) for a in ga)}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(a, b, *, repeats: int, steps: int, warmup: int = 2) -> dict:
    """Interleaved timing of ``a`` and ``b``: each repeat runs ``steps`` adjacent pairs (the order
    within a pair alternating), so load from other processes on a shared machine hits both alike.
    Per repeat, ratio = total time of ``a`` / total time of ``b``."""
    for _ in range(warmup):
        a(), b()
    ta, tb, ratios = [], [], []
    for r in range(repeats):
        x = y = 0.0
        for i in range(steps):
            if (r + i) % 2 == 0:
                x += timed(a)
                y += timed(b)
            else:
                y += timed(b)
                x += timed(a)
        ta.append(x / steps)
        tb.append(y / steps)
        ratios.append(x / y)
    return {"ratio_median": statistics.median(ratios), "ratio_iqr": iqr(ratios),
            "ratios": ratios, "a_seconds_median": statistics.median(ta),
            "b_seconds_median": statistics.median(tb), "repeats": repeats, "steps": steps}


def iqr(values) -> list[float]:
    q = statistics.quantiles(values, n=4, method="inclusive")
    return [q[0], q[2]]


def line(name, result, target=None) -> str:
    lo, hi = result["ratio_iqr"]
    s = (f"{name:58s} {result['ratio_median']:.3f}  (IQR {lo:.3f}-{hi:.3f}; "
         f"{result['a_seconds_median'] * 1e3:.1f} ms vs {result['b_seconds_median'] * 1e3:.1f} ms)")
    if target is not None:
        s += f"  target <= {target}: {'met' if result['ratio_median'] <= target else 'MISSED'}"
    return s


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats per comparison")
    p.add_argument("--quick", action="store_true", help="fewer repeats and sizes (smoke run)")
    p.add_argument("--out", default="runs/bench", help="output folder")
    args = p.parse_args(argv)
    if args.repeats < 2:
        p.error("--repeats must be >= 2 (the spread needs several)")
    torch.set_num_threads(args.threads)
    pyro.enable_validation(False)  # as in training (validation is for tests)
    repeats = 3 if args.quick else args.repeats
    wall = time.perf_counter()
    results = {"networks": {k: {**vars(v), "batch_size": BATCH[k]} for k, v in NETWORKS.items()},
               "block_decoding": {k: {**vars(net), "sequences": num, "nfe": nfe}
                                  for k, (net, num, nfe) in BLOCK_DECODING.items()},
               "latent": {"prior": "gaussian", "guide": "normal", "latent_dim": LATENT_DIM},
               "step": "zero_grad + loss + backward + global-norm clip + AdamW step",
               "comparisons": {}, "throughput": {}, "scaling": {}}
    comps = results["comparisons"]
    report = []
    targets = {"mlp-synthetic": 1.30, "transformer-sudoku": 1.10}

    for name, net in NETWORKS.items():
        steps = STEPS[name]
        batch = make_batch(net, BATCH[name])
        vmd, mdm = make_program(net, "vmd"), make_program(net, "mdm")
        results["networks"][name]["parameters"] = {"vmd": vmd.num_parameters(),
                                                   "mdm": mdm.num_parameters()}
        results["networks"][name]["guide"] = {"hidden": vmd.cfg.guide_hidden,
                                              "layers": vmd.cfg.guide_layers}
        results["networks"][name]["agreement"] = checks = {"vmd": agreement(vmd, batch),
                                                           "mdm": agreement(mdm, batch)}
        for model, c in checks.items():  # timing two different computations would mean nothing
            if (c["loss_abs_diff"] > 1e-5 * abs(c["loss"])
                    or c["grad_max_abs_diff"] > 1e-5 * c["grad_max_abs"]):
                raise SystemExit(f"error: hand-written {model} loss disagrees with Pyro's: {c}")
        key = f"{name}: pyro/torch training step (vmd)"
        comps[key] = compare(pyro_stepper(vmd, batch), Stepper(vmd, reference_loss, batch),
                             repeats=repeats, steps=steps)
        report.append(line(key, comps[key], targets[name]))
        key = f"{name}: MeanFieldELBO/Pyro's TraceMeanField_ELBO training step (vmd)"
        comps[key] = compare(pyro_stepper(vmd, batch),
                             pyro_stepper(vmd, batch, elbo=TraceMeanField_ELBO()),
                             repeats=repeats, steps=steps)
        report.append(line(key, comps[key]))
        key = f"{name}: pyro/torch training step (mdm)"
        comps[key] = compare(pyro_stepper(mdm, batch), Stepper(mdm, reference_loss, batch),
                             repeats=repeats, steps=steps)
        report.append(line(key, comps[key], targets[name]))
        key = f"{name}: vmd/mdm training step (pyro)"
        comps[key] = compare(pyro_stepper(vmd, batch), pyro_stepper(mdm, batch),
                             repeats=repeats, steps=steps)
        report.append(line(key, comps[key], 1.3))
        key = f"{name}: vmd with a full-size guide/mdm training step (pyro)"
        full = make_program(net, "vmd", guide="full")
        comps[key] = compare(pyro_stepper(full, batch), pyro_stepper(mdm, batch),
                             repeats=repeats, steps=steps)
        report.append(line(key, comps[key]))
        key = f"{name}: vmd/mdm training step (hand-written torch)"
        comps[key] = compare(Stepper(vmd, reference_loss, batch), Stepper(mdm, reference_loss, batch),
                             repeats=repeats, steps=steps)
        report.append(line(key, comps[key]))
        num, nfe = (1024, 2) if net.arch == "mlp" else (8, 8)
        x = all_masked(num, net.seq_len, net.mask_id)
        key = f"{name}: vmd/mdm sampling, {num} sequences, nfe {nfe}"
        comps[key] = compare(lambda: generate(vmd, x, nfe=nfe, generator=torch.Generator()),
                             lambda: generate(mdm, x, nfe=nfe, generator=torch.Generator()),
                             repeats=repeats, steps=steps)
        report.append(line(key, comps[key], 1.05))
        for model, program in (("mdm", mdm), ("vmd", vmd)):
            key = f"{name}: {model} training step"
            t = results["throughput"][key] = throughput(pyro_stepper(program, batch),
                                                        repeats=repeats, steps=steps)
            report.append(f"{key:58s} {t['achieved_gflops']:.1f} GFLOP/s = "
                          f"{100 * t['share_of_peak_median']:.0f}% of the {t['matmul_peak_gflops']:.1f}"
                          f" GFLOP/s matmul peak (IQR {100 * t['share_of_peak_iqr'][0]:.0f}-"
                          f"{100 * t['share_of_peak_iqr'][1]:.0f}%)")
        print("\n".join(report[-9:]), flush=True)

    for name, (net, num, nfe) in BLOCK_DECODING.items():
        x = all_masked(num, net.seq_len, net.mask_id)
        for model in ("mdm", "vmd"):
            program = make_program(net, model)
            key = f"{name}: cached/uncached block decoding ({model}), {num} sequences, nfe {nfe}"
            comps[key] = compare(
                lambda: generate(program, x, nfe=nfe, generator=torch.Generator(), cache=True),
                lambda: generate(program, x, nfe=nfe, generator=torch.Generator(), cache=False),
                repeats=repeats, steps=2)
            report.append(line(key, comps[key]))
        print("\n".join(report[-2:]), flush=True)

    lengths = [64, 256, 1024] if args.quick else [64, 128, 256, 512, 1024]
    batches = [8, 32] if args.quick else [4, 8, 16, 32, 64]
    sweeps = [("seq_len", lengths, lambda v: (replace(SCALING_NET, seq_len=v), 4)),
              ("batch_size", batches, lambda v: (replace(SCALING_NET, seq_len=81), v))]
    results["scaling"]["network"] = vars(SCALING_NET)
    for axis, values, setup in sweeps:
        rows = []
        for v in tqdm(values, desc=f"scaling {axis}", leave=False):
            net, batch_size = setup(v)
            batch, vmd = make_batch(net, batch_size), make_program(net, "vmd")
            r = compare(pyro_stepper(vmd, batch), Stepper(vmd, reference_loss, batch),
                        repeats=3, steps=1, warmup=1)
            rows.append({axis: v, "seq_len": net.seq_len, "batch_size": batch_size,
                         "pyro_seconds": r["a_seconds_median"],
                         "torch_seconds": r["b_seconds_median"],
                         "ratio_median": r["ratio_median"], "ratio_iqr": r["ratio_iqr"]})
            print(f"scaling {axis}={v}: pyro {rows[-1]['pyro_seconds'] * 1e3:.1f} ms, torch "
                  f"{rows[-1]['torch_seconds'] * 1e3:.1f} ms, ratio {r['ratio_median']:.3f}",
                  flush=True)
        results["scaling"][axis] = rows

    results.update(provenance(0), wall_seconds=time.perf_counter() - wall,
                   targets={"pyro/torch mlp": 1.30, "pyro/torch transformer": 1.10,
                            "vmd/mdm training": 1.3, "vmd/mdm sampling": 1.05})
    out = Path(args.out)
    write_json(out / "speed.json", results)
    plot(results, out / "speed.png")
    print("\nratios (median over interleaved repeats, IQR in brackets):")
    print("\n".join(report))
    print(f"wrote {out / 'speed.json'} and {out / 'speed.png'} "
          f"({results['wall_seconds']:.0f} s)")
    return 0


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, axis in zip(axes, ("seq_len", "batch_size")):
        rows = results["scaling"][axis]
        xs = [r[axis] for r in rows]
        ax.loglog(xs, [r["pyro_seconds"] for r in rows], "o-", label="Pyro (fused engine)")
        ax.loglog(xs, [r["torch_seconds"] for r in rows], "s--", label="hand-written PyTorch")
        for x, r in zip(xs, rows):
            ax.annotate(f"{r['ratio_median']:.2f}", (x, r["pyro_seconds"]),
                        textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
        ax.set_xlabel(axis.replace("_", " ") + (" (batch 4)" if axis == "seq_len" else
                                                " (sequence length 81)"))
        ax.set_ylabel("seconds per VMD training step")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    net = results["scaling"]["network"]
    fig.suptitle(f"VMD step time, transformer hidden {net['hidden']} x {net['layers']} layers, "
                 f"{results['threads']} thread(s); labels: Pyro/PyTorch ratio")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
