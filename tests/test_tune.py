"""Hyperparameter search: a persistent study resumes, its best score is reproducible from
the stored parameters, pruning stops trials mid-fit, and SQLAlchemy URLs work as storage."""

import time

import numpy as np
import pandas as pd
import pytest

optuna = pytest.importorskip("optuna")

from dnnreg import DNNRegressor  # noqa: E402
from dnnreg.cli import main  # noqa: E402
from dnnreg.studies.evaluation import score  # noqa: E402
from dnnreg.studies.tune import tune  # noqa: E402

FIXED = {"max_iter": 6, "n_ensemble": 1}


def _data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    return X, np.sin(2 * X["a"]) + X["b"] ** 2 + 0.1 * rng.normal(size=n)


def _small_space(monkeypatch):
    import dnnreg.studies.tune as t

    monkeypatch.setattr(t, "WIDTHS", (8, 16))


def test_a_study_resumes_and_its_best_score_is_reproducible(tmp_path, monkeypatch):
    _small_space(monkeypatch)
    X, y = _data()
    journal = str(tmp_path / "s.journal")
    tune(X, y, n_trials=2, storage=journal, fixed=FIXED, time_budget=None)
    study = tune(X, y, n_trials=1, storage=journal, fixed=FIXED, time_budget=None)
    assert len(study.trials) == 3  # 2 from the first call, 1 more after resuming
    best = study.user_attrs["best_estimator_params"]
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in best.items()}
    # The search's validation split: the same seeded split the tuner used.
    from sklearn.model_selection import train_test_split

    fit_rows, val_rows = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0)
    model = DNNRegressor(**params).fit(X.iloc[fit_rows], y.iloc[fit_rows])
    assert score(model, X.iloc[val_rows], y.iloc[val_rows], "regression")["rmse"] == pytest.approx(
        study.best_value, rel=1e-9
    )
    assert min(t.value for t in study.trials) == study.best_value


def test_an_eval_set_scores_every_trial_on_those_rows(tmp_path, monkeypatch):
    _small_space(monkeypatch)
    X, y = _data()
    X_val, y_val = _data(n=60, seed=1)
    study = tune(
        X,
        y,
        n_trials=2,
        storage=str(tmp_path / "e.journal"),
        fixed=FIXED,
        time_budget=None,
        eval_set=(X_val, y_val),
    )
    for trial in study.trials:
        params = {
            k: tuple(v) if isinstance(v, list) else v for k, v in trial.user_attrs["params"].items()
        }
        model = DNNRegressor(**params).fit(X, y, eval_set=(X_val, y_val))
        assert score(model, X_val, y_val, "regression")["rmse"] == pytest.approx(
            trial.value, rel=1e-9
        )
    kept = study.best_model_  # the best trial's fitted model, not a refit
    assert score(kept, X_val, y_val, "regression")["rmse"] == study.best_value


def test_pruned_trials_stop_during_the_fit(tmp_path, monkeypatch):
    _small_space(monkeypatch)
    X, y = _data()
    always = optuna.pruners.ThresholdPruner(upper=0.0, n_warmup_steps=0)  # a loss > 0 prunes
    study = tune(
        X,
        y,
        n_trials=2,
        storage=str(tmp_path / "p.journal"),
        fixed=FIXED,
        time_budget=None,
        pruner=always,
    )
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    assert [max(t.intermediate_values) for t in study.trials] == [1, 1]  # after epoch 1
    assert "best_estimator_params" not in study.user_attrs


def test_an_sqlalchemy_url_is_a_storage_too(tmp_path, monkeypatch):
    _small_space(monkeypatch)
    X, y = _data()
    url = f"sqlite:///{tmp_path / 'study.db'}"
    tune(X, y, n_trials=1, storage=url, fixed=FIXED, time_budget=None, study_name="shared")
    again = optuna.load_study(study_name="shared", storage=url)
    assert len(again.trials) == 1 and again.trials[0].state.name == "COMPLETE"


def test_cli_tune_writes_the_best_parameters(tmp_path, capsys, monkeypatch):
    _small_space(monkeypatch)
    X, y = _data()
    X.assign(y=y).to_csv(tmp_path / "t.csv", index=False)
    args = [
        "--quiet",
        "tune",
        str(tmp_path / "t.csv"),
        "--target",
        "y",
        "--n-trials",
        "2",
        "--out",
        str(tmp_path / "tune"),
        "--set",
        "max_iter=4",
        "--set",
        "n_ensemble=1",
    ]
    assert main(args) == 0
    assert (tmp_path / "tune" / "study.journal").exists()
    out = capsys.readouterr().out
    assert "2 trials so far" in out and "dnnreg train" in out
    assert main(args[:-4] + ["--n-trials", "0"]) == 2


def test_the_first_trial_is_the_defaults(tmp_path):
    X, y = _data()
    study = tune(
        X,
        y,
        n_trials=1,
        storage=str(tmp_path / "d.journal"),
        fixed={"max_iter": 2, "n_ensemble": 1},
        time_budget=None,
    )
    tried = study.trials[0].user_attrs["params"]
    default = DNNRegressor().get_params()
    for key in (
        "learning_rate_init",
        "weight_decay",
        "numeric_scaling",
        "batch_size",
        "embedding_binning",
    ):
        assert tried[key] == default[key], key
    assert tried["numeric_embedding"] == "piecewise_linear"  # what "auto" is for 3 columns
    assert tried["dropout"] == 0.15  # what "auto" is in memory
    assert tuple(tried["hidden_layer_sizes"]) == default["hidden_layer_sizes"]


def test_the_time_budget_stops_a_running_trial(tmp_path):
    X, y = _data(n=2000)
    start = time.perf_counter()
    study = tune(
        X,
        y,
        n_trials=1,
        storage=str(tmp_path / "b.journal"),
        time_budget=1.0,
        fixed={"max_iter": 10_000, "n_iter_no_change": 10_000},
    )
    assert time.perf_counter() - start < 15.0  # 10,000 epochs would take minutes
    assert study.best_model_.n_iter_ < 10_000
    assert "max_time" not in study.trials[0].user_attrs["params"]  # a refit has its own clock
