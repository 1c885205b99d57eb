"""The strongest tabular models a user could pick instead of dnnreg, each fitted as its
authors ship it, on exactly the rows dnnreg gets.

Every fitter takes ``(X, y, tr, va, seed, task)``: the whole table, the training and
validation row indices, a seed and ``"regression"`` or ``"classification"``. Models that
early-stop (RealMLP-TD, TabM-D, CatBoost-TD, CatBoost default, LightGBM early-stopped) do
so on the validation rows; LightGBM default trains on the training rows only, as its
default does. Each returns an object with ``predict`` (and ``predict_proba`` for
classification).

- **RealMLP-TD**, **TabM-D**, **CatBoost-TD** come from ``pytabkit`` (Holzmüller et al.
  2024, "Better by default"; TabM from Gorishniy et al. 2025), with their meta-tuned
  defaults. pytabkit runs on half the logical cores by default (one core here); every
  model here is given all ``os.cpu_count()`` cores, so that fit seconds compare engines,
  not thread counts.
- **CatBoost default**: ``catboost`` with no parameter set but the seed, the categorical
  columns and the validation rows as its ``eval_set`` (it then keeps the best iteration).
- **LightGBM default** / **LightGBM early stopping**: as before (100 trees; 2,000 trees at
  rate 0.05 with 100 rounds of patience).

pytabkit, catboost and lightgbm are the ``bench`` extra; a fitter whose package is
missing raises ``ImportError`` and the benchmark skips that model, saying so.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

THREADS = os.cpu_count() or 1


def categorical_columns(X: pd.DataFrame) -> list[str]:
    """Columns that are not numeric: what every peer is told is categorical."""
    return [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]


def as_categories(X: pd.DataFrame) -> pd.DataFrame:
    """Non-numeric columns as pandas ``category`` (missing values stay missing), the form
    pytabkit and LightGBM detect categoricals by."""
    cats = categorical_columns(X)
    return X.astype({c: "category" for c in cats}) if cats else X


def as_strings(X: pd.DataFrame) -> pd.DataFrame:
    """Non-numeric columns as strings, missing as ``"nan"``: CatBoost refuses NaN in a
    categorical column."""
    cats = categorical_columns(X)
    return X.assign(**{c: X[c].astype(str) for c in cats}) if cats else X


class _Wrapped:
    """A fitted model behind the input transform it was fitted on."""

    def __init__(self, est, transform):
        self.est, self.transform = est, transform
        self.classes_ = getattr(est, "classes_", None)

    def predict(self, X):
        return np.asarray(self.est.predict(self.transform(X))).reshape(len(X), -1).squeeze(1)

    def predict_proba(self, X):
        return np.asarray(self.est.predict_proba(self.transform(X)))


def _pytabkit(name: str):
    def fit(X, y, tr, va, seed, task):
        from pytabkit.models.sklearn import sklearn_interfaces as skl

        kind = "Regressor" if task == "regression" else "Classifier"
        est = getattr(skl, f"{name}_{kind}")(
            random_state=seed, n_threads=THREADS, device="cpu", verbosity=0
        )
        Xc = as_categories(X)
        est.fit(Xc.iloc[tr], y.iloc[tr], X_val=Xc.iloc[va], y_val=y.iloc[va])
        return _Wrapped(est, as_categories)

    fit.__doc__ = f"pytabkit's {name} with its defaults, early-stopped on the validation rows."
    return fit


fit_realmlp_td = _pytabkit("RealMLP_TD")
fit_tabm_d = _pytabkit("TabM_D")
fit_catboost_td = _pytabkit("CatBoost_TD")


def fit_catboost(X, y, tr, va, seed, task):
    """CatBoost's own defaults (1,000 trees, rate chosen by CatBoost), the best iteration
    on the validation rows kept."""
    import catboost

    kind = catboost.CatBoostRegressor if task == "regression" else catboost.CatBoostClassifier
    est = kind(random_seed=seed, verbose=0, thread_count=THREADS, allow_writing_files=False)
    Xs = as_strings(X)
    est.fit(
        Xs.iloc[tr],
        y.iloc[tr],
        cat_features=categorical_columns(X),
        eval_set=(Xs.iloc[va], y.iloc[va]),
    )
    return _Wrapped(est, as_strings)


def fit_lightgbm(X, y, tr, va, seed, task):
    """LightGBM's defaults (100 trees), on the training rows only."""
    import lightgbm

    kind = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
    est = kind(random_state=seed, verbose=-1, n_jobs=THREADS)
    est.fit(as_categories(X).iloc[tr], y.iloc[tr])
    return _Wrapped(est, as_categories)


def fit_lightgbm_early_stopping(X, y, tr, va, seed, task):
    """LightGBM with up to 2,000 trees at rate 0.05, stopped by the validation rows after
    100 rounds without improvement."""
    import lightgbm

    kind = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
    est = kind(n_estimators=2000, learning_rate=0.05, random_state=seed, verbose=-1, n_jobs=THREADS)
    Xc = as_categories(X)
    est.fit(
        Xc.iloc[tr],
        y.iloc[tr],
        eval_set=[(Xc.iloc[va], y.iloc[va])],
        callbacks=[lightgbm.early_stopping(100, verbose=False)],
    )
    return _Wrapped(est, as_categories)


PEERS = {
    "RealMLP-TD": fit_realmlp_td,
    "TabM-D": fit_tabm_d,
    "CatBoost-TD": fit_catboost_td,
    "CatBoost default": fit_catboost,
    "LightGBM default": fit_lightgbm,
    "LightGBM early stopping": fit_lightgbm_early_stopping,
}


def versions() -> dict:
    """The peers' package versions, recorded with every result."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("pytabkit", "catboost", "lightgbm"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out
