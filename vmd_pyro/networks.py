"""Neural networks: denoisers ``p_theta(x0^i | xt, z)`` and the sequence encoder used by guides and
learned priors.

Token ids ``0 .. V-1`` are real tokens and ``V`` is the mask token. Denoisers output ``V`` logits per
position: the mask token has no output at all, which is the SUBS rule "the mask is never predicted"
built into the shape. Unmasked positions are carried over by the loss and the sampler, which only
ever read the masked positions.

The latent ``z`` may carry extra leading dimensions (importance samples, enumerated values of a
discrete latent): ``z`` of shape ``(*S, D)`` with ``xt`` of shape ``(B, L)`` gives logits of shape
``(*S', B, L, V)`` by broadcasting, so enumeration and importance weighting need no special code.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vmd_pyro.blocks import block_causal_mask, pool_blocks


Z_CONDITIONINGS = ("input", "film", "head")


@dataclass
class NetConfig:
    vocab_size: int              # V real tokens; the mask token is id V
    seq_len: int                 # L
    arch: str = "mlp"            # "mlp" (short sequences) or "transformer"
    hidden: int = 256
    layers: int = 2
    heads: int = 4
    latent_dim: int = 0          # size of the vector fed to the denoiser; 0 means no latent (MDM)
    dropout: float = 0.0
    block_size: int = 0          # block diffusion: L' tokens per block; 0 = no blocks (vmd_pyro.blocks)
    # Structure of the positions, for transformers (Sudoku: rows, columns, boxes). Each entry gives
    # every position a group id; a learned embedding per group is added to the position embedding.
    position_groups: tuple[tuple[int, ...], ...] = ()
    attention: str = "full"      # "full", or "groups": a position attends to those sharing a group
    # How z enters the denoiser: "input" adds its projection to the input embedding only; "film"
    # also scales and shifts the features of every layer (FiLM in the MLP, adaptive layer norm in
    # transformers), so that z can steer each layer rather than only what the first one sees;
    # "head" only scales and shifts the last hidden features, after the network has run: one pass
    # of the network then serves every value of z, so an enumerated z with K values costs about
    # one call instead of K (z picks among alternatives the network lays out in its features).
    z_conditioning: str = "input"

    def __post_init__(self):
        # Lists after a JSON round trip; tuples keep the config hashable and comparable.
        self.position_groups = tuple(tuple(int(g) for g in ids) for ids in self.position_groups)
        if any(len(ids) != self.seq_len for ids in self.position_groups):
            raise ValueError(f"every position_groups entry needs one group id per position "
                             f"({self.seq_len})")
        if self.attention not in ("full", "groups"):
            raise ValueError(f"unknown attention {self.attention!r}; choose 'full' or 'groups'")
        if self.attention == "groups" and not self.position_groups:
            raise ValueError("attention='groups' needs position_groups")
        if self.z_conditioning not in Z_CONDITIONINGS:
            raise ValueError(f"unknown z_conditioning {self.z_conditioning!r}; choose from "
                             f"{', '.join(Z_CONDITIONINGS)}")

    @property
    def num_blocks(self) -> int:
        return self.seq_len // self.block_size if self.block_size else 1

    @property
    def mask_id(self) -> int:
        return self.vocab_size


class LatentModulation(nn.Module):
    """Per-layer scale and shift from ``z``: ``z (*S, D)`` gives ``(*S, layers, slots, H)``, where
    a layer applies ``h * (1 + slot 2k) + slot 2k+1`` at each of its ``slots / 2`` places.

    The projection starts at zero, so a fresh network computes exactly what it computes without
    modulation, and training moves away from that only as far as it pays.
    """

    def __init__(self, latent_dim: int, layers: int, slots: int, hidden: int):
        super().__init__()
        self.shape = (layers, slots, hidden)
        self.proj = nn.Linear(latent_dim, layers * slots * hidden)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.proj(z).unflatten(-1, self.shape)


# The submodules through which every denoiser reads z: its input projection and its modulation.
LATENT_INPUTS = ("z_proj.", "film.")


def latent_input_weights(denoiser: nn.Module) -> list[nn.Parameter]:
    """The weight matrices through which ``z`` enters ``denoiser`` (not their biases): with them
    at zero the network computes what it computes when fed ``z = 0``."""
    return [weight for name, weight in denoiser.named_parameters()
            if name.startswith(LATENT_INPUTS) and name.endswith("weight")]


def input_projection(cfg: "NetConfig") -> nn.Linear | None:
    """The projection of ``z`` added to the input embedding (none with ``head`` conditioning)."""
    if not cfg.latent_dim or cfg.z_conditioning == "head":
        return None
    return nn.Linear(cfg.latent_dim, cfg.hidden)


def modulate(h: torch.Tensor, mod: torch.Tensor | None, place: int) -> torch.Tensor:
    """``h * (1 + scale) + shift`` with the scale and shift of ``place`` in ``mod (..., slots, H)``."""
    if mod is None:
        return h
    return h * (1 + mod[..., 2 * place, :]) + mod[..., 2 * place + 1, :]


def latent_modulation(cfg: "NetConfig", slots: int) -> LatentModulation | None:
    """The FiLM / adaptive-layer-norm projection of ``cfg``, or ``None`` (no latent, or z enters
    at the input only); with ``z_conditioning="head"`` one scale and shift of the last features."""
    if not cfg.latent_dim or cfg.z_conditioning == "input":
        return None
    if cfg.z_conditioning == "head":
        return LatentModulation(cfg.latent_dim, 1, 2, cfg.hidden)
    return LatentModulation(cfg.latent_dim, cfg.layers, slots, cfg.hidden)


def embed_flatten_linear(embed: nn.Embedding, linear: nn.Linear, tokens: torch.Tensor,
                         bias: torch.Tensor | None = None) -> torch.Tensor:
    """``linear(embed(tokens).flatten(-2))`` for ``tokens (..., L)``, computed cheaply (``bias``,
    if given, in place of ``linear.bias``).

    The first layer of an MLP over embedded tokens is linear in the one-hot tokens, so it equals a
    sum over positions of rows of one ``(L, V, H_out)`` table, ``table[i, v] = W_i @ E[v]``.
    Building the table costs ``L V H_in H_out`` multiply-adds once per call instead of
    ``B L H_in H_out``: for the synthetic MLP (batch 256, 11 token ids) this layer was two thirds
    of the denoiser's FLOPs. Same parameters, same function and gradients (up to float rounding).
    """
    length = tokens.shape[-1]
    num_ids, width = embed.weight.shape
    rows = tokens.reshape(-1, length)
    bias = linear.bias if bias is None else bias
    if rows.shape[0] <= num_ids:  # a few sequences (sampling one puzzle): the plain way is cheaper
        return F.linear(embed(tokens).flatten(-2), linear.weight, bias)
    # (ids, out * L) from the weight's transposed view (no copy of the weight), then the small
    # table is laid out as (L * ids, out) rows for embedding_bag.
    table = embed.weight @ linear.weight.view(-1, width).T
    table = table.view(num_ids, linear.out_features, length).permute(2, 0, 1).reshape(
        length * num_ids, linear.out_features)
    offsets = torch.arange(length, device=tokens.device) * num_ids
    h = F.embedding_bag(rows + offsets, table, mode="sum") + bias
    return h.reshape(*tokens.shape[:-1], linear.out_features)


class MLPDenoiser(nn.Module):
    """Flatten the embedded sequence, add the projected latent, MLP, per-position logits. With
    ``z_conditioning="film"`` every hidden layer's output is also scaled and shifted by ``z``."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size + 1, cfg.hidden)
        self.inp = nn.Linear(cfg.seq_len * cfg.hidden, cfg.hidden)
        self.z_proj = input_projection(cfg)
        body = []
        for _ in range(cfg.layers):
            body += [nn.GELU(), nn.Linear(cfg.hidden, cfg.hidden)]
        self.body = nn.Sequential(*body, nn.GELU())
        self.film = latent_modulation(cfg, slots=2)
        self.out = nn.Linear(cfg.hidden, cfg.seq_len * cfg.vocab_size)

    def first_layer(self, xt: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        """``inp(flatten(embed(xt))) + z_proj(z)``, shape ``(*S, B, H)``: where ``z`` enters.

        Without autograd (sampling) and with one ``z`` per sequence, ``z``'s projection is
        accumulated into the fresh features in place, its bias folded into ``inp``'s: on the
        synthetic MLP a new ``(B, H)`` sum made a VMD decoding run 1.12-1.19x MDM's, against 1.07x
        in place, and the separate bias pass cost another 1% (``results/bench``). In training
        the in-place form made the step slower, so the sum stays.
        """
        if z is None or self.z_proj is None:
            return embed_flatten_linear(self.embed, self.inp, xt)
        if torch.is_grad_enabled() or z.dim() != 2 or xt.dim() != 2 or len(z) != len(xt):
            return embed_flatten_linear(self.embed, self.inp, xt) + self.z_proj(z)
        h = embed_flatten_linear(self.embed, self.inp, xt, self.inp.bias + self.z_proj.bias)
        return h.addmm_(z, self.z_proj.weight.t())

    def forward(self, xt: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        h = self.first_layer(xt, z)
        if self.film is None or z is None:
            h = self.body(h)
        elif self.cfg.z_conditioning == "head":
            h = modulate(self.body(h), self.film(z)[..., 0, :, :], 0)  # (*S, B, H)
        else:
            mod = self.film(z)                                        # (*S, B, layers, 2, H)
            for layer, linear in enumerate(self.body[1::2]):
                h = modulate(linear(F.gelu(h)), mod[..., layer, :, :], 0)
            h = F.gelu(h)
        logits = self.out(h)
        return logits.unflatten(-1, (self.cfg.seq_len, self.cfg.vocab_size))


def group_attention_mask(position_groups) -> torch.Tensor:
    """``(L, L)`` boolean mask, True where attention is blocked: the two positions share no group."""
    ids = torch.tensor(position_groups)                                # (G, L)
    return ~(ids[:, :, None] == ids[:, None, :]).any(0)


class TransformerTrunk(nn.Module):
    """Token + position embeddings and a stack of pre-norm transformer layers.

    With ``cfg.position_groups`` the position embedding also sums one learned vector per group a
    position belongs to, so "same row" is visible before any training; with ``cfg.attention ==
    "groups"`` attention is restricted to positions that share a group (a graph of constraints).
    """

    def __init__(self, cfg: NetConfig, num_embeddings: int):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(num_embeddings, cfg.hidden)
        self.pos = nn.Parameter(torch.randn(cfg.seq_len, cfg.hidden) * 0.02)
        self.group_embed = nn.ModuleList(nn.Embedding(max(ids) + 1, cfg.hidden)
                                         for ids in cfg.position_groups)
        self.register_buffer("group_ids", torch.tensor(cfg.position_groups, dtype=torch.long).reshape(
            len(cfg.position_groups), cfg.seq_len), persistent=False)
        self.register_buffer("attn_mask", group_attention_mask(cfg.position_groups)
                             if cfg.attention == "groups" else None, persistent=False)
        layer = nn.TransformerEncoderLayer(cfg.hidden, cfg.heads, 4 * cfg.hidden, cfg.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.hidden)

    def positions(self) -> torch.Tensor:
        """The position embedding ``(L, H)``: free per position, plus one vector per group."""
        pos = self.pos
        for embed, ids in zip(self.group_embed, self.group_ids):
            pos = pos + embed(ids)
        return pos

    def forward(self, tokens: torch.Tensor, cond: torch.Tensor | None = None,
                film: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode_tokens(self.embed(tokens) + self.positions(), self.attn_mask, cond, film)

    def encode_tokens(self, h: torch.Tensor, mask: torch.Tensor | None,
                      cond: torch.Tensor | None = None,
                      film: torch.Tensor | None = None) -> torch.Tensor:
        """Embedded tokens ``h (B, T, H)`` through the layers and the final norm. ``cond
        (*S, B, T or 1, H)`` is added to the input; ``film (*S, B, T or 1, layers, 4, H)`` scales
        and shifts both layer norms of every layer (adaptive layer norm). Leading sample
        dimensions ``*S`` broadcast."""
        if cond is not None:
            h = h + cond
        if film is not None:
            lead = torch.broadcast_shapes(h.shape[:-2], film.shape[:-4])
            h = h.expand(*lead, *h.shape[-2:])
            film = film.expand(*lead, *film.shape[-4:]).reshape(-1, *film.shape[-4:])
        lead = h.shape[:-2]
        h = self.encode(h.reshape(-1, *h.shape[-2:]), mask, film)
        return self.norm(h).reshape(*lead, *h.shape[-2:])

    def encode(self, h: torch.Tensor, mask: torch.Tensor | None,
               film: torch.Tensor | None = None) -> torch.Tensor:
        """The layer stack on ``h (B, L, H)``; ``mask (L, L)`` True where attention is blocked;
        ``film (B, L or 1, layers, 4, H)`` the per-layer modulation, if any.

        With gradients (training) each layer runs through :func:`encoder_layer`, the same
        computation as ``nn.TransformerEncoderLayer`` without the layout copies of
        ``nn.MultiheadAttention`` (copies were the largest non-matmul cost in the profile of a
        Sudoku-scale step, ``benchmarks/profile_step.py``). Without gradients
        (sampling) the stock module keeps its fused inference kernels, unless ``film`` modulates
        the layers.
        """
        if not torch.is_grad_enabled() and film is None:
            return self.layers(h, mask=mask)
        for index, layer in enumerate(self.layers.layers):
            h, _ = encoder_layer(layer, h, mask, None if film is None else film[:, :, index])
        return h

    def encode_after(self, h: torch.Tensor, past: list | None, film: torch.Tensor | None = None):
        """The layer stack and final norm on new tokens ``h (B, n, H)`` that attend to each other
        and to earlier tokens, unmasked; ``past`` holds the earlier tokens' keys and values per
        layer (``None``: there are none); ``film (B, n or 1, layers, 4, H)`` modulates the new
        tokens' layers. Returns the features and the keys and values of the earlier and new tokens
        per layer (block-by-block decoding's cache,
        :meth:`BlockTransformerDenoiser.next_block_logits`)."""
        keys_values = []
        for i, layer in enumerate(self.layers.layers):
            h, kv = encoder_layer(layer, h, None, None if film is None else film[:, :, i],
                                  None if past is None else past[i])
            keys_values.append(kv)
        return self.norm(h), keys_values


def encoder_layer(layer: nn.TransformerEncoderLayer, h: torch.Tensor,
                  mask: torch.Tensor | None, mod: torch.Tensor | None = None,
                  past: tuple | None = None):
    """A pre-norm ``nn.TransformerEncoderLayer`` (its own parameters, activation and dropouts)
    with attention computed by ``F.scaled_dot_product_attention`` on views of one packed
    projection. ``mod (B, L or 1, 4, H)`` scales and shifts its two layer norms' outputs (FiLM);
    ``past``: keys and values ``(B, heads, m, H / heads)`` of earlier tokens that ``h`` attends to
    besides itself (their keys first; ``mask`` then covers them too). Returns the new features and
    the keys and values attended to."""
    attn = layer.self_attn
    batch, length, width = h.shape
    qkv = F.linear(modulate(layer.norm1(h), mod, 0), attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = qkv.view(batch, length, 3, attn.num_heads, width // attn.num_heads).permute(
        2, 0, 3, 1, 4)
    if past is not None:
        k, v = torch.cat([past[0], k], -2), torch.cat([past[1], v], -2)
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else ~mask,
                                       dropout_p=attn.dropout if layer.training else 0.0)
    h = h + layer.dropout1(attn.out_proj(a.transpose(1, 2).reshape(batch, length, width)))
    ff = layer.linear2(layer.dropout(layer.activation(layer.linear1(
        modulate(layer.norm2(h), mod, 1)))))
    return h + layer.dropout2(ff), (k, v)


class TransformerDenoiser(nn.Module):
    """Bidirectional transformer; the projected latent is added to every token, and with
    ``z_conditioning="film"`` it also modulates the layer norms of every layer."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        self.trunk = TransformerTrunk(cfg, cfg.vocab_size + 1)
        self.z_proj = input_projection(cfg)
        self.film = latent_modulation(cfg, slots=4)
        self.out = nn.Linear(cfg.hidden, cfg.vocab_size)

    def forward(self, xt: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            return self.out(self.trunk(xt))
        if self.cfg.z_conditioning == "head":  # (*S, B, 1, 2, H): the same for every token
            return self.out(modulate(self.trunk(xt), self.film(z)[..., 0, :, :].unsqueeze(-3), 0))
        film = None if self.film is None else self.film(z).unsqueeze(-4)  # one for every token
        return self.out(self.trunk(xt, self.z_proj(z).unsqueeze(-2), film))


class OneHotLinear(nn.Module):
    """A linear map of the one-hot sequence: ``tokens (..., L)`` with ids ``0 .. num_ids - 1`` to
    ``sum_i weight[i * num_ids + tokens_i] + bias``, of shape ``(..., out_features)``.

    Any linear function of the flattened one-hot tokens, stored as one row per (position, id). It
    is the first layer of the MLP sequence encoder (guides, learned priors), computed as one
    product with the one-hot matrix. The encoder used to factor it as an embedding followed by a
    linear map of the flattened embeddings, which made every step rebuild this table from the two
    (a product, a copy and their gradients): on the 4-token synthetic MLP, whose training step is
    bound by its number of small operations, the table itself took the VMD/MDM step ratio from
    1.31-1.33 to 1.27 (quick checks, ``results/bench/README.md``, session 10).
    :meth:`from_factors` converts the old parameters exactly.
    """

    def __init__(self, seq_len: int, num_ids: int, out_features: int):
        super().__init__()
        self.num_ids, self.out_features = num_ids, out_features
        self.weight = nn.Parameter(torch.empty(seq_len * num_ids, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        # Exactly seq_len rows are summed: each is drawn with variance 1 / (3 seq_len), so a
        # fresh layer's outputs have variance 1/3, as with the embedding-and-linear it replaces.
        bound = seq_len ** -0.5
        nn.init.uniform_(self.weight, -bound, bound)
        self.register_buffer("offsets", torch.arange(seq_len) * num_ids, persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        rows = (tokens + self.offsets).reshape(-1, tokens.shape[-1])
        one_hot = rows.new_zeros((rows.shape[0], self.weight.shape[0]),
                                 dtype=self.weight.dtype).scatter_(1, rows, 1.0)
        return torch.addmm(self.bias, one_hot, self.weight).reshape(
            *tokens.shape[:-1], self.out_features)

    @staticmethod
    def from_factors(embed: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The ``(L * ids, out)`` weight equal to ``linear(embed(tokens).flatten(-2))``'s map, from
        the embedding ``(ids, width)`` and the linear weight ``(out, L * width)``."""
        per_position = weight.view(weight.shape[0], -1, embed.shape[1])   # (out, L, width)
        return torch.einsum("vw,olw->lvo", embed, per_position).reshape(-1, weight.shape[0])


class SequenceEncoder(nn.Module):
    """Maps ``(tokens, masked)`` to one feature vector per sequence.

    Guides call it with ``(x0, masked)`` so that ``q(z | x0, xt)`` sees the mask pattern (a guide that
    sees only ``x0`` collapses to the prior, docs/method.md); a learned prior ``p(z | xt)`` calls
    it with ``(xt, masked)``. For short sequences (``arch="mlp"``) it is an MLP with ``cfg.layers``
    hidden layers over the one-hot flagged tokens; with 0 it is one linear map of them (the
    cheapest guide: a small MLP step is bound by its number of operations, not by its FLOPs).
    ``cond_width``: the width of the extra per-position input ``cond`` a guide may pass (the
    transformer adds it to the embedded tokens, so there it must equal ``cfg.hidden``).
    """

    def __init__(self, cfg: NetConfig, out_dim: int, cond_width: int = 0):
        super().__init__()
        self.cfg = cfg
        # Input id = token (0..V, V being the mask) + (V + 1) * masked, so the flag is explicit
        # even where the token itself is known.
        num_ids = 2 * (cfg.vocab_size + 1)
        self.trunk = self.first = self.mlp = self.cond_proj = None
        if cfg.arch == "transformer":
            if cond_width not in (0, cfg.hidden):
                raise ValueError(f"a transformer encoder adds cond to its embeddings: cond_width "
                                 f"must be {cfg.hidden}, got {cond_width}")
            self.trunk = TransformerTrunk(cfg, num_ids)
            self.out = nn.Linear(cfg.hidden, out_dim)
            return
        width = cfg.hidden if cfg.layers else out_dim
        first = OneHotLinear(cfg.seq_len, num_ids, width)
        if cond_width:
            self.cond_proj = nn.Linear(cfg.seq_len * cond_width, width, bias=False)
        if not cfg.layers:
            self.out = first  # the linear encoder: the one-hot layer is the output
            return
        self.first = first
        body = [nn.GELU()]
        for _ in range(cfg.layers - 1):
            body += [nn.Linear(cfg.hidden, cfg.hidden), nn.GELU()]
        self.mlp = nn.Sequential(*body)
        self.out = nn.Linear(cfg.hidden, out_dim)

    def forward(self, tokens: torch.Tensor, masked: torch.Tensor,
                clean: torch.Tensor | None = None, cond: torch.Tensor | None = None
                ) -> torch.Tensor:
        """``clean`` is read by block encoders only (the earlier blocks); one vector per sequence
        needs nothing but ``tokens`` and their flags. ``cond (B, L, cond_width)``, if given, is
        the guide's extra per-position input: added to the embedded tokens of a transformer, and
        through its own linear map to the first layer of an MLP."""
        ids = tokens + (self.cfg.vocab_size + 1) * masked.long()
        if self.trunk is not None:
            return self.out(self.trunk(ids, cond).mean(-2))
        first = self.out if self.first is None else self.first
        h = first(ids)
        if cond is not None:
            if self.cond_proj is None:
                raise ValueError("this encoder was built without cond_width: it takes no cond")
            h = h + self.cond_proj(cond.flatten(-2))
        return h if self.first is None else self.out(self.mlp(h))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # MLP encoders saved before OneHotLinear held an embedding and a linear map of the
        # flattened embeddings (and always two hidden layers, see ProgramConfig.from_dict): the
        # same function, converted exactly. Their cond went through the first linear map, which
        # is now cond_proj's weight.
        embed = state_dict.pop(prefix + "embed.weight", None)
        if embed is not None and self.trunk is None:
            first = prefix + ("out." if self.first is None else "mlp.0.")
            new = prefix + ("out." if self.first is None else "first.")
            weight = state_dict.pop(first + "weight")
            if self.cond_proj is not None:
                state_dict[prefix + "cond_proj.weight"] = weight
            bias = state_dict.pop(first + "bias")
            state_dict[new + "weight"] = OneHotLinear.from_factors(embed, weight)
            state_dict[new + "bias"] = bias
            if self.first is not None:  # old hidden Linear layers sat at mlp.2, mlp.4, ...
                for key in sorted(k for k in state_dict if k.startswith(prefix + "mlp.")):
                    index, rest = key[len(prefix + "mlp."):].split(".", 1)
                    state_dict[f"{prefix}mlp.{int(index) - 1}.{rest}"] = state_dict.pop(key)
        elif embed is not None:
            state_dict[prefix + "embed.weight"] = embed
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


# --- block diffusion (vmd_pyro.blocks): the block-causal transformer over [xt ; x0] -------------

def check_block_config(cfg: NetConfig) -> None:
    if cfg.block_size < 1 or cfg.seq_len % cfg.block_size:
        raise ValueError(f"--block-size must be a positive divisor of the sequence length "
                         f"{cfg.seq_len}, got {cfg.block_size}")
    if cfg.arch != "transformer":
        raise ValueError("block diffusion needs the block-causal transformer: use --arch transformer")
    if cfg.attention != "full":
        raise ValueError("block diffusion has its own (block-causal) attention mask: use attention='full'")
    if cfg.z_conditioning == "head":
        raise ValueError("block diffusion reads z per block inside the network: use "
                         "--z-conditioning input or film, not head")


def run_trunk(trunk, tokens: torch.Tensor, attn_mask: torch.Tensor,
              cond: torch.Tensor | None = None, film: torch.Tensor | None = None) -> torch.Tensor:
    """A :class:`~vmd_pyro.networks.TransformerTrunk` under an attention mask. ``tokens`` has length
    ``L`` or ``2L`` (the position embeddings repeat per copy); ``cond`` and ``film`` are given per
    token (:meth:`TransformerTrunk.encode_tokens`)."""
    pos = trunk.positions().repeat(tokens.shape[-1] // trunk.pos.shape[0], 1)
    return trunk.encode_tokens(trunk.embed(tokens) + pos, attn_mask, cond, film)


class BlockTransformerDenoiser(TransformerDenoiser):
    """``p(x0_b^i | xt_b, x0_{<b}, z_b)`` for every block at once (same parameters as the plain
    transformer). ``z`` has shape ``(*S, B, num_blocks, D)``; ``z_b`` is added to block ``b``'s noisy
    tokens only."""

    def forward(self, xt: torch.Tensor, z: torch.Tensor | None = None,
                x0: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        if x0 is None:
            raise ValueError("the block denoiser needs the clean sequence x0 (earlier blocks)")
        cond = film = None
        if z is not None:
            cond = self.noisy_tokens(self.z_proj(z))
            if self.film is not None:
                film = self.noisy_tokens(self.film(z).flatten(-3)).unflatten(-1, self.film.shape)
        mask = block_causal_mask(cfg.seq_len, cfg.block_size, xt.device)
        h = run_trunk(self.trunk, torch.cat([xt, x0], -1), mask, cond, film)
        return self.out(h[..., :cfg.seq_len, :])

    def noisy_tokens(self, per_block: torch.Tensor) -> torch.Tensor:
        """``(*S, B, nb or 1, F)`` per block to ``(*S, B, 2L, F)`` per token of ``[xt ; x0]``: block
        ``b``'s vector on its noisy tokens, zeros (no effect) on the clean copy."""
        cfg = self.cfg
        lead, width = per_block.shape[:-2], per_block.shape[-1]
        c = per_block.unsqueeze(-2).expand(*lead, cfg.num_blocks, cfg.block_size, width)
        return F.pad(c.reshape(*lead, cfg.seq_len, width), (0, 0, 0, cfg.seq_len))

    # Block-by-block decoding with a cache: the clean blocks before block b are final, and clean
    # tokens attend only to clean blocks at or before their own, so their keys and values at every
    # layer are computed once (extend_past) instead of once per call over the whole [xt ; x0].
    def block_features(self, tokens: torch.Tensor, block: int) -> torch.Tensor:
        """Token and position embeddings of block ``block``'s tokens ``(B, L')``."""
        size = self.cfg.block_size
        return self.trunk.embed(tokens) + self.trunk.positions()[block * size:(block + 1) * size]

    def next_block_logits(self, xt: torch.Tensor, z: torch.Tensor | None, block: int,
                          past: list | None) -> torch.Tensor:
        """The logits ``(B, L', V)`` of :meth:`forward` for block ``block`` alone, from its noisy
        tokens ``xt (B, L')``, the decoder input of every block's latent ``z (B, num_blocks, D)``
        and ``past``, the clean blocks before it (:meth:`extend_past`; ``None`` for block 0)."""
        h, film = self.block_features(xt, block), None
        if z is not None:
            h = h + self.z_proj(z[..., block, :]).unsqueeze(-2)
            if self.film is not None:
                film = self.film(z[..., block, :]).unsqueeze(-4)   # every token of the block
        return self.out(self.trunk.encode_after(h, past, film)[0])

    def extend_past(self, x0: torch.Tensor, block: int, past: list | None) -> list:
        """``past`` with the clean tokens ``x0 (B, L')`` of block ``block`` appended."""
        return self.trunk.encode_after(self.block_features(x0, block), past)[1]


class BlockSequenceEncoder(SequenceEncoder):
    """One feature vector per block for guides: block ``b`` summarises its own ``tokens`` with their
    mask flags and the clean earlier blocks ``clean_{<b}`` (default ``tokens``), in the same
    ``[noisy ; clean]`` layout and mask as the denoiser. Output ``(B, num_blocks, out_dim)``."""

    def forward(self, tokens: torch.Tensor, masked: torch.Tensor,
                clean: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        flagged = tokens + (cfg.vocab_size + 1) * masked.long()
        clean = tokens if clean is None else clean
        mask = block_causal_mask(cfg.seq_len, cfg.block_size, tokens.device)
        h = run_trunk(self.trunk, torch.cat([flagged, clean], -1), mask)
        return self.out(pool_blocks(h[..., :cfg.seq_len, :], cfg.block_size))


def make_denoiser(cfg: NetConfig) -> nn.Module:
    if cfg.block_size:
        check_block_config(cfg)
        return BlockTransformerDenoiser(cfg)
    if cfg.arch == "mlp":
        return MLPDenoiser(cfg)
    if cfg.arch == "transformer":
        return TransformerDenoiser(cfg)
    raise ValueError(f"unknown network architecture {cfg.arch!r}; choose 'mlp' or 'transformer'")


def make_encoder(cfg: NetConfig, out_dim: int, cond_width: int = 0) -> nn.Module:
    """The sequence encoder of guides: one vector per sequence, or per block with ``block_size``
    (``cond_width``: see :class:`SequenceEncoder`)."""
    if cfg.block_size:
        check_block_config(cfg)
        return BlockSequenceEncoder(cfg, out_dim)
    return SequenceEncoder(cfg, out_dim, cond_width)
