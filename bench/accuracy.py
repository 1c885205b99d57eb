"""Accuracy on ten regression tables, the standard protocol of the tabular-DL literature:
a fixed 64/16/20 train/validation/test split per seed (``dnnreg.data.train_val_test_indices``),
``SEEDS`` seeds, test RMSE mean ± std, in the target's units.

Models, each on the same rows: dnnreg defaults (early stopping on the validation rows);
LightGBM defaults (100 trees, trained on the training rows); LightGBM with 2,000 trees and
early stopping on the validation rows; sklearn's MLPRegressor (3x256, standardized, its own
early stopping). Per dataset the models are ranked by mean RMSE; the table also gives each
model's RMSE relative to the dataset's best.

Run: ``.venv/bin/python bench/accuracy.py [SEEDS]`` (default 3 seeds; about 15 minutes).
Results: results/accuracy.{json,md}.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from _common import tables, write

from dnnreg import DNNRegressor
from dnnreg.baselines import Tabular
from dnnreg.data import train_val_test_indices

DATASETS = {"california_housing": "MedHouseVal", "diamonds": "price", "wine_quality": "quality",
            "airfoil_self_noise": "scaled_sound_pressure_db", "power_plant_ccpp": "PE",
            "cpu_act": "usr", "abalone": "rings", "concrete": "compressive_strength_mpa",
            "yacht_hydrodynamics": "residuary_resistance", "auto_mpg": "mpg"}


def fit_dnnreg(X, y, tr, va, seed):
    return DNNRegressor(random_state=seed).fit(X.iloc[tr], y.iloc[tr],
                                              eval_set=(X.iloc[va], y.iloc[va]))


def fit_lgbm(X, y, tr, va, seed):
    from lightgbm import LGBMRegressor

    return Tabular(LGBMRegressor(random_state=seed, verbose=-1)).fit(X.iloc[tr], y.iloc[tr])


def fit_lgbm_early_stopping(X, y, tr, va, seed):
    """LightGBM with up to 2,000 trees, stopped by the validation rows (100 rounds of
    patience); encoded with the same preprocessing as the other baselines."""
    import lightgbm
    from lightgbm import LGBMRegressor

    from dnnreg.preprocessing import TablePreprocessor, as_frame

    pre = TablePreprocessor(numeric_scaling="standard").fit(as_frame(X.iloc[tr]))
    encode = lambda frame: pre.transform(as_frame(frame)).numeric  # noqa: E731
    est = LGBMRegressor(n_estimators=2000, learning_rate=0.05, random_state=seed, verbose=-1)
    est.fit(encode(X.iloc[tr]), y.iloc[tr], eval_set=[(encode(X.iloc[va]), y.iloc[va])],
            callbacks=[lightgbm.early_stopping(100, verbose=False)])

    class Fitted:
        def predict(self, frame):
            return est.predict(encode(frame))

    return Fitted()


def fit_mlp(X, y, tr, va, seed):
    from sklearn.neural_network import MLPRegressor

    mlp = MLPRegressor(hidden_layer_sizes=(256, 256, 256), early_stopping=True, max_iter=200,
                       random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Tabular(mlp).fit(X.iloc[np.concatenate([tr, va])],
                                y.iloc[np.concatenate([tr, va])])


MODELS = {"dnnreg defaults": fit_dnnreg, "LightGBM defaults": fit_lgbm,
          "LightGBM early stopping": fit_lgbm_early_stopping, "sklearn MLP": fit_mlp}


def main(seeds: int = 3):
    results, lines = {}, []
    for name, X, y in tables(DATASETS):
        X, y = X.reset_index(drop=True), y.reset_index(drop=True)
        runs = {m: [] for m in MODELS}
        for seed in range(seeds):
            tr, va, te = train_val_test_indices(len(X), seed=seed)
            for model_name, fit in MODELS.items():
                start = time.perf_counter()
                model = fit(X, y, tr, va, seed)
                rmse = float(np.sqrt(np.mean((model.predict(X.iloc[te]) - y.iloc[te]) ** 2)))
                runs[model_name].append({"seed": seed, "rmse": rmse,
                                         "fit_seconds": time.perf_counter() - start})
                print(name, seed, model_name, f"{rmse:.4g}", flush=True)
        means = {m: float(np.mean([r["rmse"] for r in v])) for m, v in runs.items()}
        order = sorted(means, key=means.get)
        results[name] = {"rows": len(X), "runs": runs, "mean_rmse": means,
                         "rank": {m: order.index(m) + 1 for m in means}}
    models = list(MODELS)
    lines = ["| dataset | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for name, r in results.items():
        best = min(r["mean_rmse"].values())
        cells = []
        for m in models:
            rm = [x["rmse"] for x in r["runs"][m]]
            cells.append(f"{np.mean(rm):.4g} ± {np.std(rm):.2g} (#{r['rank'][m]}, "
                         f"{100 * (np.mean(rm) / best - 1):+.1f} %)")
        lines.append(f"| {name} ({r['rows']}) | " + " | ".join(cells) + " |")
    mean_rank = {m: float(np.mean([r["rank"][m] for r in results.values()])) for m in models}
    lines.append("| mean rank | " + " | ".join(f"{mean_rank[m]:.2f}" for m in models) + " |")
    lines.append(f"\n64/16/20 split per seed, {seeds} seeds; test RMSE mean ± std (rank, gap to "
                 "the dataset's best model).")
    write("accuracy", {"protocol": f"train_val_test_indices 64/16/20, seeds 0..{seeds - 1}",
                       "command": "python bench/accuracy.py", "datasets": results,
                       "mean_rank": mean_rank}, "\n".join(lines))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
