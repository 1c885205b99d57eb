"""Depth against width at an equal parameter count: the course says depth represents
complex (compositional) functions with fewer parameters than width. Each network here has
one parameter budget; its width follows from its depth (1-8 hidden layers, ReLU), trained
alike (Adam, early stopping, one member, no embedding), on a generated compositional
target and on California housing (bundled)."""

from __future__ import annotations

import math
import warnings

import numpy as np

CLAIM = (
    "At an equal number of parameters, deeper networks fit compositional functions better "
    "than wide shallow ones."
)


def width_for(depth: int, d_in: int, budget: int) -> int:
    """The width w whose depth-layer network d_in -> w -> ... -> w -> 1 has about ``budget``
    parameters: (d_in + 1)w + (depth - 1)(w + 1)w + w + 1 = budget, solved for w.

    >>> width_for(1, 8, 1000)  # 10w + 1 = 1000
    99
    """
    a, b, c = depth - 1, d_in + 1 + (depth - 1) + 1, 1 - budget
    if a == 0:
        return max(1, int(-c / b))
    return max(1, int((-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)))


def parameters(depth: int, d_in: int, width: int) -> int:
    return (d_in + 1) * width + (depth - 1) * (width + 1) * width + width + 1


def _compositional(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 8))
    inner = X[:, 0] * X[:, 1] + X[:, 2] * X[:, 3] + X[:, 4] * X[:, 5] + X[:, 6] * X[:, 7]
    y = np.sin(3 * inner) + np.cos(2 * (X[:, 0] + X[:, 7]) * inner)  # functions of functions
    return X, y + 0.05 * rng.normal(size=n)


def _california(n: int, seed: int):
    from dnnreg.tables.datasets import load_dataset

    frame = load_dataset("california_housing")
    rows = np.random.default_rng(seed).permutation(len(frame))[:n]
    frame = frame.iloc[rows]
    return frame.drop(columns="MedHouseVal").to_numpy(float), frame["MedHouseVal"].to_numpy()


def _rmse(X, y, depth, width, quick, seed) -> float:
    from dnnreg.estimators.regressor import DNNRegressor
    from dnnreg.metrics import rmse

    half = len(y) * 3 // 4
    model = DNNRegressor(
        hidden_layer_sizes=(width,) * depth, n_ensemble=1, dropout=0.0, bagging=False,
        numeric_embedding="none", max_iter=80 if quick else 150, random_state=seed,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = model.fit(X[:half], y[:half]).predict(X[half:])
    return rmse(y[half:], pred)


def measure(*, quick: bool, seeds: int) -> dict:
    depths = (1, 2, 4, 8) if quick else (1, 2, 3, 4, 6, 8)
    budget = 3000 if quick else 20_000
    n = 3000 if quick else 8000
    tables = {"compositional": _compositional, "california": _california}
    results = {}
    for name, make in tables.items():
        rows = []
        for depth in depths:
            scores, params = [], None
            for seed in range(seeds):
                X, y = make(n, seed)
                width = width_for(depth, X.shape[1], budget)
                params = parameters(depth, X.shape[1], width)
                scores.append(_rmse(X, y, depth, width, quick, seed))
            rows.append({"depth": depth, "width": width, "parameters": params,
                         "test_rmse": float(np.mean(scores))})  # fmt: skip
        results[name] = rows
    comp = {r["depth"]: r["test_rmse"] for r in results["compositional"]}
    cal = {r["depth"]: r["test_rmse"] for r in results["california"]}
    best_comp = min(comp, key=comp.get)
    deeper_wins = comp[best_comp] < 0.9 * comp[1] and best_comp > 1
    cal_gain = 1 - min(cal.values()) / cal[1]
    if deeper_wins and cal_gain > 0.05:
        status, lead = "holds", "Holds."
    elif deeper_wins:
        status = "holds only when"
        lead = (
            "Holds only when the target is compositional: on California housing depth "
            f"bought {100 * cal_gain:.0f} % at most."
        )
    else:
        status, lead = "does not hold", "Does not hold here."
    show = lambda d: ", ".join(f"{k} layers {v:.3f}" for k, v in d.items())  # noqa: E731
    verdict = (
        f"{lead} At about {budget:,} parameters each, test RMSE on the compositional target: "
        f"{show(comp)} (best at depth {best_comp}); on California housing: {show(cal)}."
    )
    return {
        "status": status,
        "verdict": verdict,
        "numbers": {"budget": budget, "compositional": comp, "california": cal},
        "tables": results,
    }


def figure(result: dict, path) -> None:
    from dnnreg.report.plots import _save, _subplots

    fig, axes = _subplots(1, 2, figsize=(10, 4))
    for ax, (name, rows) in zip(axes, result["tables"].items()):
        ax.plot([r["depth"] for r in rows], [r["test_rmse"] for r in rows], "o-")
        for r in rows:
            ax.annotate(f"w={r['width']}", (r["depth"], r["test_rmse"]), fontsize=7,
                        textcoords="offset points", xytext=(3, 4))  # fmt: skip
        ax.set_xlabel("hidden layers (same parameter count)")
        ax.set_ylabel("test RMSE")
        ax.set_title(name, fontsize=9)
    fig.suptitle(f"Depth against width at about {result['numbers']['budget']:,} parameters")
    _save(fig, path)
