import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dnnreg import load
from dnnreg.cli import main

FAST = ["--set", "max_iter=3", "--set", "hidden_layer_sizes=16", "--set", "n_ensemble=1"]


@pytest.fixture
def table(tmp_path, mixed_frame):
    path = tmp_path / "table.csv"
    mixed_frame.to_csv(path, index=False)
    return path


@pytest.fixture
def run_dir(tmp_path, table):
    out = tmp_path / "run"
    assert main(["--quiet", "train", str(table), "--target", "y", "--out", str(out)] + FAST) == 0
    return out


def test_train_writes_a_complete_run_dir(run_dir, capsys):
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["config.json", "history.json", "metrics.json", "model", "predictions.csv"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for split in ("train", "validation", "test"):
        assert set(metrics[split]) >= {"rmse", "mae", "r2"}
    assert metrics["fit_seconds"] > 0
    assert json.loads((run_dir / "config.json").read_text())["rows"] == {
        "train": 192, "validation": 48, "test": 60}
    assert len(json.loads((run_dir / "history.json").read_text())) == 3


def test_cli_predictions_equal_library_predictions(run_dir, table, tmp_path, mixed_frame):
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run_dir), str(table), "--out", str(out)]) == 0
    cli = pd.read_csv(out)["prediction"].to_numpy()
    lib = load(run_dir / "model").predict(mixed_frame.drop(columns="y"))
    assert np.array_equal(cli, lib)


def test_evaluate_prints_the_metrics_of_the_saved_model(run_dir, table, capsys, mixed_frame):
    from dnnreg.metrics import rmse

    capsys.readouterr()
    assert main(["evaluate", str(run_dir / "model"), str(table), "--target", "y"]) == 0
    printed = json.loads(capsys.readouterr().out)
    lib = load(run_dir / "model").predict(mixed_frame.drop(columns="y"))
    assert np.isclose(printed["rmse"], rmse(mixed_frame["y"], lib))


def test_progress_goes_to_stderr_results_to_stdout(table, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dnnreg", "train", str(table), "--target", "y",
                           "--out", str(tmp_path / "r")] + FAST, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("epoch ") == 3 and "epoch    1/3" not in proc.stdout
    assert "test" in proc.stdout and "linear regression" in proc.stdout


def test_datasets_lists_the_bundled_tables(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("california_housing", "concrete", "diabetes", "airfoil_self_noise",
                 "yacht_hydrodynamics"):
        assert name in out


def _fail(argv, capsys):
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return code, err


def _write(tmp_path, frame, name="bad.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def test_bad_data_files(tmp_path, capsys):
    out = ["--target", "y", "--out", str(tmp_path / "r")]
    assert _fail(["train", str(tmp_path / "nope.csv")] + out, capsys) == (
        1, f"dnnreg: error: data file '{tmp_path / 'nope.csv'}' does not exist; check the path")
    (tmp_path / "empty.csv").write_text("")
    code, err = _fail(["train", str(tmp_path / "empty.csv")] + out, capsys)
    assert code == 1 and "is empty" in err
    (tmp_path / "garbage.parquet").write_bytes(b"\x00\x01garbage")
    code, err = _fail(["train", str(tmp_path / "garbage.parquet")] + out, capsys)
    assert code == 1 and "could not be read" in err
    code, err = _fail(["train", str(tmp_path)] + out, capsys)
    assert code == 1 and "is a directory" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("frame,target,message", [
    (pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]}), "Y", "did you mean 'y'"),
    (pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": ["x", "y", "z"]}), "y", "must be numeric"),
    (pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1.0, None, 3.0]}), "y", "1 NaN"),
    (pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1.0, np.inf, 3.0]}), "y", "1 inf"),
    (pd.DataFrame({"a": [1.0], "y": [1.0]}), "y", "at least 2 rows"),
    (pd.DataFrame({"a": np.arange(30.0), "y": 4.0}), "y", "is constant"),
    (pd.DataFrame({"a": np.arange(30.0), "e": np.nan, "y": np.arange(30.0)}), "y",
     r"column(s) ['e'] have no values"),
])
def test_bad_targets_and_columns(tmp_path, capsys, frame, target, message):
    code, err = _fail(["train", _write(tmp_path, frame), "--target", target, "--task",
                       "regression", "--out", str(tmp_path / "r")] + FAST, capsys)
    assert code == 1 and message in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("setting,message", [
    ("hiden_layer_sizes=8", "unknown --set key 'hiden_layer_sizes' (did you mean 'hidden_layer_sizes'?)"),
    ("dropout=lots", "dropout must be a number, got dropout='lots'"),
    ("max_iter=2.5", "max_iter must be an integer"),
    ("dropout", "--set takes key=value"),
])
def test_bad_settings_are_usage_errors(table, tmp_path, capsys, setting, message):
    code, err = _fail(["train", str(table), "--target", "y", "--out", str(tmp_path / "r"),
                       "--set", setting], capsys)
    assert code == 2 and message in err


def test_usage_errors_exit_2(capsys):
    code, err = _fail(["train", "x.csv"], capsys)
    assert code == 2 and "--target" in err
    code, err = _fail(["fly"], capsys)
    assert code == 2


def test_predict_with_schema_mismatch(run_dir, tmp_path, mixed_frame, capsys):
    bad = _write(tmp_path, mixed_frame.drop(columns=["b"]).rename(columns={"a": "alpha"}))
    code, err = _fail(["predict", str(run_dir), bad, "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 1 and "missing column(s) ['a', 'b']" in err and "['alpha']" in err
    assert not (tmp_path / "p.csv").exists()


def test_corrupt_or_truncated_model(run_dir, table, tmp_path, capsys):
    weights = run_dir / "model" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:64])
    code, err = _fail(["predict", str(run_dir), str(table), "--out", str(tmp_path / "p.csv")],
                      capsys)
    assert code == 1 and "corrupt or truncated" in err
    code, err = _fail(["predict", str(tmp_path / "none"), str(table), "--out", "p.csv"], capsys)
    assert code == 1 and "does not exist" in err


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dnnreg", "--debug", "train",
                           str(tmp_path / "nope.csv"), "--target", "y", "--out", "r"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "dnnreg", "train",
                           str(tmp_path / "nope.csv"), "--target", "y", "--out", "r"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
