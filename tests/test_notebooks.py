"""The notebooks run top to bottom (with the tiny ``VMD_SMOKE=1`` setting) and are what the
generator script writes."""
import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_latent_priors.ipynb", "02_posterior_diagnostics.ipynb",
                                  "03_guesses_and_checks.ipynb"])
def test_notebook_runs_top_to_bottom(name, monkeypatch):
    monkeypatch.setenv("VMD_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("smoke run: True" in o.get("text", "") for o in outputs)


def test_notebooks_match_their_generator():
    """Committed notebooks have the generator's cells (outputs from a real run may be kept)."""
    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS / "make_notebooks.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    for name, cells in (("01_latent_priors.ipynb", generator.latent_priors()),
                        ("02_posterior_diagnostics.ipynb", generator.posterior_diagnostics()),
                        ("03_guesses_and_checks.ipynb", generator.guesses_and_checks())):
        committed = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert [c.source for c in committed.cells] == [c.source for c in cells], name
