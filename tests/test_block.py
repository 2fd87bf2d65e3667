"""Block diffusion: nothing of a later block reaches an earlier one, the one-block model is the plain
model, the block NELBO is the sum of per-block NELBOs, and block decoding spends its NFE per block."""
import numpy as np
import pyro
import pytest
import torch

from tests.conftest import tiny_program
from vmd_pyro.blocks import block_causal_mask, nfe_per_block
from vmd_pyro.masking import corrupt, corrupt_blocks
from vmd_pyro.program import build_program
from vmd_pyro.sampling import all_masked, generate

VOCAB, SEQ_LEN, BLOCK = 5, 8, 2


def block_program(model="vmd", prior="gaussian", block_size=BLOCK, **kw):
    program = tiny_program(model=model, prior=prior, vocab=VOCAB, seq_len=SEQ_LEN,
                           arch="transformer", **kw)
    if block_size is None:
        return program.eval()
    program.cfg.net.block_size = block_size
    return build_program(program.cfg).eval()


def random_tokens(n, seed):
    return torch.randint(0, VOCAB, (n, SEQ_LEN), generator=torch.Generator().manual_seed(seed))


def test_attention_mask_layout():
    allowed = ~block_causal_mask(4, 2)      # rows/cols: noisy 0..3, then clean 0..3
    expected = torch.tensor([
        [1, 1, 0, 0, 0, 0, 0, 0],           # noisy block 0: itself only
        [1, 1, 0, 0, 0, 0, 0, 0],
        [0, 0, 1, 1, 1, 1, 0, 0],           # noisy block 1: itself + clean block 0
        [0, 0, 1, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 1, 0, 0],           # clean block 0: clean block 0
        [0, 0, 0, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 1, 1, 1],           # clean block 1: clean blocks 0, 1
        [0, 0, 0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(allowed, expected)


@pytest.mark.parametrize("prior", ["block-conditional", "block-mog"])
@pytest.mark.parametrize("block", [0, 1, 2, 3])
def test_no_block_sees_a_later_one(block, prior):
    """Perturb every token (noisy and clean copy) from block ``block`` on: the denoiser logits, the
    guide's q(z_b | .) and the block-conditional prior p(z_b | x^{<b}) of earlier blocks stay put,
    and the prior of block ``block`` itself too (it only reads earlier blocks)."""
    program = block_program(prior=prior)
    x0 = random_tokens(6, 0)
    batch = corrupt_blocks(x0, program.mask_id, BLOCK, generator=torch.Generator().manual_seed(1))
    later = torch.arange(SEQ_LEN) >= block * BLOCK
    x0_p = torch.where(later, (x0 + 1) % VOCAB, x0)
    xt_p = torch.where(later & ~batch.masked, x0_p, batch.xt)
    masked_p = torch.where(later, ~batch.masked, batch.masked)
    xt_p = torch.where(masked_p, torch.full_like(xt_p, program.mask_id), x0_p)
    z = torch.randn(6, SEQ_LEN // BLOCK, 3)
    with torch.no_grad():
        logits, logits_p = program.logits(batch.xt, z, x0), program.logits(xt_p, z, x0_p)
        q, q_p = program.guide_dist(x0, batch.masked), program.guide_dist(x0_p, masked_p)
        p, p_p = program.prior_dist(x0), program.prior_dist(x0_p)
    before = ~later
    assert torch.allclose(logits[:, before], logits_p[:, before], atol=1e-5)
    assert torch.allclose(q.mean[:, :block], q_p.mean[:, :block], atol=1e-5)
    assert torch.allclose(p.mean[:, :block + 1], p_p.mean[:, :block + 1], atol=1e-5)
    # ... while the perturbed blocks themselves do change (the check can fail)
    assert not torch.allclose(logits[:, later], logits_p[:, later], atol=1e-3)
    assert not torch.allclose(q.mean[:, block:], q_p.mean[:, block:], atol=1e-3)


def test_block_mixture_prior_is_a_mixture_whose_weights_read_the_earlier_blocks():
    """block-mog: every block's density is sum_k pi_k N(z; mu_k, sigma_k) (scipy), integrating to
    one; block 0's weights are the learned first-block weights for every sequence, a later block's
    change with the tokens of the earlier blocks."""
    from scipy import stats

    program = block_program(prior="block-mog", latent_dim=2, components=3)
    prior = program.prior
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([0.5, 0.0, -1.0]))
        prior.locs.copy_(torch.tensor([[-2.0, 0.0], [0.0, 1.5], [3.0, -1.0]]))
        prior.out.weight.normal_()  # away from near-uniform weights
    x0 = random_tokens(2, 5)
    x0_p = x0.clone()
    x0_p[:, 0] = (x0[:, 0] + 1) % VOCAB
    with torch.no_grad():
        p, p_p = program.prior_dist(x0), program.prior_dist(x0_p)
    weights = p.mixture_distribution.probs                    # (B, blocks, K)
    assert torch.allclose(weights[:, 0], torch.softmax(prior.logits, -1).expand(2, -1))
    assert not torch.allclose(weights[:, 1:], p_p.mixture_distribution.probs[:, 1:], atol=1e-3)
    mu = prior.locs.detach().numpy()
    sd = (torch.nn.functional.softplus(prior.raw_scales) + 1e-3).detach().numpy()
    z = torch.randn(40, 1, 1, 2) * 2                          # broadcast over (B, blocks)
    logp = p.log_prob(z).detach().numpy()                      # (40, B, blocks)
    for s in range(2):
        for b in range(SEQ_LEN // BLOCK):
            pi = weights[s, b].numpy()
            dens = sum(pi[k] * stats.norm.pdf(z[:, 0, 0].numpy(), mu[k], sd[k]).prod(-1)
                       for k in range(3))
            assert np.allclose(logp[:, s, b], np.log(dens), atol=1e-5)
    grid = torch.linspace(-9, 11, 601)
    cells = torch.cartesian_prod(grid, grid)[:, None, None]
    mass = p.log_prob(cells).exp().sum(0) * (grid[1] - grid[0]) ** 2
    assert torch.allclose(mass, torch.ones_like(mass), atol=1e-3)


def test_earlier_clean_blocks_do_reach_later_blocks():
    program = block_program(model="mdm")
    x0 = random_tokens(4, 2)
    xt = torch.full_like(x0, program.mask_id)
    x0_p = x0.clone()
    x0_p[:, 0] = (x0[:, 0] + 1) % VOCAB
    with torch.no_grad():
        a, b = program.logits(xt, None, x0), program.logits(xt, None, x0_p)
    assert torch.allclose(a[:, :BLOCK], b[:, :BLOCK], atol=1e-6)   # block 0 never sees its x0
    assert not torch.allclose(a[:, BLOCK:], b[:, BLOCK:], atol=1e-3)


def test_one_block_corruption_is_the_plain_corruption():
    x0 = random_tokens(16, 3)
    plain = corrupt(x0, VOCAB, generator=torch.Generator().manual_seed(4))
    blocked = corrupt_blocks(x0, VOCAB, SEQ_LEN, generator=torch.Generator().manual_seed(4))
    assert torch.equal(plain.xt, blocked.xt) and torch.equal(plain.masked, blocked.masked)
    assert torch.allclose(plain.weight, blocked.weight[:, 0]) and blocked.weight.shape == (16, 1)


def test_every_block_sees_all_diffusion_times():
    """Each block's times are stratified over the batch on their own: one t in each of the 8
    strata of (0, 1] for every block, so no block is trained (or evaluated) on part of the time
    range only."""
    batch = corrupt_blocks(random_tokens(8, 5), VOCAB, BLOCK,
                           generator=torch.Generator().manual_seed(6))
    assert batch.t.shape == (8, SEQ_LEN // BLOCK)
    for b in range(SEQ_LEN // BLOCK):
        t = batch.t[:, b].sort().values
        assert torch.equal((t * 8).floor(), torch.arange(8.0))


def test_block_nelbo_of_uniform_predictions_is_l_log_v():
    """Exact expectation for a denoiser that predicts uniformly: every masked token costs log V and
    E_t[w(t) * #masked] = L' per block, so the NELBO is L log V per sequence whatever the blocks."""
    import math
    from vmd_pyro.metrics import evaluate_bounds

    program = block_program(model="mdm")
    with torch.no_grad():
        program.denoiser.out.weight.zero_()
        program.denoiser.out.bias.zero_()
    data = lambda n, g: (torch.randint(0, VOCAB, (n, SEQ_LEN), generator=g),  # noqa: E731
                         torch.ones(n, SEQ_LEN, dtype=torch.bool))
    est = evaluate_bounds(program, data, num_batches=4, batch_size=1024,
                          generator=torch.Generator().manual_seed(0))
    assert est["nelbo_nats"] == pytest.approx(SEQ_LEN * math.log(VOCAB), rel=0.03)


@pytest.mark.parametrize("model,prior", [("mdm", "gaussian"), ("vmd", "gaussian"),
                                         ("vmd", "mog"), ("vmd", "discrete")])
def test_one_block_nelbo_equals_plain_nelbo(model, prior):
    """block size = sequence length reproduces the plain model: same parameters, same batch, same
    z draw give the same loss and the same importance-weighted bound."""
    from vmd_pyro.metrics import iw_log_likelihood

    plain = block_program(model, prior, block_size=None).eval()
    one_block = block_program(model, prior, block_size=SEQ_LEN)
    one_block.load_state_dict(plain.state_dict())  # strict: exactly the same parameters
    x0 = random_tokens(16, 7)
    batch = corrupt(x0, VOCAB, generator=torch.Generator().manual_seed(8))
    batch_1 = corrupt_blocks(x0, VOCAB, SEQ_LEN, generator=torch.Generator().manual_seed(8))
    losses, iws = [], []
    for program, b in ((plain, batch), (one_block, batch_1)):
        pyro.set_rng_seed(9)
        with torch.no_grad():
            losses.append(program.make_elbo().loss(program.model, program.guide, b, 0.7))
        pyro.set_rng_seed(10)
        iws.append(iw_log_likelihood(program, b, 4).flatten())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert torch.allclose(iws[0], iws[1], atol=1e-4)


def test_block_nelbo_is_the_sum_of_per_block_nelbos():
    """Analytic-KL ELBO of block VMD = sum over sequences and blocks of
    w(t_b) * (-sum_{i masked in b} log p(x0^i | xt_b, x0_{<b}, z_b) + beta KL(q(z_b) || p(z_b))),
    the KL only for blocks with a masked token (z_b explains nothing elsewhere)."""
    program = block_program(prior="block-conditional")
    x0 = random_tokens(8, 11)
    batch = corrupt_blocks(x0, program.mask_id, BLOCK, generator=torch.Generator().manual_seed(12))
    beta = 0.4
    pyro.set_rng_seed(13)
    with torch.no_grad():
        loss = program.make_elbo().loss(program.model, program.guide, batch, beta)
    pyro.set_rng_seed(13)
    q = program.guide_dist(x0, batch.masked)
    z = q.rsample()                                          # (B, blocks, D), Pyro's draw
    p = program.prior_dist(x0)
    with torch.no_grad():
        logp = program.logits(batch.xt, z, x0).log_softmax(-1)
    hand = 0.0
    for b in range(SEQ_LEN // BLOCK):
        pos = slice(b * BLOCK, (b + 1) * BLOCK)
        token = logp[:, pos].gather(-1, x0[:, pos].unsqueeze(-1)).squeeze(-1)
        nll = -(token * batch.masked[:, pos]).sum(-1)
        mq, sq = q.base_dist.loc[:, b], q.base_dist.scale[:, b]
        mp, sp = p.base_dist.loc[:, b], p.base_dist.scale[:, b]
        kl = (torch.log(sp / sq) + (sq ** 2 + (mq - mp) ** 2) / (2 * sp ** 2) - 0.5).sum(-1)
        used = batch.masked[:, pos].any(-1)
        hand = hand + (batch.weight[:, b] * (nll + beta * used * kl)).sum()
    assert loss == pytest.approx(float(hand.detach()), rel=1e-5)


def test_nfe_is_split_evenly_over_blocks():
    assert nfe_per_block(2, 2) == [1, 1]
    assert nfe_per_block(7, 3) == [3, 2, 2]
    assert sum(nfe_per_block(13, 4)) == 13


@pytest.mark.parametrize("cache", [True, False])
@pytest.mark.parametrize("nfe,calls", [(4, 4), (2, 4), (8, 7), (6, 5)])
def test_block_decoding_spends_its_calls_per_block_and_keeps_given_tokens(nfe, calls, cache,
                                                                         monkeypatch):
    """4 blocks of 2, position 3 given, so the blocks hold 2, 1, 2, 2 masks. Calls per block are
    nfe_per_block(nfe) capped by the block's masks: nfe 8 -> [2, 2, 2, 2] -> 2+1+2+2 = 7; nfe 6 ->
    [2, 2, 1, 1] -> 5; nfe below the block count is raised to one call per block (4)."""
    program = block_program(prior="gaussian")
    counted = []
    for call in ("logits", "next_block_logits"):  # the whole [x ; x], or one block from the cache
        original = getattr(program, call)
        monkeypatch.setattr(program, call, lambda *a, f=original: counted.append(1) or f(*a))
    x = all_masked(5, SEQ_LEN, program.mask_id)
    x[:, 3] = 2  # a given token
    with pytest.warns(UserWarning) if nfe < 4 else _nothing():
        out, used = generate(program, x, nfe=nfe, generator=torch.Generator().manual_seed(0),
                             cache=cache)
    assert len(counted) == calls == used
    assert (out < VOCAB).all() and (out[:, 3] == 2).all()


@pytest.mark.parametrize("model, prior, z_conditioning", [
    ("mdm", None, "input"), ("vmd", "gaussian", "input"), ("vmd", "discrete", "input"),
    ("vmd", "block-conditional", "input"), ("vmd", "block-mog", "input"),
    ("vmd", "gaussian", "film")])
def test_cached_block_logits_are_the_whole_sequence_logits(model, prior, z_conditioning):
    """Block b's logits from its noisy tokens and the kept keys and values of the clean blocks
    before it equal those of the network on the whole [xt ; x0] (every block)."""
    program = block_program(model=model, prior=prior or "gaussian")
    if z_conditioning == "film":
        program.cfg.net.z_conditioning = "film"
        program = build_program(program.cfg).eval()
        with torch.no_grad():
            program.denoiser.film.proj.weight.normal_()   # away from the no-effect start
    g = torch.Generator().manual_seed(3)
    x0 = random_tokens(5, 4)
    xt = torch.where(torch.rand(x0.shape, generator=g) < 0.5, program.mask_id, x0)
    z = (program.prior_dist(x0).sample() if program.has_latent else None)
    with torch.no_grad():
        whole = program.logits(xt, z, x0)
        past = None
        for b in range(SEQ_LEN // BLOCK):
            block = slice(b * BLOCK, (b + 1) * BLOCK)
            cached = program.next_block_logits(xt[:, block], z, b, past)
            torch.testing.assert_close(cached, whole[:, block], rtol=1e-5, atol=1e-5)
            past = program.denoiser.extend_past(x0[:, block], b, past)


@pytest.mark.parametrize("z_strategy", ["fixed", "resample", "posterior"])
def test_cached_block_decoding_draws_the_same_samples(z_strategy):
    program = block_program(prior="gaussian")
    x = all_masked(64, SEQ_LEN, program.mask_id)
    out = [generate(program, x, nfe=6, z_strategy=z_strategy, cache=cache,
                    generator=torch.Generator().manual_seed(5))[0] for cache in (True, False)]
    assert torch.equal(*out)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_bad_block_configurations_are_refused():
    with pytest.raises(ValueError, match="divisor"):
        block_program(block_size=3)
    with pytest.raises(ValueError, match="transformer"):
        from vmd_pyro.networks import NetConfig
        from vmd_pyro.program import ProgramConfig
        build_program(ProgramConfig(NetConfig(VOCAB, SEQ_LEN, arch="mlp", block_size=2)))
    with pytest.raises(ValueError, match="no block form"):
        block_program(prior="conditional")
    program = block_program()
    x = all_masked(1, SEQ_LEN, program.mask_id)
    with pytest.raises(ValueError, match="oracle' is for models without blocks"):
        generate(program, x, nfe=4, z_strategy="oracle", reference=random_tokens(1, 0))
