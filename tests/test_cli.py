import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dnnreg import load
from dnnreg.cli import main
from dnnreg.tables.reading import read_table

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
    assert names == [
        ".dnnreg.json",
        "config.json",
        "history.json",
        "importance.json",
        "metrics.json",
        "model",
        "predictions.csv",
    ]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for split in ("train", "validation", "test"):
        assert set(metrics[split]) >= {"rmse", "mae", "r2"}
    assert metrics["fit_seconds"] > 0
    assert json.loads((run_dir / "config.json").read_text())["rows"] == {
        "train": 192,
        "validation": 48,
        "test": 60,
    }
    assert len(json.loads((run_dir / "history.json").read_text())) == 3


def test_cli_predictions_equal_library_predictions(run_dir, table, tmp_path):
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run_dir), str(table), "--out", str(out)]) == 0
    cli = pd.read_csv(out, converters={"prediction": float})["prediction"].to_numpy()  # exact parse
    # The same input: the table as read back from its CSV (a float may not round-trip).
    lib = load(run_dir / "model").predict(read_table(table).drop(columns="y"))
    assert np.array_equal(cli, lib)


def test_evaluate_prints_the_metrics_of_the_saved_model(run_dir, table, capsys, mixed_frame):
    from dnnreg.metrics import rmse

    capsys.readouterr()
    assert main(["evaluate", str(run_dir / "model"), str(table), "--target", "y"]) == 0
    printed = json.loads(capsys.readouterr().out)
    lib = load(run_dir / "model").predict(mixed_frame.drop(columns="y"))
    assert np.isclose(printed["rmse"], rmse(mixed_frame["y"], lib))


def test_progress_goes_to_stderr_results_to_stdout(table, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dnnreg",
            "train",
            str(table),
            "--target",
            "y",
            "--out",
            str(tmp_path / "r"),
        ]
        + FAST,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("epoch ") == 3 and "epoch    1/3" not in proc.stdout
    assert "test" in proc.stdout and "linear regression" in proc.stdout


def test_datasets_lists_the_bundled_tables(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in (
        "california_housing",
        "concrete",
        "diabetes",
        "airfoil_self_noise",
        "yacht_hydrodynamics",
    ):
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
        1,
        f"dnnreg: error: data file '{tmp_path / 'nope.csv'}' does not exist; check the path",
    )
    (tmp_path / "empty.csv").write_text("")
    code, err = _fail(["train", str(tmp_path / "empty.csv")] + out, capsys)
    assert code == 1 and "is empty" in err
    (tmp_path / "garbage.parquet").write_bytes(b"\x00\x01garbage")
    code, err = _fail(["train", str(tmp_path / "garbage.parquet")] + out, capsys)
    assert code == 1 and "could not be read" in err
    # a directory is a Parquet dataset now: its unreadable file is named
    code, err = _fail(["train", str(tmp_path)] + out, capsys)
    assert code == 1 and "cannot read" in err and "garbage.parquet" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "frame,target,message",
    [
        (pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]}), "Y", "did you mean 'y'"),
        (pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": ["x", "y", "z"]}), "y", "must be numeric"),
        (pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1.0, None, 3.0]}), "y", "1 NaN"),
        (pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1.0, np.inf, 3.0]}), "y", "1 inf"),
        (pd.DataFrame({"a": [1.0], "y": [1.0]}), "y", "at least 2 rows"),
        (pd.DataFrame({"a": np.arange(30.0), "y": 4.0}), "y", "is constant"),
        (
            pd.DataFrame({"a": np.arange(30.0), "e": np.nan, "y": np.arange(30.0) ** 2}),
            "y",
            r"column(s) ['e'] have no values",
        ),
    ],
)
def test_bad_targets_and_columns(tmp_path, capsys, frame, target, message):
    code, err = _fail(
        [
            "train",
            _write(tmp_path, frame),
            "--target",
            target,
            "--task",
            "regression",
            "--out",
            str(tmp_path / "r"),
        ]
        + FAST,
        capsys,
    )
    assert code == 1 and message in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "setting,message",
    [
        (
            "hiden_layer_sizes=8",
            "unknown --set key 'hiden_layer_sizes' (did you mean 'hidden_layer_sizes'?)",
        ),
        ("dropout=lots", "dropout must be a number, got dropout='lots'"),
        ("max_iter=2.5", "max_iter must be an integer"),
        ("dropout", "--set takes key=value"),
    ],
)
def test_bad_settings_are_usage_errors(table, tmp_path, capsys, setting, message):
    code, err = _fail(
        ["train", str(table), "--target", "y", "--out", str(tmp_path / "r"), "--set", setting],
        capsys,
    )
    assert code == 2 and message in err


def test_usage_errors_exit_2(capsys, tmp_path):
    code, err = _fail(["train", "x.csv"], capsys)
    assert code == 2 and "--out" in err
    code, err = _fail(["train", "x.csv", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "--target is required" in err
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
    code, err = _fail(
        ["predict", str(run_dir), str(table), "--out", str(tmp_path / "p.csv")], capsys
    )
    assert code == 1 and "corrupt or truncated" in err
    code, err = _fail(["predict", str(tmp_path / "none"), str(table), "--out", "p.csv"], capsys)
    assert code == 1 and "does not exist" in err


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dnnreg",
            "--debug",
            "train",
            str(tmp_path / "nope.csv"),
            "--target",
            "y",
            "--out",
            "r",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dnnreg",
            "train",
            str(tmp_path / "nope.csv"),
            "--target",
            "y",
            "--out",
            "r",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_classification_run_from_a_text_target(tmp_path, mixed_frame, capsys):
    frame = mixed_frame.assign(y=np.where(mixed_frame["y"] > 1.0, "high", "low"))
    path = tmp_path / "labels.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "run"
    assert main(["--quiet", "train", str(path), "--target", "y", "--out", str(out)] + FAST) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "logistic regression" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "classification"
    assert set(metrics["test"]) >= {"accuracy", "log_loss"}
    preds = pd.read_csv(out / "predictions.csv")
    assert {"proba_high", "proba_low"} <= set(preds.columns)
    model = load(out / "model")
    X = frame.drop(columns="y")
    for engine in ("torch", "numpy"):
        assert (
            main(
                [
                    "predict",
                    str(out),
                    str(path),
                    "--engine",
                    engine,
                    "--out",
                    str(tmp_path / f"{engine}.csv"),
                ]
            )
            == 0
        )
        cli = pd.read_csv(tmp_path / f"{engine}.csv")
        assert cli["prediction"].tolist() == model.predict(X).tolist()
        np.testing.assert_allclose(cli["proba_high"], model.predict_proba(X)[:, 0], atol=1e-6)
    capsys.readouterr()
    assert main(["evaluate", str(out), str(path), "--target", "y"]) == 0
    assert "accuracy" in json.loads(capsys.readouterr().out)


def test_integer_classes_need_task_classification(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    frame["label"] = (frame["a"] > 0).astype(int) + (frame["b"] > 0).astype(int)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    assert (
        main(
            [
                "train",
                str(path),
                "--target",
                "label",
                "--task",
                "classification",
                "--out",
                str(tmp_path / "r"),
            ]
            + FAST
        )
        == 0
    )
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["task"] == "classification"
    assert "treating it as a number" not in capsys.readouterr().err
    assert (
        main(["train", str(path), "--target", "label", "--out", str(tmp_path / "r2")] + FAST) == 0
    )
    assert "--task classification" in capsys.readouterr().err


def test_catalogue_keys_reach_the_estimator_through_set(table, tmp_path):
    out = tmp_path / "run"
    settings = [
        "activation=prelu",
        "init=he_uniform",
        "normalization=layer_norm",
        "residual=true",
        "loss=huber",
        "huber_delta=0.5",
        "solver=nesterov",
        "lr_schedule=cosine",
        "lr_warmup=0.2",
        "alpha=1e-4",
        "l1=1e-5",
        "clip_grad_norm=1.0",
        "early_stopping_metric=mae",
        "hidden_layer_sizes=16,16",
    ]
    argv = [
        "--quiet",
        "train",
        str(table),
        "--target",
        "y",
        "--out",
        str(out),
        "--set",
        "max_iter=2",
    ]
    for s in settings:
        argv += ["--set", s]
    assert main(argv) == 0
    params = load(out / "model").get_params()
    assert params["activation"] == "prelu" and params["residual"] is True
    assert params["loss"] == "huber" and params["huber_delta"] == 0.5
    assert params["solver"] == "nesterov" and params["hidden_layer_sizes"] == (16, 16)
    assert params["clip_grad_norm"] == 1.0 and params["early_stopping_metric"] == "mae"


def test_a_key_of_the_other_task_is_refused(table, tmp_path, capsys):
    code, err = _fail(
        [
            "train",
            str(table),
            "--target",
            "y",
            "--task",
            "classification",
            "--out",
            str(tmp_path / "r"),
            "--set",
            "quantiles=0.5",
        ],
        capsys,
    )
    assert code == 2 and "unknown --set key 'quantiles'" in err


def test_train_preset_sets_values_that_set_overrides(table, tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            [
                "--quiet",
                "train",
                str(table),
                "--target",
                "y",
                "--out",
                str(out),
                "--preset",
                "fast",
                "--set",
                "max_iter=2",
                "--set",
                "hidden_layer_sizes=8",
            ]
        )
        == 0
    )
    params = load(out / "model").get_params()
    assert params["n_ensemble"] == 1  # from the preset
    assert params["max_iter"] == 2  # --set wins


def test_train_rejects_an_unknown_preset(table, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                str(table),
                "--target",
                "y",
                "--out",
                str(tmp_path / "r"),
                "--preset",
                "turbo",
            ]
        )
        == 2
    )
    assert "invalid choice: 'turbo'" in capsys.readouterr().err
