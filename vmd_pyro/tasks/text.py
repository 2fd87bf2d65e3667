"""``--task text``: character-level language modelling. Bits per character and the perplexity bound
on the validation split (the few-step bound B_T at each NFE), and generation at each NFE with the
sample character entropy and word validity beside each other."""
from __future__ import annotations

import warnings

import torch

from vmd_pyro import metrics
from vmd_pyro.blocks import nfe_per_block
from vmd_pyro.datasets import text
from vmd_pyro.sampling import all_masked, generate
from vmd_pyro.tasks.base import Task, attach_bounds, model_record, register_task

BITS_NOTE = ("bits_per_char and ppl_bound: the few-step bound B_T at the row's NFE (random order, "
             "sampled tokens, z resampled; generator in the JSON), like for like between MDM and VMD;"
             " nelbo_bits: MDM's continuous-time NELBO; objective_bits: VMD's training objective J, "
             "not a bound")


@register_task
class Text(Task):
    name = "text"
    columns = ["model", "prior", "block_size", "nfe", "bits_per_char", "ppl_bound",
               "iw_bits_per_char", "iw_ppl_bound", "nelbo_bits", "objective_bits",
               "sample_char_entropy_bits", "word_validity"]

    @staticmethod
    def add_arguments(parser):
        g = parser.add_argument_group("text (--task text)")
        g.add_argument("--corpus", default="offline", choices=text.SOURCES,
                       help="offline: built from the Python standard library's docstrings and "
                            f"comments; text8: the real file (--data-path; from {text.TEXT8_URL})")
        g.add_argument("--data-path", default=None, help="path to text8 or text8.zip")
        g.add_argument("--seq-len", type=int, default=256, help="characters per sequence (default 256)")
        g.add_argument("--corpus-chars", type=int, default=None,
                       help="use only the first N characters of the offline corpus")
        g.add_argument("--eval-batches", type=int, default=20,
                       help="validation batches for bits per character (default 20)")
        g.add_argument("--show-samples", type=int, default=3, help="samples printed per NFE (text)")

    @classmethod
    def defaults(cls, args) -> dict:
        return {"arch": "mlp", "hidden": 256, "layers": 2, "heads": 4, "structure": "none",
                "nfe": [args.seq_len, max(1, args.seq_len // 4)], "order": ["random"],
                "fill": ["sample"], "num_samples": 64, "bound_orders": 1, "bound_sequences": 64,
                "bound_iw_samples": 32}

    @classmethod
    def check(cls, args, parser):
        for name in ("seq_len", "eval_batches"):
            if getattr(args, name) < 1:
                parser.error(f"--{name.replace('_', '-')} must be >= 1")

    @classmethod
    def maskable(cls, args) -> int:
        return args.seq_len

    def __init__(self, args, device):
        super().__init__(args, device)
        self.data = text.make_text(args.corpus, data_path=args.data_path, seq_len=args.seq_len,
                                   max_chars=args.corpus_chars).to(device)
        self.vocabulary = set(text.decode(self.data.train[:10_000_000]).split(" "))
        self.valid_entropy = text.char_entropy_bits(self.data.valid)

    def training(self, model):
        monitor = torch.Generator(device=self.device).manual_seed(self.args.seed + 1)
        return self.data.sample, lambda program: metrics.evaluate_bounds(
            program, self.data.sample_valid, num_batches=2, batch_size=self.args.batch_size,
            iw_samples=0, generator=monitor)

    def evaluate(self, model, trained) -> list[dict]:
        args, data, program = self.args, self.data, trained.program
        generator = self.evaluation_generator()
        final = metrics.evaluate_bounds(
            program, data.sample_valid, num_batches=args.eval_batches, batch_size=args.batch_size,
            iw_samples=args.iw_samples if program.has_latent else 0, generator=generator)
        # the bounds' sequences go on from that stream: a fresh one, seeded like the bounds' own,
        # would pick the windows with the very numbers that then draw their orders and tokens
        x0, maskable = data.sample_valid(args.bound_sequences, generator)
        found = self.likelihood_bounds(program, x0, maskable)
        rows = []
        net = program.cfg.net
        for nfe in args.nfe:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nfe clamping is recorded as nfe_used instead
                samples, used = generate(program, all_masked(args.num_samples, data.seq_len,
                                                             program.mask_id, self.device),
                                         nfe=nfe, order=args.order[0], fill=args.fill[0],
                                         generator=self.evaluation_generator(), **self.decoding())
            samples = samples.cpu()
            texts = [text.decode(row) for row in samples.tolist()]
            rows.append({
                **model_record(model, trained), "corpus": args.corpus, "seq_len": data.seq_len,
                "nfe": nfe, "nfe_used": used,
                "steps_done": trained.history[-1]["step"] if trained.history else None,
                "nfe_per_block": (nfe_per_block(max(nfe, net.num_blocks), net.num_blocks)[0]
                                  if program.block_size else nfe),
                **final, "sample_char_entropy_bits": text.char_entropy_bits(samples),
                "valid_char_entropy_bits": self.valid_entropy,
                "word_validity": text.word_validity(samples, self.vocabulary),
                "samples": texts[:max(8, args.show_samples)], "corpus_info": data.info,
                "order": args.order[0], "fill": args.fill[0], **self.decoding()})
        attach_bounds(rows, found)
        for row in rows:  # per character, from B_T at the row's NFE
            if "nll_bound_bits" in row:
                row.update(bits_per_char=row["nll_bound_bits"],
                           ppl_bound=2 ** row["nll_bound_bits"],
                           iw_bits_per_char=row["iw_nll_bound_bits"],
                           iw_ppl_bound=2 ** row["iw_nll_bound_bits"])
        return rows

    def notes(self, runs):
        info = self.data.info
        notes = [f"corpus {self.args.corpus}: {info['train_chars']:,} training / "
                 f"{info['valid_chars']:,} validation characters; validation character entropy "
                 f"{self.valid_entropy:.3f} bits; word validity = share of generated words seen in "
                 "training", BITS_NOTE]
        for run in runs:  # from the rows: a model evaluated in another process leaves no state here
            notes += [f"samples [{run['model']}] NFE {run['nfe']}:"] + [
                f"  |{t}|" for t in run["samples"][:self.args.show_samples]]
        return notes
