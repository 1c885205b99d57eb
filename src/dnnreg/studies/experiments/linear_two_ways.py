"""Linear regression two ways, and a network that is secretly one: the normal equation
θ = (XᵀX)⁻¹Xᵀy and batch gradient descent on the mean squared error reach the same
coefficients, and a DNN whose activations are the identity is an affine map, so it can
only learn that same line.

Gradient descent runs on standardised features at the step 1/L, L the largest eigenvalue
of XᵀX/n (the gradient's Lipschitz constant): the fastest step that provably converges.
Its error then shrinks by (1 - λ_min/λ_max) per step, so the condition number of XᵀX sets
the number of steps."""

from __future__ import annotations

import numpy as np

CLAIM = (
    "On a real table, the normal equation and batch gradient descent give the same "
    "linear-regression coefficients, and an identity-activation DNN collapses to that line."
)


def _data():
    from dnnreg.tables.datasets import load_concrete

    X, y = load_concrete(return_X_y=True)
    X = np.asarray(X, dtype=np.float64)
    Z = (X - X.mean(0)) / X.std(0)
    return X, Z, np.asarray(y, dtype=np.float64), list(load_concrete(return_X_y=True)[0].columns)


def measure(*, quick: bool, seeds: int) -> dict:
    X, Z, y, names = _data()
    n = len(y)
    A = np.column_stack([np.ones(n), Z])  # intercept first
    normal = np.linalg.solve(A.T @ A, A.T @ y)
    eig = np.linalg.eigvalsh(A.T @ A / n)
    step = 1.0 / eig[-1]
    theta = np.zeros(A.shape[1])
    losses, steps = [], 0
    limit = 20_000 if quick else 200_000
    while steps < limit:
        grad = A.T @ (A @ theta - y) / n
        theta -= step * grad
        steps += 1
        if steps % 10 == 0 or steps < 10:
            losses.append([steps, float(np.mean((A @ theta - y) ** 2))])
        if np.max(np.abs(theta - normal)) < 1e-6:
            break
    gap = float(np.max(np.abs(theta - normal)))
    dnn = _identity_dnn(X, y, quick)
    affine = np.linalg.lstsq(A, dnn, rcond=None)[0]
    residual = dnn - A @ affine
    affine_r2 = float(1 - residual.var() / dnn.var())
    closed_mse = float(np.mean((A @ normal - y) ** 2))
    dnn_mse = float(np.mean((dnn - y) ** 2))
    holds = gap < 1e-4 and affine_r2 > 0.99999 and dnn_mse < 1.05 * closed_mse
    verdict = (
        f"{'Holds' if holds else 'Does not hold'}. On concrete (1,030 rows, 8 standardised "
        f"features), gradient descent at step 1/L = {step:.3f} reached the normal equation's "
        f"coefficients to {gap:.1e} in {steps} steps (condition number "
        f"{eig[-1] / eig[0]:.0f}); training MSE {closed_mse:.2f} for both. A 2x32 network with "
        f"identity activations is affine: a line explains its predictions with R² "
        f"{affine_r2:.6f}, and its training MSE is {dnn_mse:.2f} against the line's "
        f"{closed_mse:.2f}, however many layers it stacks."
    )
    return {
        "status": "holds" if holds else "does not hold",
        "verdict": verdict,
        "numbers": {
            "max_coefficient_gap": gap,
            "steps": steps,
            "step_size": step,
            "condition_number": float(eig[-1] / eig[0]),
            "closed_form_mse": closed_mse,
            "dnn_affine_r2": affine_r2,
            "dnn_mse": dnn_mse,
        },
        "coefficients": {
            "names": ["intercept", *names],
            "normal_equation": normal.tolist(),
            "gradient_descent": theta.tolist(),
            "identity_dnn": affine.tolist(),
        },
        "losses": losses,
    }


def _identity_dnn(X, y, quick: bool):
    from dnnreg.estimators.regressor import DNNRegressor

    model = DNNRegressor(
        hidden_layer_sizes=(32, 32),
        activation="identity",
        numeric_scaling="standard",
        numeric_embedding="none",
        dropout=0.0,
        n_ensemble=1,
        bagging=False,
        early_stopping=False,
        weight_decay=0.0,
        max_iter=150 if quick else 400,
        random_state=0,
    )
    return model.fit(X, y).predict(X)


def figure(result: dict, path) -> None:
    from dnnreg.report.plots import _save, _subplots

    fig, (left, right) = _subplots(1, 2, figsize=(10, 4))
    steps, loss = zip(*result["losses"])
    left.plot(steps, loss, label="gradient descent")
    left.axhline(result["numbers"]["closed_form_mse"], color="k", ls="--", label="normal equation")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("step")
    left.set_ylabel("training MSE")
    left.legend()
    c = result["coefficients"]
    idx = np.arange(len(c["names"]))
    for k, (key, label) in enumerate(
        [("normal_equation", "normal eq."), ("gradient_descent", "grad. descent"),
         ("identity_dnn", "identity DNN")]
    ):  # fmt: skip
        right.bar(idx + (k - 1) * 0.27, c[key], width=0.27, label=label)
    right.set_xticks(idx)
    right.set_xticklabels(c["names"], rotation=60, ha="right", fontsize=7)
    right.set_ylabel("coefficient (standardised features)")
    right.legend(fontsize=8)
    fig.suptitle("Linear regression two ways, and a network of identities")
    _save(fig, path)
