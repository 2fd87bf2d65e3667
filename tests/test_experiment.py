"""Tests of vmd_pyro.experiment: the provenance a run records."""
import re

from vmd_pyro import experiment


def test_git_commit_reads_the_repository_and_falls_back_to_the_stated_commit(tmp_path, monkeypatch):
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", experiment.git_commit())
    # a copy of the work tree without .git (as on a device machine): the commit the caller states
    monkeypatch.setattr(experiment, "REPO", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.delenv("VMD_PYRO_COMMIT", raising=False)
    assert experiment.git_commit() == "unknown"
    monkeypatch.setenv("VMD_PYRO_COMMIT", "75d1e1b")
    assert experiment.git_commit() == "75d1e1b"
