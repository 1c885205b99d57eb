"""Every option of the catalogue reaches the network from the estimator, behaves as
documented, and is refused with a clear message when misspelt."""

import numpy as np
import pytest
import torch

from dnnreg import DNNClassifier, DNNRegressor
from dnnreg.cli import parse_settings
from dnnreg.metrics import rmse
from dnnreg.network.losses import CLASSIFICATION_LOSSES, REGRESSION_LOSSES
from dnnreg.network.mlp import ACTIVATIONS, INIT_ALIASES, INITS
from dnnreg.training.optim import SCHEDULES, SOLVERS

OPTIONS = (
    [("activation", a) for a in ACTIVATIONS]
    + [("init", i) for i in list(INITS) + list(INIT_ALIASES)]
    + [("normalization", n) for n in ("none", "batch_norm", "layer_norm")]
    + [
        ("residual", True),
        ("dropout", 0.2),
        ("alpha", 1e-3),
        ("l1", 1e-4),
        ("clip_grad_norm", 1.0),
        ("clip_grad_value", 0.5),
    ]
    + [("loss", name) for name in REGRESSION_LOSSES]
    + [("solver", s) for s in SOLVERS]
    + [("lr_schedule", s) for s in SCHEDULES]
    + [("early_stopping_metric", m) for m in ("loss", "rmse", "mae", "r2")]
)


@pytest.mark.parametrize("key,value", OPTIONS, ids=[f"{k}={v}" for k, v in OPTIONS])
def test_every_regression_option_trains_and_predicts(key, value, mixed_frame):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    if value == "poisson":
        y = y - y.min()
    model = DNNRegressor(
        hidden_layer_sizes=(16, 16), n_ensemble=2, max_iter=3, random_state=0, **{key: value}
    ).fit(X, y)
    assert getattr(model, key) == value and np.isfinite(model.predict(X)).all()
    # ... and the CLI's --set reaches the same parameter with the same value.
    assert parse_settings(
        [f"{key}={str(value).lower() if value is True else value}"], DNNRegressor
    ) == {key: value}


@pytest.mark.parametrize("loss", CLASSIFICATION_LOSSES)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_every_classification_loss_trains(loss, n_classes, mixed_frame):
    X = mixed_frame.drop(columns="y")
    y = np.array(["a", "b", "c"])[
        (mixed_frame["y"].rank(pct=True) * n_classes).astype(int).clip(0, n_classes - 1)
    ]
    clf = DNNClassifier(
        hidden_layer_sizes=(16,),
        n_ensemble=2,
        max_iter=3,
        loss=loss,
        random_state=0,
        early_stopping_metric="accuracy",
    ).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), n_classes) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(clf.predict(X)) <= set(clf.classes_)


def _heteroscedastic(n=1500, seed=0):
    """y = x + ε with sd(ε) = 0.1 for x < 0 and 1.0 for x > 0."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=n)
    sd = np.where(x < 0, 0.1, 1.0)
    return x.reshape(-1, 1), x + sd * rng.normal(size=n), sd


def test_quantile_loss_gives_calibrated_ordered_quantiles():
    X, y, _ = _heteroscedastic()
    # dropout=0: training under dropout noise widens the learned spread (measured coverage
    # 0.892 for the nominal 0.8 with the default 0.15), as the dropout docstring says.
    model = DNNRegressor(
        loss="quantile",
        quantiles=(0.1, 0.5, 0.9),
        hidden_layer_sizes=(64, 64),
        max_iter=40,
        random_state=0,
        dropout=0.0,
    ).fit(X[:1000], y[:1000])
    q = model.predict_quantiles(X[1000:])
    assert (np.diff(q, axis=1) >= 0).all()
    inside = np.mean((y[1000:] >= q[:, 0]) & (y[1000:] <= q[:, 2]))
    assert 0.72 <= inside <= 0.88  # nominal 80 %
    assert np.array_equal(model.predict(X[1000:]), q[:, 1])


def test_gaussian_nll_learns_where_the_noise_is():
    X, y, sd = _heteroscedastic()
    model = DNNRegressor(
        loss="gaussian_nll", hidden_layer_sizes=(64, 64), max_iter=40, random_state=0
    ).fit(X[:1000], y[:1000])
    mean, var = model.predict_mean_variance(X[1000:])
    assert np.array_equal(mean, model.predict(X[1000:]))
    est_sd = np.sqrt(var)
    low, high = sd[1000:] == 0.1, sd[1000:] == 1.0
    assert np.median(est_sd[high]) == pytest.approx(1.0, rel=0.3)
    assert np.median(est_sd[low]) < 0.3


def test_poisson_loss_recovers_the_rate_of_counts():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(3000, 1))
    rate = np.exp(0.5 + 1.5 * x[:, 0])
    y = rng.poisson(rate).astype(float)
    # A plain network, so the check is on the loss: the regression defaults' embedding and
    # dropout cost a smooth one-feature rate about 2x the error (measured 0.048).
    model = DNNRegressor(
        loss="poisson",
        hidden_layer_sizes=(64, 64),
        max_iter=30,
        numeric_embedding="none",
        dropout=0.0,
        random_state=0,
    ).fit(x[:2000], y[:2000])
    pred = model.predict(x[2000:])
    assert (pred > 0).all()
    # Measured 0.022; the true log-linear GLM (sklearn PoissonRegressor) gets 0.021.
    assert np.median(np.abs(pred / rate[2000:] - 1)) < 0.04
    with pytest.raises(ValueError, match="needs a target >= 0"):
        DNNRegressor(loss="poisson").fit(x[:10], y[:10] - 5)


def test_early_stopping_on_a_metric_where_larger_is_better(mixed_frame, small_model):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    model = small_model(
        max_iter=20, early_stopping_metric="r2", learning_rate_init=0.02, lr_schedule="constant"
    ).fit(X.iloc[60:], y.iloc[60:], eval_set=(X.iloc[:60], y.iloc[:60]))
    r2 = [h["val_r2"] for h in model.history_]
    assert model.best_epoch_ == 1 + int(np.argmax(r2))


def test_restore_best_weights_false_keeps_the_last_epoch(mixed_frame, small_model):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    Xv, yv = X.iloc[:60], y.iloc[:60]
    model = small_model(
        max_iter=8,
        restore_best_weights=False,
        learning_rate_init=0.03,
        lr_schedule="constant",
        clip_predictions=False,
    ).fit(X.iloc[60:], y.iloc[60:], eval_set=(Xv, yv))
    assert rmse(yv, model.predict(Xv)) == pytest.approx(model.history_[-1]["val_rmse"], rel=1e-4)


def test_max_time_stops_training(mixed_frame, small_model):
    model = small_model(max_iter=500, max_time=1e-9).fit(mixed_frame[["a", "b"]], mixed_frame["y"])
    assert model.n_iter_ == 1


def test_a_tiny_gradient_norm_clip_freezes_the_weights(mixed_frame, small_model):
    X, y = mixed_frame[["a", "b"]], mixed_frame["y"]
    frozen = small_model(
        max_iter=3, clip_grad_norm=1e-12, solver="sgd", weight_decay=0.0, lr_schedule="constant"
    ).fit(X, y)
    start = small_model(
        max_iter=3, learning_rate_init=1e-30, solver="sgd", weight_decay=0.0, lr_schedule="constant"
    ).fit(X, y)  # the same initial weights
    for a, b in zip(frozen.model_.parameters(), start.model_.parameters()):
        assert torch.allclose(a, b, atol=1e-9)


def test_l1_shrinks_weights_more_than_no_penalty(mixed_frame, small_model):
    X, y = mixed_frame[["a", "b"]], mixed_frame["y"]
    l1_norm = lambda m: sum(float(b.linear.weight.detach().abs().sum()) for b in m.model_.blocks)  # noqa: E731
    plain = small_model(max_iter=10, weight_decay=0.0).fit(X, y)
    sparse = small_model(max_iter=10, weight_decay=0.0, l1=1e-2).fit(X, y)
    assert l1_norm(sparse) < 0.7 * l1_norm(plain)


def test_lbfgs_fits_a_small_table_full_batch(mixed_frame):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    model = DNNRegressor(
        solver="lbfgs", hidden_layer_sizes=(32,), n_ensemble=1, max_iter=30, random_state=0
    ).fit(X.iloc[:240], y.iloc[:240])
    assert rmse(y.iloc[240:], model.predict(X.iloc[240:])) < 0.5 * np.std(y.iloc[240:])


def test_sgd_with_alpha_equals_sgd_with_weight_decay_for_one_member(mixed_frame, small_model):
    # For plain SGD, the L2 penalty (α/2)‖W‖² and coupled weight decay α add the same αW to
    # the gradient of the weight matrices.
    X, y = mixed_frame[["a", "b"]], mixed_frame["y"]
    common = dict(max_iter=3, n_ensemble=1, solver="sgd", learning_rate_init=0.05)
    a = small_model(alpha=0.1, weight_decay=0.0, **common).fit(X, y)
    b = small_model(alpha=0.0, weight_decay=0.1, **common).fit(X, y)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "params,match",
    [
        (dict(activation="prelu_"), "did you mean 'prelu'"),
        (dict(init="xavier"), "init must be one of"),
        (dict(normalization="batchnorm"), "did you mean 'batch_norm'"),
        (dict(residual=True, hidden_layer_sizes=(64, 32)), "residual=True needs two consecutive"),
        (dict(loss="cross_entropy"), "loss must be one of"),
        (dict(quantiles=(0.9, 0.1)), "quantiles must be an increasing tuple"),
        (dict(solver="adam_w"), "did you mean 'adamw'"),
        (dict(lr_schedule="cosine_warmup"), "lr_schedule must be one of"),
        (dict(lr_gamma=1.5, clip_grad_norm=-1.0), "clip_grad_norm.*; lr_gamma"),
        (dict(early_stopping_metric="accuracy"), "early_stopping_metric must be one of"),
    ],
)
def test_bad_catalogue_parameters_name_the_fix(params, match, mixed_frame):
    with pytest.raises(ValueError, match=match):
        DNNRegressor(**params).fit(mixed_frame[["a"]], mixed_frame["y"])


def test_task_specific_methods_refuse_the_wrong_loss(mixed_frame, small_model):
    model = small_model(max_iter=1).fit(mixed_frame[["a"]], mixed_frame["y"])
    with pytest.raises(ValueError, match="loss='quantile'"):
        model.predict_quantiles(mixed_frame[["a"]])
    with pytest.raises(ValueError, match="loss='gaussian_nll'"):
        model.predict_mean_variance(mixed_frame[["a"]])
    with pytest.raises(ValueError, match="loss must be one of"):
        DNNClassifier(loss="mse").fit(mixed_frame[["a"]], mixed_frame["y"] > 0)
