"""experiments/diagnose.py end to end on a tiny model: the files it promises, and clear errors."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from vmd_pyro.diagnostics import az

SCRIPT = Path(__file__).resolve().parent.parent / "experiments" / "diagnose.py"
spec = importlib.util.spec_from_file_location("diagnose", SCRIPT)
diagnose = importlib.util.module_from_spec(spec)
spec.loader.exec_module(diagnose)

TINY = ["--steps", "30", "--hidden", "16", "--layers", "1", "--latent-dim", "2",
        "--batch-size", "64", "--mask-rates", "0.5", "1.0", "--examples-per-rate", "2",
        "--population-per-rate", "20", "--guide-draws", "100", "--chains", "2", "--warmup", "20",
        "--samples", "40", "--quiet"]


@pytest.mark.slow  # trains, diagnoses and plots
@pytest.mark.parametrize("prior", ["discrete", "gaussian"])
def test_diagnose_writes_json_netcdf_and_plots(tmp_path, prior):
    ckpt = tmp_path / "model.pt"
    assert diagnose.main(["--prior", prior, "--out", str(tmp_path), "--save", str(ckpt)] + TINY) == 0
    report = json.loads((tmp_path / "diagnostics.json").read_text())
    assert len(report["psis_khat"]) == 4 and "median" in report["psis_khat_summary"]
    assert {"guide_vs_reference", "active_units", "kl_per_dim", "git_commit"} <= set(report)
    assert len(report["latent_usage"]["per_mask_rate"]) == 2
    for name in report["files"]:
        assert (tmp_path / name).stat().st_size > 0
    idata = az.from_netcdf(tmp_path / "inference_data.nc")
    assert {"posterior", "reference_posterior"} <= set(idata.groups())
    np.testing.assert_allclose(idata.posterior["mask_rate"].values, [0.5, 0.5, 1.0, 1.0])
    # the saved model loads back and gives the same guide diagnostics
    again = tmp_path / "again"
    assert diagnose.main(["--checkpoint", str(ckpt), "--out", str(again)] + TINY) == 0
    assert json.loads((again / "diagnostics.json").read_text())["kl_per_dim"] == pytest.approx(
        report["kl_per_dim"])


def test_diagnose_refuses_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit):
        diagnose.main(["--prior", "nope", "--out", str(tmp_path)])
    assert "unknown prior" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        diagnose.main(["--mask-rates", "0", "--out", str(tmp_path)])
    assert diagnose.main(["--checkpoint", str(tmp_path / "missing.pt"), "--out",
                          str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
