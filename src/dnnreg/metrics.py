"""Regression and classification metrics in plain NumPy (no torch), used by early
stopping, training reports and the CLI."""

from __future__ import annotations

import numpy as np


def _mean(values, sample_weight=None) -> float:
    """The mean, or the ``sample_weight``-weighted mean (``None``: every row weighs 1)."""
    return float(np.average(values, weights=sample_weight))


def rmse(y_true, y_pred, sample_weight=None) -> float:
    """Root mean squared error, in the target's units (weighted: ``√(Σ wᵢdᵢ² / Σ wᵢ)``).

    >>> rmse([0.0, 0.0], [3.0, 4.0])
    3.5355339059327378
    """
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.sqrt(_mean(d * d, sample_weight)))


def mae(y_true, y_pred, sample_weight=None) -> float:
    """Mean absolute error.

    >>> mae([0.0, 0.0], [3.0, -4.0])
    3.5
    """
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return _mean(np.abs(d), sample_weight)


def r2(y_true, y_pred, sample_weight=None) -> float:
    """Coefficient of determination, 1 - SS_res / SS_tot (1 is perfect, 0 is the mean);
    weighted, both sums and the mean carry the weights.

    >>> r2([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    """
    y = np.asarray(y_true, dtype=np.float64)
    w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, np.float64)
    d = y - np.asarray(y_pred, dtype=np.float64)
    ss_res = float(np.sum(w * d * d))
    ss_tot = float(np.sum(w * (y - np.average(y, weights=w)) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """``{"rmse", "mae", "r2", "n"}`` for one split."""
    return {
        "rmse": rmse(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "r2": r2(y_true, y_pred),
        "n": int(np.asarray(y_true).shape[0]),
    }


class RunningMoments:
    """Count, mean, spread and range of values that arrive in chunks, merged chunk by
    chunk with Chan, Golub & LeVeque's pairwise update (float64): equal to the one-array
    numbers up to rounding, in constant memory.

    >>> m = RunningMoments()
    >>> m.add([1.0, 2.0]); m.add([6.0])
    >>> m.n, m.mean, m.std, (m.low, m.high)
    (3, 3.0, 2.160246899469287, (1.0, 6.0))
    """

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0  # m2: sum of squared deviations
        self.low, self.high = np.inf, -np.inf

    @property
    def std(self) -> float:
        """The population standard deviation (ddof 0); 0 before any value."""
        return float(np.sqrt(self.m2 / self.n)) if self.n else 0.0

    def add(self, values) -> None:
        v = np.asarray(values, dtype=np.float64)
        if v.size == 0:
            return
        n, mean = v.size, float(v.mean())
        total = self.n + n
        delta = mean - self.mean
        self.m2 += float(((v - mean) ** 2).sum()) + delta**2 * self.n * n / total
        self.mean += delta * n / total
        self.n = total
        self.low, self.high = min(self.low, float(v.min())), max(self.high, float(v.max()))


class RunningRegressionMetrics:
    """:func:`regression_metrics` over chunks that never sit in memory together: sums of
    squared and absolute errors, and the target's spread as :class:`RunningMoments`, so
    the result equals the one-array metrics up to rounding.

    >>> m = RunningRegressionMetrics()
    >>> m.add([1.0, 2.0], [1.5, 2.0]); m.add([3.0], [2.0])
    >>> whole = regression_metrics([1.0, 2.0, 3.0], [1.5, 2.0, 2.0])
    >>> all(abs(v - whole[k]) < 1e-12 for k, v in m.result().items())
    True
    """

    def __init__(self):
        self.sse, self.sae, self.target = 0.0, 0.0, RunningMoments()

    def add(self, y_true, y_pred) -> None:
        y = np.asarray(y_true, dtype=np.float64)
        d = y - np.asarray(y_pred, dtype=np.float64)
        self.sse += float(d @ d)
        self.sae += float(np.abs(d).sum())
        self.target.add(y)

    def result(self) -> dict[str, float]:
        n, ss_tot = self.target.n, self.target.m2
        if ss_tot == 0.0:
            r2_value = 1.0 if self.sse == 0.0 else 0.0
        else:
            r2_value = 1.0 - self.sse / ss_tot
        return {
            "rmse": float(np.sqrt(self.sse / n)),
            "mae": self.sae / n,
            "r2": r2_value,
            "n": int(n),
        }


# ---------------------------------------------------------------------- classification
class RunningClassificationMetrics:
    """:func:`classification_metrics`' accuracy and log loss over chunks that never sit in
    memory together (both are means of per-row terms, so the sums are exact); ROC AUC
    needs every score at once and is left out. ``classes`` are the model's, in the order
    of ``proba``'s columns; a label outside them makes the log loss NaN, as in
    :func:`score_model`.

    >>> m = RunningClassificationMetrics(np.array(["a", "b"]))
    >>> m.add(["a", "b"], [[0.9, 0.1], [0.4, 0.6]]); m.add(["b"], [[0.7, 0.3]])
    >>> whole = classification_metrics([0, 1, 1], [[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])
    >>> all(abs(v - whole[k]) < 1e-12 for k, v in m.result().items())
    True
    """

    def __init__(self, classes):
        self.classes = np.asarray(classes)
        self.n, self.hits, self.nll, self.unseen = 0, 0, 0.0, False

    def add(self, y_true, proba) -> None:
        y, p = np.asarray(y_true), np.asarray(proba, dtype=np.float64)
        known = np.isin(y, self.classes)
        self.unseen = self.unseen or not known.all()
        self.hits += int((self.classes[p.argmax(axis=1)] == y).sum())
        if known.any():
            index = class_index(self.classes, y[known])
            self.nll += log_loss(index, p[known]) * int(known.sum())
        self.n += len(y)

    def result(self) -> dict[str, float]:
        return {
            "accuracy": self.hits / self.n,
            "log_loss": float("nan") if self.unseen else self.nll / self.n,
            "n": int(self.n),
        }


def accuracy(y_true, y_pred, sample_weight=None) -> float:
    """Fraction of labels predicted exactly (of the weight, when weighted).

    >>> accuracy([0, 1, 1, 2], [0, 1, 2, 2])
    0.75
    """
    return _mean(np.asarray(y_true) == np.asarray(y_pred), sample_weight)


def class_index(classes, y) -> np.ndarray:
    """Each label's position in the sorted ``classes``; a label not among them raises.

    >>> class_index(np.array(["a", "b", "c"]), ["c", "a"]).tolist()
    [2, 0]
    """
    y = np.asarray(y)
    index = np.searchsorted(classes, y)
    unknown = (index >= len(classes)) | (classes[np.minimum(index, len(classes) - 1)] != y)
    if unknown.any():
        raise ValueError(
            f"the labels hold classes the model was not trained on "
            f"({sorted(set(y[unknown].tolist()))[:5]}); use rows whose label is "
            "among the training classes"
        )
    return index.astype(np.int64)


def log_loss(y_index, proba, sample_weight=None, *, eps: float = 1e-15) -> float:
    """Mean negative log-probability of the true class (cross-entropy), in nats.
    ``y_index``: class indices 0..C-1; ``proba``: (n, C), clipped to [eps, 1] first.

    >>> round(log_loss([0, 1], [[0.5, 0.5], [0.2, 0.8]]), 6)  # (ln 2 + ln 1.25) / 2
    0.458145
    """
    p = np.asarray(proba, dtype=np.float64)
    rows = np.arange(p.shape[0])
    return -_mean(np.log(np.clip(p[rows, np.asarray(y_index)], eps, 1.0)), sample_weight)


def roc_auc(y_index, proba, sample_weight=None) -> float:
    """Area under the ROC curve of the positive class (binary problems only)."""
    from sklearn.metrics import roc_auc_score

    return float(
        roc_auc_score(np.asarray(y_index), np.asarray(proba)[:, 1], sample_weight=sample_weight)
    )


def classification_metrics(y_index, proba) -> dict[str, float]:
    """``{"accuracy", "log_loss", "n"}`` (plus ``"roc_auc"`` for two classes) for one split;
    ``y_index`` holds class indices, ``proba`` is (n, C)."""
    proba = np.asarray(proba)
    out = {
        "accuracy": accuracy(y_index, proba.argmax(axis=1)),
        "log_loss": log_loss(y_index, proba),
        "n": int(proba.shape[0]),
    }
    if proba.shape[1] == 2 and len(np.unique(y_index)) == 2:
        out["roc_auc"] = roc_auc(y_index, proba)
    return out


def score_model(model, X, y) -> dict[str, float]:
    """The metrics of a fitted model on labelled rows, the one place they are computed:
    :func:`regression_metrics` of ``predict``, or for a model with ``classes_``
    :func:`classification_metrics` of ``predict_proba`` (``log_loss`` is NaN when ``y``
    holds a class the model never saw). Any estimator with that interface works."""
    if not hasattr(model, "classes_"):
        return regression_metrics(y, model.predict(X))
    classes, y = np.asarray(model.classes_), np.asarray(y)
    proba = np.asarray(model.predict_proba(X))
    if np.isin(y, classes).all():
        return classification_metrics(class_index(classes, y), proba)
    pred = classes[proba.argmax(axis=1)]
    return {"accuracy": accuracy(y, pred), "log_loss": float("nan"), "n": int(len(y))}


# name -> (function(y_true, prediction), larger is better). Early stopping can watch any.
REGRESSION_METRICS = {"rmse": (rmse, False), "mae": (mae, False), "r2": (r2, True)}
CLASSIFICATION_METRICS = {
    "accuracy": (lambda y, p, w=None: accuracy(y, np.argmax(p, axis=1), w), True),
    "log_loss": (log_loss, False),
    "roc_auc": (roc_auc, True),
}
