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
                          "--limit", "6", "--samples", "3", "--thresholds", "10",
                          "--out-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "stopping.json").read_text())
    assert (tmp_path / "stopping.png").stat().st_size > 0
    for name, count in (("vmd", 16), ("mdm", 4)):
        assert result[name]["decode_seconds"] > 0
        scores, copies, valid = stopping.candidates_of(result[name])
        assert scores.shape == copies.shape == valid.shape == (6, count)
        # repeats of a grid are its copies: they agree on validity
        assert torch.equal(valid, valid.gather(1, copies))
        curve = result[name]["curve"]  # cheaper and cheaper settings, each solving more
        assert all(a["passes"] <= b["passes"] and a["solve_rate"] < b["solve_rate"]
                   for a, b in zip(curve, curve[1:]))
        # every candidate tried, each different grid checked once: on or under the curve
        distinct = sum(len(set(row.tolist())) for row in copies)
        every = (6 * count * 5 + distinct * 5) / 6
        kept, _ = stop_when_confident(scores, copies.unsqueeze(-1), float("inf"),
                                      decode_passes=5, check_passes=5)
        rate = float(valid[torch.arange(6), kept].double().mean())
        assert any(p["passes"] <= every and p["solve_rate"] >= rate for p in curve)
    assert "largest lead" in capsys.readouterr().out
    # the analysis again from the saved candidates: the same curves, without decoding
    assert stopping.main(["--from-json", str(tmp_path / "stopping.json"), "--thresholds", "10",
                          "--out-dir", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "stopping.json").read_text())
    assert again["vmd"]["curve"] == result["vmd"]["curve"] and again["held_out"] == result["held_out"]
    assert again["git_commit"] == result["git_commit"] and "command" in again["analysed"]


def test_held_out_thresholds_are_set_on_the_other_half():
    """Eight puzzles, two candidates (5 passes to decode, 5 to check). Puzzles 0, 1, 4, 5: the
    first candidate is valid and scores -1. Puzzles 2, 3, 6, 7: it is wrong and scores -3; the
    second is valid and scores -2 everywhere. Each half (even, odd) holds two of each, so each
    half's best threshold for a budget of 15 mean passes stops the good puzzles at once (10
    passes) and tries both on the others (20); at 12 passes only stopping at once fits (a
    threshold nothing reaches with a cap of one candidate, or one everything reaches)."""
    good = torch.tensor([1, 1, 0, 0, 1, 1, 0, 0], dtype=torch.bool)
    scores = torch.stack([torch.where(good, -1.0, -3.0), torch.full((8,), -2.0)], 1).double()
    copies = torch.tensor([[0, 1]] * 8)
    valid = torch.stack([good, torch.ones(8, dtype=torch.bool)], 1)
    args = stopping.build_parser().parse_args(["--out-dir", "x", "--thresholds", "50",
                                               "--budgets", "15", "12", "9"])
    outcome = stopping.held_out(scores, copies, valid, args)
    solved, passes = outcome[15]
    assert solved.all() and passes.tolist() == [10.0 if g else 20.0 for g in good]
    solved, passes = outcome[12]
    assert torch.equal(solved, good) and (passes == 10).all()
    assert outcome[9] is None  # below one decode's cost


def test_giving_up_on_hopeless_puzzles_frees_passes_for_the_others():
    """Twelve puzzles, three candidates (10 passes each with its check), of three kinds, two of
    each in either half: A's first candidate is valid (score -1); B's third is (scores -3, -3,
    -1); H has none (-9 each). At 20 mean passes, stopping alone must stop B and H alike after
    two tries (solving A only): both look the same until B's third. Giving up after one try
    below a level between -9 and -3 stops H at 10 passes, and B can try all three (mean 16.7)."""
    kind = ["A", "A", "B", "B", "H", "H"] * 2
    rows = {"A": [-1.0, -3.0, -3.0], "B": [-3.0, -3.0, -1.0], "H": [-9.0, -9.0, -9.0]}
    good = {"A": [True, False, False], "B": [False, False, True], "H": [False, False, False]}
    scores = torch.tensor([rows[k] for k in kind], dtype=torch.float64)
    valid = torch.tensor([good[k] for k in kind])
    copies = torch.arange(3).expand(12, 3)
    base = ["--out-dir", "x", "--thresholds", "50", "--budgets", "20"]
    for flags, solved_kinds, passes in (([], "A", None), (["--give-up"], "AB", [10, 30, 10])):
        args = stopping.build_parser().parse_args(base + flags)
        solved, spent = stopping.held_out(scores, copies, valid, args)[20]
        assert solved.tolist() == [k in solved_kinds for k in kind], flags
        if passes:
            assert spent.tolist() == [passes["ABH".index(k)] for k in kind]


def test_vmd_samples_follow_its_argmax_candidates_and_reuse_mdm_record(tmp_path, capsys):
    base = ["--vmd", PATHS + "ft-exact16-paths-b16.pt", "--mdm", PATHS + "ft3-mdm-steps-b64.pt",
            "--puzzles", "results/sudoku_hard/select/test_data0.txt", "--limit", "4",
            "--samples", "2", "--thresholds", "5", "--budgets", "20"]
    assert stopping.main(base + ["--out-dir", str(tmp_path / "a")]) == 0
    earlier = tmp_path / "a" / "stopping.json"
    assert stopping.main(base + ["--vmd-samples", "3", "--mdm-from", str(earlier),
                                 "--out-dir", str(tmp_path / "b")]) == 0
    a, b = (json.loads(p.read_text()) for p in (earlier, tmp_path / "b" / "stopping.json"))
    assert b["mdm"]["scores"] == a["mdm"]["scores"] and b["mdm_from"] == str(earlier)
    assert b["vmd_rows_not_reproduced"] == 0
    before, after = stopping.candidates_of(a["vmd"]), stopping.candidates_of(b["vmd"])
    assert after[0].shape == (4, 19)
    assert torch.allclose(after[0][:, :16], before[0], atol=1e-4)
    assert torch.equal(after[1][:, :16], before[1]) and torch.equal(after[2][:, :16], before[2])
    scores, copies, valid = after
    best = scores[:, :16].argmax(-1)
    # a sampled grid that repeats the best argmax candidate has its score (same check, same z)
    repeats_best = copies[:, 16:] == best.unsqueeze(-1)
    assert repeats_best.any()  # easy puzzles: sampling under the best z gives its grid again
    assert torch.equal(scores[:, 16:][repeats_best],
                       scores[torch.arange(4), best].unsqueeze(-1).expand(4, 3)[repeats_best])
    assert torch.equal(valid, valid.gather(1, copies))
    # an earlier record of another seed is refused, with a clear message
    capsys.readouterr()
    assert stopping.main(base + ["--seed", "1", "--vmd-samples", "3", "--mdm-from", str(earlier),
                                 "--out-dir", str(tmp_path / "c")]) != 0
    assert "seed" in capsys.readouterr().err
    assert stopping.main(base + ["--vmd-samples", "-1", "--out-dir", str(tmp_path / "d")]) != 0
    assert "--vmd-samples" in capsys.readouterr().err


def test_perfect_check_rate_is_the_best_any_stopping_rule_does():
    """Against every choice of how many candidates each puzzle tries (5 puzzles, 3 candidates,
    random repeats and validity): the most puzzles with a valid grid among those tried, at no
    more than the budget's mean passes."""
    import itertools
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        copies = torch.stack([torch.tensor([0, int(torch.randint(0, 2, (1,), generator=generator)),
                                            int(torch.randint(0, 3, (1,), generator=generator))])
                              for _ in range(5)])
        copies[:, 2] = torch.where(copies[:, 2] == 1, copies[:, 1], copies[:, 2])  # a first copy
        valid = (torch.rand(5, 3, generator=generator) < 0.4).gather(1, copies)
        new = copies == torch.arange(3)
        spent = 5 * torch.arange(1, 4) + 5 * new.long().cumsum(-1)        # after each try
        for budget in (10, 12, 14, 17, 20, 25, 40):
            best = 0
            for tries in itertools.product(range(1, 4), repeat=5):
                passes = sum(int(spent[b, k - 1]) for b, k in enumerate(tries))
                if passes <= budget * 5:
                    best = max(best, sum(bool(valid[b, :k].any()) for b, k in enumerate(tries)))
            assert stopping.perfect_check_rate(copies, valid, budget, decode_passes=5,
                                               check_passes=5) == best / 5
