import pytest
import torch

from tests.conftest import tiny_program
from vmd_pyro.checkpoint import load_program, save_checkpoint
from vmd_pyro.sampling import all_masked, generate


@pytest.mark.parametrize("prior", ["gaussian", "mog", "discrete", "conditional"])
def test_round_trip_gives_identical_samples(tmp_path, prior):
    program = tiny_program(prior=prior)
    save_checkpoint(tmp_path / "ck.pt", program, note="hello")
    loaded, state = load_program(tmp_path / "ck.pt")
    assert state["note"] == "hello"
    x = all_masked(20, 4, program.mask_id)
    a = generate(program, x, nfe=2, generator=torch.Generator().manual_seed(0))
    b = generate(loaded, x, nfe=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_bad_checkpoints_are_refused(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_program(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a vmd-pyro checkpoint"):
        load_program(tmp_path / "junk.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="convert_checkpoint.py"):
        load_program(tmp_path / "other.pt")
