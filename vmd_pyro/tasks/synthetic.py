"""``--task synthetic``: the small sets with a known distribution (quad-d1, pair-p, ...), scored by
accuracy, KL(p_data || p_model) at each NFE and fill, and the likelihood bounds over the support."""
from __future__ import annotations

import warnings

import torch

from vmd_pyro import metrics
from vmd_pyro.datasets import synthetic
from vmd_pyro.sampling import all_masked, generate, several_decodes
from vmd_pyro.tasks.base import Task, attach_bounds, model_record, register_task


@register_task
class Synthetic(Task):
    name = "synthetic"
    columns = ["model", "prior", "dataset", "block_size", "nfe", "fill", "accuracy", "kl",
               "nll_bound_bits", "iw_nll_bound_bits", "nelbo_bits", "objective_bits"]
    several_fills = True

    @staticmethod
    def add_arguments(parser):
        g = parser.add_argument_group("synthetic (--task synthetic)")
        g.add_argument("--dataset", default="quad-d1",
                       help=f"synthetic data set: {', '.join(synthetic.NAMES)} (default quad-d1)")
        g.add_argument("--p", type=float, default=0.5,
                       help="dependency strength of pair-p: P(x2 = x1 + 1) beyond chance "
                            "(default 0.5)")

    @classmethod
    def defaults(cls, args) -> dict:
        return {"arch": "mlp", "hidden": 128, "layers": 2, "heads": 4, "structure": "none",
                "nfe": [1, 2], "order": ["random"], "fill": ["sample", "argmax"],
                "num_samples": 20000, "bound_orders": 32, "bound_sequences": 1,
                "bound_iw_samples": 512}

    @classmethod
    def check(cls, args, parser):
        if not 0.0 <= args.p <= 1.0:
            parser.error(f"--p must lie in [0, 1], got {args.p}")

    @classmethod
    def maskable(cls, args) -> int:
        return 2 if args.dataset.startswith("pair") else 4

    def __init__(self, args, device):
        super().__init__(args, device)
        if args.dataset not in synthetic.NAMES:
            raise ValueError(f"unknown dataset {args.dataset!r}; available: "
                             f"{', '.join(synthetic.NAMES)}")
        self.data = synthetic.make_synthetic(args.dataset, args.p)
        probs = self.data.probs
        self.limit = self.data.factorisation_limit()
        self.entropy = float(-(probs * probs.log2()).sum()) / self.data.seq_len

    @property
    def run_info(self) -> dict:
        return {**super().run_info, "p": self.args.p if self.args.dataset == "pair-p" else None}

    def training(self, model):
        monitor = torch.Generator(device=self.device).manual_seed(self.args.seed + 1)
        return self.data.sample, lambda program: metrics.evaluate_bounds(
            program, self.data.sample, num_batches=4, iw_samples=0, generator=monitor)

    def evaluate(self, model, trained) -> list[dict]:
        args, data, program = self.args, self.data, trained.program
        final = metrics.evaluate_bounds(program, data.sample, num_batches=20,
                                        iw_samples=args.iw_samples if program.has_latent else 0,
                                        generator=self.evaluation_generator())
        support = data.sequences.to(self.device)
        found = self.likelihood_bounds(program, support, torch.ones_like(support, dtype=torch.bool),
                                       weights=data.probs)
        rows = [{**ev, **model_record(model, trained), "dataset": args.dataset,
                 "p": args.p if args.dataset == "pair-p" else None, **final,
                 "factorisation_limit": self.limit, "data_entropy_bits": self.entropy,
                 "order": args.order[0], **self.decoding()}
                for ev in self.generations(program)]
        attach_bounds(rows, found)
        return rows

    def generations(self, program) -> list[dict]:
        """Accuracy and KL(p_data || p_model) for each NFE and fill, each from its own fresh
        stream. For NFE = 1 with sampled tokens and one decode per sequence the KL is exact over
        sequences (given z, one step is a product distribution); otherwise (also when one of several
        candidates is kept) it is a plug-in estimate from the generated samples."""
        args, data = self.args, self.data
        results = []
        for fill in args.fill:
            for nfe in args.nfe:
                generator = self.evaluation_generator()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # nfe clamping is recorded as nfe_used instead
                    x = all_masked(args.num_samples, data.seq_len, program.mask_id, self.device)
                    samples, used = generate(program, x, nfe=nfe, order=args.order[0], fill=fill,
                                             generator=generator, **self.decoding())
                record = {"nfe": nfe, "nfe_used": used, "fill": fill,
                          "accuracy": metrics.accuracy(data, samples),
                          "kl_plugin": metrics.kl_plugin(data, samples), "_samples": samples.cpu()}
                # the exact KL is the plain one-step generator's at temperature 1; a kept
                # candidate or a tempered draw is not a draw of it
                if nfe == 1 and fill == "sample" and not program.block_size \
                        and args.temperature == 1 \
                        and not several_decodes(program, args.z_strategy, args.candidates):
                    probs = metrics.one_step_model_probs(program, data, z_samples=args.z_samples,
                                                         generator=generator)
                    record["kl"] = metrics.kl_from_probs(data.dense_probs(), probs)
                    record["kl_estimator"] = "exact over sequences" + (
                        "" if not program.has_latent else
                        ", exact sum over z" if program.prior.support == "discrete" else
                        f", Monte Carlo over {args.z_samples} prior draws of z")
                else:
                    record["kl"] = record["kl_plugin"]
                    record["kl_estimator"] = (f"plug-in from {args.num_samples} samples, "
                                              "+0.5 pseudo-count per support sequence")
                results.append(record)
        return results

    def notes(self, runs):
        return [f"KL floor for one-step factorised decoding (total correlation; I(x1;x2) for "
                f"pairs): {self.limit:.4f} nats",
                "KL estimators: " + "; ".join(sorted(
                    {f"NFE {r['nfe']} {r['fill']}: {r['kl_estimator']}" for r in runs})),
                f"data entropy {self.entropy:.4f} bits/token: the floor of every likelihood bound. "
                "nll_bound_bits: B_T of the T-call sampler, row's NFE (generator in the JSON's "
                "bound_generator); nelbo_bits: MDM's continuous-time NELBO; objective_bits: VMD's "
                "training objective J, not a bound (it can fall below the entropy)"]
