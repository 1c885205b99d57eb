"""Calibrated intervals: coverage and width of ``predict_interval(coverage=0.9)`` against
MAPIE's split-conformal wrapper around the same network, over random splits.

Per table and split (60 % train, 40 % test, seeds 0..S-1), each on the same rows:

- **dnnreg CV+** — the defaults' bagging (every member holds out its own fold), so every
  training row calibrates and no row is spent on calibration only;
- **dnnreg CQR** — the same, ``loss="quantile"`` with levels (0.05, 0.5, 0.95):
  conformalised quantile regression, wide where the noise is;
- **dnnreg split** — ``bagging=False``: split conformal on the fit's own validation rows
  (10 % of the training rows, which early stopping also watched);
- **MAPIE split** — ``mapie.regression.SplitConformalRegressor(prefit=True)`` around a
  ``DNNRegressor(bagging=False)`` fitted on 80 % of the training rows, conformalised on the
  other 20 % (MAPIE's recommended use: a calibration set the model never saw).

The network is smaller than the defaults (4 members of 2 x 128, at most 60 epochs) so that
the 4 x S fits per table fit in minutes on 2 cores; conformal coverage does not depend on
the model's quality, only the width does, and every row compares the same network.

Run: ``.venv/bin/python bench/intervals.py [--splits 20]``.
Results: results/intervals.{json,md}.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from _common import write
from dnnreg import DNNRegressor
from dnnreg.tables.datasets import load_concrete, load_yacht_hydrodynamics

COVERAGE = 0.9
NETWORK = dict(hidden_layer_sizes=(128, 128), n_ensemble=4, max_iter=60)


def heteroscedastic(n=1500, seed=0):
    """y = x0 + sin(3 x1) + noise of spread 0.1 + |x0|: the case adaptive scores are for."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, size=(n, 4))
    y = X[:, 0] + np.sin(3 * X[:, 1]) + (0.1 + np.abs(X[:, 0])) * rng.normal(size=n)
    return pd.DataFrame(X, columns=list("abcd")), y


TABLES = {
    "concrete": lambda: load_concrete(return_X_y=True),
    "yacht": lambda: load_yacht_hydrodynamics(return_X_y=True),
    "heteroscedastic": heteroscedastic,
}


def _dnnreg(seed, **kw):
    def run(X_tr, y_tr, X_te):
        model = DNNRegressor(**NETWORK, random_state=seed, **kw).fit(X_tr, y_tr)
        return model.predict_interval(X_te, COVERAGE)

    return run


def _mapie(seed):
    from mapie.regression import SplitConformalRegressor

    def run(X_tr, y_tr, X_te):
        X_fit, X_cal, y_fit, y_cal = train_test_split(X_tr, y_tr, test_size=0.2, random_state=seed)
        model = DNNRegressor(**NETWORK, random_state=seed, bagging=False).fit(X_fit, y_fit)
        mapie = SplitConformalRegressor(model, confidence_level=COVERAGE, prefit=True)
        mapie.conformalize(X_cal, y_cal)
        _, bounds = mapie.predict_interval(X_te)
        return bounds[:, 0, 0], bounds[:, 1, 0]

    return run


METHODS = {
    "dnnreg CV+": lambda seed: _dnnreg(seed),
    "dnnreg CQR": lambda seed: _dnnreg(seed, loss="quantile", quantiles=(0.05, 0.5, 0.95)),
    "dnnreg split": lambda seed: _dnnreg(seed, bagging=False),
    "MAPIE split": _mapie,
}


def run(splits: int) -> list[dict]:
    rows = []
    for table, load in TABLES.items():
        X, y = load()
        y = np.asarray(y, dtype=float)
        for split in range(splits):
            X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.4, random_state=split)
            for method, make in METHODS.items():
                start = time.perf_counter()
                lower, upper = make(split)(X_tr, y_tr, X_te)
                rows.append(
                    {
                        "table": table,
                        "split": split,
                        "method": method,
                        "coverage": float(np.mean((y_te >= lower) & (y_te <= upper))),
                        "width": float(np.mean(upper - lower)),
                        "seconds": time.perf_counter() - start,
                    }
                )
                print(rows[-1], flush=True)
    return rows


def table_md(rows: list[dict], command: str) -> str:
    frame = pd.DataFrame(rows)
    mapie = frame[frame.method == "MAPIE split"].set_index(["table", "split"])["width"]
    frame["width_vs_mapie"] = [
        w / mapie[(t, s)] for t, s, w in zip(frame.table, frame.split, frame.width)
    ]
    lines = [
        f"Nominal coverage {COVERAGE}; per table, over {frame.split.nunique()} random 60/40 "
        "splits: mean coverage [lowest split], mean interval width, and the width relative to "
        "MAPIE split conformal on the same split (geometric mean).",
        "",
        "| table | " + " | ".join(METHODS) + " |",
        "|---|" + "---|" * len(METHODS),
    ]
    for table in TABLES:
        cells = []
        for method in METHODS:
            part = frame[(frame.table == table) & (frame.method == method)]
            ratio = float(np.exp(np.log(part.width_vs_mapie).mean()))
            cells.append(
                f"{part.coverage.mean():.3f} [{part.coverage.min():.3f}]; width "
                f"{part.width.mean():.4g} ({ratio:.2f}x)"
            )
        lines.append(f"| {table} | " + " | ".join(cells) + " |")
    lines += ["", f"Reproduce: `{command}`"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=20)
    args = parser.parse_args(argv)
    command = "python bench/intervals.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    rows = run(args.splits)
    write(
        "intervals", {"command": command, "network": NETWORK, "rows": rows}, table_md(rows, command)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
