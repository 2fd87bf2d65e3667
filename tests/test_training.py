"""The training loop's time budget (equal-time comparisons)."""
import torch

from tests.conftest import tiny_program
from vmd_pyro.training import TrainConfig, train


def _data(batch_size, generator):
    x0 = torch.randint(0, 5, (batch_size, 4), generator=generator)
    return x0, torch.ones_like(x0, dtype=torch.bool)


def test_time_budget_stops_training_early_and_records_where():
    program = tiny_program(model="mdm")
    history = train(program, _data, TrainConfig(steps=10_000, batch_size=8, eval_every=0,
                                                time_budget=0.2, progress=False))
    assert len(history) == 1
    assert 1 <= history[-1]["step"] < 10_000 and history[-1]["elapsed"] >= 0.2


def test_without_budget_all_steps_run():
    program = tiny_program(model="mdm")
    history = train(program, _data, TrainConfig(steps=5, batch_size=8, eval_every=0,
                                                progress=False))
    assert history[-1]["step"] == 5
