"""Resumable, fail-safe and multi-process training (vmd_pyro.training, vmd_pyro.checkpoint,
vmd_pyro.distributed), checked against uninterrupted single-process runs."""
import errno
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyro
import pytest
import torch

from tests.conftest import tiny_program
from vmd_pyro import checkpoint, faults
from vmd_pyro.checkpoint import CheckpointWriteError, read_checkpoint, save_checkpoint, write_state
from vmd_pyro.datasets import synthetic
from vmd_pyro.masking import path_batch
from vmd_pyro.program import ProgramConfig, build_program
from vmd_pyro.training import NonFiniteLoss, TrainConfig, train

REPO = Path(__file__).resolve().parent.parent
RUN = [sys.executable, str(REPO / "experiments" / "run.py")]
# A tiny, fast CLI configuration: what matters here is the training loop, not the model.
TINY = ["--dataset", "quad-d1", "--hidden", "8", "--layers", "1", "--latent-dim", "2",
        "--components", "3", "--batch-size", "16", "--eval-every", "0", "--nfe", "1",
        "--num-samples", "20", "--z-samples", "5", "--iw-samples", "0", "--threads", "1",
        "--quiet"]
TASK = synthetic.make_synthetic("quad-d1")


def config(**kw):
    return TrainConfig(**{"steps": 12, "batch_size": 16, "anneal_steps": 5, "eval_every": 4,
                          "progress": False, "save_every": 4, "validate": True, **kw})


def assert_same_parameters(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize("prior,engine", [("gaussian", "fused"), ("discrete", "fused"),
                                          ("conditional", "svi"), (None, "fused")])
def test_resume_continues_bit_for_bit(tmp_path, prior, engine):
    """Stopping after step 4 and resuming gives the parameters and history of one whole run."""
    model = "mdm" if prior is None else "vmd"

    def make():
        pyro.set_rng_seed(0)  # the same initialisation each time
        return tiny_program(model=model, prior=prior or "gaussian", vocab=10, seq_len=4)

    whole = make()
    history = train(whole, TASK.sample, config(engine=engine), save=tmp_path / "whole.pt",
                    eval_fn=lambda p: {"probe": float(torch.rand(()))})
    first = make()
    train(first, TASK.sample, config(engine=engine, steps=4), save=tmp_path / "part.pt")
    resumed = make()
    resumed_history = train(resumed, TASK.sample, config(engine=engine), resume=tmp_path / "part.pt",
                            save=tmp_path / "resumed.pt",
                            eval_fn=lambda p: {"probe": float(torch.rand(()))})
    assert_same_parameters(whole.state_dict(), resumed.state_dict())
    assert [r["train_loss"] for r in history] == [r["train_loss"] for r in resumed_history]
    a, b = read_checkpoint(tmp_path / "whole.pt"), read_checkpoint(tmp_path / "resumed.pt")
    assert a["training_state"]["step"] == b["training_state"]["step"] == 12
    assert_same_parameters(a["state_dict"], b["state_dict"])


@pytest.mark.slow
def test_training_in_the_samplers_own_order_resumes_bit_for_bit(tmp_path):
    """The steps objective along the denoiser's Top-Prob-Margin order (its z drawn from the
    training generator) is as reproducible as the random order; without steps it is refused."""
    def make():
        pyro.set_rng_seed(0)
        return tiny_program(model="vmd", prior="discrete", vocab=10, seq_len=4)

    ordered = {"objective": "steps", "train_nfe": (2,), "train_order": "top-prob-margin"}
    whole = make()
    train(whole, TASK.sample, config(**ordered), save=tmp_path / "whole.pt")
    part = make()
    train(part, TASK.sample, config(**ordered, steps=4), save=tmp_path / "part.pt")
    resumed = make()
    train(resumed, TASK.sample, config(**ordered), resume=tmp_path / "part.pt")
    assert_same_parameters(whole.state_dict(), resumed.state_dict())
    random_order = make()
    train(random_order, TASK.sample, config(objective="steps", train_nfe=(2,)))
    assert not torch.equal(random_order.denoiser.out.weight, whole.denoiser.out.weight)
    with pytest.raises(ValueError, match="needs --objective steps"):
        train(make(), TASK.sample, config(train_order="top-prob"))


def test_paths_objective_trains_one_z_per_path_in_the_samplers_order():
    """The paths objective along the denoiser's own order lowers its own loss on a fixed batch and
    is refused where no guide can read a path, for MDM and for several T."""
    def make(**kw):
        pyro.set_rng_seed(0)
        return tiny_program(model="vmd", prior="discrete", vocab=10, seq_len=4, guide="exact", **kw)

    program = make()
    x0, maskable = TASK.sample(64, torch.Generator().manual_seed(9))
    batch = path_batch(x0, program.mask_id, 2, maskable=maskable)
    elbo = program.make_elbo()
    before = float(elbo.loss(program.model, program.guide, batch))
    paths = {"objective": "paths", "train_nfe": (2,), "train_order": "top-prob-margin"}
    history = train(program, TASK.sample, config(**paths, steps=40, lr=1e-2))
    assert len(history) == 10 and all(math.isfinite(r["train_loss"]) for r in history)
    assert float(elbo.loss(program.model, program.guide, batch)) < before - 0.5
    with pytest.raises(ValueError, match="needs a guide that reads a whole path"):
        train(tiny_program(model="vmd", prior="discrete", vocab=10, seq_len=4), TASK.sample,
              config(**paths))
    with pytest.raises(ValueError, match="trains a VMD without blocks"):
        train(tiny_program(model="mdm", vocab=10, seq_len=4), TASK.sample, config(**paths))
    with pytest.raises(ValueError, match="trains one T"):
        train(make(), TASK.sample, config(**{**paths, "train_nfe": (1, 2)}))


def test_killed_run_resumes_to_the_uninterrupted_parameters(tmp_path):
    """A real `experiments/run.py` process killed with SIGKILL after a checkpoint, then resumed,
    ends with exactly the parameters of a run never interrupted (the two run side by side)."""
    args = TINY + ["--model", "vmd", "--steps", "300", "--save-every", "20"]
    whole = subprocess.Popen(RUN + args + ["--save", str(tmp_path / "whole.pt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ck = tmp_path / "killed.pt"
    proc = subprocess.Popen(RUN + args + ["--save", str(ck)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not ck.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    stopped_at = read_checkpoint(ck)["training_state"]["step"]
    assert 0 < stopped_at < 300, "the run was not interrupted mid-way"

    resumed = subprocess.run(RUN + args + ["--resume", str(ck)], capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert whole.wait(timeout=300) == 0, whole.stderr.read()
    a, b = read_checkpoint(tmp_path / "whole.pt"), read_checkpoint(ck)
    assert b["training_state"]["step"] == 300
    assert_same_parameters(a["state_dict"], b["state_dict"])
    assert_same_parameters(a["training_state"]["optimizer"]["state"][0],
                           b["training_state"]["optimizer"]["state"][0])


def test_bad_checkpoints_are_refused(tmp_path):
    program = tiny_program(vocab=10, seq_len=4)
    train(program, TASK.sample, config(steps=4), save=tmp_path / "ck.pt")

    with pytest.raises(ValueError, match=r"train_config.batch_size: checkpoint 16, this run 32"):
        train(tiny_program(vocab=10, seq_len=4), TASK.sample, config(batch_size=32),
              resume=tmp_path / "ck.pt")
    with pytest.raises(ValueError, match=r"program_config.latent_dim: checkpoint 3, this run 2"):
        train(tiny_program(vocab=10, seq_len=4, latent_dim=2), TASK.sample, config(),
              resume=tmp_path / "ck.pt")
    with pytest.raises(ValueError, match=r"dataset: checkpoint None, this run 'quad-d1'"):
        train(tiny_program(vocab=10, seq_len=4), TASK.sample, config(),
              resume=tmp_path / "ck.pt", run_info={"dataset": "quad-d1"})
    (tmp_path / "junk.pt").write_bytes(os.urandom(100))
    with pytest.raises(ValueError, match="not a vmd-pyro checkpoint"):
        train(program, TASK.sample, config(), resume=tmp_path / "junk.pt")
    save_checkpoint(tmp_path / "model-only.pt", program)
    with pytest.raises(ValueError, match="no training state"):
        train(program, TASK.sample, config(), resume=tmp_path / "model-only.pt")


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    program = tiny_program(vocab=10, seq_len=4)
    calls = []

    def poisoned_sample(batch_size, generator):
        calls.append(1)
        if len(calls) == 7:  # step 7: a parameter turns NaN, as after an overflow
            with torch.no_grad():
                next(program.denoiser.parameters()).fill_(float("nan"))
        return TASK.sample(batch_size, generator)

    with pytest.raises(NonFiniteLoss, match=r"loss became nan at step 7; the last good checkpoint "
                                            r"\(step 4\) is kept"):
        train(program, poisoned_sample, config(validate=False), save=tmp_path / "ck.pt")
    state = read_checkpoint(tmp_path / "ck.pt")
    assert state["training_state"]["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    """torchrun with 2 gloo ranks, each taking half of every global batch, ends where one process
    does. MDM and the enumerated discrete VMD draw no latent noise, so the runs see identical
    examples, masks and times, and differ only by floating-point summation order."""
    args = TINY + ["--model", "mdm", "vmd", "--prior", "discrete", "--steps", "6",
                   "--fill", "sample", "--batch-size", "32"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.Popen(RUN + args + ["--save", str(tmp_path / "one.pt")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                            "--nproc_per_node=2", *RUN[1:], *args,
                            "--save", str(tmp_path / "two.pt")],
                           capture_output=True, text=True, timeout=300, env=env)
    assert multi.returncode == 0, multi.stderr
    assert single.wait(timeout=300) == 0, single.stderr.read()
    assert multi.stdout.count("| vmd |") == 1, "only rank 0 reports"
    for model in ("mdm", "vmd"):
        a = read_checkpoint(tmp_path / f"one-{model}.pt")
        b = read_checkpoint(tmp_path / f"two-{model}.pt")
        assert len(b["training_state"]["rng"]) == 2
        for name, value in a["state_dict"].items():
            torch.testing.assert_close(b["state_dict"][name], value, rtol=1e-4, atol=1e-5)
        pyro.set_rng_seed(0)  # the initialisation run.py draws: training must have moved from it
        initial = build_program(ProgramConfig.from_dict(a["program_config"])).state_dict()
        assert max(float((initial[k] - v).abs().max()) for k, v in a["state_dict"].items()) > 1e-3
        assert a["history"][-1]["train_loss"] == pytest.approx(b["history"][-1]["train_loss"],
                                                               rel=1e-5)


RANKS_STOP_TOGETHER = """
import itertools, json, sys
import torch
from tests.conftest import tiny_program
from vmd_pyro import distributed, training
from vmd_pyro.datasets import synthetic
from vmd_pyro.masking import path_batch

distributed.init_from_env(torch.device("cpu"))
rank, _ = distributed.rank_and_world()
if rank == 1:  # this rank's clock runs 1 s per reading: it is out of time after a few steps
    ticks = itertools.count()
    training.time.perf_counter = lambda: float(next(ticks))
cfg = training.TrainConfig(steps=50, batch_size=16, eval_every=0, progress=False, validate=False,
                           time_budget=5.0)
history = training.train(tiny_program(vocab=10, seq_len=4), synthetic.make_synthetic("quad-d1").sample, cfg)
distributed.finish()
distributed.shutdown()
with open(f"{sys.argv[1]}/rank{rank}.json", "w") as f:  # a file each: the ranks' stdout interleave
    json.dump({"last_step": history[-1]["step"]}, f)
distributed.exit_process(0)
"""


@pytest.mark.slow
def test_under_a_time_budget_every_rank_stops_at_the_same_step(tmp_path):
    """Each rank reads its own clock; when one runs out of time, all must stop at that step, or
    the others would wait forever in the next step's collective."""
    script = tmp_path / "ranks.py"
    script.write_text(RANKS_STOP_TOGETHER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node=2", str(script), str(tmp_path)],
                         capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert out.returncode == 0, out.stderr
    steps = [json.loads((tmp_path / f"rank{rank}.json").read_text())["last_step"]
             for rank in (0, 1)]
    assert steps[0] == steps[1] < 50

# --- the time budget (equal-time comparisons) ---


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


def test_history_reports_the_kl_weight_only_for_a_model_with_a_latent():
    """beta weighs KL(q(z) || p(z)); MDM has no z, so its history has no beta to mislead."""
    cfg = TrainConfig(steps=4, batch_size=8, anneal_steps=8, eval_every=2, progress=False)
    assert [r["beta"] for r in train(tiny_program(model="vmd"), _data, cfg)] == [0.25, 0.5]
    assert all("beta" not in r for r in train(tiny_program(model="mdm"), _data, cfg))


def test_free_nats_penalty_matches_the_closed_form_kl():
    from vmd_pyro.training import free_nats_penalty

    torch.manual_seed(0)
    program = tiny_program(prior="gaussian", latent_dim=3)
    batch = program.corrupt(torch.randint(0, 5, (16, 4)), generator=torch.Generator().manual_seed(1))
    q = program.guide_dist(batch.x0, batch.masked)
    kl = 0.5 * (q.mean ** 2 + q.variance - 1 - q.variance.log()).sum(-1)  # KL(q || N(0, I))
    used = batch.masked.any(-1)  # no KL term where nothing is masked
    for free in (0.0, float(kl.detach().median()), 1e3):
        expected = (batch.weight * used * (free - kl).clamp_min(0)).sum()
        assert float(free_nats_penalty(program, batch, free)) == pytest.approx(float(expected), rel=1e-5)
    # Below the floor the penalty cancels the KL's gradient: loss + penalty no longer pulls the
    # guide towards the prior (d/d mean of w (KL + (free - KL)) = 0).
    big = free_nats_penalty(program, batch, 1e3) + (batch.weight * used * kl).sum()
    grads = torch.autograd.grad(big, list(program.guide_net.parameters()), allow_unused=True)
    assert all(g is None or g.abs().max() < 1e-3 for g in grads)


@pytest.mark.parametrize("kw, prior, message", [
    ({"engine": "svi"}, "gaussian", "fused engine"),
    ({}, "mog", "closed-form KL"),
    ({"free_nats": -1.0}, "gaussian", ">= 0"),
])
def test_free_nats_refuses_what_it_cannot_do(kw, prior, message):
    program = tiny_program(prior=prior, vocab=10, seq_len=4)
    cfg = TrainConfig(steps=1, batch_size=8, progress=False, **{"free_nats": 1.0, **kw})
    with pytest.raises(ValueError, match=message):
        train(program, TASK.sample, cfg)


def test_checkpoint_from_before_a_config_field_existed_still_resumes(tmp_path):
    # A checkpoint written before free_nats / position_groups / attention existed lacks them; it
    # was made with their defaults, so resuming must accept it (and refuse a non-default value).
    pyro.set_rng_seed(0)
    train(tiny_program(vocab=10, seq_len=4), TASK.sample, config(steps=4), save=tmp_path / "ck.pt")
    state = read_checkpoint(tmp_path / "ck.pt")
    for key in ("position_groups", "attention"):
        del state["program_config"]["net"][key]
    del state["train_config"]["free_nats"]
    write_state(tmp_path / "old.pt", state)
    history = train(tiny_program(vocab=10, seq_len=4), TASK.sample, config(steps=6),
                    resume=tmp_path / "old.pt")
    assert history[-1]["step"] == 6
    with pytest.raises(ValueError, match=r"train_config.free_nats: checkpoint 0.0, this run 1.0"):
        train(tiny_program(vocab=10, seq_len=4), TASK.sample, config(steps=6, free_nats=1.0),
              resume=tmp_path / "old.pt")


# --- faults: kills at random points, failed saves, poisoned steps ---


def _probe(program):
    return {"probe": float(torch.rand(()))}  # a draw from the global stream: must replay exactly


@pytest.mark.parametrize("name", sorted(faults.MODELS))
def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_run(tmp_path, name):
    """A child process SIGKILLs itself at seeded random points (mid-step, mid-evaluation, halfway
    through writing a checkpoint, before the rename), four times, each time resumed from what is on
    disk; the end matches a run never interrupted: parameters, optimiser state and history."""
    cfg = config(steps=16, save_every=2, eval_every=4)
    whole = faults.make_program(name)
    train(whole, TASK.sample, cfg, eval_fn=_probe, save=tmp_path / "whole.pt")
    ck = tmp_path / "killed.pt"

    def train_once(resume, wrap_sample, wrap_eval):
        train(faults.make_program(name), wrap_sample(TASK.sample), cfg, eval_fn=wrap_eval(_probe),
              save=ck, resume=resume)

    kills = faults.random_kills(random.Random(name), 4)
    records = faults.survive_kills(train_once, ck, kills)
    assert [r["reached"] for r in records] == [True] * 4 + [False], records
    assert {k.point for k in kills} == set(faults.KILL_POINTS)
    a, b = read_checkpoint(tmp_path / "whole.pt"), read_checkpoint(ck)
    assert b["training_state"]["step"] == 16
    assert_same_parameters(a["state_dict"], b["state_dict"])
    for key, state in a["training_state"]["optimizer"]["state"].items():
        assert_same_parameters(state, b["training_state"]["optimizer"]["state"][key])
    timeless = [[{k: v for k, v in r.items() if k != "elapsed"} for r in c["history"]] for c in (a, b)]
    assert timeless[0] == timeless[1]


@pytest.mark.parametrize("broken", ["fsync", "torch.save"])
def test_a_failed_save_stops_training_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch,
                                                                        broken):
    ck = tmp_path / "ck.pt"
    saves = []
    target, name = (checkpoint.os, "fsync") if broken == "fsync" else (checkpoint.torch, "save")
    real = getattr(target, name)

    def disk_fills_up(*args, **kwargs):
        saves.append(1)
        if len(saves) == 2:  # the second checkpoint (step 8): no space left
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, disk_fills_up)
    with pytest.raises(CheckpointWriteError) as err:
        train(tiny_program(vocab=10, seq_len=4), TASK.sample, config(), save=ck)
    message = str(err.value)
    assert "No space left on device" in message and "training stopped at step 8" in message
    assert "the last good checkpoint (step 4) is kept" in message and "\n" not in message
    assert read_checkpoint(ck)["training_state"]["step"] == 4
    assert not (tmp_path / "ck.pt.tmp").exists()


def test_a_non_finite_loss_stops_before_the_parameters_change(tmp_path):
    """A batch whose loss is NaN (here: its ELBO weights) never reaches the parameters or the
    optimiser; the last good checkpoint stays."""
    program = tiny_program(vocab=10, seq_len=4)
    real_corrupt, calls, before = program.corrupt, [], {}

    def poisoned(*args, **kwargs):
        batch = real_corrupt(*args, **kwargs)
        calls.append(1)
        if len(calls) == 7:
            before.update({k: v.clone() for k, v in program.state_dict().items()})
            batch.weight = batch.weight * float("nan")
        return batch

    program.corrupt = poisoned
    with pytest.raises(NonFiniteLoss, match=r"loss became nan at step 7; the last good checkpoint"):
        train(program, TASK.sample, config(validate=False), save=tmp_path / "ck.pt")
    assert_same_parameters(before, program.state_dict())
    assert read_checkpoint(tmp_path / "ck.pt")["training_state"]["step"] == 4


@pytest.mark.parametrize("engine", ["fused", "svi"])
def test_train_only_changes_those_parameters_alone_and_restores_the_flags(engine):
    pyro.set_rng_seed(0)
    program = tiny_program(prior="discrete", vocab=10, seq_len=4)
    before = {k: v.clone() for k, v in program.state_dict().items()}
    train(program, TASK.sample, config(engine=engine, save_every=0, train_only=("prior.logits",
                                                                                "guide_net")))
    after = program.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith(("prior.logits", "guide_net")) for k in moved), moved
    assert "prior.logits" in moved
    assert all(p.requires_grad for p in program.parameters())


def test_train_only_refuses_a_prefix_that_names_no_parameter():
    program = tiny_program(prior="discrete", vocab=10, seq_len=4)
    with pytest.raises(ValueError, match="'prior.head'.*begin with denoiser, guide_net, prior"):
        train(program, TASK.sample, config(save_every=0, train_only=("prior.head",)))
    assert all(p.requires_grad for p in program.parameters())
