"""Shallow baselines that every deep result is shown beside.

``LinearBaseline`` is ordinary least squares on the same table a DNN sees: median
imputation with indicators, standard scaling, one-hot categoricals.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression

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
