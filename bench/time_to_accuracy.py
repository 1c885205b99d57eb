"""Time to accuracy: seconds until each model first reaches the test RMSE of LightGBM
early-stopped (the target), on the rows and protocol of bench/accuracy.py (seed 0).

How each model's time is found, since only some of them expose an anytime curve:

- **dnnreg defaults**: one fit with a callback that scores the test rows after every epoch;
  an epoch's time is the loop's clock minus the callback's own time, plus the fit's fixed
  costs (preprocessing, set-up). The curve is the current weights' test RMSE, i.e. what
  stopping there would give under the schedule planned for the whole fit (one-cycle anneals
  late, so this understates what a fit planned to be short could do).
- **scikit-learn MLP** (3x256, adam, batch 256, standardised inputs): ``partial_fit`` one
  epoch at a time, the test rows scored between epochs (not timed).
- **RealMLP-TD** (``n_epochs``) and **CatBoost-TD** (``n_estimators``): a ladder of budgets,
  each a separate fit with everything else at the defaults; the time is the cheapest rung
  that reaches the target. RealMLP-TD's ladder is skipped above ``--max-realmlp-rows``
  (one full fit of California is 6-7 minutes here). TabM-D is not timed (3.5 minutes for a
  1,000-row table).
- **LightGBM early-stopped**: its own fit time (it defines the target).

Run: ``.venv/bin/python bench/time_to_accuracy.py [--datasets concrete,wine_quality]``.
Results: results/time_to_accuracy.{json,md}.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings

import numpy as np

import accuracy
from _common import load_table, write
from dnnreg import DNNRegressor
from dnnreg.tables.splits import train_val_test_indices
from peers import PEERS

REALMLP_EPOCHS = (8, 16, 32, 64, 128, 256)
CATBOOST_TREES = (32, 64, 128, 256, 512, 1024, 2048)


def _rmse(model, X, y) -> float:
    return float(np.sqrt(np.mean((np.asarray(model.predict(X)) - y) ** 2)))


class TestCurve:
    """Callback: test RMSE after every epoch, and the seconds the scoring took."""

    def __init__(self, model, X_te, y_te):
        self.model, self.X_te, self.y_te = model, X_te, y_te
        self.points, self.spent = [], 0.0

    def on_epoch_end(self, record, net):
        start = time.perf_counter()
        rmse = _rmse(self.model, self.X_te, self.y_te)
        # the loop's clock includes the scoring of earlier epochs: take it out
        self.points.append((record["seconds"] - self.spent, rmse))
        self.spent += time.perf_counter() - start


def dnnreg_curve(X, y, tr, va, te):
    rows = np.concatenate([tr, va])
    model = DNNRegressor(random_state=0)
    curve = TestCurve(model, X.iloc[te], y.iloc[te].to_numpy())
    start = time.perf_counter()
    model.fit(X.iloc[rows], y.iloc[rows], callbacks=[curve])
    total = time.perf_counter() - start - curve.spent
    fixed = total - curve.points[-1][0]  # preprocessing and set-up, before the first epoch
    return [(fixed + s, r) for s, r in curve.points], total


def sklearn_curve(X, y, tr, va, te, epochs=200):
    from sklearn.neural_network import MLPRegressor

    from dnnreg.tables.preprocessing import TablePreprocessor, as_frame

    rows = np.concatenate([tr, va])
    start = time.perf_counter()
    pre = TablePreprocessor(numeric_scaling="standard").fit(as_frame(X.iloc[rows]))
    encode = lambda f: pre.transform(as_frame(f)).numeric.astype(np.float64)  # noqa: E731
    X_fit, y_fit = encode(X.iloc[rows]), y.iloc[rows].to_numpy()
    spent = time.perf_counter()
    X_te, y_te = encode(X.iloc[te]), y.iloc[te].to_numpy()  # scoring: not timed
    spent = time.perf_counter() - spent
    net = MLPRegressor(hidden_layer_sizes=(256, 256, 256), batch_size=256, random_state=0)
    points = []
    for _ in range(epochs):
        net.partial_fit(X_fit, y_fit)
        t = time.perf_counter()
        points.append((t - start - spent, float(np.sqrt(np.mean((net.predict(X_te) - y_te) ** 2)))))
        spent += time.perf_counter() - t
    return points, points[-1][0]


def ladder_curve(fit, budgets):
    """``fit(budget) -> (model seconds, rmse)`` for each budget: the curve of separate fits."""
    points = []
    for b in budgets:
        seconds, rmse = fit(b)
        points.append((seconds, rmse, b))
    return points


def pytabkit_fit(model: str, budget: str, X, y, tr, va, te, **fixed):
    """``fit(b) -> (seconds, test RMSE)`` of pytabkit's ``model`` with ``budget=b`` and its
    other defaults, on the benchmark's rows."""
    from pytabkit.models.sklearn import sklearn_interfaces as skl

    from peers import THREADS, as_categories

    Xc = as_categories(X)

    def fit(b):
        est = getattr(skl, model)(
            random_state=0, n_threads=THREADS, verbosity=0, **fixed, **{budget: b}
        )
        start = time.perf_counter()
        est.fit(Xc.iloc[tr], y.iloc[tr], X_val=Xc.iloc[va], y_val=y.iloc[va])
        seconds = time.perf_counter() - start
        pred = np.asarray(est.predict(Xc.iloc[te])).reshape(-1)
        return seconds, float(np.sqrt(np.mean((pred - y.iloc[te].to_numpy()) ** 2)))

    return fit


def first_reach(points, target):
    """Seconds of the first point at or below ``target`` (None if never), the best RMSE."""
    reached = [p[0] for p in points if p[1] <= target]
    return (reached[0] if reached else None), min(p[1] for p in points)


def run_table(name, max_realmlp_rows):
    X, y = load_table(name, accuracy.DATASETS[name])
    X, y = X.reset_index(drop=True), y.reset_index(drop=True)
    tr, va, te = train_val_test_indices(len(X), seed=0)
    start = time.perf_counter()
    lgbm = PEERS["LightGBM early stopping"](X, y, tr, va, 0, "regression")
    lgbm_seconds = time.perf_counter() - start
    target = _rmse(lgbm, X.iloc[te], y.iloc[te].to_numpy())
    out = {"target_rmse": target, "n_train": len(tr), "models": {}}
    out["models"]["LightGBM early stopping"] = {"seconds": lgbm_seconds, "best": target}
    curves = {"dnnreg defaults": dnnreg_curve(X, y, tr, va, te)[0]}
    curves["scikit-learn MLP"] = sklearn_curve(X, y, tr, va, te)[0]
    catboost = pytabkit_fit("CatBoost_TD_Regressor", "n_estimators", X, y, tr, va, te)
    curves["CatBoost-TD"] = ladder_curve(catboost, CATBOOST_TREES)
    if len(X) <= max_realmlp_rows:
        realmlp = pytabkit_fit("RealMLP_TD_Regressor", "n_epochs", X, y, tr, va, te, device="cpu")
        curves["RealMLP-TD"] = ladder_curve(realmlp, REALMLP_EPOCHS)
    for model, points in curves.items():
        seconds, best = first_reach(points, target)
        out["models"][model] = {"seconds": seconds, "best": best, "curve": points}
        print(name, model, seconds, best, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="concrete,wine_quality,california_housing")
    parser.add_argument("--max-realmlp-rows", type=int, default=10_000)
    args = parser.parse_args()
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in args.datasets.split(","):
            results[name] = run_table(name, args.max_realmlp_rows)
    models = ["dnnreg defaults", "RealMLP-TD", "CatBoost-TD", "scikit-learn MLP"]
    lines = [
        "| table (training rows) | target: LightGBM ES test RMSE (its fit s) | "
        + " | ".join(models)
        + " |",
        "|---|---|" + "---|" * len(models),
    ]
    for name, r in results.items():
        lgbm = r["models"]["LightGBM early stopping"]
        cells = []
        for m in models:
            if m not in r["models"]:
                cells.append("not run")
                continue
            s, best = r["models"][m]["seconds"], r["models"][m]["best"]
            cells.append(f"{s:.1f} s" if s is not None else f"never (best {best:.4g})")
        lines.append(
            f"| {name} ({r['n_train']}) | {r['target_rmse']:.4g} ({lgbm['seconds']:.1f} s) | "
            + " | ".join(cells)
            + " |"
        )
    command = "python bench/time_to_accuracy.py " + shlex.join(sys.argv[1:])
    lines += [
        "",
        "Seconds until the model's test RMSE first reaches the target (seed 0, 64/16/20 "
        "split). dnnreg: its anytime curve within one default fit; RealMLP-TD and "
        "CatBoost-TD: the cheapest of a ladder of separate fits "
        f"(epochs {REALMLP_EPOCHS}, trees {CATBOOST_TREES}); scikit-learn MLP: epoch by "
        "epoch with partial_fit.",
        "",
        f"Reproduce: `{command}`",
    ]
    write("time_to_accuracy", {"command": command, "results": results}, "\n".join(lines))


if __name__ == "__main__":
    main()
