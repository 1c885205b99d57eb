"""y = 5x² defeats linear regression on x, which the feature z = x² repairs, while a DNN
learns the curve unaided; the same for a product of two features.

Linear regression fits a straight line: on x symmetric around 0, x and x² are
uncorrelated, so the best line is flat (R² ≈ 0). On z = x² the model is linear again and
least squares recovers the coefficients. A network with hidden units builds the feature
itself."""

from __future__ import annotations

import numpy as np

CLAIM = (
    "y = 5x² + noise defeats linear regression (R² ≈ 0) until the feature z = x² is added "
    "(then a ≈ 5, b ≈ 0), while a DNN learns it from x alone; likewise y = x1·x2."
)


def _r2(y, p) -> float:
    return float(1.0 - np.mean((y - p) ** 2) / np.var(y))


def _least_squares(X, y):
    A = np.column_stack([X, np.ones(len(X))])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    return coef  # slopes..., intercept


def _dnn(X, y, Xt, quick: bool, seed: int):
    from dnnreg.estimators.regressor import DNNRegressor

    model = DNNRegressor(
        hidden_layer_sizes=(64, 64), n_ensemble=2, max_iter=60 if quick else 200, random_state=seed
    )
    return model.fit(X, y).predict(Xt)


def _one(seed: int, quick: bool) -> dict:
    rng = np.random.default_rng(seed)
    n = 1000 if quick else 4000
    x = rng.uniform(-3, 3, size=(2 * n, 1))
    y = 5 * x[:, 0] ** 2 + rng.normal(size=2 * n)
    tr, te = slice(0, n), slice(n, None)
    line = _least_squares(x[tr], y[tr])
    on_z = _least_squares(x[tr] ** 2, y[tr])
    pred_line = np.column_stack([x[te], np.ones(n)]) @ line
    pred_z = np.column_stack([x[te] ** 2, np.ones(n)]) @ on_z
    square = {
        "linear_r2": _r2(y[te], pred_line),
        "z_r2": _r2(y[te], pred_z),
        "a": float(on_z[0]),
        "b": float(on_z[1]),
        "dnn_r2": _r2(y[te], _dnn(x[tr], y[tr], x[te], quick, seed)),
    }
    X2 = rng.uniform(-2, 2, size=(2 * n, 2))
    y2 = X2[:, 0] * X2[:, 1] + 0.1 * rng.normal(size=2 * n)
    plain = _least_squares(X2[tr], y2[tr])
    z2 = _least_squares((X2[tr, 0] * X2[tr, 1])[:, None], y2[tr])
    product = {
        "linear_r2": _r2(y2[te], np.column_stack([X2[te], np.ones(n)]) @ plain),
        "z_coefficient": float(z2[0]),
        "z_r2": _r2(y2[te], np.column_stack([X2[te, 0] * X2[te, 1], np.ones(n)]) @ z2),
        "dnn_r2": _r2(y2[te], _dnn(X2[tr], y2[tr], X2[te], quick, seed)),
    }
    curve = np.linspace(-3, 3, 61)[:, None]
    return {
        "square": square,
        "product": product,
        "curve": {
            "x": curve[:, 0].tolist(),
            "dnn": _dnn(x[tr], y[tr], curve, quick, seed).tolist(),
            "line": (np.column_stack([curve, np.ones(61)]) @ line).tolist(),
            "z": (np.column_stack([curve**2, np.ones(61)]) @ on_z).tolist(),
        },
        "sample": {"x": x[:300, 0].tolist(), "y": y[:300].tolist()},
    }


def measure(*, quick: bool, seeds: int) -> dict:
    runs = [_one(seed, quick) for seed in range(seeds)]
    mean = lambda part, key: float(np.mean([r[part][key] for r in runs]))  # noqa: E731
    sq = {k: mean("square", k) for k in runs[0]["square"]}
    pr = {k: mean("product", k) for k in runs[0]["product"]}
    holds = (
        sq["linear_r2"] < 0.05
        and abs(sq["a"] - 5) < 0.05
        and abs(sq["b"]) < 0.2
        and sq["dnn_r2"] > 0.95
        and pr["linear_r2"] < 0.05
        and pr["dnn_r2"] > 0.9
    )
    verdict = (
        f"{'Holds' if holds else 'Does not hold'}. On y = 5x² + noise, linear regression on x "
        f"scores test R² {sq['linear_r2']:.3f}; on z = x² it recovers a = {sq['a']:.3f}, "
        f"b = {sq['b']:.3f} (R² {sq['z_r2']:.3f}); the DNN, given only x, reaches R² "
        f"{sq['dnn_r2']:.3f}. On y = x1·x2, linear regression scores {pr['linear_r2']:.3f}, "
        f"on z = x1·x2 it finds the coefficient {pr['z_coefficient']:.3f} (R² {pr['z_r2']:.3f}), "
        f"and the DNN reaches {pr['dnn_r2']:.3f} from x1 and x2."
    )
    return {
        "status": "holds" if holds else "does not hold",
        "verdict": verdict,
        "numbers": {"square": sq, "product": pr},
        "runs": runs,
    }


def figure(result: dict, path) -> None:
    from dnnreg.report.plots import _save, _subplots

    run = result["runs"][0]
    fig, ax = _subplots(1, 1, figsize=(6, 4))
    ax.scatter(run["sample"]["x"], run["sample"]["y"], s=6, alpha=0.4, label="data", color="0.6")
    c = run["curve"]
    ax.plot(
        c["x"], c["line"], label=f"linear on x (R² {result['numbers']['square']['linear_r2']:.2f})"
    )
    ax.plot(c["x"], c["z"], label=f"linear on z = x² (a = {result['numbers']['square']['a']:.2f})")
    ax.plot(
        c["x"], c["dnn"], "--", label=f"DNN on x (R² {result['numbers']['square']['dnn_r2']:.2f})"
    )
    ax.set_xlabel("x")
    ax.set_ylabel("y = 5x² + noise")
    ax.set_title("Feature engineering: a line cannot bend, a network can")
    ax.legend(fontsize=8)
    _save(fig, path)
