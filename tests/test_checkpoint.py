import copy
import errno
import io
import os
import pickle
import random
import re

import numpy as np
import pytest
import torch

from tests.conftest import tiny_program
from vmd_pyro import checkpoint, faults
from vmd_pyro.checkpoint import (FORMAT, MAGIC, REQUIRED, RESUMABLE, RNG_STATE, TRAINING_STATE,
                                 CheckpointWriteError, frame, init_denoiser, load_program,
                                 randomize_latent_inputs, read_checkpoint, save_checkpoint,
                                 set_rng_state, write_state)
from vmd_pyro.datasets import synthetic
from vmd_pyro.experiment import load_script
from vmd_pyro.networks import NetConfig
from vmd_pyro.program import ProgramConfig, build_program
from vmd_pyro.sampling import all_masked, generate
from vmd_pyro.training import TrainConfig, train

TASK = synthetic.make_synthetic("quad-d1")


@pytest.mark.parametrize("prior", ["gaussian", "mog", "discrete", "conditional"])
def test_round_trip_gives_identical_samples(tmp_path, prior):
    program = tiny_program(prior=prior)
    save_checkpoint(tmp_path / "ck.pt", program, note="hello")
    loaded, state = load_program(tmp_path / "ck.pt")
    assert state["note"] == "hello"
    x = all_masked(20, 4, program.mask_id)
    a, _ = generate(program, x, nfe=2, generator=torch.Generator().manual_seed(0))
    b, _ = generate(loaded, x, nfe=2, generator=torch.Generator().manual_seed(0))
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


# --- loading never runs code; damaged files are refused in one line ---------------------------

class _WritesMarker:
    """Unpickling this calls ``open(marker, "w").write(...)``: what a crafted checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('code ran')",)


def _refusal(path, match=None) -> str:
    with pytest.raises(ValueError, match=match) as err:
        load_program(path)
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    return message


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_crafted_pickle_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "marker"
    evil = pickle.dumps(_WritesMarker(marker))
    pickle.loads(evil)  # the payload really does run code when unpickled unsafely...
    assert marker.exists()
    marker.unlink()
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "program_config": _WritesMarker(marker), "state_dict": {}},
               buffer)
    cases = {"raw pickle": evil, "torch.save file (v1 style)": buffer.getvalue(),
             # ...and framed with a correct header and digest, so only weights_only stands between
             "v2 frame around torch.save": frame(buffer.getvalue()), "v2 frame around pickle": frame(evil)}
    for name, data in cases.items():
        (tmp_path / "evil.pt").write_bytes(data)
        _refusal(tmp_path / "evil.pt")
        assert not marker.exists(), f"{name}: loading ran the file's code"


def test_damaged_and_foreign_files_each_get_one_clear_line(tmp_path):
    save_checkpoint(tmp_path / "good.pt", tiny_program())
    good = (tmp_path / "good.pt").read_bytes()
    flipped = bytearray(good)
    flipped[len(good) * 2 // 3] ^= 0x10
    cases = {"empty": (b"", "empty"),
             "truncated": (good[:len(good) // 2], "truncated"),
             "bit flip": (bytes(flipped), "damaged: its content does not match the sha256"),
             "text": (b"hello, world\n", "not a vmd-pyro checkpoint"),
             "header only": (good[:len(MAGIC)], "header line is malformed"),
             "appended": (good + b"\0", "longer than written")}
    for name, (data, message) in cases.items():
        (tmp_path / f"{name}.pt").write_bytes(data)
        _refusal(tmp_path / f"{name}.pt", match=message)
    (tmp_path / "dir.pt").mkdir()
    _refusal(tmp_path / "dir.pt", match="does not exist")


def test_a_checkpoint_missing_an_expected_key_is_refused(tmp_path):
    program = tiny_program(vocab=10, seq_len=4)
    train(program, TASK.sample, TrainConfig(steps=2, batch_size=8, progress=False),
          save=tmp_path / "ck.pt")
    state = read_checkpoint(tmp_path / "ck.pt")
    places = [((), "", REQUIRED), ((), "", RESUMABLE),
              (("training_state",), "training_state.", TRAINING_STATE),
              (("training_state", "rng", 0), "training_state.rng[0].", RNG_STATE)]
    for where, prefix, keys in places:
        for key in keys:
            broken = copy.deepcopy(state)
            holder = broken
            for step in where:
                holder = holder[step]
            del holder[key]
            write_state(tmp_path / "broken.pt", broken)
            _refusal(tmp_path / "broken.pt", match=re.escape(f"lacks {prefix}{key}:"))


def test_stored_random_states_restore_every_stream(tmp_path):
    """Random states are stored as tensors and plain values and come back exactly: after
    restoring, NumPy, Python and torch draw what they drew right after the checkpoint."""
    program = tiny_program(vocab=10, seq_len=4)
    train(program, TASK.sample, TrainConfig(steps=2, batch_size=8, progress=False),
          save=tmp_path / "ck.pt")

    def draws():
        return np.random.rand(3).tolist(), [random.random() for _ in range(3)], torch.rand(3)

    expected = draws()
    set_rng_state(read_checkpoint(tmp_path / "ck.pt")["training_state"]["rng"][0],
                  torch.Generator())
    again = draws()
    assert again[:2] == expected[:2] and torch.equal(again[2], expected[2])


def test_writing_refuses_values_that_could_not_be_loaded_safely(tmp_path):
    with pytest.raises(ValueError, match="only tensors and plain values"):
        save_checkpoint(tmp_path / "ck.pt", tiny_program(), extra=np.zeros(3))
    assert not (tmp_path / "ck.pt").exists()


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    program = tiny_program()
    save_checkpoint(tmp_path / "ck.pt", program, note="first")
    before = (tmp_path / "ck.pt").read_bytes()

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    for target in ("fsync", "replace"):  # after the bytes went out, and at the rename
        with monkeypatch.context() as patch:
            patch.setattr(checkpoint.os, target, no_space)
            with pytest.raises(CheckpointWriteError, match="No space left on device.*unchanged"):
                save_checkpoint(tmp_path / "ck.pt", program, note="second")
        assert (tmp_path / "ck.pt").read_bytes() == before
        assert not (tmp_path / "ck.pt.tmp").exists()
    assert load_program(tmp_path / "ck.pt")[1]["note"] == "first"


# --- fuzzing the reader ---


def _resume_from(path):
    """Everything a reader of a checkpoint does: rebuild the program, then resume training."""
    program, _ = load_program(path)
    return train(program, TASK.sample, TrainConfig(steps=3, batch_size=8, progress=False),
                 resume=path)


def _mutate_structure(state, rng):
    """Delete a key or swap a value for one of another type, somewhere in the nested dict."""
    state = copy.deepcopy(state)
    holder, key = state, rng.choice(sorted(state, key=str))
    while isinstance(holder[key], (dict, list)) and holder[key] and rng.random() < 0.6:
        holder = holder[key]
        key = rng.choice(sorted(holder, key=str)) if isinstance(holder, dict) else \
            rng.randrange(len(holder))
    if isinstance(holder, dict) and rng.random() < 0.4:
        del holder[key]
    else:
        holder[key] = rng.choice([None, 7, -1.5, "x", [], {}, (1, 2), torch.zeros(2, 3),
                                  torch.tensor([float("nan")])])
    return state


@pytest.mark.slow
def test_fuzzed_checkpoints_load_correctly_or_fail_with_one_line(tmp_path):
    rng = random.Random(15)
    program = tiny_program(vocab=10, seq_len=4)
    train(program, TASK.sample, TrainConfig(steps=2, batch_size=8, progress=False),
          save=tmp_path / "good.pt")
    good = (tmp_path / "good.pt").read_bytes()
    payload = good[good.index(b"\n", len(MAGIC)) + 1:]
    state = read_checkpoint(tmp_path / "good.pt")
    cases = [("random", b) for b in faults.random_blobs(rng, 400, max_len=2000)]
    cases += [(kind, m) for kind, m in faults.mutations(good, rng, 600)]
    # near-valid: damaged payloads under a correct digest reach the weights_only unpickler
    cases += [("reframed " + kind, frame(m)) for kind, m in faults.mutations(payload, rng, 400)]
    outcomes = {}
    for i, (kind, data) in enumerate(cases):  # a new file each time: rewriting one is slow
        (tmp_path / f"case{i}.pt").write_bytes(data)
        outcome, _ = faults.classify(load_program, tmp_path / f"case{i}.pt")
        outcomes[kind.split()[0], outcome] = outcomes.get((kind.split()[0], outcome), 0) + 1
    assert outcomes.get(("random", "parsed"), 0) == 0, outcomes
    assert not any(outcome == "parsed" for (kind, outcome) in outcomes if kind not in
                   ("reframed", "random")), outcomes  # the digest catches every plain mutation
    for i in range(150):  # well-formed files of the wrong shape: refused, or usable to the end
        write_state(tmp_path / f"shape{i}.pt", _mutate_structure(state, rng))
        outcome, _ = faults.classify(_resume_from, tmp_path / f"shape{i}.pt")
        outcomes["shape", outcome] = outcomes.get(("shape", outcome), 0) + 1
    assert outcomes.get(("shape", "refused"), 0) > 50, outcomes


def _program(model, arch="mlp", z_conditioning="input", hidden=16, latent_dim=3):
    net = NetConfig(vocab_size=5, seq_len=4, arch=arch, hidden=hidden, layers=1, heads=2,
                    z_conditioning=z_conditioning)
    return build_program(ProgramConfig(net=net, model=model, latent_dim=latent_dim))


@pytest.mark.parametrize("arch", ["mlp", "transformer"])
@pytest.mark.parametrize("z_conditioning", ["input", "film"])
def test_a_vmd_started_from_an_mdm_predicts_what_the_mdm_predicts_for_every_z(tmp_path, arch,
                                                                             z_conditioning):
    mdm = _program("mdm", arch)
    save_checkpoint(tmp_path / "mdm.pt", mdm)
    torch.manual_seed(1)  # other weights than the MDM's everywhere before the copy
    vmd = _program("vmd", arch, z_conditioning)
    init_denoiser(vmd, tmp_path / "mdm.pt")
    xt = torch.randint(0, 6, (7, 4))
    z = 3 * torch.randn(7, 3)
    with torch.no_grad():
        torch.testing.assert_close(vmd.logits(xt, z), mdm.logits(xt), rtol=0, atol=1e-6)
    # the zeroed weights still learn: z's gradient path is open
    vmd.logits(xt, z).logsumexp(-1).sum().backward()
    assert vmd.denoiser.z_proj.weight.grad.abs().sum() > 0


def test_a_vmd_started_from_a_vmd_takes_every_denoiser_weight(tmp_path):
    source = _program("vmd", z_conditioning="film")
    save_checkpoint(tmp_path / "vmd.pt", source)
    torch.manual_seed(1)
    vmd = _program("vmd", z_conditioning="film")
    init_denoiser(vmd, tmp_path / "vmd.pt")
    for (key, a), b in zip(vmd.denoiser.state_dict().items(), source.denoiser.state_dict().values()):
        assert torch.equal(a, b), key
    assert not torch.equal(vmd.guide_net.state_dict()[next(iter(vmd.guide_net.state_dict()))],
                           source.guide_net.state_dict()[next(iter(source.guide_net.state_dict()))])


def test_a_denoiser_of_another_network_is_refused(tmp_path):
    save_checkpoint(tmp_path / "mdm.pt", _program("mdm", hidden=32))
    with pytest.raises(ValueError, match="differs in hidden"):
        init_denoiser(_program("vmd"), tmp_path / "mdm.pt")


def test_randomized_latent_inputs_make_every_value_of_an_enumerated_z_predict_differently(tmp_path):
    mdm = _program("mdm")
    save_checkpoint(tmp_path / "mdm.pt", mdm)
    vmd = build_program(ProgramConfig(net=NetConfig(vocab_size=5, seq_len=4, hidden=16, layers=1,
                                                    heads=2, z_conditioning="head"),
                                      prior="discrete", components=4, latent_dim=3))
    init_denoiser(vmd, tmp_path / "mdm.pt")
    xt, values = torch.randint(0, 6, (5, 4)), torch.arange(4).unsqueeze(-1)   # (K, 1)
    with torch.no_grad():
        same = vmd.logits(xt, values)
        assert torch.equal(same[0], same[3])                  # the symmetric start
        bias = vmd.denoiser.film.proj.bias.clone()
        randomize_latent_inputs(vmd, 0.5)
        moved = vmd.logits(xt, values)
    assert not torch.allclose(moved[0], moved[3])
    weight = vmd.denoiser.film.proj.weight
    assert 0.4 < float(weight.detach().std()) < 0.6 and torch.equal(vmd.denoiser.film.proj.bias, bias)


def test_a_feature_prior_started_from_a_discrete_vmd_is_that_vmd(tmp_path):
    """--init-denoiser copies the prior's weights that fit (z's embedding and probabilities), so
    a VMD given the discrete-features prior starts as the discrete VMD it extends: the same
    p(x0 | xt, z) for every z and the same p(z | xt); a checkpoint of it loads back the same."""
    def program(prior):
        net = NetConfig(vocab_size=5, seq_len=4, arch="transformer", hidden=16, layers=1, heads=2,
                        z_conditioning="film")
        return build_program(ProgramConfig(net=net, prior=prior, guide="exact", components=4,
                                           latent_dim=3))
    source = program("discrete")
    with torch.no_grad():
        source.prior.logits.copy_(torch.tensor([0.5, -1.0, 0.0, 1.5]))
        source.denoiser.film.proj.weight.normal_()
    save_checkpoint(tmp_path / "vmd.pt", source)
    torch.manual_seed(1)
    probe = program("discrete-features")
    init_denoiser(probe, tmp_path / "vmd.pt")
    xt, values = torch.randint(0, 6, (5, 4)), torch.arange(4).unsqueeze(-1)
    with torch.no_grad():
        torch.testing.assert_close(probe.logits(xt, values), source.logits(xt, values),
                                   rtol=0, atol=0)
        torch.testing.assert_close(probe.prior_dist(xt).probs, source.prior_dist(xt).probs)
        probe.prior.head[-1].weight.normal_()
    save_checkpoint(tmp_path / "probe.pt", probe)
    loaded, _ = load_program(tmp_path / "probe.pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded.prior_dist(xt).probs, probe.prior_dist(xt).probs)


def test_every_mutation_changes_the_bytes():
    """A byte overwritten with its own value (or a truncation at the end) is no mutation: the
    fuzzers' checks that no mutated file loads would then fail on a file that is intact."""
    rng = random.Random(0)
    data = bytes([7, 7, 7])
    outcomes = list(faults.mutations(data, rng, 3000))
    assert {kind for kind, _ in outcomes} == {"flip", "truncate", "overwrite", "insert", "delete",
                                              "duplicate"}
    assert all(m != data for _, m in outcomes)


def test_a_weights_only_copy_decodes_like_its_rounded_original_and_drops_training_state(tmp_path):
    program = tiny_program(prior="discrete", arch="transformer", vocab=10, components=4)
    train(program, TASK.sample, TrainConfig(steps=3, batch_size=8, progress=False),
          save=tmp_path / "run.pt")
    assert "training_state" in read_checkpoint(tmp_path / "run.pt")
    exported = checkpoint.export_weights(tmp_path / "run.pt", tmp_path / "small.pt")
    assert "training_state" not in exported and "history" in exported
    assert exported["exported"] == {"from": str(tmp_path / "run.pt"), "dtype": "float16"}
    assert (tmp_path / "small.pt").stat().st_size < (tmp_path / "run.pt").stat().st_size / 2
    full, _ = load_program(tmp_path / "run.pt")
    small, _ = load_program(tmp_path / "small.pt")
    for (name, a), (_, b) in zip(full.state_dict().items(), small.state_dict().items()):
        assert b.dtype == a.dtype, name  # cast back to the program's own dtype on loading
        assert torch.equal(b, a.half().to(a.dtype) if a.is_floating_point() else a), name
    x = all_masked(50, 4, program.mask_id)
    z = torch.arange(50) % 4
    assert torch.allclose(full.logits(x, z), small.logits(x, z), atol=1e-2)
    # the command-line form writes the same copy
    convert = load_script("convert_checkpoint")
    assert convert.main(["--weights-only", str(tmp_path / "run.pt"), str(tmp_path / "c.pt")]) == 0
    again = read_checkpoint(tmp_path / "c.pt")["state_dict"]
    assert all(torch.equal(again[k], v) for k, v in exported["state_dict"].items())
