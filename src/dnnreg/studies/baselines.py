"""Shallow baselines that every deep result is shown beside.

:class:`Tabular` puts any scikit-learn model behind the table preprocessing a DNN sees
(median imputation with indicators, standard scaling, one-hot categoricals), and
:func:`baseline_factories` lists the shallow models every comparison runs: a mean
predictor, linear, ridge and polynomial models, trees, forests, gradient boosting, kernel
SVMs, nearest neighbours and sklearn's MLP. ``LinearBaseline`` and ``LogisticBaseline``
are the two the training command shows beside every run. The closed-form and
gradient-descent linear regressions below are the course's two routes to least squares.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.linear_model import LinearRegression, LogisticRegression

from dnnreg.tables.preprocessing import TablePreprocessor, as_frame


class Tabular(BaseEstimator):
    """Any scikit-learn model behind dnnreg's table preprocessing (median imputation with
    missing-value indicators, standard scaling, one-hot categoricals with an unknown
    bucket), so every baseline takes the same raw DataFrame the DNN takes.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, None], "c": ["x", "y", "x", "y"]})
    >>> Tabular(LinearRegression()).fit(X, [1.0, 3.0, 5.0, 4.0]).predict(X).shape
    (4,)
    """

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X, y):
        self.preprocessor_ = TablePreprocessor(numeric_scaling="standard").fit(as_frame(X))
        self.estimator_ = clone(self.estimator).fit(self._encode(X), np.asarray(y))
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        return self

    def _encode(self, X):
        return self.preprocessor_.transform(
            as_frame(X, columns=self.preprocessor_.columns)
        ).numeric.astype(np.float64)

    def predict(self, X):
        return self.estimator_.predict(self._encode(X))

    def predict_proba(self, X):
        return self.estimator_.predict_proba(self._encode(X))


class LinearBaseline(RegressorMixin, Tabular):
    """Least-squares linear regression with dnnreg's table preprocessing.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    >>> LinearBaseline().fit(X, 2 * X["a"] + 1).predict(X).round(6).tolist()
    [1.0, 3.0, 5.0, 7.0]
    """

    def __init__(self):
        super().__init__(LinearRegression())


class LogisticBaseline(ClassifierMixin, Tabular):
    """L2-regularised (C=1) multinomial logistic regression with dnnreg's preprocessing.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    >>> LogisticBaseline().fit(X, ["no", "no", "yes", "yes"]).predict(X).tolist()
    ['no', 'no', 'yes', 'yes']
    """

    def __init__(self):
        super().__init__(LogisticRegression(max_iter=1000))


SVM_MAX_ROWS = 20_000  # kernel methods cost O(n²) memory and O(n²-n³) time


def _gbdt(task: str, seed: int):
    """LightGBM with its defaults, or sklearn's HistGradientBoosting when it is absent."""
    try:
        import lightgbm

        cls = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
        return cls(random_state=seed, verbose=-1)
    except ImportError:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = (
            HistGradientBoostingRegressor
            if task == "regression"
            else HistGradientBoostingClassifier
        )
        return cls(random_state=seed)


def baseline_factories(task: str = "regression") -> dict:
    """name -> ``factory(seed)`` of each shallow baseline, wrapped in :class:`Tabular`.

    Regression: mean, linear, ridge (alpha by leave-one-out CV over 10⁻³..10³), poly2_ridge
    (all degree-2 products, then ridge), tree, random_forest, gbdt, svr (RBF kernel),
    knn (k = 10, distance-weighted), sklearn_mlp. Classification: the counterparts
    (most_frequent, logistic, tree, random_forest, gbdt, svc, knn, sklearn_mlp).
    """
    from sklearn import (
        dummy,
        ensemble,
        linear_model,
        neighbors,
        neural_network,
        pipeline,
        svm,
        tree,
    )
    from sklearn.preprocessing import PolynomialFeatures

    alphas = np.logspace(-3, 3, 13)
    if task == "regression":
        table = {
            "mean": lambda s: dummy.DummyRegressor(),
            "linear": lambda s: LinearRegression(),
            "ridge": lambda s: linear_model.RidgeCV(alphas=alphas),
            "poly2_ridge": lambda s: pipeline.make_pipeline(
                PolynomialFeatures(2, include_bias=False), linear_model.RidgeCV(alphas=alphas)
            ),
            "tree": lambda s: tree.DecisionTreeRegressor(min_samples_leaf=5, random_state=s),
            "random_forest": lambda s: ensemble.RandomForestRegressor(
                n_estimators=200, n_jobs=-1, random_state=s
            ),
            "gbdt": lambda s: _gbdt("regression", s),
            "svr": lambda s: svm.SVR(C=1.0),
            "knn": lambda s: neighbors.KNeighborsRegressor(10, weights="distance"),
            "sklearn_mlp": lambda s: neural_network.MLPRegressor(
                early_stopping=True, max_iter=300, random_state=s
            ),
        }
    else:
        table = {
            "most_frequent": lambda s: dummy.DummyClassifier(),
            "logistic": lambda s: LogisticRegression(max_iter=1000),
            "tree": lambda s: tree.DecisionTreeClassifier(min_samples_leaf=5, random_state=s),
            "random_forest": lambda s: ensemble.RandomForestClassifier(
                n_estimators=200, n_jobs=-1, random_state=s
            ),
            "gbdt": lambda s: _gbdt("classification", s),
            "svc": lambda s: svm.SVC(probability=True, random_state=s),
            "knn": lambda s: neighbors.KNeighborsClassifier(10, weights="distance"),
            "sklearn_mlp": lambda s: neural_network.MLPClassifier(
                early_stopping=True, max_iter=300, random_state=s
            ),
        }
    return {
        name: (lambda make: lambda seed: Tabular(make(seed)))(make)  # noqa: B023 (bound here)
        for name, make in table.items()
    }


def _with_intercept(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return np.column_stack([np.ones(len(X)), X])


def linear_closed_form(X, y) -> np.ndarray:
    """Least squares by the normal equation XᵀX w = Xᵀy, solved stably.

    Returns ``w`` with the intercept first. Solving the normal equation by inverting XᵀX
    squares the condition number; a QR factorisation X = QR turns it into the triangular
    system R w = Qᵀy instead, with the conditioning of X itself. (``numpy.linalg.lstsq``,
    via the SVD, is the other stable route.)

    >>> linear_closed_form([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0]).round(10).tolist()
    [1.0, 2.0]
    """
    A = _with_intercept(X)
    q, r = np.linalg.qr(A)
    return np.linalg.solve(r, q.T @ np.asarray(y, dtype=np.float64))


def linear_gradient_descent(X, y, *, tol=1e-12, max_iter=200_000):
    """Least squares by batch gradient descent on L(w) = ||Xw - y||² / (2n).

    The gradient is ∇L = Xᵀ(Xw - y)/n. Features are standardized first (gradient descent
    crawls along badly scaled directions), and the step is 1/λ_max(XᵀX/n), the largest
    step that cannot diverge on this quadratic. Stops when ||∇L|| < ``tol``. Returns
    ``w`` in the original units, intercept first.

    >>> linear_gradient_descent([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0]).round(8).tolist()
    [1.0, 2.0]
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sd[sd == 0] = 1.0
    A = _with_intercept((X - mu) / sd)
    n = len(A)
    step = 1.0 / np.linalg.eigvalsh(A.T @ A / n).max()
    w = np.zeros(A.shape[1])
    for _ in range(max_iter):
        grad = A.T @ (A @ w - y) / n
        if np.linalg.norm(grad) < tol:
            break
        w -= step * grad
    coef = w[1:] / sd
    return np.concatenate([[w[0] - coef @ mu], coef])
