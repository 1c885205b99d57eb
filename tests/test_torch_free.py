"""A saved model predicts without PyTorch, and agrees with the torch engine."""

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from dnnreg import load_numpy, save
from dnnreg.cli import main


@pytest.fixture(params=["onehot", "embedding"])
def saved(request, tmp_path, mixed_frame, small_model):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    model = small_model(
        max_iter=5,
        categorical_encoding=request.param,
        normalization="batch_norm",
        activation="gelu",
    ).fit(X, y)
    save(model, tmp_path / "m")
    X.to_csv(tmp_path / "X.csv", index=False)
    return model, X, tmp_path


def test_load_numpy_in_a_process_where_torch_cannot_be_imported(saved, block_torch):
    model, X, tmp = saved
    code = block_torch + textwrap.dedent(f"""
        import numpy as np, pandas as pd, dnnreg
        pred = dnnreg.load_numpy({str(tmp / "m")!r}).predict(pd.read_csv({str(tmp / "X.csv")!r}))
        assert "torch" not in sys.modules
        np.save({str(tmp / "p.npy")!r}, pred)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(np.load(tmp / "p.npy"), model.predict(X), rtol=1e-5, atol=1e-6)


def test_cli_numpy_engine_equals_torch_engine(saved):
    model, X, tmp = saved
    for engine in ("torch", "numpy"):
        assert (
            main(
                [
                    "predict",
                    str(tmp / "m"),
                    str(tmp / "X.csv"),
                    "--engine",
                    engine,
                    "--out",
                    str(tmp / f"{engine}.csv"),
                ]
            )
            == 0
        )
    t, n = (pd.read_csv(tmp / f"{e}.csv")["prediction"] for e in ("torch", "numpy"))
    np.testing.assert_allclose(n, t, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(load_numpy(tmp / "m").predict(X), t, rtol=1e-5, atol=1e-6)


def test_report_and_diagnose_run_where_torch_cannot_be_imported(
    tmp_path, mixed_frame, capsys, block_torch
):
    """Both only read a run directory's JSON and CSV: a process without torch serves them."""
    mixed_frame.to_csv(tmp_path / "t.csv", index=False)
    run = tmp_path / "run"
    assert (
        main(
            [
                "--quiet",
                "train",
                str(tmp_path / "t.csv"),
                "--target",
                "y",
                "--out",
                str(run),
                "--diagnose",
                "--set",
                "max_iter=3",
                "--set",
                "hidden_layer_sizes=8,8",
                "--set",
                "n_ensemble=1",
            ]
        )
        == 0
    )
    code = block_torch + textwrap.dedent(f"""
        from dnnreg.cli import main
        assert main(["--quiet", "report", {str(run)!r}]) == 0
        assert main(["diagnose", {str(run)!r}]) == 0
        assert "torch" not in sys.modules, "torch was imported"
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (run / "report.html").read_text().startswith("<!DOCTYPE html>")
    capsys.readouterr()
    assert main(["diagnose", str(run)]) == 0  # the same verdicts as with torch at hand
    verdicts = capsys.readouterr().out
    assert verdicts.strip() and proc.stdout.endswith(verdicts)
