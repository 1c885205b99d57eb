"""Capacity: under- and over-fitting. A network too small for the function underfits
(training and test error both high); one large for its rows overfits (training error far
below test error); more rows close the gap. Measured on Friedman #1 (noise σ = 1, so an
RMSE of 1 is the floor) with one hidden layer of 2-512 units, no dropout, no weight decay,
no early stopping, trained to the end, on few rows and on many."""

from __future__ import annotations

import warnings

import numpy as np

CLAIM = (
    "A network too small underfits and one too large for its data overfits; more training "
    "rows shrink the gap between training and test error."
)


def _fit(width: int, rows: int, quick: bool, seed: int) -> dict:
    from sklearn.datasets import make_friedman1

    from dnnreg.estimators.regressor import DNNRegressor
    from dnnreg.metrics import rmse

    X, y = make_friedman1(n_samples=rows + 2000, noise=1.0, random_state=seed)
    model = DNNRegressor(
        hidden_layer_sizes=(width,), n_ensemble=1, dropout=0.0, weight_decay=0.0,
        numeric_embedding="none", bagging=False, early_stopping=False, lr_schedule="constant",
        learning_rate_init=3e-3, max_iter=150 if quick else 500, random_state=seed,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an open-ended schedule warns; here it is the design
        model.fit(X[:rows], y[:rows])
    return {
        "width": width,
        "rows": rows,
        "train_rmse": rmse(y[:rows], model.predict(X[:rows])),
        "test_rmse": rmse(y[rows:], model.predict(X[rows:])),
    }


def measure(*, quick: bool, seeds: int) -> dict:
    widths = (2, 16, 128, 512) if quick else (2, 4, 8, 16, 32, 64, 128, 256, 512)
    row_counts = (60, 600) if quick else (60, 250, 1000, 4000)
    grid = []
    for rows in row_counts:
        for width in widths:
            runs = [_fit(width, rows, quick, s) for s in range(seeds)]
            grid.append(
                {"width": width, "rows": rows}
                | {k: float(np.mean([r[k] for r in runs])) for k in ("train_rmse", "test_rmse")}
            )
    at = lambda w, n: next(g for g in grid if g["width"] == w and g["rows"] == n)  # noqa: E731
    few, many, small, large = row_counts[0], row_counts[-1], widths[0], widths[-1]
    under = at(small, many)
    over = at(large, few)
    gap = {n: at(large, n)["test_rmse"] - at(large, n)["train_rmse"] for n in row_counts}
    holds = (
        under["train_rmse"] > 1.5 and under["test_rmse"] > 1.5  # both above the noise floor
        and over["train_rmse"] < 0.6 * over["test_rmse"]
        and gap[many] < 0.5 * gap[few]
    )  # fmt: skip
    verdict = (
        f"{'Holds' if holds else 'Does not hold'}. With {small} hidden units and {many} rows "
        f"the network underfits: training RMSE {under['train_rmse']:.2f}, test "
        f"{under['test_rmse']:.2f} (the noise floor is 1.00). With {large} units and {few} "
        f"rows it overfits: training {over['train_rmse']:.2f} against test "
        f"{over['test_rmse']:.2f}. The {large}-unit network's test-minus-training gap is "
        + ", ".join(f"{gap[n]:.2f} at {n} rows" for n in row_counts)
        + "."
    )
    return {
        "status": "holds" if holds else "does not hold",
        "verdict": verdict,
        "numbers": {"underfit": under, "overfit": over, "gap_of_largest": gap},
        "grid": grid,
    }


def figure(result: dict, path) -> None:
    from dnnreg.report.plots import _save, _subplots

    rows = sorted({g["rows"] for g in result["grid"]})
    fig, axes = _subplots(1, len(rows), figsize=(4 * len(rows), 3.6))
    for ax, n in zip(np.atleast_1d(axes), rows):
        cells = sorted((g for g in result["grid"] if g["rows"] == n), key=lambda g: g["width"])
        widths = [g["width"] for g in cells]
        ax.plot(widths, [g["train_rmse"] for g in cells], "o-", label="training")
        ax.plot(widths, [g["test_rmse"] for g in cells], "o-", label="test")
        ax.axhline(1.0, color="0.6", lw=0.8, ls="--", label="noise floor")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("hidden units")
        ax.set_ylabel("RMSE")
        ax.set_title(f"{n} training rows", fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle("Capacity: under- and over-fitting on Friedman #1")
    _save(fig, path)
