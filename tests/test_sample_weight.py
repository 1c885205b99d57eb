"""Row weights (``sample_weight``) and class weights, as scikit-learn users expect them:
equal weights are no weights, a zero weight is a dropped row, an integer weight counts as
that many copies of the row, and early stopping watches the weighted validation score."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_squared_error
from sklearn.utils.class_weight import compute_sample_weight

from dnnreg import DNNClassifier, DNNRegressor

SMALL = dict(hidden_layer_sizes=(16,), n_ensemble=2, max_iter=8, random_state=0)


def _xy(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(-1, 1, n)})
    return X, np.sin(2 * X["a"]) + X["b"] + 0.1 * rng.normal(size=n)


@pytest.mark.parametrize("bagging", [True, False])
def test_equal_weights_are_no_weights(bagging):
    X, y = _xy()
    plain = DNNRegressor(**SMALL, bagging=bagging).fit(X, y)
    ones = DNNRegressor(**SMALL, bagging=bagging).fit(X, y, sample_weight=np.full(len(y), 3.0))
    np.testing.assert_array_equal(plain.predict(X), ones.predict(X))


def test_a_zero_weight_is_a_dropped_row():
    """Rows of weight 0 anywhere in the table change nothing: the fit equals the fit
    without them, bit for bit (they are removed before the split, the scaling and every
    random draw)."""
    X, y = _xy()
    rng = np.random.default_rng(1)
    extra = pd.DataFrame({"a": rng.normal(size=40) * 10, "b": rng.normal(size=40)})
    X_all = pd.concat([X, extra], ignore_index=True)
    y_all = np.concatenate([y, rng.normal(size=40) * 100])
    order = rng.permutation(len(X_all))  # the ignored rows interleaved with the others
    w = np.r_[np.ones(len(X)), np.zeros(40)][order]
    weighted = DNNRegressor(**SMALL).fit(X_all.iloc[order], y_all[order], sample_weight=w)
    rows = [i for i in order if i < len(X)]
    dropped = DNNRegressor(**SMALL).fit(X.iloc[rows], y.to_numpy()[rows])
    np.testing.assert_array_equal(weighted.predict(X), dropped.predict(X))


def test_an_integer_weight_counts_as_copies_of_the_row():
    """Two groups of rows with the same features and targets 0 and 1: the mean-squared
    optimum is the weighted mean of the targets. Weight 3 on the ones moves it from 1/2 to
    3/4, and repeating those rows three times moves it to the same place."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(200, 1))
    X = pd.DataFrame({"x": np.r_[x[:, 0], x[:, 0]]})
    y = np.r_[np.zeros(200), np.ones(200)]
    w = np.r_[np.ones(200), np.full(200, 3.0)]
    params = dict(hidden_layer_sizes=(16,), n_ensemble=2, max_iter=30, random_state=0)
    params.update(standardize_target=False, early_stopping=False, clip_predictions=False)
    grid = pd.DataFrame({"x": np.linspace(-0.9, 0.9, 50)})
    plain = DNNRegressor(**params).fit(X, y).predict(grid)
    weighted = DNNRegressor(**params).fit(X, y, sample_weight=w).predict(grid)
    repeated = DNNRegressor(**params).fit(
        pd.concat([X, X.iloc[200:], X.iloc[200:]], ignore_index=True), np.r_[y, y[200:], y[200:]]
    )
    repeated = repeated.predict(grid)
    assert abs(plain.mean() - 0.5) < 0.05
    assert abs(weighted.mean() - 0.75) < 0.05
    assert abs(repeated.mean() - 0.75) < 0.05
    assert np.abs(weighted - repeated).max() < 0.1


def test_early_stopping_watches_the_weighted_validation_score():
    """With weights on the eval_set, the recorded validation RMSE of the kept epoch is
    scikit-learn's weighted RMSE of the final model on those rows."""
    X, y = _xy(200)
    X_val, y_val = _xy(80, seed=3)
    w_val = np.random.default_rng(4).integers(1, 5, len(y_val)).astype(float)
    model = DNNRegressor(**{**SMALL, "max_iter": 6}, clip_predictions=False).fit(
        X, y, eval_set=(X_val, y_val, w_val)
    )
    best = model.history_[model.best_epoch_ - 1]
    expected = np.sqrt(mean_squared_error(y_val, model.predict(X_val), sample_weight=w_val))
    assert best["val_rmse"] == pytest.approx(expected, rel=1e-5)
    unweighted = np.sqrt(mean_squared_error(y_val, model.predict(X_val)))
    assert best["val_rmse"] != pytest.approx(unweighted, rel=1e-6)


def test_class_weight_balanced_is_the_balanced_sample_weight():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = np.where(X["a"] + 0.8 * rng.normal(size=300) > 1.2, "rare", "common")
    params = dict(hidden_layer_sizes=(16,), n_ensemble=2, max_iter=15, random_state=0)
    balanced = DNNClassifier(**params, class_weight="balanced").fit(X, y)
    by_hand = DNNClassifier(**params).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_array_equal(balanced.predict_proba(X), by_hand.predict_proba(X))
    plain = DNNClassifier(**params).fit(X, y)
    assert (balanced.predict(X) == "rare").mean() > (plain.predict(X) == "rare").mean()


def test_bad_weights_are_refused_in_one_line():
    X, y = _xy(20)
    with pytest.raises(ValueError, match="every sample_weight is zero"):
        DNNRegressor(**SMALL).fit(X, y, sample_weight=np.zeros(20))
    with pytest.raises(ValueError, match="[Nn]egative"):
        DNNRegressor(**SMALL).fit(X, y, sample_weight=-np.ones(20))
    with pytest.raises(ValueError, match="class_weight must be"):
        DNNClassifier(class_weight="even").fit(X, (y > 0).astype(int))


def test_the_cli_trains_with_a_weight_column(tmp_path, capsys):
    """--weight COL: the column weighs the rows and is not a feature; equal weights give
    the model trained on the table without the column; a missing column is one line."""
    import json

    from dnnreg import load
    from dnnreg.cli import main

    X, y = _xy(150)
    X.assign(y=y, w=2.0).to_csv(tmp_path / "w.csv", index=False)
    X.assign(y=y).to_csv(tmp_path / "p.csv", index=False)
    fast = ["--set", "max_iter=3", "--set", "n_ensemble=1", "--set", "hidden_layer_sizes=8"]
    train = lambda name, *extra: main(  # noqa: E731
        ["train", str(tmp_path / f"{name}.csv"), "--target", "y", "--out", str(tmp_path / name)]
        + fast
        + list(extra)
    )
    assert train("w", "--weight", "w") == 0 and train("p") == 0
    weighted, plain = load(tmp_path / "w" / "model"), load(tmp_path / "p" / "model")
    assert weighted.feature_names_in_.tolist() == ["a", "b"]
    np.testing.assert_array_equal(weighted.predict(X), plain.predict(X))
    assert json.loads((tmp_path / "w" / "metrics.json").read_text())["weight"] == "w"
    capsys.readouterr()
    assert train("w", "--weight", "nope", "--overwrite") == 1
    assert "--weight: no column 'nope'" in capsys.readouterr().err
