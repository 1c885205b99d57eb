import logging

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from dnnreg import DNNRegressor
from dnnreg.metrics import rmse


def test_learns_a_nonlinear_target_that_a_linear_model_cannot(mixed_frame, small_model):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    train, test = slice(0, 220), slice(220, None)
    model = small_model(max_iter=80).fit(X[train], y[train])
    linear = LinearRegression().fit(X[["b"]][train], y[train])
    ours = rmse(y[test], model.predict(X[test]))
    assert ours < 0.5 * rmse(y[test], linear.predict(X[["b"]][test]))
    assert model.history_[-1]["train_loss"] < 0.3 * model.history_[0]["train_loss"]


def test_same_seed_gives_identical_predictions_different_seed_does_not(mixed_frame, small_model):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    p1 = small_model(random_state=3, dropout=0.1).fit(X, y).predict(X)
    p2 = small_model(random_state=3, dropout=0.1).fit(X, y).predict(X)
    p3 = small_model(random_state=4, dropout=0.1).fit(X, y).predict(X)
    assert np.array_equal(p1, p2) and not np.allclose(p1, p3)


def test_early_stopping_restores_the_best_epoch(mixed_frame, small_model):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    Xv, yv = X.iloc[:60], y.iloc[:60]
    # A large learning rate with no schedule makes the validation loss bounce.
    model = small_model(
        max_iter=25,
        n_iter_no_change=5,
        learning_rate_init=0.03,
        lr_schedule="constant",
        early_stopping_metric="rmse",
        clip_predictions=False,
    ).fit(X.iloc[60:], y.iloc[60:], eval_set=(Xv, yv))
    losses = [h["val_rmse"] for h in model.history_]
    assert model.best_epoch_ == 1 + int(np.argmin(losses))
    assert np.isclose(rmse(yv, model.predict(Xv)), min(losses), rtol=1e-4)
    if model.n_iter_ < 25:  # stopped: exactly n_iter_no_change epochs after the best
        assert model.n_iter_ == model.best_epoch_ + 5


def test_predictions_come_back_in_original_units(mixed_frame, small_model):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    p = small_model().fit(X, y).predict(X)
    p_scaled = small_model().fit(X, 1000 * y + 50).predict(X)
    assert np.allclose(p_scaled, 1000 * p + 50, rtol=1e-3, atol=1e-2)


def test_accepts_numpy_with_nan_and_dataframes_with_categoricals(mixed_frame, small_model):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"].to_numpy()
    arr = X[["a", "b"]].to_numpy()
    assert np.isnan(arr).any()
    assert small_model(max_iter=3).fit(arr, y).predict(arr).shape == (len(y),)
    for enc in ("onehot", "embedding"):
        m = small_model(max_iter=3, categorical_encoding=enc, normalization="batch_norm").fit(X, y)
        unseen = X.head(2).assign(color=["purple", None])
        assert np.isfinite(m.predict(unseen)).all()


def test_columns_may_come_in_any_order_but_must_all_be_there(mixed_frame, small_model):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    m = small_model(max_iter=3).fit(X, y)
    assert np.array_equal(m.predict(X[["color", "b", "a"]]), m.predict(X))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['b'\]"):
        m.predict(X.drop(columns="b"))


@pytest.mark.parametrize(
    "params,match",
    [
        (dict(activation="rellu"), "did you mean 'relu'"),
        (dict(dropout=1.5), "dropout must be a number in"),
        (dict(hidden_layer_sizes=(32, 0)), "hidden_layer_sizes must be a tuple of positive"),
        (
            dict(max_iter=0, learning_rate_init=-1.0),
            "max_iter.*; learning_rate_init|learning_rate_init.*; .*max_iter",
        ),
    ],
)
def test_bad_parameters_are_all_reported_with_fixes(params, match, mixed_frame):
    with pytest.raises(ValueError, match=match):
        DNNRegressor(**params).fit(mixed_frame[["a"]], mixed_frame["y"])


def test_constant_target_and_single_row_are_refused():
    with pytest.raises(ValueError, match="y is constant"):
        DNNRegressor().fit(np.ones((5, 2)), np.full(5, 3.0))
    with pytest.raises(ValueError, match="1 sample"):
        DNNRegressor().fit(np.ones((1, 2)), np.ones(1))


def test_verbose_logs_one_line_per_epoch(mixed_frame, caplog, small_model):
    with caplog.at_level(logging.INFO, logger="dnnreg"):
        small_model(max_iter=4, verbose=1).fit(mixed_frame[["a", "b"]], mixed_frame["y"])
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch")]
    assert len(lines) == 4 and "val_rmse" in lines[0]


def test_default_batches_are_sliced_from_tensors_not_a_dataloader(
    monkeypatch, mixed_frame, small_model
):
    """Patched on the classes themselves, so any reference to them (``from torch.utils.data
    import DataLoader`` at import time included) is caught."""
    import torch.utils.data

    def forbidden(*a, **k):
        raise AssertionError("DataLoader or Dataset must not be used")

    monkeypatch.setattr(torch.utils.data.DataLoader, "__init__", forbidden)
    monkeypatch.setattr(torch.utils.data.TensorDataset, "__init__", forbidden)
    small_model(max_iter=2).fit(mixed_frame[["a", "b"]], mixed_frame["y"])
    with pytest.raises(AssertionError, match="must not be used"):  # the patch does bite
        from torch.utils.data import DataLoader

        DataLoader([1, 2])


def test_fit_callbacks_see_every_epoch_and_can_predict(mixed_frame, small_model):
    """A user's callback runs at each epoch end, and may predict with the weights of that
    epoch: with every epoch kept, the last epoch's predictions are the fitted model's."""
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    seen = []

    class Trace:
        def on_epoch_end(self, record, net):
            seen.append((record["epoch"], model.predict(X.head(20))))

    model = small_model(max_iter=4, early_stopping=False)
    model.fit(X, y, callbacks=[Trace()])
    assert [epoch for epoch, _ in seen] == [1, 2, 3, 4]
    np.testing.assert_array_equal(seen[-1][1], model.predict(X.head(20)))
    assert not np.array_equal(seen[0][1], seen[-1][1])  # the weights did move


def test_clip_predictions_auto_clips_a_capped_target_and_travels_with_the_model(tmp_path):
    # y = min(x, 1): every training value is <= 1, and an MLP overshoots the cap near it.
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 3, size=(600, 1))
    y = np.minimum(x[:, 0], 1.0)
    model = DNNRegressor(hidden_layer_sizes=(16,), n_ensemble=2, max_iter=15, random_state=0).fit(
        x, y
    )
    assert model.target_scaler_.clip
    grid = np.linspace(-3, 6, 50)[:, None]
    pred = model.predict(grid)
    assert pred.max() <= y.max() and pred.min() >= y.min()
    from dnnreg import load_numpy, save

    save(model, tmp_path / "m")
    np.testing.assert_allclose(load_numpy(tmp_path / "m").predict(grid), pred, rtol=1e-5, atol=1e-6)


def test_clip_predictions_auto_declines_when_validation_targets_exceed_the_range():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(400, 1))
    x_val = rng.uniform(1, 2, size=(100, 1))  # beyond the training range, y keeps rising
    # A plain MLP (no embedding, no dropout) extrapolates the line beyond its data.
    plain = dict(
        hidden_layer_sizes=(16,),
        n_ensemble=2,
        max_iter=30,
        random_state=0,
        numeric_embedding="none",
        dropout=0.0,
    )
    model = DNNRegressor(**plain).fit(x, 2 * x[:, 0], eval_set=(x_val, 2 * x_val[:, 0]))
    assert not model.target_scaler_.clip
    assert model.predict(np.array([[2.0]]))[0] > 2.0  # above the training maximum
    forced = DNNRegressor(clip_predictions=True, **plain).fit(
        x, 2 * x[:, 0], eval_set=(x_val, 2 * x_val[:, 0])
    )
    assert forced.predict(np.array([[2.0]]))[0] <= 2 * x.max()
    with pytest.raises(ValueError, match="clip_predictions must be True, False or 'auto'"):
        DNNRegressor(clip_predictions="yes").fit(x, x[:, 0])


def test_presets_set_real_values_that_get_params_shows():
    from sklearn.base import clone

    fast = DNNRegressor.from_preset("fast", max_iter=7)
    params = fast.get_params()
    assert params["n_ensemble"] == 1 and params["max_iter"] == 7
    assert "preset" not in params
    assert clone(fast).get_params() == params  # a clone needs no preset table
    assert DNNRegressor.from_preset("default").get_params() == DNNRegressor().get_params()
    with pytest.raises(ValueError, match="preset must be one of .*'fast'"):
        DNNRegressor.from_preset("fastest")


def test_standardize_target_false_trains_on_raw_units():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = 1000.0 + 50.0 * x[:, 0]
    raw = DNNRegressor(
        hidden_layer_sizes=(8,), n_ensemble=1, max_iter=1, random_state=0, standardize_target=False
    ).fit(x, y)
    assert (raw.target_scaler_.mean, raw.target_scaler_.std) == (0.0, 1.0)
    scaled = DNNRegressor(hidden_layer_sizes=(8,), n_ensemble=1, max_iter=1, random_state=0).fit(
        x, y
    )
    assert scaled.target_scaler_.std == pytest.approx(y.std())
    # The loss is in the units trained on: Var(y) = 2500 raw, 1 standardized.
    assert raw.history_[0]["train_loss"] > 100 > 5 > scaled.history_[0]["train_loss"]


def test_auto_training_length_gives_a_small_table_enough_steps():
    # 200 rows, 10 % held out: 180 training rows. Hand-worked: batch = max(16, 180 // 64)
    # = 16, so ceil(180 / 16) = 12 steps per epoch, and 4,000 steps need ceil(4000 / 12) =
    # 334 epochs, capped at 300. The one-cycle rate has annealed to ~0 by the last one.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = X[:, 0] + 0.1 * rng.normal(size=200)
    model = DNNRegressor(
        hidden_layer_sizes=(4,),
        n_ensemble=1,
        numeric_embedding="none",
        n_iter_no_change=1000,
        random_state=0,
    ).fit(X, y)
    assert (model.batch_size_, model.max_iter_, model.n_iter_) == (16, 300, 300)
    assert model.history_[-1]["lr"] < 1e-6
    # A fixed max_iter is used as given.
    assert (
        DNNRegressor(max_iter=7, hidden_layer_sizes=(4,), n_ensemble=1, random_state=0)
        .fit(X, y)
        .n_iter_
        <= 7
    )
