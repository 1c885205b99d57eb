"""The acceptance run: `dnnreg demo` with defaults on bundled California housing."""

import json

import numpy as np
import pandas as pd
import torch

from dnnreg import load
from dnnreg.cli import main
from dnnreg.metrics import rmse
from dnnreg.tables.datasets import load_california_housing


def test_demo_beats_the_bar_and_saves_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["--quiet", "demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "linear regression" in printed and str(out / "model") in printed
    metrics = json.loads((out / "metrics.json").read_text())
    # The literature's tuned plain MLP reaches about 0.50 ($100k) on this split.
    assert metrics["test"]["rmse"] <= 0.50
    assert metrics["test"]["rmse"] < metrics["baseline_linear"]["test"]["rmse"]
    # Saved predictions are the reloaded model's predictions, and recompute the metric.
    preds = pd.read_csv(out / "predictions.csv", converters={"prediction": float})  # exact parse
    test = preds[preds["split"] == "test"]
    X, y = load_california_housing(return_X_y=True)
    again = load(out / "model").predict(X.iloc[test["row"].to_numpy()])
    # Bit-equal on the CPU; a GPU-fitted model's float32 kernels round differently.
    exact = not torch.cuda.is_available()
    np.testing.assert_allclose(
        again, test["prediction"].to_numpy(), rtol=0 if exact else 1e-5, atol=0 if exact else 1e-6
    )
    assert np.isclose(rmse(y.iloc[test["row"]], again), metrics["test"]["rmse"])
