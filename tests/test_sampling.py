import itertools
import warnings

import pytest
import pyro
import torch
from torch import nn

from tests.conftest import tiny_program
from vmd_pyro.networks import NetConfig
from vmd_pyro.program import ProgramConfig, build_program
from vmd_pyro.sampling import (_draw, all_masked, counting_passes, decode, generate,
                               passes_after_each_try, stop_when_confident,
                               pseudo_log_likelihood, steps_schedule)


class RecordingDenoiser(nn.Module):
    """Fixed logits per position, independent of the input; records every input it is called with."""

    def __init__(self, logits):
        super().__init__()
        self.fixed = logits
        self.calls = []

    def forward(self, xt, z=None):
        self.calls.append(xt.clone())
        shape = xt.shape if z is None else torch.broadcast_shapes(z.shape[:-1], xt.shape[:-1]) + xt.shape[-1:]
        return self.fixed.expand(*shape, -1)


def program_with_logits(logits, model="mdm", **kw):
    program = tiny_program(model=model, vocab=logits.shape[-1], seq_len=logits.shape[0], **kw)
    program.denoiser = RecordingDenoiser(logits)
    return program


def count_calls(program):
    calls = []
    program.denoiser.register_forward_hook(lambda *a: calls.append(1))
    return calls


@pytest.mark.parametrize("model", ["mdm", "vmd"])
@pytest.mark.parametrize("z_strategy", ["fixed", "resample", "posterior"])
@pytest.mark.parametrize("nfe", [1, 2, 3, 5])
def test_exactly_nfe_network_calls(model, z_strategy, nfe):
    program = tiny_program(model=model, seq_len=5)
    calls = count_calls(program)
    out, used = generate(program, all_masked(7, 5, program.mask_id), nfe=nfe, z_strategy=z_strategy)
    assert len(calls) == nfe == used
    assert (out != program.mask_id).all()


def test_nfe_above_masked_positions_is_clamped_with_warning():
    program = tiny_program(model="vmd", seq_len=4)
    calls = count_calls(program)
    x = all_masked(3, 4, program.mask_id)
    x[:, :2] = 1  # only two masked positions per row
    with pytest.warns(UserWarning, match="exceeds the 2 masked"):
        _, used = generate(program, x, nfe=10)
    assert len(calls) == 2 == used


@pytest.mark.parametrize("order", ["random", "top-prob", "top-prob-margin"])
def test_given_tokens_never_change(order):
    program = tiny_program(model="vmd", seq_len=6)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 5, (50, 6), generator=g)
    given = torch.rand(50, 6, generator=g) < 0.5
    x = torch.where(given, x, torch.full_like(x, program.mask_id))
    out, _ = generate(program, x, nfe=3, order=order, z_strategy="posterior", generator=g)
    assert torch.equal(out[given], x[given])
    assert (out != program.mask_id).all()


def test_top_prob_and_margin_reveal_the_positions_they_claim():
    # Position 0: max prob 0.50 but margin 0.05; position 1: max 0.40, margin 0.20;
    # the rest are near uniform (max 0.24, margin ~0.01).
    probs = torch.tensor([[0.50, 0.45, 0.03, 0.01, 0.01],
                          [0.40, 0.20, 0.20, 0.10, 0.10],
                          [0.24, 0.23, 0.18, 0.18, 0.17],
                          [0.23, 0.24, 0.18, 0.18, 0.17],
                          [0.18, 0.17, 0.24, 0.23, 0.18]])
    logits = probs.log()
    expect_first = {"top-prob": 0, "top-prob-margin": 1}
    for order, position in expect_first.items():
        program = program_with_logits(logits)
        generate(program, all_masked(4, 5, program.mask_id), nfe=5, order=order, fill="argmax")
        second_input = program.denoiser.calls[1]
        revealed = (second_input != program.mask_id)
        assert revealed.sum(-1).tolist() == [1] * 4
        assert revealed[:, position].all(), order
        # argmax fill writes the most likely token
        assert (second_input[:, position] == probs[position].argmax()).all()


def test_reveal_counts_follow_even_split():
    probs = torch.full((7, 3), 1 / 3)
    program = program_with_logits(probs.log())
    generate(program, all_masked(2, 7, program.mask_id), nfe=3)
    masked_per_call = [int((c == program.mask_id).sum(-1)[0]) for c in program.denoiser.calls]
    assert masked_per_call == [7, 4, 2]
    assert steps_schedule(7, 3) == [3, 2, 2]


def test_sampling_fill_matches_probabilities():
    probs = torch.tensor([[0.7, 0.2, 0.1]])
    program = program_with_logits(probs.log())
    g = torch.Generator().manual_seed(0)
    out, _ = generate(program, all_masked(20000, 1, program.mask_id), nfe=1, generator=g)
    freq = torch.bincount(out[:, 0], minlength=3).double() / 20000
    assert torch.allclose(freq, probs[0].double(), atol=0.015)


def test_seeded_generator_reproduces_samples():
    program = tiny_program(model="vmd")
    x = all_masked(10, 4, program.mask_id)
    a, _ = generate(program, x, nfe=2, z_strategy="resample", generator=torch.Generator().manual_seed(3))
    b, _ = generate(program, x, nfe=2, z_strategy="resample", generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_bad_input_is_refused_clearly():
    program = tiny_program(model="vmd", vocab=5, seq_len=4)
    x = all_masked(2, 4, program.mask_id)
    with pytest.raises(ValueError, match="nfe must be an integer >= 1"):
        generate(program, x, nfe=0)
    with pytest.raises(ValueError, match="outside 0..5"):
        generate(program, torch.full((2, 4), 6), nfe=1)
    with pytest.raises(ValueError, match=r"shape \(batch, 4\)"):
        generate(program, all_masked(2, 3, program.mask_id), nfe=1)
    with pytest.raises(ValueError, match="unknown order"):
        generate(program, x, nfe=1, order="left-to-right")
    with pytest.raises(ValueError, match="needs a prior that depends on xt"):
        generate(program, x, nfe=1, z_strategy="prior")


def test_prior_strategy_with_conditional_prior():
    program = tiny_program(model="vmd", prior="conditional")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, _ = generate(program, all_masked(5, 4, program.mask_id), nfe=2, z_strategy="prior")
    assert (out != program.mask_id).all()


def test_mode_strategy_holds_z_at_the_most_probable_value_the_prior_gives_each_input():
    """With one call every masked position is filled, so a ``mode`` decode must be the denoiser's
    argmax under ``z* = argmax_k p(z = k | x)``, each row its own; the generator plays no part."""
    torch.manual_seed(0)
    program = tiny_program(model="vmd", prior="discrete-conditional", vocab=4, seq_len=5,
                           components=6)
    with torch.no_grad():
        for p in program.prior.parameters():
            p.normal_()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 4, (16, 5), generator=g)
    masked = torch.rand(16, 5, generator=g) < 0.6
    masked[:, 0] = True
    x = torch.where(masked, torch.full_like(x, program.mask_id), x)
    with torch.no_grad():
        best = program.prior.distribution(x, masked).probs.argmax(-1)
        expected = torch.where(masked, program.logits(x, best).argmax(-1), x)
    assert len(set(best.tolist())) > 1  # the rows' modes differ: each row must find its own
    for seed in (0, 1):
        out, used = generate(program, x, nfe=1, fill="argmax", z_strategy="mode",
                             generator=torch.Generator().manual_seed(seed))
        assert torch.equal(out, expected) and used == 1


def test_mode_strategy_takes_a_gaussian_priors_mean_and_refuses_a_mixture():
    program = tiny_program(model="vmd", prior="gaussian", vocab=4, seq_len=5, latent_dim=3)
    x = all_masked(6, 5, program.mask_id)
    x[:, 1] = 2
    with torch.no_grad():
        expected = torch.where(x == program.mask_id,
                               program.logits(x, torch.zeros(6, 3)).argmax(-1), x)
    out, _ = generate(program, x, nfe=1, fill="argmax", z_strategy="mode")
    assert torch.equal(out, expected)
    with pytest.raises(ValueError, match="needs a prior with a closed-form mode"):
        generate(tiny_program(model="vmd", prior="mog"), all_masked(2, 4, 5), nfe=1,
                 z_strategy="mode")


def test_seeded_draws_follow_the_generator_and_leave_the_global_stream_alone():
    """A draw with a generator is the distribution's sample after seeding torch's CPU stream with
    the generator's next number (what torch.manual_seed seeds on a CPU), and the global stream
    continues as if nothing had been drawn. A Normal (also inside Independent) is drawn as
    loc + scale * noise from the generator itself."""
    gamma = torch.distributions.Gamma(torch.full((5, 3), 2.0), 1.0)
    torch.manual_seed(11)
    expected_next = torch.rand(2)
    torch.manual_seed(11)
    drawn = _draw(gamma, torch.Generator().manual_seed(4), (2,))
    assert torch.equal(torch.rand(2), expected_next)
    seed = int(torch.randint(0, 2 ** 62, (), generator=torch.Generator().manual_seed(4)))
    torch.manual_seed(seed)
    assert torch.equal(drawn, gamma.sample((2,)))

    loc, scale = torch.randn(5, 3, requires_grad=True), torch.rand(5, 3) + 0.5
    for normal in (torch.distributions.Normal(loc, scale),
                   pyro.distributions.Normal(loc, scale).to_event(1)):
        torch.manual_seed(11)
        drawn = _draw(normal, torch.Generator().manual_seed(4), (2,))
        assert torch.equal(torch.rand(2), expected_next)
        noise = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(4))
        assert torch.equal(drawn, loc + scale * noise) and not drawn.requires_grad
        assert drawn.shape == normal.sample((2,)).shape


def map_program(seed=0, vocab=3, seq_len=3, components=4, **kw):
    """A tiny VMD with a discrete z whose prior and denoiser both matter (random, not uniform)."""
    torch.manual_seed(seed)
    program = tiny_program(model="vmd", prior="discrete", vocab=vocab, seq_len=seq_len,
                           components=components, **kw)
    with torch.no_grad():
        program.prior.logits.copy_(torch.randn(components))
    return program


def test_map_strategy_takes_the_joint_mode_of_a_one_call_step():
    """With one call every masked position is revealed, so ``map`` must return the x of
    argmax over (z, x) of p(z) prod_i p(x^i | xt, z), found here by enumerating every pair."""
    program = map_program()
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 3, (12, 3), generator=g)
    x = torch.where(torch.rand(12, 3, generator=g) < 0.4, x, torch.full_like(x, program.mask_id))
    x[0] = program.mask_id
    out, used = generate(program, x, nfe=1, fill="argmax", z_strategy="map")
    with torch.no_grad():
        log_prior = program.prior.logits.log_softmax(-1)
        log_probs = [program.logits(x, torch.full((12,), k)).log_softmax(-1) for k in range(4)]
    for row, xt in enumerate(x):
        best, best_x = float("-inf"), None
        for k in range(4):
            for values in itertools.product(range(3), repeat=3):
                cand = torch.tensor(values)
                if (xt != program.mask_id).any() and not torch.equal(
                        cand[xt != program.mask_id], xt[xt != program.mask_id]):
                    continue
                masked = xt == program.mask_id
                joint = float(log_prior[k] + log_probs[k][row, masked, cand[masked]].sum())
                if joint > best:
                    best, best_x = joint, cand
        assert torch.equal(out[row], best_x), row
    assert used == 1


@pytest.mark.parametrize("order", ["random", "top-prob-margin"])
def test_map_strategy_runs_the_network_once_per_value_of_z_in_each_call(order):
    program = map_program(seq_len=5)
    calls = count_calls(program)
    with counting_passes(program) as passes:
        out, used = generate(program, all_masked(4, 5, program.mask_id), nfe=3, order=order,
                             fill="argmax", z_strategy="map")
    assert used == 3 and len(calls) == 3 * 4
    assert passes == {"denoiser": 3 * 4 * 4, "prior": 0, "guide": 0}  # calls x values x rows
    assert (out != program.mask_id).all()


def test_map_strategy_is_refused_where_it_has_no_meaning():
    x = all_masked(2, 4, 5)
    with pytest.raises(ValueError, match="needs a discrete prior"):
        generate(tiny_program(model="vmd"), x, nfe=1, fill="argmax", z_strategy="map")
    with pytest.raises(ValueError, match="needs fill 'argmax'"):
        generate(map_program(vocab=5, seq_len=4), x, nfe=1, fill="sample", z_strategy="map")


def test_oracle_strategy_draws_z_from_the_posterior_given_the_answer():
    """With one call, ``oracle`` decodes with z ~ p(z | reference, xt) ∝ p(z) prod_i
    p(reference^i | xt, z) (the exact guide): each row's argmax fill is the proposal of its z, so
    the share of rows carrying each proposal must match the posterior mass behind it."""
    program = map_program(vocab=4, seq_len=3, components=4, guide="exact")
    rows = 6000
    x = all_masked(rows, 3, program.mask_id)
    reference = torch.tensor([[2, 0, 3]]).expand(rows, 3)
    out, used = generate(program, x, nfe=1, fill="argmax", z_strategy="oracle",
                         reference=reference, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        log_probs = torch.stack([program.logits(x[:1], torch.tensor([k]))[0].log_softmax(-1)
                                 for k in range(4)])                     # (K, L, V)
        posterior = (program.prior.logits.log_softmax(-1)
                     + log_probs[:, torch.arange(3), reference[0]].sum(-1)).softmax(-1)
    proposals = log_probs.argmax(-1)                                     # (K, L)
    expected = {}
    for k in range(4):
        key = tuple(proposals[k].tolist())
        expected[key] = expected.get(key, 0.0) + float(posterior[k])
    assert len(expected) > 1 and max(expected.values()) < 0.95  # the check can tell draws apart
    for key, mass in expected.items():
        share = float((out == torch.tensor(key)).all(-1).float().mean())
        assert abs(share - mass) < 4 * (mass * (1 - mass) / rows) ** 0.5 + 1e-3, (key, share, mass)
    assert sum(expected.values()) == pytest.approx(1.0) and used == 1


def test_oracle_strategy_needs_an_answer_that_fits():
    program = map_program(vocab=4, seq_len=3, guide="exact")
    x = torch.tensor([[1, program.mask_id, program.mask_id]])
    for reference, match in ((None, "pass reference"),
                             (torch.tensor([[2, 0, 3]]), "same given tokens"),
                             (torch.tensor([[1, program.mask_id, 3]]), "no mask tokens")):
        with pytest.raises(ValueError, match=match):
            generate(program, x, nfe=1, fill="argmax", z_strategy="oracle", reference=reference)
    out, _ = generate(tiny_program(model="mdm", vocab=4, seq_len=3), x, nfe=2,
                      z_strategy="oracle", reference=torch.tensor([[1, 0, 3]]))
    assert out[0, 0] == 1 and (out != program.mask_id).all()  # MDM: nothing to draw


@pytest.mark.parametrize("model, prior, z_strategy, per_row", [
    ("mdm", "gaussian", "fixed", (3, 0, 0)),                  # one denoiser pass per call
    ("vmd", "discrete", "resample", (3, 0, 0)),               # p(z) reads nothing
    ("vmd", "discrete-features", "fixed", (3 + 1, 0, 0)),     # its one draw reads the denoiser
    ("vmd", "discrete-features", "prior", (3 + 3, 0, 0)),     # and so does every redraw
    ("vmd", "discrete-features", "map", (3 * (4 + 1), 0, 0)),  # K proposals and p(z | xt) per call
    ("vmd", "discrete-conditional", "prior", (3, 3, 0)),      # its own encoder before every call
    ("vmd", "gaussian", "posterior", (3, 0, 2)),              # the guide after every call but the last
    ("vmd", "discrete", "oracle", (3 + 3 * 4, 0, 0)),         # the exact guide: K denoiser runs a call
    ("vmd", "discrete", "enumerate", (3 * 4, 0, 0)),          # K candidates of 3 calls
    ("vmd", "discrete-features", "enumerate", (1 + 3 * 4, 0, 0)),  # and p(z | x) read once
])
def test_counting_passes_counts_every_network_a_decoder_runs(model, prior, z_strategy, per_row):
    """Three calls on two rows of a transformer VMD with 4 values of z where z is discrete:
    the passes of each network, per row, follow from what each strategy runs."""
    guide = "exact" if prior.startswith("discrete") else None
    program = tiny_program(model=model, prior=prior, guide=guide, components=4, arch="transformer",
                           seq_len=5)
    x = all_masked(2, 5, program.mask_id)
    reference = torch.randint(0, program.cfg.net.vocab_size, x.shape) if z_strategy == "oracle" \
        else None
    with counting_passes(program) as passes:
        out, used = generate(program, x, nfe=3, order="top-prob-margin", fill="argmax",
                             z_strategy=z_strategy, reference=reference)
    assert used == 3 and (out != program.mask_id).all()
    assert passes == dict(zip(("denoiser", "prior", "guide"), [2 * n for n in per_row]))
    generate(program, x, nfe=3, fill="argmax", z_strategy=z_strategy, reference=reference)
    assert passes == dict(zip(("denoiser", "prior", "guide"), [2 * n for n in per_row]))  # unhooked


def test_counting_passes_refuses_block_models():
    with pytest.raises(ValueError, match="without blocks"):
        net = NetConfig(vocab_size=4, seq_len=4, arch="transformer", hidden=16, layers=1, heads=2,
                        block_size=2)
        with counting_passes(build_program(ProgramConfig(net=net, model="mdm"))):
            pass


def with_z_held_at(program, k: int):
    """A copy-free view of ``program`` whose discrete prior puts all its mass on ``z = k``: a
    ``fixed`` decode of it is the ``enumerate`` candidate of value ``k``, decoded on its own."""
    with torch.no_grad():
        saved = program.prior.logits.clone()
        program.prior.logits.fill_(-1e9)
        program.prior.logits[k] = 0.0
    return saved


def candidate_decodes(program, x, nfe, order):
    """Every value's decode with z held fixed, run on its own, and the log-probability of its
    path recomputed from the recorded calls: ``[(tokens, path_log_prob)]`` per value of z."""
    out = []
    for k in range(program.prior.logits.shape[0]):
        saved = with_z_held_at(program, k)
        reveals = []
        tokens, _ = generate(program, x, nfe=nfe, order=order, fill="argmax", z_strategy="fixed",
                             on_reveal=lambda call, reveal: reveals.append(reveal.clone()))
        with torch.no_grad():
            program.prior.logits.copy_(saved)
            state, path = x.clone(), torch.zeros(x.shape[0], dtype=torch.float64)
            z = torch.full((x.shape[0],), k)
            for reveal in reveals:
                log_probs = program.logits(state, z).double().log_softmax(-1)
                chosen = log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
                path += torch.where(reveal, chosen, 0.0).sum(-1)
                state = torch.where(reveal, tokens, state)
        assert torch.equal(state, tokens)
        out.append((tokens, path, reveals))
    return out


def test_enumerate_keeps_the_value_of_z_whose_decode_is_most_probable():
    """``enumerate`` must return, per row, the decode with z held at the value k that maximises
    log p(z = k) + the log-probability of that decode's own path, each candidate decoded here on
    its own (a prior with all its mass on k) and its path scored again from its recorded calls;
    ``on_reveal`` must hear the kept candidate's calls."""
    program = map_program(vocab=3, seq_len=6, components=4)
    with torch.no_grad():
        program.prior.logits.mul_(0.1)  # a flatter prior: the paths decide
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 3, (24, 6), generator=g)
    x = torch.where(torch.rand(24, 6, generator=g) < 0.5, program.mask_id, x)
    x[:, :3] = program.mask_id  # at least three blanks a row
    nfe, heard, offered = 3, [], []
    out, used = generate(program, x, nfe=nfe, order="top-prob-margin", fill="argmax",
                         z_strategy="enumerate",
                         on_reveal=lambda call, reveal: heard.append(reveal),
                         on_candidates=offered.append)
    given = x != program.mask_id
    assert used == nfe and (out != program.mask_id).all() and torch.equal(out[given], x[given])
    candidates = candidate_decodes(program, x, nfe, "top-prob-margin")
    log_prior = program.prior.logits.detach().double().log_softmax(-1)
    scores = torch.stack([log_prior[k] + path for k, (_, path, _) in enumerate(candidates)], -1)
    best = scores.argmax(-1)
    assert len(set(best.tolist())) > 1  # rows keep different values: the check can tell them apart
    for row in range(x.shape[0]):
        tokens, _, reveals = candidates[int(best[row])]
        assert torch.equal(out[row], tokens[row]), row
        assert all(torch.equal(h[row], r[row]) for h, r in zip(heard, reveals)), row
    # on_candidates hears every value's decode, in the order of the values
    assert len(offered) == 1 and offered[0].shape == (24, 4, 6)
    assert torch.equal(offered[0], torch.stack([tokens for tokens, _, _ in candidates], 1))


def test_enumerate_with_z_values_decodes_each_rows_most_probable_values_only():
    """``z_values=M``: each row tries only the M values of z most probable under its own
    ``p(z | x)`` and keeps the best of those by ``log p(z | x) + path``; with one call each
    value's decode is the denoiser's argmax under it, computed here value by value."""
    torch.manual_seed(0)
    program = tiny_program(model="vmd", prior="discrete-conditional", vocab=4, seq_len=5,
                           components=6)
    with torch.no_grad():  # a prior and a denoiser that both matter
        for p in program.parameters():
            p.normal_(std=0.5)
        for p in program.prior.parameters():
            p.mul_(0.6)
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 4, (20, 5), generator=g)
    masked = torch.rand(20, 5, generator=g) < 0.6
    masked[:, :2] = True
    x = torch.where(masked, torch.full_like(x, program.mask_id), x)
    offered = []
    out, used = generate(program, x, nfe=1, fill="argmax", z_strategy="enumerate", z_values=3,
                         on_candidates=offered.append)
    with torch.no_grad():
        log_prior = program.prior.distribution(x, masked).logits.double().log_softmax(-1)
        decodes, scores = [], []
        for k in range(6):
            log_probs = program.logits(x, torch.full((20,), k)).double().log_softmax(-1)
            top, tokens = log_probs.max(-1)
            decodes.append(torch.where(masked, tokens, x))
            scores.append(log_prior[:, k] + torch.where(masked, top, 0.0).sum(-1))
    scores = torch.stack(scores, -1)
    short_list = log_prior.topk(3, -1).indices
    assert len({tuple(r) for r in short_list.sort(-1).values.tolist()}) > 1  # lists differ by row
    best_everywhere = scores.argmax(-1)
    kept = short_list.gather(-1, scores.gather(-1, short_list).argmax(-1, keepdim=True))[:, 0]
    assert (kept != best_everywhere).any()  # somewhere the short list leaves out the best value
    assert (kept != short_list[:, 0]).any()  # and somewhere the paths overrule the prior
    assert used == 1
    for row in range(20):
        assert torch.equal(out[row], decodes[int(kept[row])][row]), row
        assert torch.equal(offered[0][row],
                           torch.stack([decodes[int(k)][row] for k in short_list[row]]))
    with pytest.raises(ValueError, match="above the 6 values"):
        generate(program, x, nfe=1, fill="argmax", z_strategy="enumerate", z_values=7)
    with pytest.raises(ValueError, match="limits z strategy 'enumerate'"):
        generate(program, x, nfe=1, fill="argmax", z_strategy="fixed", z_values=2)
    for bad in (-1, "2", True):
        with pytest.raises(ValueError, match="z_values must be an integer >= 0"):
            generate(program, x, nfe=1, fill="argmax", z_strategy="enumerate", z_values=bad)


def test_pseudo_log_likelihood_scores_each_filled_position_given_all_the_others():
    """With as many groups as blanks, every group holds one blank: the score is the sum over the
    blanks of log p(x^i | x^{-i}, z), computed here position by position."""
    program = map_program(vocab=4, seq_len=5, components=3)
    g = torch.Generator().manual_seed(3)
    filled = torch.randint(0, 4, (6, 5), generator=g)
    x = torch.where(torch.rand(6, 5, generator=g) < 0.6, program.mask_id, filled)
    x[0] = program.mask_id
    z = torch.randint(0, 3, (6,), generator=g)
    score = pseudo_log_likelihood(program, x, filled, z, groups=5, generator=g)
    expected = torch.zeros(6, dtype=torch.float64)
    with torch.no_grad():
        for i in range(5):
            masked_i = filled.clone()
            masked_i[:, i] = program.mask_id
            log_probs = program.logits(masked_i, z)[:, i].double().log_softmax(-1)
            term = log_probs.gather(-1, filled[:, i:i + 1]).squeeze(-1)
            expected += torch.where(x[:, i] == program.mask_id, term, 0.0)
    assert torch.allclose(score, expected, atol=1e-6)
    two = pseudo_log_likelihood(program, x, filled, z, groups=2, generator=g)
    assert not torch.allclose(two, expected)  # larger groups hide more: a different score


def test_pseudo_likelihood_selection_keeps_the_candidate_it_scores_highest():
    """``select='pseudo-likelihood'`` with one blank per group: per row, the decode of the value k
    that maximises log p(z = k) + sum_i log p(x_k^i | x_k^{-i}, z = k) over its blanks."""
    program = map_program(vocab=3, seq_len=6, components=4)
    with torch.no_grad():
        program.prior.logits.mul_(0.1)  # a flatter prior: the pseudo-likelihoods decide
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 3, (24, 6), generator=g)
    x = torch.where(torch.rand(24, 6, generator=g) < 0.5, program.mask_id, x)
    x[:, :3] = program.mask_id
    out, _ = generate(program, x, nfe=2, order="top-prob-margin", fill="argmax",
                      z_strategy="enumerate", select="pseudo-likelihood", check_groups=6)
    candidates = candidate_decodes(program, x, 2, "top-prob-margin")
    log_prior = program.prior.logits.detach().double().log_softmax(-1)
    scores = torch.stack([log_prior[k] + pseudo_log_likelihood(
        program, x, tokens, torch.full((24,), k), groups=6)
        for k, (tokens, _, _) in enumerate(candidates)], -1)
    best = scores.argmax(-1)
    assert len(set(best.tolist())) > 1
    for row in range(24):
        assert torch.equal(out[row], candidates[int(best[row])][0][row]), row


def test_candidates_keep_the_most_probable_of_several_sampled_decodes():
    """An MDM decoding two positions in one call, with sampled tokens: a decode's path
    log-probability is log p(x^1) + log p(x^2), so among 200 candidates the kept one is the mode
    (each candidate hits it with probability 0.25), where single samples mostly are not."""
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.2, 0.3]])
    program = program_with_logits(probs.log())
    x = all_masked(40, 2, program.mask_id)
    g = torch.Generator().manual_seed(0)
    single, _ = generate(program, x, nfe=1, fill="sample", generator=g)
    assert (single != 0).any(-1).float().mean() > 0.5
    kept, used = generate(program, x, nfe=1, fill="sample", generator=g, candidates=200)
    assert used == 1 and (kept == 0).all()
    assert program.denoiser.calls[-1].shape == (40 * 200, 2)  # one batch of every candidate


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_samples_from_the_tempered_distribution_and_scores_with_the_model(temperature):
    """One call filling one position: the tokens follow softmax(log p / T), proportional to
    p^(1/T) (a binomial tolerance of 5 standard errors over 20,000 rows), while the path
    log-probability of each draw stays the model's own log p."""
    probs = torch.tensor([[0.6, 0.3, 0.1]])
    program = program_with_logits(probs.log())
    x = all_masked(20_000, 1, program.mask_id)
    decoded, _ = decode(program, x, nfe=1, order="random", fill="sample", z_strategy="fixed",
                        generator=torch.Generator().manual_seed(0), temperature=temperature)
    tempered = probs[0] ** (1 / temperature) / (probs[0] ** (1 / temperature)).sum()
    freq = torch.bincount(decoded.x[:, 0], minlength=3).double() / len(x)
    assert torch.allclose(freq, tempered.double(), atol=5 * (0.25 / len(x)) ** 0.5), (freq, tempered)
    assert torch.allclose(decoded.path_log_prob, probs[0].double().log()[decoded.x[:, 0]])


def test_a_tiny_temperature_is_argmax_and_a_bad_one_is_refused():
    program = tiny_program(model="mdm", seq_len=5)
    x = all_masked(16, 5, program.mask_id)
    argmax, _ = generate(program, x, nfe=2, fill="argmax", order="top-prob")
    cold, _ = generate(program, x, nfe=2, fill="sample", order="top-prob", temperature=1e-9,
                       generator=torch.Generator().manual_seed(0))
    assert torch.equal(cold, argmax)
    for bad in (0, -1.0, float("inf"), "1", True):
        with pytest.raises(ValueError, match="temperature must be a positive number"):
            generate(program, x, nfe=1, temperature=bad)


def test_several_candidates_are_refused_where_they_have_no_meaning():
    x = all_masked(2, 4, 5)
    with pytest.raises(ValueError, match="needs a discrete prior"):
        generate(tiny_program(model="vmd"), x, nfe=1, z_strategy="enumerate")
    with pytest.raises(ValueError, match="leave candidates at 1"):
        generate(map_program(vocab=5, seq_len=4), x, nfe=1, z_strategy="enumerate", candidates=2)
    for kw, match in (({"candidates": 0}, "candidates must be"), ({"select": "best"}, "unknown selection"),
                      ({"check_groups": 0}, "check_groups must be")):
        with pytest.raises(ValueError, match=match):
            generate(tiny_program(model="mdm"), x, nfe=1, **kw)
    net = NetConfig(vocab_size=4, seq_len=4, arch="transformer", hidden=16, layers=1, heads=2,
                    block_size=2)
    blocks = build_program(ProgramConfig(net=net, model="mdm"))
    with pytest.raises(ValueError, match="'pseudo-likelihood' is for models without blocks"):
        generate(blocks, all_masked(2, 4, 4), nfe=2, candidates=2, select="pseudo-likelihood")
    out, used = generate(blocks, all_masked(2, 4, 4), nfe=2, candidates=3)  # path works in blocks
    assert used == 2 and out.shape == (2, 4) and (out != 4).all()


def test_distinct_checks_score_each_different_decode_once_and_keep_the_same_grid():
    """``check_distinct``: an MDM sampling 40 candidates of 4 positions over 2 tokens decodes many
    sequences twice; each different one is checked once. With one blank per group the check draws
    nothing at random, so the kept grids equal those of checking every copy, and the check's
    passes fall from candidates x groups to (different decodes per row, counted here) x groups."""
    torch.manual_seed(0)
    program = tiny_program(model="mdm", vocab=2, seq_len=4)
    x = all_masked(6, 4, program.mask_id)
    x[:3, 0] = 1                                              # rows with 3 blanks and with 4
    kept, passes, offered = {}, {}, []
    for distinct in (False, True):
        with counting_passes(program) as passes[distinct]:
            kept[distinct], _ = generate(program, x, nfe=2, fill="sample", candidates=40,
                                         select="pseudo-likelihood", check_groups=4,
                                         check_distinct=distinct,
                                         generator=torch.Generator().manual_seed(1),
                                         on_candidates=offered.append)
    assert torch.equal(offered[0], offered[1]) and torch.equal(kept[False], kept[True])
    different = sum(len({tuple(g) for g in row.tolist()}) for row in offered[0])
    assert different <= 3 * 2 ** 3 + 3 * 2 ** 4 < 6 * 40      # the saving is real here
    decoding = 6 * 40 * 2
    assert passes[False]["denoiser"] == decoding + 6 * 40 * 4
    assert passes[True]["denoiser"] == decoding + different * 4


def test_distinct_checks_of_enumerate_check_each_grid_once_under_its_most_probable_z():
    """Enumeration with ``check_distinct``: a grid that several values of z decode is checked
    once, under the value most probable given the row, and keeps ``log p(z | x)`` of that value.
    With one call each value's decode is the denoiser's argmax under it, and with one blank per
    group the check draws nothing at random, so the kept grid and the passes are computed here
    grid by grid."""
    torch.manual_seed(1)
    rows, values = 32, 6
    program = tiny_program(model="vmd", prior="discrete-conditional", vocab=2, seq_len=4,
                           components=values)
    with torch.no_grad():  # a prior that reads the row, and a denoiser that both matter
        for p in program.parameters():
            p.normal_(std=0.5)
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 2, (rows, 4), generator=g)
    masked = torch.rand(rows, 4, generator=g) < 0.6
    masked[:, 0], masked[0] = True, True                      # row 0 has every position blank
    x = torch.where(masked, torch.full_like(x, program.mask_id), x)
    offered = []
    with counting_passes(program) as passes:
        out, used = generate(program, x, nfe=1, fill="argmax", z_strategy="enumerate",
                             select="pseudo-likelihood", check_groups=4, check_distinct=True,
                             on_candidates=offered.append)
    with torch.no_grad():
        log_prior = program.prior.distribution(x, masked).logits.double().log_softmax(-1)
        decodes = torch.stack([torch.where(masked, program.logits(x, torch.full((rows,), k))
                                           .argmax(-1), x) for k in range(values)], 1)

        def best(row, grids, pick):  # the best grid, each checked under the value pick(ks)
            score = {}
            for grid, ks in grids.items():  # log p(z | x) of the most probable value, ks[0]
                k, total = pick(ks), float(log_prior[row, ks[0]])
                for i in masked[row].nonzero()[:, 0].tolist():  # log p(grid_i | the rest, k)
                    probe = torch.tensor(grid)
                    probe[i] = program.mask_id
                    log_probs = program.logits(probe[None], torch.tensor([k]))[0, i].double()
                    total += float(log_probs.log_softmax(-1)[grid[i]])
                score[grid] = total
            return max(score, key=score.get)
        different, overruled = 0, 0
        for row in range(rows):
            grids = {}  # each different grid: the values that decode it, most probable first
            for k in log_prior[row].argsort(descending=True).tolist():
                grids.setdefault(tuple(decodes[row, k].tolist()), []).append(k)
            different += len(grids)
            kept = best(row, grids, lambda ks: ks[0])
            assert tuple(out[row].tolist()) == kept, row
            overruled += kept != best(row, grids, min)
    assert torch.equal(offered[0], decodes) and used == 1
    assert different < rows * values and overruled  # grids shared; checking them under the
    # lowest value of z that decodes them, not the most probable, would keep another somewhere
    assert passes["denoiser"] == rows * values + different * 4
    # z drawn per candidate: equal grids share one check too, whatever z each copy drew
    with counting_passes(program) as passes:
        generate(program, x, nfe=1, fill="argmax", candidates=12, select="pseudo-likelihood",
                 check_groups=4, check_distinct=True, on_candidates=offered.append)
    different = sum(len({tuple(g) for g in row.tolist()}) for row in offered[1])
    assert passes["denoiser"] == rows * 12 + different * 4
    with pytest.raises(ValueError, match="check_distinct shares the checks"):
        generate(program, x, nfe=1, fill="argmax", z_strategy="enumerate", check_distinct=True)


def test_pseudo_likelihood_selection_adds_one_pass_per_group_and_candidate():
    program = map_program(vocab=3, seq_len=5, components=4)
    with counting_passes(program) as passes:
        generate(program, all_masked(2, 5, program.mask_id), nfe=3, fill="argmax",
                 z_strategy="enumerate", select="pseudo-likelihood", check_groups=2)
    assert passes["denoiser"] == 2 * 4 * (3 + 2)  # rows x values x (calls + groups)


def test_stop_when_confident_on_a_worked_example():
    """One row, candidates A, B, A, C (5 passes to decode each, 5 more to check each new grid)."""
    a, b, c = [0, 0], [0, 1], [1, 1]
    grids = torch.tensor([[a, b, a, c]])
    scores = torch.tensor([[-5.0, -1.0, -1.0, -0.5]], dtype=torch.float64)
    for threshold, kept, passes in [(-9.0, 0, 10),        # the first is good enough
                                    (-1.0, 1, 20),        # B reaches it: two tried, two checked
                                    (-0.7, 3, 35),        # A again costs no check; C reaches it
                                    (float("inf"), 3, 35)]:  # none reaches it: all tried, best kept
        got = stop_when_confident(scores, grids, threshold, decode_passes=5, check_passes=5)
        assert got[0].tolist() == [kept] and got[1].tolist() == [passes], threshold
    # at most two tried: A and B, and B kept, however high the threshold
    got = stop_when_confident(scores, grids, -0.7, decode_passes=5, check_passes=5,
                              max_candidates=2)
    assert got[0].tolist() == [1] and got[1].tolist() == [20]
    # giving up after two tries that both score below -0.9 (B's -1.0 is the best of them)
    got = stop_when_confident(scores, grids, -0.7, decode_passes=5, check_passes=5,
                              give_up_after=2, give_up_below=-0.9)
    assert got[0].tolist() == [1] and got[1].tolist() == [20]
    got = stop_when_confident(scores, grids, -0.7, decode_passes=5, check_passes=5,
                              give_up_after=2, give_up_below=-1.0)   # B is not below -1.0
    assert got[0].tolist() == [3] and got[1].tolist() == [35]


def test_stop_when_confident_matches_a_loop_over_candidates():
    g = torch.Generator().manual_seed(0)
    rows, count = 40, 7
    grids = torch.randint(0, 2, (rows, count, 3), generator=g)    # 8 possible grids: many repeats
    scores = torch.randn(rows, count, generator=g, dtype=torch.float64)
    rules = [(None, float("-inf")), (1, -0.2), (2, 0.5), (3, 0.0), (count - 1, 1.5), (count, 9.0)]
    for threshold in (-0.5, 0.3, 1.2):
        for after, below in rules:  # give up after `after` tries that all scored below `below`
            kept, passes = stop_when_confident(scores, grids, threshold, decode_passes=3,
                                               check_passes=2, give_up_after=after,
                                               give_up_below=below)
            for r in range(rows):
                seen, spent, best = set(), 0, None
                for i in range(count):
                    spent += 3
                    if tuple(grids[r, i].tolist()) not in seen:
                        seen.add(tuple(grids[r, i].tolist()))
                        spent += 2
                    if best is None or scores[r, i] > scores[r, best]:
                        best = i
                    if scores[r, i] >= threshold:
                        break
                    if i + 1 == after and scores[r, best] < below:
                        break
                assert (int(kept[r]), int(passes[r])) == (best, spent), (threshold, after, r)
            # the same with the passes computed once by the caller, and a cap
            given = passes_after_each_try(grids, decode_passes=3, check_passes=2)
            for cap in (None, 4):
                expected = stop_when_confident(scores, grids, threshold, decode_passes=3,
                                               check_passes=2, give_up_after=after,
                                               give_up_below=below, max_candidates=cap)
                got = stop_when_confident(scores, grids, threshold, decode_passes=3,
                                          check_passes=2, give_up_after=after,
                                          give_up_below=below, max_candidates=cap, spent=given)
                assert all(torch.equal(a, b) for a, b in zip(got, expected))


def test_on_scores_hears_the_scores_that_keep_a_candidate_and_stopping_never_costs_more():
    """The scores told are those selection maximises; with a threshold no score reaches, the
    stopping decoder tries everything and spends what the batch decoder measurably spends."""
    torch.manual_seed(1)
    program = tiny_program(model="mdm", vocab=3, seq_len=6)
    with torch.no_grad():
        for p in program.parameters():
            p.normal_(std=0.5)
    x = torch.full((20, 6), program.mask_id)
    x[:, 0] = torch.arange(20) % 3
    offered, heard = [], []
    with counting_passes(program) as passes:
        out, _ = generate(program, x, nfe=2, fill="sample", candidates=6,
                          select="pseudo-likelihood", check_groups=3, check_distinct=True,
                          on_candidates=offered.append, on_scores=heard.append,
                          generator=torch.Generator().manual_seed(0))
    grids, scores = offered[0], heard[0]
    assert scores.shape == (20, 6)
    assert torch.equal(out, grids[torch.arange(20), scores.argmax(-1)])
    kept, spent = stop_when_confident(scores, grids, float("inf"), decode_passes=2, check_passes=3)
    assert torch.equal(kept, scores.argmax(-1)) and int(spent.sum()) == passes["denoiser"]
    _, early = stop_when_confident(scores, grids, float(scores.median()), decode_passes=2,
                                   check_passes=3)
    assert (early <= spent).all() and early.sum() < spent.sum()
