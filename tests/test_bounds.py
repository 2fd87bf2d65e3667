"""The few-step bound B_T (vmd_pyro.bounds) against exact computation on a tiny problem.

L = 3 positions, V = 4 tokens: every sequence (64) and every order (3! = 6) can be enumerated, a
discrete z summed, and a one-dimensional Gaussian z integrated on a grid. ``exact_p_T`` below is
written from the definition in docs/method.md, independently of the library's bound code: it walks
each order step by step and multiplies the per-step marginals P_k.
"""
import dataclasses
import itertools
import math

import pytest
import torch
from scipy import special, stats

from tests.conftest import fixed_normal_guide, tiny_program
from vmd_pyro import metrics
from vmd_pyro.bounds import BoundOptions, evaluate_nll_bounds, sequence_bounds
from vmd_pyro.networks import NetConfig
from vmd_pyro.program import ProgramConfig, build_program
from vmd_pyro.datasets import synthetic
from vmd_pyro.masking import path_batch, step_batch, step_batch_blocks
from vmd_pyro.sampling import all_masked, generate, sampler_scores

L, V = 3, 4
ORDERS_ALL = list(itertools.permutations(range(L)))
SEQS = torch.tensor(list(itertools.product(range(V), repeat=L)))   # (64, 3), in encode order


def latent_program(prior="discrete", seed=0, **kw):
    """An untrained net whose latent and input strongly move the logits, so z and the order matter.
    A Normal guide is set to N(0, 1.5^2) whatever it reads: wider than any posterior here, so the
    importance weights are bounded and their average converges quickly (an untrained guide with a
    small scale gives heavy-tailed weights: valid, but slow to converge)."""
    torch.manual_seed(seed)
    program = tiny_program(prior=prior, vocab=V, seq_len=L, **kw)
    with torch.no_grad():
        program.denoiser.z_proj.weight.mul_(6.0)
        program.denoiser.embed.weight.mul_(4.0)
        if prior == "discrete":
            program.prior.logits.copy_(torch.tensor([0.8, -0.5, 0.1]))
    if prior != "discrete":
        fixed_normal_guide(program, 1.5)
    return program.eval()


def priorities_of_all_orders(batch_size):
    """(6, B, L) priorities: order sigma reveals sigma[0] first (highest priority)."""
    pri = torch.zeros(len(ORDERS_ALL), batch_size, L)
    for m, sigma in enumerate(ORDERS_ALL):
        for rank, pos in enumerate(sigma):
            pri[m, :, pos] = L - rank
    return pri


def latent_values(program):
    """Values of z and their log prior weights for the exact marginal of one step: every value of a
    discrete z, or a fine grid over a one-dimensional Gaussian z (trapezoid rule)."""
    if program.prior.support == "discrete":
        z = torch.arange(program.cfg.components).reshape(-1, 1)
        return z, torch.log_softmax(program.prior.logits.double(), -1).reshape(-1, 1)
    grid = torch.linspace(-9.0, 9.0, 6001, dtype=torch.float64)
    log_w = torch.distributions.Normal(0.0, 1.0).log_prob(grid) + math.log(grid[1] - grid[0])
    return grid.float().reshape(-1, 1, 1), log_w.reshape(-1, 1)


def pick(logp, x, i):
    """``log p(x_i)`` at position ``i`` from log-probabilities ``([Z,] B, L, V)``: ``([Z,] B)``."""
    at = logp[..., i, :]
    return at.gather(-1, x[:, i].expand(at.shape[:-1]).unsqueeze(-1)).squeeze(-1)


@torch.no_grad()
def exact_p_T(program, T, x=SEQS):
    """p_T(x) = mean over the 6 orders of prod_k P_k (resample generator; MDM: no z)."""
    mask = program.mask_id
    z, log_w = latent_values(program) if program.has_latent else (None, None)
    total = torch.zeros(len(x), dtype=torch.float64)
    for sigma in ORDERS_ALL:
        log_prob = torch.zeros(len(x), dtype=torch.float64)
        still_masked, done = set(range(L)), 0
        for k in range(T):
            n = math.ceil(len(still_masked) / (T - k))
            reveal = list(sigma[done:done + n])
            done += n
            xk = x.clone()
            xk[:, sorted(still_masked)] = mask
            logp = program.logits(xk, z).double().log_softmax(-1)     # ([Z,] B, L, V)
            picked = sum(pick(logp, x, i) for i in reveal)
            if z is None:
                log_prob += picked
            else:
                log_prob += torch.logsumexp(picked + log_w, 0)
            still_masked -= set(reveal)
        total += log_prob.exp()
    return total / len(ORDERS_ALL)


@pytest.mark.parametrize("T", [1, 2, 3])
def test_p_T_sums_to_one(T):
    assert float(exact_p_T(latent_program(), T).sum()) == pytest.approx(1.0, abs=1e-9)


def test_sampler_frequencies_match_exact_p_T_and_the_check_can_fail():
    """Random order, z resampled every step, sampled tokens: the sampler's frequencies are p_T.
    The same chi-square check rejects the one-step distribution p_1 (a different generator)."""
    program = latent_program()
    p2, p1 = exact_p_T(program, 2), exact_p_T(program, 1)
    assert float((p2 - p1).abs().sum()) > 0.1  # the two generators really differ here
    n = 40000
    samples, _ = generate(program, all_masked(n, L, program.mask_id), nfe=2, order="random",
                       fill="sample", z_strategy="resample",
                       generator=torch.Generator().manual_seed(5))
    counts = torch.bincount(synthetic.encode(samples, V), minlength=V ** L).double()
    assert stats.chisquare(counts.numpy(), (n * p2).numpy()).pvalue > 1e-4
    assert stats.chisquare(counts.numpy(), (n * p1).numpy()).pvalue < 1e-8


@pytest.mark.slow
@pytest.mark.parametrize("prior", ["discrete", "gaussian"])
@pytest.mark.parametrize("T", [1, 2, 3])
def test_bound_is_above_exact_and_iw_converges_to_it(prior, T):
    """B_T >= -log p_T(x) for every x (exact over orders). A discrete z is summed, so the
    importance-weighted form is exact; for a Gaussian z it comes within 0.02 nats with 4096 draws."""
    program = latent_program(prior, latent_dim=1)
    exact = -exact_p_T(program, T).log()
    pri = priorities_of_all_orders(len(SEQS))
    opts = BoundOptions(nfe=T, iw_samples=4096)
    bound, iw = sequence_bounds(program, SEQS, torch.ones_like(SEQS, dtype=torch.bool), opts,
                                priorities=pri, generator=torch.Generator().manual_seed(1))
    # the Gaussian bound's token terms are Monte Carlo averages over 4096 draws: a small tolerance
    tolerance = 1e-6 if prior == "discrete" else 0.02
    assert bool((bound >= exact - tolerance).all())
    assert float((bound - exact).mean()) > 1e-2       # an untrained guide leaves a real gap
    if prior == "discrete":
        assert torch.allclose(iw, exact, atol=1e-6)
    else:
        assert float((iw - exact).abs().max()) < 0.02


@pytest.mark.slow
def test_iw_bound_is_non_increasing_in_K():
    """E[IW_K] decreases with K towards -log p_T (Gaussian z, T = 2, averaged over repeats)."""
    program = latent_program("gaussian", latent_dim=1)
    x = SEQS[::7]
    exact = -exact_p_T(program, 2, x).log()
    pri = priorities_of_all_orders(len(x))
    g = torch.Generator().manual_seed(2)
    means, errors = [], []
    for k in (1, 4, 32, 256):
        draws = torch.stack([sequence_bounds(program, x, torch.ones_like(x, dtype=torch.bool),
                                             BoundOptions(nfe=2, iw_samples=k), priorities=pri,
                                             generator=g)[1] for _ in range(60)])
        gap = draws - exact
        means.append(float(gap.mean()))
        errors.append(float(gap.mean(1).std() / math.sqrt(len(draws))))
    for a, b, ea, eb in zip(means, means[1:], errors, errors[1:]):
        assert b <= a + 3 * (ea + eb)
    assert means[0] > means[-1] + 0.05 and means[-1] > -3 * errors[-1]


def test_one_step_bound_is_the_exact_one_step_probability():
    """T = 1: the generator is one-step decoding; IW (discrete z, exact) = -log of the probability
    that metrics.one_step_model_probs computes for the KL, for every sequence."""
    program = latent_program()
    task = synthetic.SyntheticTask("tiny", SEQS, torch.full((len(SEQS),), 1 / len(SEQS)).double(),
                                   vocab_size=V)
    probs = metrics.one_step_model_probs(program, task)
    _, iw = sequence_bounds(program, SEQS, torch.ones_like(SEQS, dtype=torch.bool),
                            BoundOptions(nfe=1))
    assert torch.allclose(iw, -probs.log(), atol=1e-6)
    assert torch.allclose(iw, -exact_p_T(program, 1).log(), atol=1e-6)


def test_mdm_one_token_per_step_bound_is_its_continuous_nelbo():
    """B_N (one token per step) = the continuous-time NELBO, in expectation. The NELBO is computed
    here from its definition: sum over masked sets S of int w(t) P(S | t) dt times the masked-token
    cost of S (an incomplete beta integral for the log-linear schedule with eps = 1e-3); as
    eps -> 0 the weight of a set of size s is 1 / (s * C(N, s)), which B_N equals exactly."""
    program = tiny_program(model="mdm", vocab=V, seq_len=L).eval()
    x = SEQS[::5]
    bound, iw = sequence_bounds(program, x, torch.ones_like(x, dtype=torch.bool), BoundOptions(nfe=L),
                                priorities=priorities_of_all_orders(len(x)))
    assert bool((iw <= bound + 1e-12).all())  # -log mean over orders <= mean of -log (Jensen)
    eps, nelbo, eps0 = 1e-3, torch.zeros(len(x), dtype=torch.float64), torch.zeros(len(x))
    with torch.no_grad():
        for s in range(1, L + 1):
            for subset in itertools.combinations(range(L), s):
                xt = x.clone()
                xt[:, list(subset)] = program.mask_id
                logp = program.logits(xt).double().log_softmax(-1)
                cost = -sum(pick(logp, x, i) for i in subset)
                # int_0^1 (1/t) p^s (1-p)^(N-s) dt with p = (1-eps) t
                weight = special.betainc(s, L - s + 1, 1 - eps) * special.beta(s, L - s + 1)
                nelbo += weight * cost
                eps0 += cost / (s * math.comb(L, s))
    assert torch.allclose(bound, eps0.double(), atol=1e-9)
    assert torch.allclose(bound, nelbo, rtol=5e-3)
    # and the library's Monte Carlo NELBO estimates the same number
    fixed = lambda n, g: (x.repeat(n // len(x) + 1, 1)[:n], torch.ones(n, L, dtype=torch.bool))  # noqa: E731
    n = len(x) * 40
    est = metrics.evaluate_bounds(program, fixed, num_batches=60, batch_size=n,
                                  generator=torch.Generator().manual_seed(3))
    assert est["nelbo_nats"] == pytest.approx(float(nelbo.mean()), rel=0.03)


def test_fixed_z_bound_is_above_the_fixed_generator_probability():
    """The fixed-z generator (one z per sequence for every step): B >= -log p_fixed(x), and the
    exact (discrete) importance-weighted form equals it. p_fixed is computed here directly."""
    program = latent_program()
    T, mask = 2, program.mask_id
    z, log_w = latent_values(program)
    total = torch.zeros(len(SEQS), dtype=torch.float64)
    with torch.no_grad():
        for sigma in ORDERS_ALL:
            log_prob = torch.zeros(len(z), len(SEQS), dtype=torch.float64)
            for reveal, hidden in (((sigma[0], sigma[1]), sigma), ((sigma[2],), (sigma[2],))):
                xk = SEQS.clone()
                xk[:, list(hidden)] = mask
                logp = program.logits(xk, z).double().log_softmax(-1)
                log_prob += sum(pick(logp, SEQS, i) for i in reveal)
            total += torch.logsumexp(log_prob + log_w, 0).exp()
    exact = -(total / len(ORDERS_ALL)).log()
    bound, iw = sequence_bounds(program, SEQS, torch.ones_like(SEQS, dtype=torch.bool),
                                BoundOptions(nfe=T, z_strategy="fixed"),
                                priorities=priorities_of_all_orders(len(SEQS)))
    assert bool((bound >= exact - 1e-6).all())
    # one order at a time the IW form is exact; over orders it is -log mean_sigma, also exact
    assert torch.allclose(iw, exact, atol=1e-6)


def test_mdm_confidence_order_bound_is_exact():
    """Top-Prob and Top-Prob-Margin: the path is a function of x, so the bound is -log p_T(x)
    exactly, and these probabilities sum to 1 over all sequences."""
    program = tiny_program(model="mdm", vocab=V, seq_len=L).eval()
    for order in ("top-prob", "top-prob-margin"):
        bound, iw = sequence_bounds(program, SEQS, torch.ones_like(SEQS, dtype=torch.bool),
                                    BoundOptions(nfe=2, order=order))
        assert torch.equal(bound, iw)
        assert float((-bound).exp().sum()) == pytest.approx(1.0, abs=1e-9)


def test_latent_bounds_refuse_confidence_orders_and_unknown_strategies():
    program = latent_program()
    x = SEQS[:2]
    ones = torch.ones_like(x, dtype=torch.bool)
    with pytest.raises(ValueError, match="MDM only"):
        sequence_bounds(program, x, ones, BoundOptions(nfe=2, order="top-prob"))
    with pytest.raises(ValueError, match="not 'posterior'"):
        sequence_bounds(program, x, ones, BoundOptions(nfe=2, z_strategy="posterior"))
    with pytest.raises(ValueError, match=">= 1"):
        sequence_bounds(program, x, ones, BoundOptions(nfe=0))


@pytest.mark.parametrize("T", [1, 2, 3])
def test_step_batch_follows_the_samplers_schedule(T):
    """M_k and R_k have the sizes of the exactly-k schedule, R_k within M_k, the guide's tokens
    hide M_k minus R_k, the weight is T; every step k is drawn about equally often."""
    x0 = torch.randint(0, V, (6000, L), generator=torch.Generator().manual_seed(0))
    batch = step_batch(x0, V, [T], generator=torch.Generator().manual_seed(1))
    sizes, remaining = [], L
    for k in range(T):
        n = math.ceil(remaining / (T - k))
        sizes.append((remaining, n))
        remaining -= n
    seen = {(int(m), int(r)) for m, r in zip(batch.masked.sum(-1), batch.scored.sum(-1))}
    assert seen == set(sizes)
    assert bool((batch.scored <= batch.masked).all()) and bool((batch.weight == T).all())
    assert torch.equal(batch.xt == V, batch.masked)
    assert torch.equal(batch.guide_tokens == V, batch.masked & ~batch.scored)
    for m, _ in sizes:
        share = float((batch.masked.sum(-1) == m).double().mean())
        assert share == pytest.approx(1 / T, abs=0.03)


def test_steps_objective_estimates_B_T():
    """The steps objective (Pyro's loss on step batches) averages to B_T: MDM, and an enumerated
    discrete VMD whose loss has no Monte Carlo noise in z."""
    for program in (tiny_program(model="mdm", vocab=V, seq_len=L).eval(), latent_program()):
        x = SEQS[::3]
        bound, _ = sequence_bounds(program, x, torch.ones_like(x, dtype=torch.bool),
                                   BoundOptions(nfe=2), priorities=priorities_of_all_orders(len(x)))
        elbo, g, total, n = program.make_elbo(), torch.Generator().manual_seed(4), 0.0, 0
        with torch.no_grad():
            for _ in range(40):
                x0 = x.repeat(50, 1)
                total += float(elbo.loss(program.model, program.guide,
                                         step_batch(x0, V, [2], generator=g)))
                n += len(x0)
        assert total / n == pytest.approx(float(bound.mean()), rel=0.02)


def test_step_batch_in_a_fixed_order_reveals_the_schedules_positions_in_turn():
    """With scores that prefer the leftmost masked position, step k of T = 3 over 6 positions has
    M_k = positions 2k.. and R_k = {2k, 2k + 1}; the scores are asked once per step up to k."""
    x0 = torch.randint(0, V, (300, 6), generator=torch.Generator().manual_seed(0))
    calls = []

    def leftmost_first(xt):
        calls.append(xt.clone())
        return -torch.arange(6.0).expand(xt.shape)

    batch = step_batch(x0, V, [3], generator=torch.Generator().manual_seed(1),
                       order_scores=leftmost_first)
    k = (6 - batch.masked.sum(-1)) // 2
    position = torch.arange(6)
    assert torch.equal(batch.masked, position >= 2 * k.unsqueeze(-1))
    assert torch.equal(batch.scored, batch.masked & (position < 2 * k.unsqueeze(-1) + 2))
    assert set(k.tolist()) == {0, 1, 2} and len(calls) == 3
    assert torch.equal(calls[1] == V, position.expand(300, 6) >= 2)  # x0's tokens were revealed
    assert torch.equal(calls[1][:, :2], x0[:, :2])


def test_mdm_steps_objective_in_its_own_order_is_its_exact_nll():
    """For MDM under Top-Prob-Margin the path to x0 is unique, so the steps objective along the
    denoiser's own order is -log p_T(x0), which vmd_pyro.bounds computes by walking that path (a
    separate implementation): per sequence to float precision once the three steps k are averaged,
    and on average through Pyro's loss. The random order's B_T differs, so the order is used."""
    torch.manual_seed(0)
    program = tiny_program(model="mdm", vocab=V, seq_len=L).eval()
    with torch.no_grad():
        program.denoiser.embed.weight.mul_(4.0)   # so that the order depends on what is revealed
    x, ones = SEQS[::3], torch.ones_like(SEQS[::3], dtype=torch.bool)
    exact, _ = sequence_bounds(program, x, ones, BoundOptions(nfe=3, order="top-prob-margin"))
    random_order, _ = sequence_bounds(program, x, ones, BoundOptions(nfe=3),
                                      priorities=priorities_of_all_orders(len(x)))
    assert float((random_order - exact).abs().max()) > 0.3
    scores = sampler_scores(program, "top-prob-margin")
    x0 = x.repeat(40, 1)
    batch = program.step_batch(x0, [3], generator=torch.Generator().manual_seed(4),
                               order_scores=scores)
    with torch.no_grad():
        log_p = program.logits(batch.xt).double().log_softmax(-1).gather(-1, x0[..., None])[..., 0]
        per_row = -batch.weight.double() * (log_p * batch.scored).sum(-1)
        left = batch.masked.sum(-1)   # L - k: one position per step
        for i in range(len(x)):
            rows = torch.arange(len(x0)) % len(x) == i
            steps = [per_row[rows & (left == L - k)] for k in range(L)]
            assert all(len(v) and torch.allclose(v, v[0]) for v in steps)  # one path per step
            assert sum(float(v[0]) for v in steps) / L == pytest.approx(float(exact[i]), rel=1e-5)
        elbo, g, total, n = program.make_elbo(), torch.Generator().manual_seed(5), 0.0, 0
        for _ in range(20):
            batch = program.step_batch(x.repeat(50, 1), [3], generator=g, order_scores=scores)
            total, n = total + float(elbo.loss(program.model, program.guide, batch)), n + 50 * len(x)
    assert total / n == pytest.approx(float(exact.mean()), rel=0.02)


def block_program(model, seed=0):
    """Two blocks of 2 (L = 4, V = 4): block MDM, or block VMD with an enumerated discrete z."""
    torch.manual_seed(seed)
    net = NetConfig(vocab_size=V, seq_len=4, arch="transformer", hidden=16, layers=1, heads=2,
                    block_size=2)
    program = build_program(ProgramConfig(net=net, model=model, prior="discrete", components=3))
    if model == "vmd":
        with torch.no_grad():
            program.denoiser.z_proj.weight.mul_(6.0)
    return program.eval()


@pytest.mark.parametrize("model", ["mdm", "vmd"])
@pytest.mark.parametrize("per_block", [1, 2])
def test_block_steps_objective_estimates_the_block_bound(model, per_block):
    """Block step batches (one step of one block per sequence and block) average to the block
    models' B_T with ``per_block`` calls per block, which vmd_pyro.bounds computes by decoding the
    blocks in turn. One call per block has no order, so there the match is to float precision."""
    program = block_program(model)
    x = torch.tensor(list(itertools.product(range(V), repeat=4)))[::17]      # 16 sequences
    opts = BoundOptions(nfe=2 * per_block, num_orders=1 if per_block == 1 else 400)
    bound, _ = sequence_bounds(program, x, torch.ones_like(x, dtype=torch.bool), opts,
                               generator=torch.Generator().manual_seed(3))
    elbo, g, total, n = program.make_elbo(), torch.Generator().manual_seed(4), 0.0, 0
    with torch.no_grad():
        for _ in range(1 if per_block == 1 else 40):
            x0 = x.repeat(50, 1)
            batch = program.step_batch(x0, [per_block], generator=g)
            assert batch.weight.shape == (len(x0), 2) and bool((batch.weight == per_block).all())
            total += float(elbo.loss(program.model, program.guide, batch))
            n += len(x0)
    assert total / n == pytest.approx(float(bound.mean()), rel=1e-5 if per_block == 1 else 0.02)


def test_block_step_batch_of_one_block_is_the_plain_step_batch():
    x0 = torch.randint(0, V, (50, 4), generator=torch.Generator().manual_seed(0))
    blocks = step_batch_blocks(x0, V, 4, [2, 3], generator=torch.Generator().manual_seed(1))
    plain = step_batch(x0, V, [2, 3], generator=torch.Generator().manual_seed(1))
    for f in dataclasses.fields(plain):
        assert torch.equal(getattr(blocks, f.name).flatten(), getattr(plain, f.name).flatten())


def test_latent_site_is_masked_where_nothing_is_scored():
    """A sequence with no masked token contributes nothing, whatever the guide: the mixture prior's
    w(t) KL can no longer blow up as t -> 0."""
    program = latent_program("mog")
    x0 = SEQS[:4]
    batch = step_batch(x0, V, [1])
    batch.masked = batch.scored = torch.zeros_like(batch.masked)
    batch.xt, batch.guide_tokens = x0, x0
    batch.weight = torch.full((4,), 1e5)
    assert float(program.make_elbo().loss(program.model, program.guide, batch)) == 0.0


def test_data_average_is_weighted_per_position():
    """evaluate_nll_bounds: probability-weighted mean of the per-sequence bound over the positions."""
    program = tiny_program(model="mdm", vocab=V, seq_len=L).eval()
    x = SEQS[:5]
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0])
    ones = torch.ones_like(x, dtype=torch.bool)
    out = evaluate_nll_bounds(program, x, ones, BoundOptions(nfe=1), weights=weights, batch_size=2)
    each, _ = sequence_bounds(program, x, ones, BoundOptions(nfe=1))
    expected = float((weights / weights.sum() * each).sum()) / L / math.log(2)
    assert out["nll_bound_bits"] == pytest.approx(expected, rel=1e-6)
    assert out["bound_generator"] == "T=1, order=random, fill=sample"
    assert out["nll_bound_bits_se"] is None  # one order: one group, no spread to measure


def test_grouped_orders_combine_exactly_and_give_a_standard_error():
    """Orders drawn in 4 groups: the combined IW estimate is -log mean over all orders (checked by
    re-running the groups from the same random stream), the standard error is the groups' spread."""
    program = latent_program("gaussian", latent_dim=1)
    x, ones = SEQS[::9], torch.ones_like(SEQS[::9], dtype=torch.bool)
    opts = BoundOptions(nfe=2, num_orders=8, iw_samples=8)
    out = evaluate_nll_bounds(program, x, ones, opts, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    parts = [sequence_bounds(program, x, ones, BoundOptions(nfe=2, num_orders=2, iw_samples=8),
                             generator=g) for _ in range(4)]
    scale = 1.0 / L / math.log(2)
    iw_groups = torch.stack([w.mean() for _, w in parts]) * scale
    combined = -(torch.logsumexp(-torch.stack([w for _, w in parts]), 0) - math.log(4))
    assert out["iw_nll_bound_bits"] == pytest.approx(float(combined.mean() * scale), rel=1e-9)
    assert out["nll_bound_bits"] == pytest.approx(float(torch.stack([b.mean() for b, _ in parts])
                                                        .mean() * scale), rel=1e-9)
    assert out["iw_nll_bound_bits_se"] == pytest.approx(float(iw_groups.std() / 2), rel=1e-9)
    assert out["bound_orders"] == 8


@pytest.mark.slow
def test_trained_quad_d1_bounds_stay_above_the_entropy_while_the_objective_does_not():
    """A VMD trained with the joint objective on quad-d1: its data-averaged B_T is above the data
    entropy at T = 1, 2, 4 (as any valid bound must be), while its training objective J falls below
    the entropy - which is why J is never called a NELBO."""
    from vmd_pyro.networks import NetConfig
    from vmd_pyro.program import ProgramConfig, build_program
    from vmd_pyro.training import TrainConfig, train

    task = synthetic.make_synthetic("quad-d1")
    entropy_bits = float(-(task.probs * task.probs.log2()).sum()) / task.seq_len
    torch.manual_seed(0)
    program = build_program(ProgramConfig(net=NetConfig(vocab_size=10, seq_len=4, hidden=64),
                                          model="vmd", prior="gaussian", latent_dim=2))
    train(program, task.sample, TrainConfig(steps=1500, batch_size=128, lr=3e-3, anneal_steps=300,
                                            eval_every=0, progress=False))
    g = torch.Generator().manual_seed(0)
    objective = metrics.evaluate_bounds(program, task.sample, num_batches=10, generator=g)
    assert objective["objective_bits"] < entropy_bits
    ones = torch.ones_like(task.sequences, dtype=torch.bool)
    for T in (1, 2, 4):
        out = evaluate_nll_bounds(program, task.sequences, ones,
                                  BoundOptions(nfe=T, num_orders=32, iw_samples=512),
                                  weights=task.probs, generator=g)
        # an estimate of a bound: above the entropy up to its own Monte Carlo error
        assert out["nll_bound_bits"] >= entropy_bits - 3 * out["nll_bound_bits_se"]
        assert out["iw_nll_bound_bits"] >= entropy_bits - 3 * out["iw_nll_bound_bits_se"]


def test_paths_objective_with_the_exact_guide_is_the_fixed_z_bound_of_its_order():
    """The ``paths`` batch of one order, summed over z by the exact guide, gives the fixed-z bound
    that vmd_pyro.bounds computes by walking the same order (``-log sum_z p(z) prod_k p(x_Rk |
    x^(k), z)``, a separate implementation): per sequence, value and every order of T = 2 over 3
    positions. The steps objective of the same order is a different, looser bound."""
    program = latent_program(guide="exact")
    x = SEQS[::5]
    pri = priorities_of_all_orders(len(x))
    elbo = program.make_elbo()
    for m in range(len(pri)):
        everywhere, order = torch.ones_like(x, dtype=torch.bool), pri[m:m + 1]
        bound = -sequence_bounds(program, x, everywhere, BoundOptions(nfe=2, z_strategy="fixed"),
                                 priorities=order)[1]
        batch = path_batch(x, program.mask_id, 2, order_scores=lambda xt: pri[m])
        assert batch.scored.sum(-1).tolist() == [[2, 1]] * len(x)
        per_sequence = [-float(elbo.loss(program.model, program.guide, batch.select([i])))
                        for i in range(len(x))]
        torch.testing.assert_close(torch.tensor(per_sequence, dtype=torch.float64), bound,
                                   rtol=1e-5, atol=1e-5)
        resample = -sequence_bounds(program, x, everywhere, BoundOptions(nfe=2),
                                    priorities=order)[1]
        assert float((resample - bound).abs().max()) > 1e-2  # z held or drawn anew: they differ
