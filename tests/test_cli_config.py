"""The command line as users type it: every --set key listed with its default, booleans
spelled any common way, global flags after the sub-command, settings from a JSON or TOML
--config file, a run's config.json replaying the run, tune's best_config.json accepted
by train, and --device / --threads."""

import json

import numpy as np
import pandas as pd
import pytest

from dnnreg import load
from dnnreg.cli import build_parser, main
from dnnreg.options import OPTIONS

FAST = {"max_iter": 2, "n_ensemble": 1, "hidden_layer_sizes": [8]}


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    frame["y"] = frame["a"] * 2 + 0.1 * rng.normal(size=120)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return path


def _params(run):
    return json.loads((run / "config.json").read_text())["params"]


def test_train_help_lists_every_set_key_with_its_default():
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for key, (default, _) in OPTIONS.items():
        assert f"  {key} = {default!r}" in text, key
    assert "(default: 0.2)" in text  # flags show their defaults too


@pytest.mark.parametrize("text, value", [("False", False), ("0", False), ("yes", True)])
def test_booleans_in_any_common_spelling(table, tmp_path, text, value):
    out = tmp_path / "r"
    sets = ["--set", f"early_stopping={text}", "--config", str(_config(tmp_path, FAST))]
    assert main(["train", str(table), "--target", "y", "--out", str(out), *sets]) == 0
    assert _params(out)["early_stopping"] is value


def _config(tmp_path, params, name="c.json", **flags):
    path = tmp_path / name
    if name.endswith(".toml"):
        lines = [f"{k} = {json.dumps(v)}" for k, v in flags.items()]
        lines += ["[params]"] + [f"{k} = {json.dumps(v)}" for k, v in params.items()]
        path.write_text("\n".join(lines) + "\n")
    else:
        path.write_text(json.dumps({**flags, "params": params}))
    return path


@pytest.mark.parametrize("name", ["c.json", "c.toml"])
def test_a_config_file_gives_data_target_and_parameters(table, tmp_path, name, capsys):
    config = _config(tmp_path, {**FAST, "dropout": 0.05}, name, data=str(table), target="y")
    out = tmp_path / "r"
    assert main(["train", "--config", str(config), "--out", str(out), "--quiet"]) == 0
    params = _params(out)
    assert params["dropout"] == 0.05 and params["hidden_layer_sizes"] == [8]
    assert "epoch" not in capsys.readouterr().err  # --quiet after the sub-command
    # --set overrides the file
    out2 = tmp_path / "r2"
    assert main(["train", "--config", str(config), "--out", str(out2), "--set", "dropout=0"]) == 0
    assert _params(out2)["dropout"] == 0


def test_a_runs_config_json_replays_the_run(table, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["--config", str(_config(tmp_path, FAST)), "--seed", "3", "--test-fraction", "0.25"]
    assert main(["train", str(table), "--target", "y", "--out", str(first), *args]) == 0
    assert main(["train", "--config", str(first / "config.json"), "--out", str(second)]) == 0
    X = pd.read_csv(table).drop(columns="y")
    a, b = load(first / "model"), load(second / "model")
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    replay = json.loads((second / "config.json").read_text())
    assert replay["seed"] == 3 and replay["test_fraction"] == 0.25


def test_tune_writes_a_config_that_train_accepts(table, tmp_path):
    pytest.importorskip("optuna")
    tuned = tmp_path / "tune"
    fixed = ["--set", "max_iter=2", "--set", "n_ensemble=1"]
    assert (
        main(["tune", str(table), "--target", "y", "--n-trials", "1", "--out", str(tuned)] + fixed)
        == 0
    )
    best = json.loads((tuned / "best_config.json").read_text())
    assert best["target"] == "y" and best["params"]["max_iter"] == 2
    out = tmp_path / "trained"
    assert main(["train", "--config", str(tuned / "best_config.json"), "--out", str(out)]) == 0
    assert _params(out)["max_iter"] == 2


def test_device_and_threads_flags(table, tmp_path):
    out = tmp_path / "r"
    flags = ["--device", "cpu", "--threads", "1", "--config", str(_config(tmp_path, FAST))]
    assert main(["train", str(table), "--target", "y", "--out", str(out), *flags]) == 0
    params = _params(out)
    assert params["device"] == "cpu" and params["n_threads"] == 1


def test_a_bad_config_file_is_one_line(table, tmp_path, capsys):
    train = ["train", str(table), "--target", "y", "--out", str(tmp_path / "r"), "--config"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(train + [str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(train + [str(_config(tmp_path, {"dropuot": 0.1}))]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter(s) ['dropuot']" in err and "dropout" in err
