"""Conformal prediction intervals (dnnreg.conformal, DNNRegressor.predict_interval): the
order statistics against their definitions, coverage over random splits, and the same
intervals from every engine."""

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dnnreg import DNNRegressor, load, load_numpy, save
from dnnreg.conformal import Calibration, _cqr_pair, _union_kth, needed_rows
from dnnreg.tables.datasets import load_yacht_hydrodynamics


# ---------------------------------------------------------------------- the definitions
def test_the_union_order_statistic_matches_sorting_every_value():
    """CV+'s bound is the k-th smallest of a union of shifted, scaled score sets: the
    bisection must return exactly what sorting the whole union returns."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        n_folds, n = int(rng.integers(2, 9)), 25
        by_fold = [
            np.sort(rng.exponential(size=rng.integers(0, 30)) * 10.0 ** rng.integers(-3, 6))
            for _ in range(n_folds)
        ]
        if sum(len(r) > 0 for r in by_fold) < 2:
            continue
        c = rng.normal(size=(n_folds, n)) * 1000
        s = rng.uniform(0, 2, size=(n_folds, n))
        s[0, :3] = 0.0  # a zero spread: every value of that fold is the centre
        total = sum(len(r) for r in by_fold)
        for k in (1, 2, total // 2, total):
            everything = [
                np.sort(np.concatenate([c[f, j] + s[f, j] * by_fold[f] for f in range(n_folds)]))
                for j in range(n)
            ]
            expected = np.array([v[k - 1] for v in everything])
            np.testing.assert_allclose(_union_kth(c, s, by_fold, k), expected, rtol=1e-11)


def _calibration(y, pred, fold=None, n_folds=1, score="absolute", levels=()):
    pred = np.asarray(pred, float)
    return Calibration(
        y=np.asarray(y, float),
        pred=pred[:, None] if pred.ndim == 1 else pred,
        fold=np.zeros(len(y), int) if fold is None else np.asarray(fold),
        n_folds=n_folds,
        score=score,
        levels=levels,
    )


def test_split_conformal_by_hand():
    """9 residuals 1..9, coverage 0.8: the bound is the ceil(0.8 * 10) = 8th smallest, 8."""
    cal = _calibration(y=np.arange(1, 10), pred=np.zeros(9))
    lower, upper = cal.interval(np.array([[[100.0], [-5.0]]]), 0.8)
    assert lower.tolist() == [92.0, -13.0] and upper.tolist() == [108.0, 3.0]


def test_too_few_calibration_rows_give_an_unbounded_interval_and_say_so():
    cal = _calibration(y=np.arange(1, 10), pred=np.zeros(9))
    assert needed_rows(0.95) == 19 and needed_rows(0.9) == 9
    with pytest.warns(UserWarning, match="needs at least 19 calibration rows, got 9"):
        lower, upper = cal.interval(np.zeros((1, 2, 1)), 0.95)
    assert np.isneginf(lower).all() and np.isposinf(upper).all()


def test_cv_plus_is_barber_et_al_definition():
    """Jackknife+/CV+ (Barber et al. 2021, eq. 8): the lower bound is the floor(α(n+1))-th
    smallest of μ_{-f(i)}(x) - R_i, the upper the ceil((1-α)(n+1))-th smallest of
    μ_{-f(i)}(x) + R_i, written here literally."""
    rng = np.random.default_rng(1)
    n_folds, n, n_test, alpha = 4, 40, 7, 0.1
    fold = np.repeat(np.arange(n_folds), n // n_folds)
    y, oof = rng.normal(size=n), rng.normal(size=n) * 0.5
    bases = rng.normal(size=(n_folds, n_test, 1))
    lower, upper = _calibration(y, oof, fold, n_folds).interval(bases, 1 - alpha)
    r = np.abs(y - oof)
    for j in range(n_test):
        mu = bases[fold, j, 0]
        lows, highs = np.sort(mu - r), np.sort(mu + r)
        assert lower[j] == pytest.approx(lows[math.floor(alpha * (n + 1)) - 1], rel=1e-12)
        assert upper[j] == pytest.approx(highs[math.ceil((1 - alpha) * (n + 1)) - 1], rel=1e-12)


def test_cqr_widens_the_quantile_band_by_its_calibrated_constant():
    """Romano et al. 2019: scores max(q_lo - y, y - q_hi); bounds q_lo - Q and q_hi + Q."""
    levels = (0.1, 0.25, 0.5, 0.75, 0.9)
    assert _cqr_pair(levels, 0.8) == (0, 4) and _cqr_pair(levels, 0.5) == (1, 3)
    y = np.arange(9.0)
    band = np.stack([y - 1, y - 1, y, y + 1, y + 1], axis=1)  # every row 1 inside
    band[:, 0] += np.arange(9) * 0.1  # lower quantile off by 0..0.8 -> scores up to -0.2
    cal = _calibration(y, band, score="cqr", levels=levels)
    scores = np.sort(np.maximum(band[:, 0] - y, y - band[:, 4]))
    lower, upper = cal.interval(np.array([[[0.0, 0.0, 5.0, 10.0, 10.0]]]), 0.8)
    q = scores[math.ceil(0.8 * 10) - 1]
    assert lower[0] == pytest.approx(-q) and upper[0] == pytest.approx(10 + q)


def test_normalised_scores_scale_with_the_predicted_spread():
    y = np.array([0.0, 2.0, -4.0, 8.0, 1.0, -1.0, 3.0, -3.0, 0.5])
    sigma = np.array([1.0, 2.0, 4.0, 8.0, 1.0, 1.0, 3.0, 3.0, 0.5])
    cal = _calibration(y, np.stack([np.zeros(9), sigma], 1), score="normalized")
    lower, upper = cal.interval(np.array([[[10.0, 1.0], [10.0, 3.0]]]), 0.8)
    q = np.sort(np.abs(y) / sigma)[7]  # 8th smallest of |y - μ|/σ, all ones here
    np.testing.assert_allclose(upper - 10, [q, 3 * q])
    np.testing.assert_allclose(10 - lower, [q, 3 * q])


# ---------------------------------------------------------------------- coverage
def _heteroscedastic(n, seed):
    """y = x₀ + sin(3x₁) + noise whose spread grows with |x₀| (0.1 to 1.6)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, size=(n, 3))
    y = X[:, 0] + np.sin(3 * X[:, 1]) + (0.1 + np.abs(X[:, 0])) * rng.normal(size=n)
    return pd.DataFrame(X, columns=["a", "b", "c"]), y


def _friedman(n, seed):
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(n_samples=n, noise=1.0, random_state=seed)
    return pd.DataFrame(X), y


def _yacht(n, seed):
    X, y = load_yacht_hydrodynamics(return_X_y=True)
    return X, np.asarray(y)


def _tiny(**kw):
    params = dict(
        hidden_layer_sizes=(32,), n_ensemble=4, max_iter=25, numeric_embedding="none", n_threads=1
    )
    return DNNRegressor(**{**params, **kw})


@pytest.mark.parametrize("table", [_heteroscedastic, _friedman, _yacht])
def test_coverage_over_twenty_random_splits(table):
    """Each split refits (the calibration rows are the fit's own out-of-fold rows), so
    the coverage averages over both the calibration and the test rows, as the guarantee
    does: on average within [0.88, 0.93] for a nominal 0.9, and no split below 0.85."""
    from sklearn.model_selection import train_test_split

    X, y = table(700, seed=0)
    coverage = []
    for split in range(20):
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.4, random_state=split)
        model = _tiny(random_state=split).fit(X_tr, y_tr)
        assert model.calibration_.method == "cv+"  # bagging: 4 folds
        lower, upper = model.predict_interval(X_te, coverage=0.9)
        coverage.append(np.mean((y_te >= lower) & (y_te <= upper)))
    assert 0.88 <= np.mean(coverage) <= 0.93, coverage
    assert min(coverage) >= 0.85, coverage


def test_adaptive_intervals_follow_the_noise():
    """On heteroscedastic data a Gaussian head's normalised intervals (and quantile
    heads' CQR) are wide where the noise is large, unlike the absolute residual's."""
    X, y = _heteroscedastic(1500, seed=3)
    X_te, _ = _heteroscedastic(400, seed=4)
    noise = 0.1 + np.abs(X_te["a"].to_numpy())
    widths = {}
    for loss in ("mse", "gaussian_nll", "quantile"):
        model = _tiny(loss=loss, random_state=0, max_iter=40).fit(X, y)
        lower, upper = model.predict_interval(X_te, 0.9)
        widths[loss] = np.corrcoef(upper - lower, noise)[0, 1]
    assert model.calibration_.score == "cqr"
    assert abs(widths["mse"]) < 0.3 < 0.7 < widths["gaussian_nll"], widths
    assert widths["quantile"] > 0.7, widths


def test_mondrian_calibration_holds_the_coverage_within_each_level():
    """Group "loud" has 8x the noise of "quiet": one pooled interval over-covers quiet
    rows and under-covers loud ones; calibrated by group, each gets about 0.9."""
    rng = np.random.default_rng(5)

    def table(n):
        group = rng.choice(["quiet", "loud"], size=n)
        x = rng.uniform(-1, 1, size=n)
        y = 2 * x + np.where(group == "loud", 0.8, 0.1) * rng.normal(size=n)
        return pd.DataFrame({"x": x, "group": group}), y

    X, y = table(1200)
    X_te, y_te = table(2000)
    model = _tiny(random_state=0).fit(X, y)
    loud = X_te["group"].to_numpy() == "loud"

    def covered(**kw):
        lower, upper = model.predict_interval(X_te, 0.9, **kw)
        hit = (y_te >= lower) & (y_te <= upper)
        return hit[loud].mean(), hit[~loud].mean()

    pooled_loud, pooled_quiet = covered()
    assert pooled_loud < 0.85 and pooled_quiet > 0.95
    for rate in covered(by="group"):
        assert 0.86 <= rate <= 0.94


# ---------------------------------------------------------------------- every engine
@pytest.fixture(scope="module")
def fitted_pair():
    X, y = load_yacht_hydrodynamics(return_X_y=True)
    X = X.assign(hull=np.where(X.iloc[:, 0] > X.iloc[:, 0].median(), "long", "short"))
    model = _tiny(random_state=0, max_iter=10).fit(X.iloc[:150], y.iloc[:150])
    return model, X.iloc[150:], y.iloc[150:]


def test_library_loaded_numpy_and_cli_give_the_same_interval(fitted_pair, tmp_path):
    model, X_te, y_te = fitted_pair
    expected = model.predict_interval(X_te, 0.9, by="hull")
    save(model, tmp_path / "m", metadata={"target": "y"})
    for engine in (load(tmp_path / "m"), load_numpy(tmp_path / "m")):
        got = engine.predict_interval(X_te, 0.9, by="hull")
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    X_te.to_csv(tmp_path / "new.csv", index=False)
    for engine in ("torch", "numpy"):
        out = tmp_path / f"{engine}.csv"
        subprocess.run(
            [sys.executable, "-m", "dnnreg", "predict", str(tmp_path / "m"),
             str(tmp_path / "new.csv"), "--out", str(out), "--engine", engine,
             "--interval", "0.9", "--interval-by", "hull"],
            check=True, capture_output=True,
        )  # fmt: skip
        frame = pd.read_csv(out)
        np.testing.assert_allclose(frame["lower"], expected[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(frame["upper"], expected[1], rtol=1e-5, atol=1e-6)


def test_calibrate_replaces_the_fit_calibration_with_split_conformal(fitted_pair):
    model, X_te, y_te = fitted_pair
    fresh = DNNRegressor(**model.get_params())
    fresh.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    fresh.calibrate(X_te.iloc[:60], y_te.iloc[:60])
    assert fresh.calibration_.method == "split" and len(fresh.calibration_.y) == 60
    # split conformal around the whole ensemble: prediction ± the 55th of 60 residuals
    residuals = np.sort(np.abs(y_te.iloc[:60] - fresh.predict(X_te.iloc[:60])))
    lower, upper = fresh.predict_interval(X_te.iloc[60:], 0.9)
    half = residuals[math.ceil(0.9 * 61) - 1]
    np.testing.assert_allclose(upper - fresh.predict(X_te.iloc[60:]), half, rtol=1e-9)
    np.testing.assert_allclose(fresh.predict(X_te.iloc[60:]) - lower, half, rtol=1e-9)


def test_a_holdout_fit_calibrates_split_conformal_on_its_validation_rows(fitted_pair):
    _, X_te, y_te = fitted_pair
    model = _tiny(random_state=0, max_iter=5, bagging=False).fit(X_te, y_te)
    assert model.calibration_.method == "split"
    assert len(model.calibration_.y) == round(0.1 * len(y_te))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, X: m.predict_interval(X, coverage=1.5), "coverage must be a number in"),
        (lambda m, X: m.predict_interval(X, coverage=True), "coverage must be a number in"),
        (lambda m, X: m.predict_interval(X, by="nope"), r"choose one of \['hull'\]"),
    ],
)
def test_bad_interval_arguments_are_named(fitted_pair, call, message):
    model, X_te, _ = fitted_pair
    with pytest.raises(ValueError, match=message):
        call(model, X_te)


def test_a_model_without_calibration_rows_says_how_to_get_them():
    X, y = _heteroscedastic(100, seed=0)
    model = _tiny(early_stopping=False, max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match=r"call calibrate\(X_cal, y_cal\)"):
        model.predict_interval(X)
    lower, upper = model.calibrate(X, y).predict_interval(X)
    assert (lower <= upper).all()


def test_the_cli_names_bad_interval_requests(fitted_pair, tmp_path, capsys):
    from dnnreg.cli import main

    model, X_te, _ = fitted_pair
    save(model, tmp_path / "m")
    X_te.to_csv(tmp_path / "new.csv", index=False)
    base = ["predict", str(tmp_path / "m"), str(tmp_path / "new.csv"), "--out"]
    assert main([*base, str(tmp_path / "a.csv"), "--interval", "90"]) == 2
    assert "must be a number in (0, 1)" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "b.csv"), "--interval-by", "hull"]) == 1
    assert "--interval-by needs --interval" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "c.csv"), "--interval", "0.9", "--interval-by", "x"]) == 1
    assert "by must name a categorical column" in capsys.readouterr().err
    assert not any((tmp_path / f).exists() for f in ("a.csv", "b.csv", "c.csv"))
