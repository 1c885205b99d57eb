"""dnnreg talks like the libraries its users know (dnnreg.notices): ``verbose`` prints in
library use, conditions to act on are Python warnings of a named category, the library
logger is silent by default, and nothing about the process's logging or warnings is left
changed."""

import logging
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from dnnreg import DNNRegressor
from dnnreg.cli import main
from dnnreg.notices import DNNRegWarning
from dnnreg.tables.reading import infer_task

TINY = dict(hidden_layer_sizes=(8,), n_ensemble=1, max_iter=2, random_state=0)


def _xy(n=60):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    return X, X["a"] * 2 + rng.normal(size=n) * 0.1


def test_a_notebook_sees_epoch_lines_and_catches_warnings():
    """A plain Python process (no CLI, no logging configured): verbose=1 prints one line
    per epoch on stderr, and warnings.catch_warnings(record=True) sees the lbfgs-with-
    dropout warning."""
    code = textwrap.dedent(
        """
        import warnings
        import numpy as np
        from dnnreg import DNNRegressor
        X = np.random.default_rng(0).normal(size=(80, 3)); y = X[:, 0]
        DNNRegressor(hidden_layer_sizes=(8,), n_ensemble=1, max_iter=3, verbose=1,
                     early_stopping=False, random_state=0).fit(X, y)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            DNNRegressor(hidden_layer_sizes=(8,), n_ensemble=1, max_iter=1, solver="lbfgs",
                         dropout=0.2).fit(X, y)
        print(sum("lbfgs" in str(w.message) for w in seen))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    epoch_lines = [line for line in done.stderr.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 3, done.stderr
    assert done.stdout.strip() == "1"


def test_silent_without_verbose_and_the_logger_is_left_as_found(capfd):
    log = logging.getLogger("dnnreg")
    assert any(isinstance(h, logging.NullHandler) for h in log.handlers)
    before = (log.level, log.propagate, list(log.handlers))
    DNNRegressor(**TINY).fit(*_xy())
    assert capfd.readouterr().err == ""
    DNNRegressor(**TINY, verbose=1).fit(*_xy())
    err = capfd.readouterr().err
    assert err.count("epoch") == 2
    assert (log.level, log.propagate, list(log.handlers)) == before


def test_verbose_2_shows_the_resolved_settings_and_every_metric(capfd):
    DNNRegressor(**TINY, verbose=2).fit(*_xy())
    err = capfd.readouterr().err
    assert "fit: " in err and "batch_size=" in err
    assert "val_rmse" in err and "val_r2" in err and "threads" in err


def test_users_own_logging_gets_the_lines_once(caplog, capfd):
    with caplog.at_level(logging.INFO, logger="dnnreg"):
        DNNRegressor(**TINY, verbose=1).fit(*_xy())
    assert sum(r.getMessage().startswith("epoch") for r in caplog.records) == 2
    assert "epoch" not in capfd.readouterr().err  # not printed a second time


@pytest.mark.parametrize(
    "make, category, text",
    [
        (lambda: DNNRegressor(**{**TINY, "solver": "lbfgs"}, dropout=0.2), DNNRegWarning, "lbfgs"),
        # ConvergenceWarnings: test_running_out_of_epochs_while_improving_warns_only_...,
        # and a divergence's rollback in tests/test_divergence.py
    ],
)
def test_conditions_to_act_on_are_warnings_of_a_named_category(make, category, text):
    with pytest.warns(category, match=text):
        make().fit(*_xy())


def test_ignored_unlabeled_rows_and_integer_targets_warn():
    X, y = _xy()
    with pytest.warns(DNNRegWarning, match="X_unlabeled"):
        DNNRegressor(**TINY).fit(X, y, X_unlabeled=X)
    with pytest.warns(DNNRegWarning, match="integer values"):
        assert infer_task(pd.Series([0, 1, 2, 1, 0], name="label")) == "regression"


def test_warnings_can_be_turned_into_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DNNRegWarning)
        with pytest.raises(DNNRegWarning):
            DNNRegressor(**{**TINY, "solver": "lbfgs"}, dropout=0.2).fit(*_xy())


def test_the_cli_prints_warnings_as_one_line_and_restores_the_logger(tmp_path, capsys):
    X, _ = _xy(120)
    X["label"] = (X["a"] > 0).astype(int) + (X["b"] > 0).astype(int)
    X.to_csv(tmp_path / "t.csv", index=False)
    log = logging.getLogger("dnnreg")
    level = log.level
    args = ["train", str(tmp_path / "t.csv"), "--target", "label", "--out", str(tmp_path / "r")]
    assert main(args + ["--set", "max_iter=1", "--set", "n_ensemble=1"]) == 0
    err = capsys.readouterr().err
    assert "dnnreg: warning: the target 'label' holds 3 integer values" in err
    assert "Warning" not in err and ".py:" not in err  # no class name, no source line
    assert log.level == level


def test_running_out_of_epochs_while_improving_warns_only_without_a_planned_end():
    X, y = _xy(200)
    open_ended = dict(TINY, max_iter=3, lr_schedule="constant", hidden_layer_sizes=(16,))
    with pytest.warns(ConvergenceWarning, match="raise max_iter"):
        model = DNNRegressor(**open_ended).fit(X, y)
    assert model.best_epoch_ == model.n_iter_ == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        DNNRegressor(**{**open_ended, "lr_schedule": "onecycle"}).fit(X, y)
