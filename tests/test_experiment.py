"""Tests of vmd_pyro.experiment: the provenance a run records."""
import re

from vmd_pyro import experiment


def test_git_commit_reads_the_repository_unless_the_caller_states_the_commit(tmp_path, monkeypatch):
    monkeypatch.delenv("VMD_PYRO_COMMIT", raising=False)
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", experiment.git_commit())
    monkeypatch.setenv("VMD_PYRO_COMMIT", "efcfa96")  # a copy whose .git is older than its tree
    assert experiment.git_commit() == "efcfa96"
    # a copy without .git and no stated commit
    monkeypatch.delenv("VMD_PYRO_COMMIT")
    monkeypatch.setattr(experiment, "REPO", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert experiment.git_commit() == "unknown"
