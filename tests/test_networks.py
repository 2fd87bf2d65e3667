"""Networks: position groups and group-restricted attention (the Sudoku constraint graph)."""
import json

import pytest
import torch

from vmd_pyro.datasets.sudoku import SudokuTask
from vmd_pyro.networks import NetConfig, TransformerDenoiser, group_attention_mask
from vmd_pyro.program import ProgramConfig

GROUPS = SudokuTask.position_groups


def sudoku_net(**kw) -> NetConfig:
    return NetConfig(vocab_size=9, seq_len=81, arch="transformer", hidden=16, layers=1, heads=2,
                     position_groups=GROUPS, **kw)


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
