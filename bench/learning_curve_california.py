"""Learning curves on California housing: test RMSE of linear regression, random forest,
LightGBM, k-NN and dnnreg against training rows (50, 100, ..., 16512), 3 repeats, and
the crossover size from which the DNN beats every shallow model.

Run: ``.venv/bin/python bench/learning_curve_california.py`` (the same as ``dnnreg
learning-curve california.csv --target MedHouseVal``). Results in
results/learning_curve_california.{json,md,png}.
"""

from __future__ import annotations

import logging

from _common import RESULTS, write
from dnnreg import learning_curve
from dnnreg.report.plots import learning_curve_plot
from dnnreg.studies.comparison import as_records
from dnnreg.tables.datasets import load_california_housing


def main():
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    X, y = load_california_housing(return_X_y=True)
    curve = learning_curve(X, y, task="regression", repeats=3, seed=0)
    size = curve.attrs["crossover"]
    means = curve.groupby(["size", "model"])["rmse"].mean().unstack()
    stds = curve.groupby(["size", "model"])["rmse"].std().unstack()
    models = list(means.columns)
    lines = ["| training rows | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for s in means.index:
        lines.append(
            f"| {s} | "
            + " | ".join(f"{means.loc[s, m]:.4f} ± {stds.loc[s, m]:.3f}" for m in models)
            + " |"
        )
    lines.append(f"\ncrossover: {size} training rows" if size is not None else "\nno crossover")
    RESULTS.mkdir(exist_ok=True)
    learning_curve_plot(
        as_records(curve),
        "rmse",
        RESULTS / "learning_curve_california.png",
        crossover=size,
        title="California housing: test RMSE ($100k)",
    )
    write(
        "learning_curve_california",
        {"crossover": size, "rows": as_records(curve)},
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
