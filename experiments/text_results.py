#!/usr/bin/env python
"""Character-level language modelling on the offline corpus at equal CPU budget: block diffusion
without a latent (block MDM) against block VMD with the independent Gaussian prior and with the
prior conditioned on the earlier blocks, at block sizes 4 and 8.

    python experiments/text_results.py --out-dir runs/text              # 6 runs, one at a time
    python experiments/text_results.py --out-dir runs/text --jobs 6     # with 6 free cores
    python experiments/text_results.py --out-dir runs/text --aggregate-only

Every run trains for the same number of steps of the same batch (``--steps``; or, with
``--time-budget``, for the same wall time, which on a shared machine is not the same CPU), one
thread, and is decoded with one
call per block and with one call per position (NFE per block 1 and L'). Bits per character and the
perplexity bound come from the few-step bound B_T of that decoder (validation crops; random order
inside a block, z resampled per step, sampled tokens), so block diffusion and block VMD are
compared like for like at each NFE. The continuous-time NELBO of block diffusion and the training
objective J of block VMD (not a bound) are reported beside them.
Outputs: ``OUT/runs/*.json``, ``OUT/summary.json``, ``OUT/table.md``, ``OUT/samples.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vmd_pyro import cli
from vmd_pyro.datasets import text
from vmd_pyro.experiment import provenance, result_runs, run_commands, write_json

MODELS = {"bd": ["--model", "mdm"], "vmd-gaussian": ["--model", "vmd", "--prior", "gaussian"],
          "vmd-block-conditional": ["--model", "vmd", "--prior", "block-conditional"],
          "vmd-mog": ["--model", "vmd", "--prior", "mog", "--components", "16"],
          "vmd-block-mog": ["--model", "vmd", "--prior", "block-mog", "--components", "16"]}
LABELS = {"bd": "block diffusion (no latent)", "vmd-gaussian": "block VMD, N(0, I) prior",
          "vmd-block-conditional": "block VMD, block-conditional prior",
          "vmd-mog": "block VMD, mixture prior (K = 16)",
          "vmd-block-mog": "block VMD, mixture prior with weights from the earlier blocks (K = 16)"}
PUBLISHED = {4: "text8, seq 256: BD 2.873, VMD 2.858", 8: "text8, seq 256: BD 3.126, VMD 3.125"}


def build_parser():
    p = cli.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--block-sizes", nargs="+", type=int, default=[4, 8])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--steps", type=int, default=800, help="training steps per run (default 800)")
    p.add_argument("--time-budget", type=float, default=0.0,
                   help="instead of --steps: training seconds per run (0 = off, the default)")
    p.add_argument("--objective", default="joint", choices=["joint", "steps"],
                   help="joint: J (VMD) / the NELBO (block diffusion); steps: every model trains "
                        "the bound of one call per block (default joint)")
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--hidden", type=int, default=64,
                   help="width of every network (default 64); e.g. a wider block diffusion to "
                        "match block VMD's parameter count (see also --prior-hidden)")
    p.add_argument("--prior-hidden", type=int, default=None,
                   help="width of block VMD's learned prior network (block-mog, block-conditional;"
                        " default --hidden): a narrow one keeps block VMD near block diffusion's "
                        "parameter count")
    p.add_argument("--prior-layers", type=int, default=None,
                   help="transformer layers of that prior network (default 2, as the denoiser)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (one thread each)")
    p.add_argument("--out-dir", required=True, help="output folder (e.g. runs/text)")
    p.add_argument("--aggregate-only", action="store_true")
    return p


def command(block_size, model, args, out):
    return [sys.executable, "experiments/run.py", "--task", "text", "--corpus", "offline",
            "--threads", "1", "--quiet", "--no-validate", "--arch", "transformer",
            "--hidden", str(args.hidden), "--layers", "2", "--heads", "4", "--latent-dim", "8",
            "--seq-len", str(args.seq_len),
            "--block-size", str(block_size), "--batch-size", "32", "--lr", "2e-3",
            "--steps", str(10 ** 9 if args.time_budget else args.steps), "--anneal-steps", "300",
            "--eval-every", "0", "--time-budget", str(args.time_budget), "--iw-samples", "8", "--num-samples", "64",
            "--eval-batches", "20", "--seed", str(args.seed), "--out", str(out),
            "--nfe", str(args.seq_len), str(args.seq_len // block_size),
            "--bound-sequences", "128", "--bound-iw-samples", "32", "--objective", args.objective,
            *(["--train-nfe", "1"] if args.objective == "steps" else []), *MODELS[model],
            *(["--prior-hidden", str(args.prior_hidden)] if args.prior_hidden else []),
            *(["--prior-layers", str(args.prior_layers)] if args.prior_layers else [])]


def aggregate(out_dir: Path):
    rows, samples = [], []
    for path in sorted((out_dir / "runs").glob("*.json")):
        data = json.loads(path.read_text())
        runs = result_runs(data)
        name = path.stem.split("-", 1)[1]
        for r in runs:
            rows.append({"name": name, "label": LABELS[name], **{k: r[k] for k in (
                "block_size", "seq_len", "nfe", "nfe_per_block", "bits_per_char", "ppl_bound",
                "iw_bits_per_char", "iw_ppl_bound", "bound_generator", "sample_char_entropy_bits",
                "valid_char_entropy_bits", "word_validity", "steps_done", "train_seconds",
                "parameters", "corpus_info", "git_commit", "command")},
                         "training_objective": r.get("nelbo_bits", r.get("objective_bits")),
                         "training_objective_name": "NELBO" if "nelbo_bits" in r else "J"})
            samples.append((r["block_size"], LABELS[name], r["nfe"], r["nfe_per_block"],
                            r["samples"][:3]))
    rows.sort(key=lambda r: (r["block_size"], list(LABELS).index(r["name"]), -r["nfe"]))
    lines = ["| block size | model | parameters | NFE per block | B_T bits/char | PPL bound | "
             "IW bits/char | IW PPL bound | NELBO / J bits/char | train steps (s) | "
             "sample char entropy (bits) | word validity |", "|" + "---|" * 12]
    for r in rows:
        lines.append(f"| {r['block_size']} | {r['label']} | {r['parameters']:,} | "
                     f"{r['nfe_per_block']} | "
                     f"{r['bits_per_char']:.3f} | {r['ppl_bound']:.3f} | "
                     f"{r['iw_bits_per_char']:.3f} | {r['iw_ppl_bound']:.3f} | "
                     f"{r['training_objective_name']} {r['training_objective']:.3f} | "
                     f"{r['steps_done']} ({r['train_seconds']:.0f}) | "
                     f"{r['sample_char_entropy_bits']:.3f} | {r['word_validity']:.3f} |")
    sample_lines = []
    for block_size, label, nfe, per_block, texts in sorted(samples, key=lambda s: (s[0], s[1], -s[2])):
        sample_lines.append(f"**block {block_size}, {label}, NFE {nfe} ({per_block} per block)**\n")
        sample_lines += [f"    |{t}|" for t in texts] + [""]
    return rows, "\n".join(lines), "\n".join(sample_lines)


def main(argv=None):
    args = build_parser().parse_args(argv)
    out_dir = Path(args.out_dir)
    start = time.perf_counter()
    if not args.aggregate_only:
        text.offline_corpus()  # build the cached corpus once, before parallel runs read it
        jobs = [(b, m) for b in args.block_sizes for m in args.models]
        outs = [out_dir / "runs" / f"bs{b}-{m}.json" for b, m in jobs]
        codes = run_commands([command(b, m, args, o) for (b, m), o in zip(jobs, outs)],
                             [out_dir / "logs" / f"{o.stem}.log" for o in outs], args.jobs)
    rows, table, samples = aggregate(out_dir)
    info = rows[0]["corpus_info"] if rows else {}
    notes = [
        f"Offline corpus ({info.get('source')}): {info.get('train_chars', 0):,} training / "
        f"{info.get('valid_chars', 0):,} validation characters, sha256 {info.get('sha256')}.",
        f"Sequence length {rows[0]['seq_len'] if rows else args.seq_len} (CPU setting; the published "
        f"text8 setting is 256), block-causal transformer hidden {args.hidden}, 2 layers, 4 heads, "
        "batch 32, "
        "the same training steps per run on one thread (train steps (s): steps and seconds); "
        + ("objective: every model trains the bound of one call per block (--objective steps "
           "--train-nfe 1)." if args.objective == "steps" else
           "objective: J for block VMD, the NELBO for block diffusion."),
        "B_T bits per character and PPL bound (2**bits): the few-step bound of the row's decoder "
        "(NFE per block; random order inside a block, z resampled per step, sampled tokens) on "
        "128 validation crops; IW: its importance-weighted form (K = 32, half guide and half "
        "prior draws). NELBO / J: block diffusion's continuous-time NELBO (a bound) or block "
        "VMD's training objective J (not a bound). Word validity: share of generated complete "
        "words seen in the training split.",
        "Published text8 anchors (per-char PPL bound, seq 256, large models): "
        + "; ".join(f"block {b}: {v}" for b, v in PUBLISHED.items()) + "."]
    meta = provenance(args.seed)
    write_json(out_dir / "summary.json", {"rows": rows, "notes": notes, **meta,
                                          "wall_seconds": time.perf_counter() - start})
    (out_dir / "table.md").write_text(table + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    (out_dir / "samples.md").write_text(samples + "\n")
    print(table)
    print("\n".join(notes))
    if not args.aggregate_only and any(codes):  # the summary above holds the runs that finished
        cli.fail(f"some runs failed (exit codes {codes}); see {out_dir / 'logs'}")


if __name__ == "__main__":
    main()
