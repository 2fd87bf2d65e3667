import math

import pytest
import torch

from vmd_pyro.datasets.synthetic import NAMES, encode, make_synthetic


def test_definitions():
    d1 = make_synthetic("quad-d1")
    assert d1.sequences.tolist()[3] == [3, 4, 5, 6] and len(d1.sequences) == 10
    d2 = make_synthetic("quad-d2")
    assert len(d2.sequences) == 100
    assert ((d2.sequences[:, 1] - d2.sequences[:, 0]) % 10 == 1).all()
    assert ((d2.sequences[:, 3] - d2.sequences[:, 2]) % 10 == 1).all()
    skewed = make_synthetic("pair-skewed")
    assert skewed.probs[skewed.sequences[:, 0] == 9].item() == pytest.approx(10 / 55)
    for name in NAMES:
        assert make_synthetic(name).probs.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.8, 1.0])
def test_pair_p_mutual_information_closed_form(p):
    # P(k, j) = (p [j = k+1] + (1-p)/10) / 10 with uniform marginals: I = sum P log(100 P)
    same = p + (1 - p) / 10
    expected = same * math.log(10 * same)
    if p < 1:
        expected += 0.9 * (1 - p) * math.log(1 - p)
    assert make_synthetic("pair-p", p).factorisation_limit() == pytest.approx(expected, abs=1e-12)


def test_sampling_follows_probabilities():
    task = make_synthetic("pair-skewed")
    x0, maskable = task.sample(100000, torch.Generator().manual_seed(0))
    assert maskable.all()
    freq = torch.bincount(x0[:, 0], minlength=10).double() / 100000
    assert torch.allclose(freq, (torch.arange(10) + 1).double() / 55, atol=0.005)
    assert task.in_support(x0).all()


def test_encode_and_support():
    task = make_synthetic("quad-d1")
    assert encode(torch.tensor([[1, 2, 3, 4]]), 10).item() == 1234
    assert task.in_support(torch.tensor([[1, 2, 3, 4], [1, 2, 3, 5]])).tolist() == [True, False]


def test_bad_names_and_p():
    with pytest.raises(ValueError, match="unknown synthetic dataset 'quad-d3'"):
        make_synthetic("quad-d3")
    with pytest.raises(ValueError, match=r"--p must lie in \[0, 1\]"):
        make_synthetic("pair-p", p=1.5)
