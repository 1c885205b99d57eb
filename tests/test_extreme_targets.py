"""Targets at extreme scales or with far outliers train to what the same data rescaled or
cleaned gives, or are refused in one line."""

import numpy as np
import pytest
from sklearn.datasets import make_friedman1
from sklearn.metrics import r2_score

from dnnreg import DNNRegressor
from dnnreg.tables.preprocessing import far_outliers

SMALL = dict(hidden_layer_sizes=(32, 32), n_ensemble=2, max_iter=40, random_state=0)


@pytest.fixture(scope="module")
def friedman():
    X, y = make_friedman1(n_samples=900, noise=0.5, random_state=0)
    return X[:600], y[:600], X[600:], y[600:]


def test_a_normal_sample_has_no_far_outliers():
    y = np.random.default_rng(0).normal(size=200_000)
    assert not far_outliers(y).any()
    assert far_outliers(np.r_[y[:99], 1e6]).nonzero()[0].tolist() == [99]
    assert not far_outliers(np.r_[np.zeros(60), np.ones(40)]).any()  # MAD 0: no verdict


@pytest.mark.parametrize("scale", [1e9, 1e-9])
def test_the_targets_scale_does_not_matter(friedman, scale):
    X, y, Xt, yt = friedman
    base = DNNRegressor(**SMALL).fit(X, y).predict(Xt)
    scaled = DNNRegressor(**SMALL).fit(X, y * scale).predict(Xt) / scale
    rmse = lambda p: float(np.sqrt(np.mean((p - yt) ** 2)))  # noqa: E731
    assert rmse(scaled) == pytest.approx(rmse(base), rel=0.01)


def test_far_outliers_are_named_and_do_not_wreck_the_other_rows(friedman):
    X, y, Xt, yt = friedman
    dirty = y.copy()
    dirty[::100] = 1e6  # 1 % of the training targets
    clean = r2_score(yt, DNNRegressor(**SMALL, loss="mae").fit(X, y).predict(Xt))
    with pytest.warns(UserWarning, match=r"6 far outliers \(1 % .*1e\+06.*loss='mae'"):
        DNNRegressor(**SMALL).fit(X, dirty)
    model = DNNRegressor(**SMALL, loss="mae")
    with pytest.warns(UserWarning, match="far outliers"):
        model.fit(X, dirty)
    assert r2_score(yt, model.predict(Xt)) > clean - 0.05  # as if the outliers were not there


def test_a_target_that_overflows_is_refused(friedman):
    X, y, _, _ = friedman
    with pytest.raises(ValueError, match=r"y reaches 1e\+300: .*overflow.*divide by 1e297"):
        DNNRegressor(**SMALL).fit(X, y * 1e300 / y.max())
