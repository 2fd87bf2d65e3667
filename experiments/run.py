#!/usr/bin/env python
"""Train and evaluate MDM / VMD models: the entry point of vmd-pyro.

With no arguments it runs a small default comparison (MDM against VMD with a Gaussian prior on the
4-token set quad-d1, decoded in 1 and 2 steps) that finishes in a few minutes on 2 CPU cores:

    python experiments/run.py
    python experiments/run.py --prior mog
    python experiments/run.py --dataset pair-p --p 0.7 --model vmd --nfe 1 --out results/x.json
    python experiments/run.py --dataset quad-d1 --arch transformer --block-size 2 --nfe 2 4
    python experiments/run.py --task text --arch transformer --block-size 4 --model mdm vmd

Block diffusion (``--block-size L'``): autoregressive over blocks, masked diffusion inside a block,
one latent per block; ``--nfe`` counts network calls for the whole sequence, split evenly over the
blocks (at least one per block).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from models import PRIORS  # noqa: E402
from vmd_pyro import metrics  # noqa: E402
from vmd_pyro.blocks import calls_used, nfe_per_block  # noqa: E402
from vmd_pyro.checkpoint import load_program, save_checkpoint  # noqa: E402
from vmd_pyro.datasets import synthetic, text  # noqa: E402
from vmd_pyro.experiment import markdown_table, provenance, resolve_device, write_json  # noqa: E402
from vmd_pyro.networks import NetConfig  # noqa: E402
from vmd_pyro.program import ELBOS, ProgramConfig, build_program  # noqa: E402
from vmd_pyro.sampling import FILLS, ORDERS, Z_STRATEGIES, all_masked, generate  # noqa: E402
from vmd_pyro.training import NonFiniteLoss, TrainConfig, train  # noqa: E402



def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("task")
    g.add_argument("--task", default="synthetic", choices=sorted(RUNNERS),
                   help="which experiment family (default synthetic)")
    g.add_argument("--dataset", default="quad-d1",
                   help=f"synthetic data set: {', '.join(synthetic.NAMES)} (default quad-d1)")
    g.add_argument("--p", type=float, default=0.5,
                   help="dependency strength of pair-p: P(x2 = x1 + 1) beyond chance (default 0.5)")

    g = p.add_argument_group("text (--task text)")
    g.add_argument("--corpus", default="offline", choices=text.SOURCES,
                   help="offline: built from the Python standard library's docstrings and comments; "
                        f"text8: the real file (--data-path; from {text.TEXT8_URL})")
    g.add_argument("--data-path", default=None, help="path to text8 or text8.zip")
    g.add_argument("--seq-len", type=int, default=256, help="characters per sequence (default 256)")
    g.add_argument("--corpus-chars", type=int, default=None,
                   help="use only the first N characters of the offline corpus")
    g.add_argument("--eval-batches", type=int, default=20,
                   help="validation batches for bits per character (default 20)")
    g.add_argument("--show-samples", type=int, default=3, help="samples printed per NFE (text)")

    g = p.add_argument_group("model")
    g.add_argument("--model", nargs="+", default=["mdm", "vmd"], choices=["mdm", "vmd"],
                   help="one or more models to train and compare (default: mdm vmd)")
    g.add_argument("--prior", default="gaussian",
                   help=f"latent prior for vmd: {', '.join(sorted(PRIORS))} (default gaussian)")
    g.add_argument("--guide", default=None, help="guide family (default: the prior's own)")
    g.add_argument("--elbo", default=None, choices=sorted(ELBOS),
                   help="ELBO estimator (default: the prior's own: analytic KL where possible)")
    g.add_argument("--latent-dim", type=int, default=8, help="dimension of z (default 8)")
    g.add_argument("--components", type=int, default=10,
                   help="K: mixture components (mog) or values of z (discrete) (default 10)")
    g.add_argument("--arch", default="mlp", choices=["mlp", "transformer"], help="denoiser network")
    g.add_argument("--hidden", type=int, default=256, help="hidden width (default 256)")
    g.add_argument("--layers", type=int, default=2, help="hidden layers (default 2)")
    g.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    g.add_argument("--block-size", type=int, default=0,
                   help="block diffusion with blocks of this many tokens (needs --arch transformer;"
                        " default 0 = no blocks; the sequence length = one block)")

    g = p.add_argument_group("training")
    g.add_argument("--steps", type=int, default=3000, help="optimisation steps (default 3000)")
    g.add_argument("--batch-size", type=int, default=256)
    g.add_argument("--lr", type=float, default=2e-3)
    g.add_argument("--clip-norm", type=float, default=1.0, help="gradient norm clip (0 = off)")
    g.add_argument("--anneal-steps", type=int, default=None,
                   help="KL annealing length, beta 0 -> 1 (default: a fifth of --steps)")
    g.add_argument("--engine", default="fused", choices=["fused", "svi"],
                   help="fused: one AdamW over elbo.differentiable_loss; svi: pyro.infer.SVI")
    g.add_argument("--eval-every", type=int, default=1000, help="evaluate the NELBO every N steps")
    g.add_argument("--time-budget", type=float, default=0.0,
                   help="stop training after this many seconds (equal-time comparisons; 0 = off)")
    g.add_argument("--no-validate", action="store_true",
                   help="turn Pyro's validation off (faster; tests keep it on)")

    g = p.add_argument_group("sampling and evaluation")
    g.add_argument("--nfe", nargs="+", type=int, default=None,
                   help="network calls per generated sequence; several values allowed (default: "
                        "1 2 for synthetic; the sequence length and a quarter of it for text)")
    g.add_argument("--order", default="random", choices=ORDERS, help="which positions to reveal")
    g.add_argument("--fill", default="sample", choices=FILLS,
                   help="sample (float64 Gumbel) or argmax")
    g.add_argument("--z-strategy", default="fixed", choices=Z_STRATEGIES, help="latent per step")
    g.add_argument("--num-samples", type=int, default=None,
                   help="generated sequences per evaluation (default 20000 synthetic, 64 text)")
    g.add_argument("--z-samples", type=int, default=2000,
                   help="prior draws for the exact-over-sequences one-step KL (default 2000)")
    g.add_argument("--iw-samples", type=int, default=16,
                   help="K for the importance-weighted bound (default 16; 0 = skip)")

    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    g.add_argument("--save", default=None,
                   help="save the trained model here (PATH-MODEL.pt when several models are run)")
    g.add_argument("--checkpoint", default=None,
                   help="load a trained model instead of training (PATH-MODEL.pt as for --save)")
    g.add_argument("--out", default=None, help="write results as JSON to this path")
    g.add_argument("--samples-out", default=None,
                   help="write the generated sequences (first NFE) here, one per line")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def check_args(args, parser):
    if args.prior not in PRIORS:
        parser.error(f"unknown prior {args.prior!r}; available: {', '.join(sorted(PRIORS))}")
    if args.nfe is not None and any(n < 1 for n in args.nfe):
        parser.error(f"--nfe must be >= 1, got {args.nfe}")
    if args.num_samples is None:
        args.num_samples = 64 if args.task == "text" else 20000
    if args.block_size < 0:
        parser.error("--block-size must be >= 0")
    if args.block_size and args.arch != "transformer":
        parser.error("--block-size needs the block-causal transformer: add --arch transformer")
    for name in ("steps", "batch_size", "num_samples", "latent_dim", "components", "hidden",
                 "heads", "seq_len", "eval_batches"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.iw_samples < 0:
        parser.error("--iw-samples must be >= 0")
    if not 0.0 <= args.p <= 1.0:
        parser.error(f"--p must lie in [0, 1], got {args.p}")


def program_config(args, model: str, task) -> ProgramConfig:
    if args.block_size and task.seq_len % args.block_size:
        raise ValueError(f"--block-size {args.block_size} does not divide the sequence length "
                         f"{task.seq_len}")
    net = NetConfig(vocab_size=task.vocab_size, seq_len=task.seq_len, arch=args.arch,
                    hidden=args.hidden, layers=args.layers, heads=args.heads,
                    block_size=args.block_size)
    return ProgramConfig(net=net, model=model, prior=args.prior, guide=args.guide,
                         latent_dim=args.latent_dim, components=args.components, elbo=args.elbo)


def train_config(args) -> TrainConfig:
    anneal = args.anneal_steps if args.anneal_steps is not None else args.steps // 5
    return TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                       clip_norm=args.clip_norm, anneal_steps=anneal, eval_every=args.eval_every,
                       seed=args.seed, engine=args.engine, validate=not args.no_validate,
                       progress=not args.quiet, time_budget=args.time_budget)


def evaluate_synthetic(program, task, args, generator) -> list[dict]:
    """Accuracy and KL(p_data || p_model) for each NFE. The KL is exact over sequences for NFE = 1
    (the model distribution of one step is a product given z), and a plug-in estimate from the
    generated samples otherwise."""
    device = next(program.parameters()).device
    results = []
    for nfe in args.nfe:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nfe clamping is reported in the record instead
            samples = generate(program, all_masked(args.num_samples, task.seq_len, program.mask_id,
                                                   device), nfe=nfe, order=args.order,
                               fill=args.fill, z_strategy=args.z_strategy, generator=generator)
        record = {"nfe": nfe, "nfe_used": nfe_used(program, nfe),
                  "accuracy": metrics.accuracy(task, samples),
                  "kl_plugin": metrics.kl_plugin(task, samples), "_samples": samples.cpu()}
        if nfe == 1 and args.fill == "sample" and not program.block_size:
            probs = metrics.one_step_model_probs(program, task, z_samples=args.z_samples,
                                                 generator=generator)
            record["kl"] = metrics.kl_from_probs(task.dense_probs(), probs)
            record["kl_estimator"] = ("exact over sequences" + (
                "" if not program.has_latent else
                ", exact sum over z" if program.prior.support == "discrete" else
                f", Monte Carlo over {args.z_samples} prior draws of z"))
        else:
            record["kl"] = record["kl_plugin"]
            record["kl_estimator"] = (f"plug-in from {args.num_samples} samples, "
                                      "+0.5 pseudo-count per support sequence")
        results.append(record)
    return results


def nfe_used(program, nfe: int) -> int:
    """Network calls decoding from all-mask really makes for a requested ``nfe``."""
    net = program.cfg.net
    if program.block_size:
        return calls_used(nfe, net.num_blocks, net.block_size)
    return min(nfe, net.seq_len)


def checkpoint_path(path: str | None, model: str, models: list[str]) -> str | None:
    if path is None or len(models) == 1:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{model}{p.suffix or '.pt'}"))


def obtain_program(args, model: str, task, device, eval_fn=None):
    """Train a program for ``task`` (or load it with ``--checkpoint``), saving it with ``--save``.
    Returns ``(program, history, train_seconds)``."""
    load = checkpoint_path(args.checkpoint, model, args.model)
    if load:
        program, state = load_program(load, map_location=device)
        if program.cfg.model != model:
            raise ValueError(f"checkpoint {load!r} holds a {program.cfg.model} model, not {model}")
        return program, state.get("history", []), state.get("train_seconds")
    program = build_program(program_config(args, model, task)).to(device)
    start = time.perf_counter()
    history = train(program, task.sample, train_config(args), eval_fn=eval_fn,
                    log=None if args.quiet else lambda r: print(_progress_line(model, r)))
    train_seconds = time.perf_counter() - start
    save = checkpoint_path(args.save, model, args.model)
    if save:
        save_checkpoint(save, program, history=history, train_seconds=train_seconds,
                        train_config=train_config(args).to_dict(), task=args.task,
                        dataset=getattr(task, "name", None))
    return program, history, train_seconds


def run_synthetic(args, device):
    """Train each ``--model`` on a synthetic set; evaluate bounds, accuracy and KL at each NFE."""
    if args.dataset not in synthetic.NAMES:
        raise ValueError(f"unknown dataset {args.dataset!r}; available: {', '.join(synthetic.NAMES)}")
    task = synthetic.make_synthetic(args.dataset, args.p)
    args.nfe = args.nfe or [1, 2]
    limit = task.factorisation_limit()
    runs = []
    for model in args.model:
        generator = torch.Generator(device=device).manual_seed(args.seed + 1)
        bounds = lambda prog: metrics.evaluate_bounds(  # noqa: E731
            prog, task.sample, num_batches=4, iw_samples=0, generator=generator)
        program, history, train_seconds = obtain_program(args, model, task, device, bounds)
        final = metrics.evaluate_bounds(program, task.sample, num_batches=20,
                                        iw_samples=args.iw_samples if program.has_latent else 0,
                                        generator=generator)
        for ev in evaluate_synthetic(program, task, args, generator):
            runs.append({
                **ev, "model": model, "prior": args.prior if program.has_latent else None,
                "dataset": args.dataset, "p": args.p if args.dataset == "pair-p" else None,
                "block_size": args.block_size or task.seq_len,
                "steps": args.steps, **final,
                "factorisation_limit": limit,
                "data_entropy_bits": float(-(task.probs * task.probs.log2()).sum()) / task.seq_len,
                "order": args.order, "fill": args.fill, "z_strategy": args.z_strategy,
                "parameters": program.num_parameters(), "train_seconds": train_seconds,
                "history": history, "config": program.cfg.to_dict(),
                "train_config": train_config(args).to_dict()})
    columns = ["model", "prior", "dataset", "block_size", "nfe", "accuracy", "kl", "nelbo_bits",
               "iw_nelbo_bits"]
    notes = [f"KL floor for one-step factorised decoding (total correlation; I(x1;x2) for pairs): "
             f"{limit:.4f} nats",
             "KL estimators: " + "; ".join(sorted({f"NFE {r['nfe']}: {r['kl_estimator']}"
                                                    for r in runs}))]
    return runs, columns, notes


VMD_BITS_NOTE = ("VMD's NELBO (w(t) on the joint per-block masked-token term and on the KL, DESIGN.md) "
                 "bounds the weighted joint conditional NLL, not -log p(x0) the way the MDM / "
                 "block-diffusion NELBO does: VMD-vs-MDM bits are not a like-for-like likelihood "
                 "comparison")


def run_text(args, device):
    """Character-level language modelling: bits per character and the perplexity bound on the
    validation split (NELBO and importance-weighted), and generation at each NFE with the sample
    character entropy and word validity beside each other."""
    task = text.make_text(args.corpus, data_path=args.data_path, seq_len=args.seq_len,
                          max_chars=args.corpus_chars).to(device)
    args.nfe = args.nfe or [task.seq_len, max(1, task.seq_len // 4)]
    vocabulary = set(text.decode(task.train[:10_000_000]).split(" "))
    valid_entropy = text.char_entropy_bits(task.valid)
    runs, shown = [], []
    for model in args.model:
        generator = torch.Generator(device=device).manual_seed(args.seed + 1)
        bounds = lambda prog: metrics.evaluate_bounds(  # noqa: E731
            prog, task.sample_valid, num_batches=2, batch_size=args.batch_size, iw_samples=0,
            generator=generator)
        program, history, train_seconds = obtain_program(args, model, task, device, bounds)
        final = metrics.evaluate_bounds(
            program, task.sample_valid, num_batches=args.eval_batches, batch_size=args.batch_size,
            iw_samples=args.iw_samples if program.has_latent else 0, generator=generator)
        bits = {"bits_per_char": final["nelbo_bits"], "ppl_bound": 2 ** final["nelbo_bits"]}
        if "iw_nelbo_bits" in final:
            bits.update(iw_bits_per_char=final["iw_nelbo_bits"],
                        iw_ppl_bound=2 ** final["iw_nelbo_bits"])
        else:  # no latent: the NELBO is its own importance-weighted bound
            bits.update(iw_bits_per_char=bits["bits_per_char"], iw_ppl_bound=bits["ppl_bound"])
        net = program.cfg.net
        for nfe in args.nfe:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                samples = generate(program, all_masked(args.num_samples, task.seq_len,
                                                       program.mask_id, device),
                                   nfe=nfe, order=args.order, fill=args.fill,
                                   z_strategy=args.z_strategy, generator=generator).cpu()
            texts = [text.decode(row) for row in samples.tolist()]
            shown.append((model, nfe, texts[:args.show_samples]))
            runs.append({
                "model": model, "prior": args.prior if program.has_latent else None,
                "corpus": args.corpus, "block_size": args.block_size or task.seq_len,
                "seq_len": task.seq_len, "nfe": nfe, "nfe_used": nfe_used(program, nfe),
                "steps_done": history[-1]["step"] if history else None,
                "nfe_per_block": (nfe_per_block(max(nfe, net.num_blocks), net.num_blocks)[0]
                                  if program.block_size else nfe),
                **bits, **final, "sample_char_entropy_bits": text.char_entropy_bits(samples),
                "valid_char_entropy_bits": valid_entropy,
                "word_validity": text.word_validity(samples, vocabulary),
                "samples": texts[:8], "steps": args.steps, "corpus_info": task.info,
                "order": args.order, "fill": args.fill, "z_strategy": args.z_strategy,
                "parameters": program.num_parameters(), "train_seconds": train_seconds,
                "history": history, "config": program.cfg.to_dict(),
                "train_config": train_config(args).to_dict()})
    columns = ["model", "prior", "block_size", "nfe", "bits_per_char", "ppl_bound",
               "iw_bits_per_char", "iw_ppl_bound", "sample_char_entropy_bits", "word_validity"]
    notes = [f"corpus {args.corpus}: {task.info['train_chars']:,} training / "
             f"{task.info['valid_chars']:,} validation characters; validation character entropy "
             f"{valid_entropy:.3f} bits; word validity = share of generated words seen in training"]
    if any(r["prior"] for r in runs):
        notes.append(VMD_BITS_NOTE)
    for model, nfe, texts in shown:
        notes += [f"samples [{model}] NFE {nfe}:"] + [f"  |{t}|" for t in texts]
    return runs, columns, notes


RUNNERS = {"synthetic": run_synthetic, "text": run_text}


def _progress_line(model, record) -> str:
    parts = [f"[{model}] step {record['step']}", f"train loss {record['train_loss']:.3f} nats"]
    if "nelbo_bits" in record:
        parts.append(f"eval NELBO {record['nelbo_bits']:.4f} bits/token")
    return ", ".join(parts)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(args, parser)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    try:
        runs, columns, notes = RUNNERS[args.task](args, device)
    except (ValueError, NonFiniteLoss) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - start
    samples = [r.pop("_samples", None) for r in runs]
    meta = provenance(args.seed)
    for r in runs:
        r.update(wall_seconds=wall, **meta)

    print()
    print(markdown_table(runs, columns))
    for note in notes:
        print(note)
    print(f"wall time {wall:.1f} s, seed {args.seed}, commit {meta['git_commit']}")
    if args.out:
        write_json(args.out, runs[0] if len(runs) == 1 else {"runs": runs, **meta,
                                                              "wall_seconds": wall})
        print(f"wrote {args.out}")
    if args.samples_out and samples[0] is not None:
        Path(args.samples_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.samples_out).write_text(
            "".join(" ".join(map(str, row)) + "\n" for row in samples[0].tolist()))
        print(f"wrote {args.samples_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
