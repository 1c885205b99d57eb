"""Regression metrics in plain NumPy (no torch), used by training reports and the CLI."""

from __future__ import annotations

import numpy as np


def rmse(y_true, y_pred) -> float:
    """Root mean squared error, in the target's units.

    >>> rmse([0.0, 0.0], [3.0, 4.0])
    3.5355339059327378
    """
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error.

    >>> mae([0.0, 0.0], [3.0, -4.0])
    3.5
    """
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.mean(np.abs(d)))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination, 1 - SS_res / SS_tot (1 is perfect, 0 is the mean).

    >>> r2([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    """
    y = np.asarray(y_true, dtype=np.float64)
    d = y - np.asarray(y_pred, dtype=np.float64)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if float(np.sum(d * d)) == 0.0 else 0.0
    return 1.0 - float(np.sum(d * d)) / ss_tot


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """``{"rmse", "mae", "r2", "n"}`` for one split."""
    return {"rmse": rmse(y_true, y_pred), "mae": mae(y_true, y_pred),
            "r2": r2(y_true, y_pred), "n": int(np.asarray(y_true).shape[0])}
