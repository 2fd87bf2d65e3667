"""The command line: JSON conventions, samples file, checkpoints, and clear errors for bad input."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vmd_pyro.experiment import load_script
from vmd_pyro.tasks.runner import model_processes, train_config

RUN = Path(__file__).resolve().parent.parent / "experiments" / "run.py"
TINY = ["--steps", "30", "--hidden", "16", "--num-samples", "300", "--z-samples", "50",
        "--iw-samples", "4", "--quiet", "--threads", "1", "--eval-every", "0"]


def run_cli(*args):
    return subprocess.run([sys.executable, str(RUN), *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow  # two subprocesses training VMD with a mixture prior
def test_single_run_writes_json_samples_and_checkpoint(tmp_path):
    out, samples, ck = tmp_path / "r.json", tmp_path / "s.txt", tmp_path / "m.pt"
    proc = run_cli("--dataset", "pair-skewed", "--model", "vmd", "--prior", "mog", "--nfe", "1",
                   "--fill", "sample", "--out", str(out), "--samples-out", str(samples),
                   "--save", str(ck), *TINY)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(out.read_text())
    for key in ("accuracy", "kl", "objective_bits", "model", "prior", "dataset", "nfe", "steps",
                "seed", "wall_seconds", "git_commit", "kl_estimator", "iw_objective_bits",
                "nll_bound_bits", "iw_nll_bound_bits", "bound_generator"):
        assert key in record, key
    assert "nelbo_bits" not in record  # VMD's objective is never called a NELBO
    assert record["bound_generator"] == "T=1, order=random, fill=sample, z=resample"
    assert record["iw_nll_bound_bits"] <= record["nll_bound_bits"] + 1e-9
    assert 0.0 <= record["accuracy"] <= 1.0
    assert (record["model"], record["prior"], record["nfe"]) == ("vmd", "mog", 1)
    lines = samples.read_text().splitlines()
    assert len(lines) == 300
    assert all(len(line.split()) == 2 and all(tok.isdigit() and int(tok) < 10
                                              for tok in line.split()) for line in lines)
    # the checkpoint reproduces the model: the same seeded generator gives the same samples
    again = run_cli("--checkpoint", str(ck), "--dataset", "pair-skewed", "--model", "vmd",
                    "--prior", "mog", "--nfe", "1", "--fill", "sample",
                    "--out", str(tmp_path / "r2.json"), *TINY)
    assert again.returncode == 0, again.stderr
    reloaded = json.loads((tmp_path / "r2.json").read_text())
    for key in ("accuracy", "kl_plugin", "kl", "objective_bits", "iw_objective_bits",
                "nll_bound_bits", "iw_nll_bound_bits"):
        assert reloaded[key] == record[key], key


@pytest.mark.slow  # a subprocess training MDM and VMD
def test_comparison_lists_every_model_and_nfe(tmp_path):
    out = tmp_path / "cmp.json"
    proc = run_cli("--dataset", "quad-d1", "--nfe", "1", "2", "--out", str(out), *TINY)
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(out.read_text())["runs"]
    assert {(r["model"], r["nfe"], r["fill"]) for r in runs} == {
        (m, n, f) for m in ("mdm", "vmd") for n in (1, 2) for f in ("sample", "argmax")}
    assert "| mdm |" in proc.stdout and "| vmd |" in proc.stdout
    # every row carries the bound of its own NFE, named; MDM keeps its NELBO, VMD has an objective
    for r in runs:
        assert r["bound_generator"].startswith(f"T={r['nfe']}, order=random")
        assert ("nelbo_bits" in r) == (r["model"] == "mdm")
        assert ("objective_bits" in r) == (r["model"] == "vmd")


@pytest.mark.slow  # three subprocesses training MDM and VMD
def test_models_in_their_own_processes_give_the_rows_of_one_process(tmp_path):
    # Each model seeds its own streams, so training them side by side changes nothing but time.
    rows = {}
    for processes in ("1", "2"):
        out = tmp_path / f"p{processes}.json"
        proc = run_cli("--dataset", "quad-d1", "--nfe", "1", "--model-processes", processes,
                       "--out", str(out), *TINY)
        assert proc.returncode == 0, proc.stderr
        rows[processes] = json.loads(out.read_text())["runs"]
    timing = {"wall_seconds", "train_seconds", "history", "command", "model_processes"}
    for one, two in zip(rows["1"], rows["2"], strict=True):
        assert {k: v for k, v in one.items() if k not in timing} == {
            k: v for k, v in two.items() if k not in timing}
        assert [h["train_loss"] for h in one["history"]] == [h["train_loss"] for h in two["history"]]


def test_models_train_side_by_side_on_a_cpu_only(monkeypatch):
    from vmd_pyro.tasks import runner
    monkeypatch.setattr(runner.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    run = load_script("run")
    parser = run.build_parser()
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for argv, device, expected in ((["--model", "mdm", "vmd"], cpu, 2), (["--model", "vmd"], cpu, 1),
                                   (["--model", "mdm", "vmd"], cuda, 1),
                                   (["--model", "mdm", "vmd", "--model-processes", "1"], cpu, 1)):
        assert model_processes(parser.parse_args(argv), device) == expected, (argv, device)
    monkeypatch.setattr(runner.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert model_processes(parser.parse_args(["--model", "mdm", "vmd"]), cpu) == 1


@pytest.mark.parametrize("args, message", [
    (["--dataset", "quad-d9"], "unknown dataset 'quad-d9'"),
    (["--prior", "laplace"], "unknown prior 'laplace'"),
    (["--nfe", "0"], "--nfe must be >= 1"),
    (["--p", "2"], r"--p must lie in \[0, 1\]"),
    (["--prior", "gaussian", "--guide", "categorical", "--model", "vmd"], "cannot match prior"),
    (["--checkpoint", "/nonexistent.pt", "--model", "vmd"], "does not exist"),
    (["--checkpoint", "/tmp/m.pt"], "one file per model: '/tmp/m-mdm.pt' does not exist"),
    (["--bound-nfe", "0"], "--bound-nfe must be >= 1"),
    (["--bound-nfe", "5"], "--bound-nfe 5 is above the 4 maskable positions"),
    (["--objective", "steps", "--train-nfe", "0"], "--train-nfe must be >= 1"),
    (["--train-nfe", "2"], "add --objective steps"),
    (["--train-order", "top-prob-margin"], "--train-order sets the order of --objective steps"),
    (["--prior", "mog", "--z-strategy", "prior"], "--z-strategy prior needs a prior that depends"),
    (["--prior", "mog", "--z-strategy", "map"], "--z-strategy map .* needs a discrete prior"),
    (["--prior", "mog", "--z-strategy", "mode"], "--z-strategy mode needs a prior with a closed-form"),
    (["--prior", "discrete", "--z-strategy", "map"], "--z-strategy map needs --fill argmax"),
    (["--prior", "mog", "--z-strategy", "enumerate"], "--z-strategy enumerate .* needs a discrete"),
    (["--prior", "discrete", "--z-strategy", "enumerate", "--candidates", "2"], "leave --candidates"),
    (["--candidates", "0"], "--candidates must be >= 1"),
    (["--check-groups", "0"], "--check-groups must be >= 1"),
    (["--check-distinct"], "--check-distinct shares the checks of --select pseudo-likelihood"),
    (["--z-values", "2"], "--z-values limits --z-strategy enumerate"),
    (["--z-strategy", "enumerate", "--z-values", "-1"], "--z-values limits .* must be >= 0"),
    (["--select", "pseudo-likelihood", "--arch", "transformer", "--block-size", "2"],
     "--select pseudo-likelihood is for models without blocks"),
    (["--prior", "discrete", "--z-strategy", "enumerate", "--arch", "transformer",
      "--block-size", "2"], "--z-strategy enumerate is for models without blocks"),
    (["--temperature", "0"], "--temperature must be > 0"),
    (["--fill", "argmax", "--temperature", "0.5"], "--temperature is for --fill sample"),
    (["--model-processes", "0"], "--model-processes must be >= 1"),
    (["--init-denoiser", "/nonexistent.pt", "--model", "vmd"], "does not exist"),
    (["--init-denoiser", "/tmp/m.pt", "--checkpoint", "/tmp/m.pt"], "give one of them"),
    (["--z-init-std", "-1"], "--z-init-std must be >= 0"),
    (["--prior", "gaussian", "--guide", "exact", "--model", "vmd"], "cannot match prior"),
    (["--model-processes", "2", "--device", "cuda"], "--model-processes above 1 is for --device cpu"),
    (["--objective", "paths", "--model", "vmd", "--prior", "discrete"],
     "--objective paths needs a guide that reads a whole path"),
    (["--objective", "paths", "--model", "vmd", "--prior", "discrete", "--guide", "exact",
      "--train-nfe", "1", "2"], "--objective paths trains one T"),
])
def test_bad_input_gives_a_clear_error_without_traceback(args, message, capsys):
    # In-process (the subprocess tests above cover the real command line): argparse errors exit
    # with status 2, errors found later are caught by main() and also give status 2.
    run = load_script("run")
    try:
        code = run.main([*args, *TINY])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(message, err), err


def test_free_nats_apply_to_vmd_only():
    run = load_script("run")
    parser = run.build_parser()
    args = parser.parse_args(["--model", "mdm", "vmd", "--free-nats", "1.5"])
    run.check_args(args, parser)
    assert train_config(args, "vmd").free_nats == 1.5
    assert train_config(args, "mdm").free_nats == 0.0


def test_paths_objective_trains_mdm_on_steps():
    """MDM has no z to hold, so its paths objective is its steps objective: run.py trains MDM and
    VMD side by side with --objective paths, each on its own."""
    run = load_script("run")
    parser = run.build_parser()
    args = parser.parse_args(["--model", "mdm", "vmd", "--prior", "discrete", "--guide", "exact",
                              "--objective", "paths", "--train-nfe", "2"])
    run.check_args(args, parser)
    assert train_config(args, "vmd").objective == "paths"
    assert train_config(args, "mdm").objective == "steps"
    assert train_config(args, "mdm").train_nfe == (2,)


def test_thread_count_follows_network_size_and_load(monkeypatch):
    from vmd_pyro import experiment
    from vmd_pyro.experiment import SMALL_STEP_FLOPS, choose_threads, training_step_flops
    monkeypatch.setattr(experiment.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    synthetic_mlp = training_step_flops("mlp", 128, 2, 4, 10, 256)
    sudoku_cpu = training_step_flops("transformer", 64, 3, 81, 9, 256)
    assert synthetic_mlp < SMALL_STEP_FLOPS < sudoku_cpu
    for load, large in ((0.1, 2), (1.2, 1), (2.0, 1), (7.0, 1)):
        monkeypatch.setattr(experiment.os, "getloadavg", lambda: (load, load, load))
        assert choose_threads(synthetic_mlp) == 1
        assert choose_threads(sudoku_cpu) == large


def test_results_go_to_a_run_folder_by_default(tmp_path, monkeypatch, capsys):
    run = load_script("run")
    monkeypatch.chdir(tmp_path)
    assert run.main(["--dataset", "pair-skewed", "--model", "mdm", "--nfe", "1", "--fill",
                     "sample", *TINY]) == 0
    written = re.search(r"wrote (runs/\S+-pair-skewed-mdm/result\.json)", capsys.readouterr().out)
    assert written, "the run does not say where its results are"
    record = json.loads((tmp_path / written.group(1)).read_text())
    assert (record["model"], record["dataset"], record["threads"]) == ("mdm", "pair-skewed", 1)


def test_a_run_decodes_with_several_candidates_and_records_how_one_was_kept(tmp_path):
    """run.py passes --z-strategy enumerate / --select / --check-groups / --check-distinct to the
    sampler and names them in every row; a VMD whose z takes 3 values decodes 3 candidates per
    sequence."""
    run = load_script("run")
    out = tmp_path / "r.json"
    assert run.main(["--dataset", "quad-d1", "--model", "vmd", "--prior", "discrete",
                     "--components", "3", "--nfe", "1", "--fill", "sample",
                     "--z-strategy", "enumerate", "--select", "pseudo-likelihood",
                     "--check-groups", "2", "--check-distinct", "--z-values", "2",
                     "--out", str(out), *TINY]) == 0
    record = json.loads(out.read_text())
    assert (record["z_strategy"], record["candidates"], record["select"], record["check_groups"],
            record["check_distinct"], record["z_values"]) == ("enumerate", 1, "pseudo-likelihood",
                                                               2, True, 2)
    assert 0.0 <= record["accuracy"] <= 1.0 and record["nfe_used"] == 1
    # the exact one-step KL describes one draw of the generator, not the kept candidate
    assert record["kl_estimator"].startswith("plug-in") and record["kl"] == record["kl_plugin"]


def test_a_tempered_run_records_its_temperature_and_takes_the_plug_in_kl(tmp_path):
    """The exact one-step KL is the model's distribution at temperature 1; tempered draws are not
    draws of it."""
    run = load_script("run")
    rows = {}
    for temperature in ("1", "0.5"):
        out = tmp_path / f"t{temperature}.json"
        assert run.main(["--dataset", "quad-d1", "--model", "mdm", "--nfe", "1", "--fill",
                         "sample", "--temperature", temperature, "--out", str(out), *TINY]) == 0
        rows[temperature] = json.loads(out.read_text())
    assert rows["1"]["temperature"] == 1.0 and rows["0.5"]["temperature"] == 0.5
    assert rows["1"]["kl_estimator"].startswith("exact")
    assert rows["0.5"]["kl_estimator"].startswith("plug-in")
    assert rows["0.5"]["kl"] == rows["0.5"]["kl_plugin"]
