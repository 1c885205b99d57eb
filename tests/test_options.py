"""Every option of the catalogue reaches the network from the estimator, behaves as
documented, and is refused with a clear message when misspelt."""

import json

import numpy as np
import pytest
import torch

from dnnreg import DNNClassifier, DNNRegressor
from dnnreg.cli import parse_settings
from dnnreg.metrics import rmse
from dnnreg.network.losses import CLASSIFICATION_LOSSES
from dnnreg.network.mlp import ACTIVATIONS, INITS, EnsembleBatchNorm, EnsembleLayerNorm
from dnnreg.options import OPTIONS as OPTIONS_TABLE
from dnnreg.training.optim import SCHEDULES


@pytest.mark.parametrize("key", sorted(set(OPTIONS_TABLE) - {"random_state", "verbose"}))
def test_the_cli_set_reaches_every_parameter(key):
    """--set key=value gives the estimator the value itself (the table's default here)."""
    from dnnreg.options import CLASSIFICATION_ONLY

    default = OPTIONS_TABLE[key][0]
    text = ",".join(map(str, default)) if isinstance(default, tuple) else json.dumps(default)
    cls = DNNClassifier if key in CLASSIFICATION_ONLY else DNNRegressor
    assert parse_settings([f"{key}={text}"], cls) == {key: default}


def test_the_signatures_repeat_the_option_table():
    import inspect

    from dnnreg.options import DEFAULTS

    for cls in (DNNRegressor, DNNClassifier):
        sig = inspect.signature(cls.__init__).parameters
        assert {k: v.default for k, v in sig.items() if k != "self"} == DEFAULTS[cls.__name__]


def test_every_vocabulary_matches_the_tables_keyed_by_it():
    from dnnreg import options
    from dnnreg.network import losses, mlp
    from dnnreg.training import optim

    assert set(mlp.ACTIVATIONS) == set(options.ACTIVATIONS)
    assert set(mlp.NORMALIZATIONS) == set(options.NORMALIZATIONS)
    for name in options.REGRESSION_LOSSES + options.CLASSIFICATION_LOSSES:
        assert losses.make_loss(name, n_classes=3).name == name
    for solver in options.SOLVERS:  # each builds
        optim.make_optimizer(torch.nn.Linear(2, 1), solver=solver, lr=0.1, weight_decay=0.0)


def test_a_changed_auto_rule_does_not_change_a_saved_model(tmp_path, mixed_frame, monkeypatch):
    """Resolved values are recorded: after the embedding's column limit moves, a model
    saved before still loads and predicts bit-identically."""
    from dnnreg import load, options, save

    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    model = DNNRegressor(hidden_layer_sizes=(8,), n_ensemble=2, max_iter=2, random_state=0)
    model.fit(X, y)
    assert model.resolved_["numeric_embedding"] == "piecewise_linear"
    save(model, tmp_path / "m")
    monkeypatch.setattr(options, "AUTO_MAX_COLUMNS", 0)  # "auto" would now embed nothing
    assert options.resolve_embedding("auto", 3) == "none"
    again = load(tmp_path / "m")
    assert again.resolved_ == {
        **model.resolved_,
        "n_epochs": 2,
        "best_epoch": model.best_epoch_,
        "fit_seconds": model.fit_seconds_,
    }
    assert np.array_equal(again.predict(X), model.predict(X))


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


# ------------------------------------------------------------ each option does what it says
def _fit(frame, epochs=2, **params):
    X, y = frame.drop(columns="y"), frame["y"]
    settings = dict(hidden_layer_sizes=(16, 16), n_ensemble=2, max_iter=epochs, random_state=0)
    return DNNRegressor(**{**settings, **params}).fit(X, y)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation_builds_its_module(activation, mixed_frame):
    model = _fit(mixed_frame, epochs=1, activation=activation)
    want = type(ACTIVATIONS[activation](2, 16))
    assert [type(b.act) for b in model.model_.blocks] == [want, want]


@pytest.mark.parametrize(
    "normalization, module",
    [("none", type(None)), ("batch_norm", EnsembleBatchNorm), ("layer_norm", EnsembleLayerNorm)],
)
def test_each_normalization_builds_its_module(normalization, module, mixed_frame):
    model = _fit(mixed_frame, epochs=1, normalization=normalization)
    assert all(type(b.norm) is module for b in model.model_.blocks)


def test_residual_and_dropout_reach_the_blocks(mixed_frame):
    plain, model = (
        _fit(mixed_frame, epochs=1),
        _fit(mixed_frame, epochs=1, residual=True, dropout=0.2),
    )
    assert [b.residual for b in model.model_.blocks] == [False, True]  # widths 16 -> 16 only
    assert not any(b.residual for b in plain.model_.blocks)
    assert all(b.dropout.p == 0.2 for b in model.model_.blocks)


class _FirstWeights:
    """Records the second hidden layer's weights before the first step."""

    def on_epoch_begin(self, model):
        if not hasattr(self, "w"):
            self.w = model.blocks[1].linear.weight.detach().clone()


@pytest.mark.parametrize("init", [i for i in INITS if i != "auto"] + ["auto"])
def test_each_init_draws_the_variance_its_paper_gives(init, mixed_frame):
    from dnnreg.network.mlp import init_variance
    from dnnreg.options import resolve_init

    probe = _FirstWeights()
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    DNNRegressor(
        hidden_layer_sizes=(256, 256), n_ensemble=2, max_iter=1, init=init, random_state=0
    ).fit(X, y, callbacks=[probe])
    want = init_variance(resolve_init(init, "relu"), 256, 256, "relu")
    got = float((probe.w**2).mean()) if init == "orthogonal" else float(probe.w.var())
    assert got == pytest.approx(want, rel=0.05)


@pytest.mark.parametrize(
    "loss, d_out",
    [("mse", 1), ("mae", 1), ("huber", 1), ("quantile", 3), ("gaussian_nll", 2), ("poisson", 1)],
)
def test_each_loss_is_the_one_trained_with(loss, d_out, mixed_frame):
    frame = mixed_frame.assign(y=mixed_frame["y"] - mixed_frame["y"].min())
    model = _fit(frame, epochs=1, loss=loss)
    assert model.loss_.name == loss and model.model_.head.weight.shape[-1] == d_out
    assert parse_settings([f"loss={loss}"], DNNRegressor) == {"loss": loss}


@pytest.mark.parametrize(
    "solver, cls, nesterov",
    [
        ("sgd", torch.optim.SGD, False),
        ("momentum", torch.optim.SGD, False),
        ("nesterov", torch.optim.SGD, True),
        ("adagrad", torch.optim.Adagrad, None),
        ("rmsprop", torch.optim.RMSprop, None),
        ("adam", "FusedAdam", None),
        ("adamw", "FusedAdam", None),
        ("lbfgs", torch.optim.LBFGS, None),
    ],
)
def test_each_solver_builds_its_optimiser(solver, cls, nesterov, mixed_frame, monkeypatch):
    import dnnreg.training.loop as loop

    made, make = [], loop.make_optimizer
    monkeypatch.setattr(
        loop, "make_optimizer", lambda *a, **k: made.append(make(*a, **k)) or made[-1]
    )
    _fit(mixed_frame, epochs=1, solver=solver, dropout=0.0)
    opt = made[0]
    assert (type(opt).__name__ == cls) if isinstance(cls, str) else type(opt) is cls
    if solver in ("adam", "adamw"):  # torch's own fused kernel, Adam's or AdamW's
        kernel = torch._fused_adamw_ if solver == "adamw" else torch._fused_adam_
        assert opt.kernel is kernel
    if nesterov is not None:
        group = opt.param_groups[0]
        assert group["nesterov"] is nesterov and group["momentum"] == (
            0.0 if solver == "sgd" else 0.9
        )


def test_clipping_bounds_each_step(mixed_frame):
    """With plain SGD a clipped gradient bounds the update: lr x clip per entry and step."""

    def moved(**clip):
        probe = _FirstWeights()
        X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
        model = DNNRegressor(
            hidden_layer_sizes=(16, 16),
            n_ensemble=1,
            max_iter=1,
            solver="sgd",
            learning_rate_init=0.1,
            weight_decay=0.0,
            lr_schedule="constant",
            dropout=0.0,
            early_stopping=False,
            batch_size=300,
            random_state=0,
            **clip,
        ).fit(X, y, callbacks=[probe])
        return float((model.model_.blocks[1].linear.weight.detach() - probe.w).abs().max())

    free = moved()
    assert moved(clip_grad_value=1e-4) <= 0.1 * 1e-4 * 1.0001 < free
    assert moved(clip_grad_norm=1e-4) <= 0.1 * 1e-4 * 1.0001 < free


def test_penalties_shrink_the_weights(mixed_frame):
    """L2 (alpha) and L1 penalties are in the gradient: strong ones pull the weights far
    below the unpenalised fit's (same seed, same steps)."""

    def norm(**penalty):
        model = _fit(
            mixed_frame,
            epochs=5,
            learning_rate_init=1e-2,
            weight_decay=0.0,
            dropout=0.0,
            early_stopping=False,
            **penalty,
        )
        return float(sum((b.linear.weight.detach() ** 2).sum() for b in model.model_.blocks))

    free = norm()
    assert norm(alpha=1.0) < 0.5 * free and norm(l1=0.1) < 0.5 * free


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_each_schedule_sets_the_rates_it_documents(schedule, mixed_frame):
    """One step per epoch (a full batch), so epoch e's recorded rate is step e's."""
    model = _fit(
        mixed_frame,
        epochs=10,
        lr_schedule=schedule,
        batch_size=300,
        early_stopping=False,
        lr_step_size=3,
        lr_gamma=0.5,
        dropout=0.0,
    )
    rates = np.array([r["lr"] for r in model.history_]) / 1e-3
    steps = np.arange(1, 11)  # the rate after each epoch's one step
    if schedule == "constant" or schedule == "reduce_on_plateau":  # nothing monitored: flat
        np.testing.assert_allclose(rates, 1.0)
    elif schedule == "step":
        np.testing.assert_allclose(rates, 0.5 ** (steps // 3))
    elif schedule == "exponential":
        np.testing.assert_allclose(rates, 0.5 ** (steps / 10))
    else:  # warm-up then annealing: up to the peak, then down
        peak = int(np.argmax(rates))
        assert 0 <= peak < 9 and rates[peak] == pytest.approx(1.0, abs=0.05)
        assert np.all(np.diff(rates[peak:]) <= 1e-12) and rates[-1] < 0.05


@pytest.mark.parametrize(
    "metric, best",
    [("loss", np.argmin), ("rmse", np.argmin), ("mae", np.argmin), ("r2", np.argmax)],
)
def test_early_stopping_keeps_the_best_epoch_of_its_metric(metric, best, mixed_frame):
    model = _fit(mixed_frame, epochs=8, early_stopping_metric=metric, n_iter_no_change=100)
    curve = [r[f"val_{metric}"] for r in model.history_]
    assert model.best_epoch_ == int(best(curve)) + 1
