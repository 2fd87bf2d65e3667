"""Networks: position groups and group-restricted attention (the Sudoku constraint graph)."""
import json

import pytest
import torch

from vmd_pyro.datasets.sudoku import SudokuTask
from vmd_pyro.networks import (MLPDenoiser, NetConfig, TransformerDenoiser, group_attention_mask,
                              make_denoiser)
from vmd_pyro.program import ProgramConfig

GROUPS = SudokuTask.position_groups


def sudoku_net(**kw) -> NetConfig:
    return NetConfig(**{"vocab_size": 9, "seq_len": 81, "arch": "transformer", "hidden": 16,
                        "layers": 1, "heads": 2, "position_groups": GROUPS, **kw})


def test_group_mask_allows_exactly_the_sudoku_peers():
    allowed = ~group_attention_mask(GROUPS)
    # Counted by hand: 8 in the row, 8 in the column, 4 more in the box, and the cell itself.
    assert allowed.sum(1).tolist() == [21] * 81
    assert torch.equal(allowed, allowed.T)
    r, c = divmod(40, 9)  # the centre cell
    peers = {i for i in range(81) if i // 9 == r or i % 9 == c
             or (i // 27 == r // 3 and (i % 9) // 3 == c // 3)}
    assert set(allowed[40].nonzero().flatten().tolist()) == peers


def test_one_layer_with_group_attention_sees_only_peers():
    torch.manual_seed(0)
    net = TransformerDenoiser(sudoku_net(attention="groups")).eval()
    x = torch.randint(0, 10, (1, 81))
    base = net(x)[0, 0]
    far, peer = x.clone(), x.clone()
    far[0, 80] = (x[0, 80] + 1) % 10    # row 8, column 8, box 8: not a peer of cell 0
    peer[0, 8] = (x[0, 8] + 1) % 10     # same row as cell 0
    assert torch.allclose(net(far)[0, 0], base)
    assert not torch.allclose(net(peer)[0, 0], base)
    full = TransformerDenoiser(sudoku_net()).eval()
    assert not torch.allclose(full(far)[0, 0], full(x)[0, 0])


def test_group_attention_broadcasts_over_latent_samples():
    net = TransformerDenoiser(sudoku_net(attention="groups", latent_dim=3))
    x = torch.randint(0, 10, (4, 81))
    assert net(x, torch.randn(5, 4, 3)).shape == (5, 4, 81, 9)


def test_position_groups_survive_a_json_round_trip():
    cfg = ProgramConfig(net=sudoku_net(attention="groups"), model="mdm")
    again = ProgramConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize("kw, message", [
    ({"position_groups": ((0, 1),)}, "one group id per position"),
    ({"attention": "rows"}, "unknown attention"),
    ({"attention": "groups"}, "needs position_groups"),
])
def test_bad_structure_is_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        NetConfig(vocab_size=9, seq_len=81, arch="transformer", **kw)


def test_lookup_first_layer_equals_embedding_then_linear():
    # embed_flatten_linear computes linear(embed(x).flatten(-2)) from a per-position table; the
    # function and its gradients must be the plain ones, for batches both above and below the
    # number of token ids (where it switches to the plain computation).
    from vmd_pyro.networks import embed_flatten_linear
    torch.manual_seed(0)
    embed, linear = torch.nn.Embedding(11, 8), torch.nn.Linear(4 * 8, 6)
    for shape in [(64, 4), (3, 4), (2, 32, 4)]:
        x = torch.randint(0, 11, shape)
        plain = linear(embed(x).flatten(-2))
        fast = embed_flatten_linear(embed, linear, x)
        assert fast.shape == plain.shape
        assert torch.allclose(fast, plain, atol=1e-5)
        weights = [embed.weight, linear.weight, linear.bias]
        g_plain = torch.autograd.grad((plain * plain.detach()).sum(), weights)
        g_fast = torch.autograd.grad((fast * plain.detach()).sum(), weights)
        for a, b in zip(g_plain, g_fast):
            assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("arch", ["mlp", "transformer"])
def test_guide_is_small_by_default_and_full_size_on_request(arch):
    from vmd_pyro.program import build_program
    net = NetConfig(vocab_size=9, seq_len=12, arch=arch, hidden=64, layers=3, heads=4)
    small = build_program(ProgramConfig(net=net))
    assert (small.cfg.guide_hidden, small.cfg.guide_layers) == (16, 1)
    full = build_program(ProgramConfig(net=net, guide_hidden=64, guide_layers=3))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(small.guide_net) < count(small.denoiser) / 5
    if arch == "transformer":
        assert count(full.guide_net) > count(full.denoiser) / 2
        assert len(small.guide_net.encoder.trunk.layers.layers) == 1
    else:  # hidden layers: the one-hot first layer, then guide_layers - 1 Linear layers
        hidden = lambda enc: 1 + sum(isinstance(m, torch.nn.Linear) for m in enc.mlp)  # noqa: E731
        assert hidden(small.guide_net.encoder) == 1 and hidden(full.guide_net.encoder) == 3
        assert {p.shape[-1] for p in full.guide_net.encoder.mlp.parameters()} == {64}
    if arch == "transformer":
        with pytest.raises(ValueError, match="multiple of the 4 attention heads"):
            ProgramConfig(net=net, guide_hidden=18)


@pytest.mark.parametrize("prior,block_size", [("block-mog", 4), ("block-conditional", 4),
                                               ("conditional", 0)])
def test_a_learned_prior_has_its_own_size_and_the_denoisers_by_default(prior, block_size):
    import models  # noqa: F401  (fills the prior registry)
    from vmd_pyro.program import build_program
    net = NetConfig(vocab_size=9, seq_len=12, arch="transformer", hidden=64, layers=3, heads=4,
                    block_size=block_size)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    default = build_program(ProgramConfig(net=net, prior=prior))
    small = build_program(ProgramConfig(net=net, prior=prior, prior_hidden=16, prior_layers=1))
    assert (default.cfg.prior_hidden, default.cfg.prior_layers) == (64, 3)
    widths = {p.shape[-1] for n, p in small.prior.named_parameters() if n.endswith("embed.weight")}
    assert widths == {16}
    assert count(small.denoiser) == count(default.denoiser)
    assert count(small.prior) < count(default.prior) / 5
    with pytest.raises(ValueError, match="prior_hidden 18 must be a multiple"):
        ProgramConfig(net=net, prior=prior, prior_hidden=18)
    with pytest.raises(ValueError, match="prior_layers must be >= 1"):
        ProgramConfig(net=net, prior=prior, prior_layers=0)


def test_configs_saved_before_guide_sizes_load_with_a_full_size_guide():
    net = NetConfig(vocab_size=9, seq_len=12, hidden=64, layers=3)
    old = ProgramConfig(net=net).to_dict()
    del old["guide_hidden"], old["guide_layers"], old["prior_hidden"], old["prior_layers"]
    cfg = ProgramConfig.from_dict(old)
    assert (cfg.guide_hidden, cfg.guide_layers) == (64, 3)
    assert (cfg.prior_hidden, cfg.prior_layers) == (64, 3)
    assert ProgramConfig.from_dict(ProgramConfig(net=net).to_dict()) == ProgramConfig(net=net)


@pytest.mark.parametrize("attention", ["full", "groups"])
def test_training_path_of_the_trunk_equals_the_stock_encoder(attention):
    # TransformerTrunk.encode runs its own layer function when gradients are on; it must compute
    # what nn.TransformerEncoder computes, values and gradients.
    torch.manual_seed(0)
    net = TransformerDenoiser(sudoku_net(attention=attention, latent_dim=2))
    x, z = torch.randint(0, 10, (3, 81)), torch.randn(3, 2)
    fast = net(x, z)
    trunk = net.trunk
    h = trunk.embed(x) + trunk.positions() + net.z_proj(z)[:, None]
    stock = net.out(trunk.norm(trunk.layers(h, mask=trunk.attn_mask)))
    assert torch.allclose(fast, stock, atol=1e-5)
    params = list(net.parameters())
    for a, b in zip(torch.autograd.grad(fast.square().sum(), params),
                    torch.autograd.grad(stock.square().sum(), params)):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    with torch.no_grad():  # sampling: the stock module's inference path
        assert torch.allclose(net.eval()(x, z), stock, atol=1e-5)


# --- z in every layer (z_conditioning="film") ----------------------------------------------------

def constant_modulation(net, seed=0):
    """Give ``net.film`` a z-independent scale and shift (zero weight, random bias); returns the
    ``(layers, slots, H)`` values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        net.film.proj.bias.copy_(0.3 * torch.randn(net.film.proj.bias.shape, generator=gen))
    return net.film.proj.bias.view(net.film.shape)


def fold_into_affine(weight, bias, mod, place):
    """``(1 + s) * (W x + b) + t`` is the affine map ``(diag(1 + s) W, (1 + s) b + t)``."""
    scale, shift = 1 + mod[2 * place], mod[2 * place + 1]
    weight.mul_(scale.unsqueeze(-1) if weight.dim() == 2 else scale)
    bias.mul_(scale).add_(shift)


def test_film_mlp_equals_its_layers_with_the_modulation_folded_in():
    torch.manual_seed(0)
    cfg = NetConfig(vocab_size=5, seq_len=4, hidden=12, layers=2, latent_dim=3)
    film = MLPDenoiser(NetConfig(**{**cfg.__dict__, "z_conditioning": "film"}))
    plain = MLPDenoiser(cfg)
    plain.load_state_dict({k: v for k, v in film.state_dict().items() if not k.startswith("film")})
    x, z = torch.randint(0, 6, (7, 4)), torch.randn(7, 3)
    assert torch.allclose(film(x, z), plain(x, z))          # the zero start changes nothing
    mod = constant_modulation(film)
    with torch.no_grad():
        for layer, linear in enumerate(plain.body[1::2]):
            fold_into_affine(linear.weight, linear.bias, mod[layer], 0)
    assert torch.allclose(film(x, z), plain(x, z), atol=1e-5)


@pytest.mark.parametrize("grad", [True, False])
def test_film_transformer_equals_the_stock_layers_with_scaled_norms(grad):
    """Adaptive layer norm with a z-independent scale and shift is a layer norm with other
    parameters: compare against PyTorch's own encoder (its inference path when no gradient)."""
    torch.manual_seed(0)
    cfg = sudoku_net(latent_dim=3, layers=2)
    film = TransformerDenoiser(NetConfig(**{**cfg.__dict__, "z_conditioning": "film"})).eval()
    plain = TransformerDenoiser(cfg).eval()
    plain.load_state_dict({k: v for k, v in film.state_dict().items() if not k.startswith("film")})
    mod = constant_modulation(film)
    with torch.no_grad():
        for index, layer in enumerate(plain.trunk.layers.layers):
            fold_into_affine(layer.norm1.weight, layer.norm1.bias, mod[index], 0)
            fold_into_affine(layer.norm2.weight, layer.norm2.bias, mod[index], 1)
    x, z = torch.randint(0, 10, (3, 81)), torch.randn(3, 3)
    with torch.set_grad_enabled(grad):
        assert torch.allclose(film(x, z), plain(x, z), atol=1e-4)


@pytest.mark.parametrize("z_conditioning", ["film", "head"])
@pytest.mark.parametrize("arch", ["mlp", "transformer"])
def test_film_broadcasts_over_latent_samples(arch, z_conditioning):
    torch.manual_seed(0)
    cfg = NetConfig(vocab_size=5, seq_len=6, arch=arch, hidden=8, layers=2, heads=2,
                    latent_dim=3, z_conditioning=z_conditioning)
    net = make_denoiser(cfg)
    with torch.no_grad():
        net.film.proj.weight.normal_()
    x, z = torch.randint(0, 6, (4, 6)), torch.randn(5, 4, 3)
    together = net(x, z)
    assert together.shape == (5, 4, 6, 5)
    for s in range(5):
        assert torch.allclose(together[s], net(x, z[s]), atol=1e-5)
    assert not torch.allclose(together[0], together[1])     # z reaches the output


@pytest.mark.parametrize("arch", ["mlp", "transformer"])
def test_head_conditioning_scales_and_shifts_the_last_features_after_one_pass(arch):
    """``head``: logits = out(h * (1 + s(z)) + t(z)) with ``h`` the network's last features
    without z, computed once for any number of latent values (an enumerated z)."""
    torch.manual_seed(0)
    cfg = NetConfig(vocab_size=5, seq_len=6, arch=arch, hidden=8, layers=2, heads=2,
                    latent_dim=3, z_conditioning="head")
    net = make_denoiser(cfg)
    assert net.z_proj is None                                # z enters at the head only
    x, z = torch.randint(0, 6, (4, 6)), torch.randn(7, 1, 3)  # 7 values of z, as enumerated
    assert torch.equal(net(x, z), net(x).expand(7, 4, 6, 5))  # the zero start changes nothing
    with torch.no_grad():
        net.film.proj.weight.normal_()
        net.film.proj.bias.normal_()
    last = net.trunk if arch == "transformer" else net.body
    calls = []
    last.register_forward_hook(lambda *_: calls.append(1))
    logits = net(x, z)
    assert len(calls) == 1 and logits.shape == (7, 4, 6, 5)
    features = last(x) if arch == "transformer" else last(
        net.inp(net.embed(x).flatten(-2)))                   # (4, 6, H) / (4, H)
    scale, shift = net.film.proj(z).view(7, 1, 2, 8).unbind(-2)
    if arch == "transformer":
        scale, shift = scale.unsqueeze(-2), shift.unsqueeze(-2)
    expected = net.out(features * (1 + scale) + shift)
    torch.testing.assert_close(logits, expected.reshape(7, 4, 6, 5), rtol=1e-5, atol=1e-5)


def test_block_models_refuse_head_conditioning():
    with pytest.raises(ValueError, match="not head"):
        make_denoiser(NetConfig(vocab_size=5, seq_len=6, arch="transformer", hidden=8, layers=1,
                                heads=2, latent_dim=3, block_size=2, z_conditioning="head"))


def test_block_film_modulates_each_block_with_its_own_latent():
    torch.manual_seed(0)
    cfg = NetConfig(vocab_size=5, seq_len=6, arch="transformer", hidden=8, layers=2, heads=2,
                    latent_dim=3, block_size=2, z_conditioning="film")
    net = make_denoiser(cfg)
    with torch.no_grad():
        net.film.proj.weight.normal_()
    x0 = torch.randint(0, 5, (4, 6))
    xt = torch.where(torch.rand(4, 6) < 0.5, 5, x0)
    z = torch.randn(4, 3, 3)
    moved = z.clone()
    moved[:, 1] += 1.0                                       # change block 1's latent only
    before, after = net(xt, z, x0), net(xt, moved, x0)
    assert torch.allclose(before[:, :2], after[:, :2], atol=1e-6)   # block 0 does not see z_1
    assert torch.allclose(before[:, 4:], after[:, 4:], atol=1e-6)   # block 2 reads clean x0 only
    assert not torch.allclose(before[:, 2:4], after[:, 2:4])


def test_unknown_z_conditioning_is_refused():
    with pytest.raises(ValueError, match="unknown z_conditioning"):
        NetConfig(vocab_size=5, seq_len=4, z_conditioning="cross")


# --- the linear guide encoder (--guide-layers 0 on the MLP) ------------------------------------

def one_hot_sequence(ids, num_ids):
    """(B, L) ids to the flattened one-hot (B, L * num_ids), position-major."""
    return torch.nn.functional.one_hot(ids, num_ids).flatten(-2).float()


def test_linear_guide_encoder_is_one_linear_map_of_the_flagged_tokens():
    from vmd_pyro.networks import SequenceEncoder
    torch.manual_seed(0)
    cfg = NetConfig(vocab_size=5, seq_len=4, hidden=8, layers=0)
    enc = SequenceEncoder(cfg, out_dim=6, cond_width=8)
    assert enc.mlp is None and enc.first is None and tuple(enc.out.weight.shape) == (4 * 12, 6)
    tokens, masked = torch.randint(0, 6, (300, 4)), torch.rand(300, 4) < 0.5
    one_hot = one_hot_sequence(tokens + 6 * masked.long(), 12)
    expected = one_hot @ enc.out.weight + enc.out.bias
    torch.testing.assert_close(enc(tokens, masked), expected, rtol=1e-5, atol=1e-5)
    cond = torch.randn(300, 4, 8)
    torch.testing.assert_close(enc(tokens, masked, cond=cond),
                               expected + cond.flatten(-2) @ enc.cond_proj.weight.T,
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="built without cond_width"):
        SequenceEncoder(cfg, out_dim=6)(tokens, masked, cond=cond)


@pytest.mark.parametrize("layers", [0, 2])
def test_mlp_encoders_saved_with_an_embedding_load_as_the_same_function(layers):
    # Before OneHotLinear an MLP encoder embedded the flagged tokens and applied a linear map to
    # the flattened embeddings, with two hidden layers (or none). Such a state dict, written here
    # by hand, must load into today's encoder as the same function of (tokens, masked, cond).
    from vmd_pyro.networks import SequenceEncoder
    torch.manual_seed(1)
    L, V, H, out = 4, 5, 8, 6
    embed = torch.randn(2 * (V + 1), H)
    w1, b1 = torch.randn(H if layers else out, L * H) / 4, torch.randn(H if layers else out)
    old = {"embed.weight": embed}
    if layers:
        w2, b2, w3, b3 = torch.randn(H, H) / 3, torch.randn(H), torch.randn(out, H) / 3, torch.randn(out)
        old.update({"mlp.0.weight": w1, "mlp.0.bias": b1, "mlp.2.weight": w2, "mlp.2.bias": b2,
                    "out.weight": w3, "out.bias": b3})
    else:
        old.update({"out.weight": w1, "out.bias": b1})
    gelu = torch.nn.functional.gelu

    def old_forward(tokens, masked, cond):
        x = (embed[tokens + (V + 1) * masked.long()] + cond).flatten(-2)
        h = x @ w1.T + b1
        return h if not layers else gelu(gelu(h) @ w2.T + b2) @ w3.T + b3

    enc = SequenceEncoder(NetConfig(vocab_size=V, seq_len=L, hidden=H, layers=layers), out,
                          cond_width=H)
    enc.load_state_dict(old)
    tokens, masked, cond = torch.randint(0, V + 1, (50, L)), torch.rand(50, L) < 0.5, torch.randn(50, L, H)
    with torch.no_grad():
        torch.testing.assert_close(enc(tokens, masked, cond=cond), old_forward(tokens, masked, cond),
                                   rtol=1e-4, atol=1e-4)


def test_configs_saved_before_the_mlp_encoder_depth_counted_read_as_two_hidden_layers():
    mlp = NetConfig(vocab_size=5, seq_len=4, hidden=16, layers=3)
    old = {**ProgramConfig(net=mlp).to_dict(), "guide_layers": 1, "prior_layers": 3}
    del old["version"]
    assert (ProgramConfig.from_dict(old).guide_layers, ProgramConfig.from_dict(old).prior_layers) == (2, 2)
    linear = ProgramConfig.from_dict({**old, "guide_layers": 0})
    assert linear.guide_layers == 0 and linear.version == 2
    now = ProgramConfig(net=mlp, guide_layers=1)
    assert ProgramConfig.from_dict(now.to_dict()) == now
    transformer = {**ProgramConfig(net=sudoku_net()).to_dict(), "guide_layers": 1}
    del transformer["version"]
    assert ProgramConfig.from_dict(transformer).guide_layers == 1


def test_a_linear_guide_is_for_the_mlp_only():
    net = sudoku_net()
    with pytest.raises(ValueError, match="linear guide encoder"):
        ProgramConfig(net=net, guide_layers=0)
    mlp = NetConfig(vocab_size=5, seq_len=4, hidden=16, layers=2)
    assert ProgramConfig(net=mlp, guide_layers=0).guide_net().layers == 0


@pytest.mark.parametrize("batch", [3, 200])  # the plain first layer, and the table
def test_mlp_sampling_path_adds_z_in_place_and_computes_the_same_logits(batch):
    # Without autograd the MLP accumulates z's projection into its first features in place (its
    # bias folded into the input layer's); with autograd it adds a new sum. Same logits, and the
    # input layer's bias is left as it was.
    torch.manual_seed(0)
    net = MLPDenoiser(NetConfig(vocab_size=5, seq_len=4, hidden=16, layers=2, latent_dim=3))
    x, z = torch.randint(0, 6, (batch, 4)), torch.randn(batch, 3)
    bias = net.inp.bias.clone()
    with torch.no_grad():
        fast = net(x, z)
        samples = net(x, torch.randn(7, batch, 3))           # leading sample dimension: broadcast
    expected = net.out(net.body(net.inp(net.embed(x).flatten(-2)) + net.z_proj(z)))
    torch.testing.assert_close(fast, expected.detach().unflatten(-1, (4, 5)), rtol=1e-5, atol=1e-5)
    assert samples.shape == (7, batch, 4, 5) and torch.equal(net.inp.bias, bias)
    torch.testing.assert_close(net(x, z), fast, rtol=1e-5, atol=1e-5)
