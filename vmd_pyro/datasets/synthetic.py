"""Synthetic dependency data, vocabulary of 10 digits.

Every data set is a finite table of sequences with their probabilities, so the data distribution is
known exactly: accuracy (in support), KL(p_data || p_model) and the factorisation limit can all be
computed without sampling error on the data side.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

VOCAB = 10
NAMES = ("pair-uniform", "pair-skewed", "quad-d1", "quad-d2", "pair-p")


@dataclass
class SyntheticTask:
    name: str
    sequences: torch.Tensor   # (N, L) long: every sequence of positive probability
    probs: torch.Tensor       # (N,) float64, sums to 1
    vocab_size: int = VOCAB

    @property
    def seq_len(self) -> int:
        return self.sequences.shape[1]

    def sample(self, batch_size: int, generator=None):
        """``(x0, maskable)``: i.i.d. draws from the data distribution; every position maskable."""
        device = generator.device if generator is not None else torch.device("cpu")
        idx = torch.multinomial(self.probs.float().to(device), batch_size, replacement=True,
                                generator=generator)
        x0 = self.sequences.to(device)[idx]
        return x0, torch.ones_like(x0, dtype=torch.bool)

    def in_support(self, x: torch.Tensor) -> torch.Tensor:
        """Bool per row of ``x``: is it a sequence of positive data probability?"""
        codes = encode(x, self.vocab_size)
        return torch.isin(codes, encode(self.sequences[self.probs > 0], self.vocab_size))

    def dense_probs(self) -> torch.Tensor:
        """The data distribution as a dense ``V^L`` table indexed by :func:`encode`."""
        table = torch.zeros(self.vocab_size ** self.seq_len, dtype=torch.float64)
        table.index_add_(0, encode(self.sequences, self.vocab_size), self.probs)
        return table

    def factorisation_limit(self) -> float:
        """``KL(p_data || prod_i p_data(x^i))`` in nats: the smallest KL any model reaches that decodes
        all tokens independently in one step. For two tokens this is the mutual information
        ``I(x1; x2)``; for more, the total correlation."""
        joint = self.dense_probs().reshape((self.vocab_size,) * self.seq_len)
        product = torch.ones_like(joint)
        for i in range(self.seq_len):
            other = tuple(j for j in range(self.seq_len) if j != i)
            shape = [1] * self.seq_len
            shape[i] = self.vocab_size
            product = product * joint.sum(other).reshape(shape)
        nz = joint > 0
        return float((joint[nz] * (joint[nz] / product[nz]).log()).sum())


def encode(x: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Sequence -> integer code in ``[0, V^L)`` (first token most significant)."""
    powers = vocab_size ** torch.arange(x.shape[-1] - 1, -1, -1, device=x.device)
    return (x.long() * powers).sum(-1)


def all_sequences(seq_len: int, vocab_size: int = VOCAB) -> torch.Tensor:
    """Every sequence in ``encode`` order."""
    return torch.tensor(list(itertools.product(range(vocab_size), repeat=seq_len)))


def make_synthetic(name: str, p: float = 0.5) -> SyntheticTask:
    """Build one of :data:`NAMES`. ``p`` is the dependency strength, used by ``pair-p`` only."""
    k = torch.arange(VOCAB)
    if name == "pair-uniform":
        seqs, probs = torch.stack([k, (k + 1) % VOCAB], 1), torch.full((VOCAB,), 1 / VOCAB)
    elif name == "pair-skewed":
        seqs, probs = torch.stack([k, (k + 1) % VOCAB], 1), (k + 1) / 55
    elif name == "quad-d1":
        seqs = torch.stack([(k + j) % VOCAB for j in range(4)], 1)
        probs = torch.full((VOCAB,), 1 / VOCAB)
    elif name == "quad-d2":
        kk, ll = torch.meshgrid(k, k, indexing="ij")
        kk, ll = kk.flatten(), ll.flatten()
        seqs = torch.stack([kk, (kk + 1) % VOCAB, ll, (ll + 1) % VOCAB], 1)
        probs = torch.full((VOCAB ** 2,), 1 / VOCAB ** 2)
    elif name == "pair-p":
        if not 0.0 <= p <= 1.0 or math.isnan(p):
            raise ValueError(f"--p must lie in [0, 1], got {p}")
        seqs = all_sequences(2)
        follows = (seqs[:, 1] == (seqs[:, 0] + 1) % VOCAB).double()
        probs = (p * follows + (1 - p) / VOCAB) / VOCAB
    else:
        raise ValueError(f"unknown synthetic dataset {name!r}; available: {', '.join(NAMES)}")
    probs = probs.double()
    keep = probs > 0
    return SyntheticTask(name, seqs[keep], probs[keep] / probs[keep].sum())
