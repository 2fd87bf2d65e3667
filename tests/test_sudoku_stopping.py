"""experiments/sudoku_stopping.py on the committed CPU checkpoints, a few puzzles."""
import json

import torch

from vmd_pyro.experiment import load_script
from vmd_pyro.sampling import stop_when_confident

stopping = load_script("sudoku_stopping")
PATHS = "results/sudoku_hard/paths/"


def test_stopping_curves_end_at_every_candidate_and_cost_what_they_keep(tmp_path, capsys):
    assert stopping.main(["--vmd", PATHS + "ft-exact16-paths-b16.pt",
                          "--mdm", PATHS + "ft3-mdm-steps-b64.pt",
                          "--puzzles", "results/sudoku_hard/select/test_data0.txt",
                          "--limit", "6", "--samples", "3", "--thresholds", "20",
                          "--out-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "stopping.json").read_text())
    assert (tmp_path / "stopping.png").stat().st_size > 0
    for name, count in (("vmd", 16), ("mdm", 4)):
        data = result[name]
        copies = torch.tensor(data["first_copy"])
        valid = torch.tensor([[c == "1" for c in row] for row in data["valid"]])
        assert copies.shape == (6, count) and valid.shape == (6, count)
        # repeats of a grid are its copies: they agree on validity
        assert torch.equal(valid, valid.gather(1, copies))
        curve = data["curve"]
        assert [p["passes"] for p in curve] == sorted(p["passes"] for p in curve)
        # the last point tries everything: every decode, each different grid checked once
        distinct = sum(len(set(row)) for row in data["first_copy"])
        assert curve[-1]["passes"] == (6 * count * 5 + distinct * 5) / 6
        scores = torch.tensor(data["scores"], dtype=torch.float64)
        kept, _ = stop_when_confident(scores, copies.unsqueeze(-1), float("inf"),
                                      decode_passes=5, check_passes=5)
        assert curve[-1]["solved"] == "".join("1" if valid[i, k] else "0"
                                              for i, k in enumerate(kept.tolist()))
    assert "largest lead" in capsys.readouterr().out
