"""Shallow baselines that every deep result is shown beside.

``LinearBaseline`` is ordinary least squares and ``LogisticBaseline`` (multinomial)
logistic regression, each on the same table a DNN sees: median imputation with
indicators, standard scaling, one-hot categoricals.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.linear_model import LinearRegression, LogisticRegression

from .preprocessing import TablePreprocessor


class LinearBaseline(RegressorMixin, BaseEstimator):
    """Least-squares linear regression with dnnreg's table preprocessing.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    >>> LinearBaseline().fit(X, 2 * X["a"] + 1).predict(X).round(6).tolist()
    [1.0, 3.0, 5.0, 7.0]
    """

    def fit(self, X, y):
        self.preprocessor_ = TablePreprocessor(numeric_scaling="standard").fit(X)
        self.linear_ = LinearRegression().fit(
            self.preprocessor_.transform(X).numeric.astype(np.float64), np.asarray(y, float))
        return self

    def predict(self, X):
        return self.linear_.predict(self.preprocessor_.transform(X).numeric.astype(np.float64))


class LogisticBaseline(ClassifierMixin, BaseEstimator):
    """L2-regularised (C=1) multinomial logistic regression with dnnreg's preprocessing.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    >>> LogisticBaseline().fit(X, ["no", "no", "yes", "yes"]).predict(X).tolist()
    ['no', 'no', 'yes', 'yes']
    """

    def fit(self, X, y):
        self.preprocessor_ = TablePreprocessor(numeric_scaling="standard").fit(X)
        self.logistic_ = LogisticRegression(max_iter=1000).fit(self._encode(X), np.asarray(y))
        self.classes_ = self.logistic_.classes_
        return self

    def _encode(self, X):
        return self.preprocessor_.transform(X).numeric.astype(np.float64)

    def predict_proba(self, X):
        return self.logistic_.predict_proba(self._encode(X))

    def predict(self, X):
        return self.logistic_.predict(self._encode(X))


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
