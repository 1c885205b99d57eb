"""Accuracy on ten regression tables, the standard protocol of the tabular-DL literature:
a fixed 64/16/20 train/validation/test split per seed
(``dnnreg.tables.splits.train_val_test_indices``),
``SEEDS`` seeds, test RMSE mean ± std, in the target's units.

Models, each on the same rows: dnnreg defaults (early stopping on the validation rows);
dnnreg tuned (``dnnreg.studies.tune`` for ``--budget`` seconds); LightGBM defaults (100 trees,
trained on the training rows); LightGBM with 2,000 trees and early stopping on the
validation rows; LightGBM tuned by Optuna TPE with the same budget; sklearn's MLPRegressor
(3x256, standardized, its own early stopping). Per dataset the models are ranked by mean
RMSE; the table also gives each model's RMSE relative to the dataset's best.

Run: ``.venv/bin/python bench/accuracy.py [--seeds 3] [--budget 30] [--datasets a,b]``
(about 25 minutes plus 2 x budget per dataset and seed; `--reuse` skips refitting the
named baselines).
Results: results/accuracy.{json,md}.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from _common import tables, write
from dnnreg import DNNRegressor
from dnnreg.studies.baselines import Tabular
from dnnreg.tables.reading import train_val_test_indices

DATASETS = {
    "california_housing": "MedHouseVal",
    "diamonds": "price",
    "wine_quality": "quality",
    "airfoil_self_noise": "scaled_sound_pressure_db",
    "power_plant_ccpp": "PE",
    "cpu_act": "usr",
    "abalone": "rings",
    "concrete": "compressive_strength_mpa",
    "yacht_hydrodynamics": "residuary_resistance",
    "auto_mpg": "mpg",
}


_LAST = {}  # the defaults' model of the current dataset and seed, reused by the tuned row


def fit_dnnreg(X, y, tr, va, seed):
    model = DNNRegressor(random_state=seed).fit(
        X.iloc[tr], y.iloc[tr], eval_set=(X.iloc[va], y.iloc[va])
    )
    _LAST.update(model=model, seed=seed, n=len(tr))
    return model


def fit_lgbm(X, y, tr, va, seed):
    from lightgbm import LGBMRegressor

    return Tabular(LGBMRegressor(random_state=seed, verbose=-1)).fit(X.iloc[tr], y.iloc[tr])


def fit_lgbm_early_stopping(X, y, tr, va, seed):
    """LightGBM with up to 2,000 trees, stopped by the validation rows (100 rounds of
    patience); encoded with the same preprocessing as the other baselines."""
    import lightgbm
    from lightgbm import LGBMRegressor

    encode = _lgbm_encoder(X.iloc[tr])
    est = LGBMRegressor(n_estimators=2000, learning_rate=0.05, random_state=seed, verbose=-1)
    est.fit(
        encode(X.iloc[tr]),
        y.iloc[tr],
        eval_X=encode(X.iloc[va]),
        eval_y=y.iloc[va],
        callbacks=[lightgbm.early_stopping(100, verbose=False)],
    )
    return _Encoded(est, encode)


def _lgbm_encoder(X_train):
    """One-hot categoricals, standard-scaled numbers (trees ignore the scale), fitted on
    the training rows."""
    from dnnreg.tables.preprocessing import TablePreprocessor, as_frame

    pre = TablePreprocessor(numeric_scaling="standard").fit(as_frame(X_train))
    return lambda frame: pre.transform(as_frame(frame)).numeric


class _Encoded:
    def __init__(self, est, encode):
        self.est, self.encode = est, encode

    def predict(self, frame):
        return self.est.predict(self.encode(frame))


def fit_dnnreg_tuned(X, y, tr, va, seed):
    """``dnnreg.studies.tune`` for ``BUDGET`` seconds (TPE; each trial fitted on the training rows,
    scored and early-stopped on the validation rows, stopped when the budget ends), with
    the defaults as its first trial: that trial is the "dnnreg defaults" model just fitted
    on the same rows and seed, reused rather than fitted again. The best on validation."""
    import tempfile

    from dnnreg.studies.tune import tune

    default = _LAST["model"]
    assert (_LAST["seed"], _LAST["n"]) == (seed, len(tr))
    with tempfile.TemporaryDirectory() as tmp:
        study = tune(
            X.iloc[tr],
            y.iloc[tr],
            eval_set=(X.iloc[va], y.iloc[va]),
            time_budget=BUDGET,
            seed=seed,
            default_dir=tmp,
            start_with_defaults=False,
        )
    models = [m for m in (default, study.best_model_) if m is not None]
    val = lambda m: np.mean((m.predict(X.iloc[va]) - y.iloc[va]) ** 2)  # noqa: E731
    return min(models, key=val)


def fit_lgbm_tuned(X, y, tr, va, seed):
    """LightGBM tuned the same way: Optuna TPE (seeded, first trial LightGBM's defaults)
    for ``BUDGET`` seconds over the usual ranges, up to 2,000 trees early-stopped on the
    validation rows (patience 100), scored by validation RMSE; the best trial's model."""
    import lightgbm
    import optuna
    from lightgbm import LGBMRegressor

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    encode = _lgbm_encoder(X.iloc[tr])
    x_tr, x_va = encode(X.iloc[tr]), encode(X.iloc[va])
    best = {}

    def objective(trial):
        est = LGBMRegressor(
            n_estimators=2000,
            random_state=seed,
            verbose=-1,
            subsample_freq=1,
            learning_rate=trial.suggest_float("learning_rate", 0.005, 0.2, log=True),
            num_leaves=trial.suggest_int("num_leaves", 4, 256, log=True),
            min_child_samples=trial.suggest_int("min_child_samples", 2, 100, log=True),
            colsample_bytree=trial.suggest_float("colsample_bytree", 0.3, 1.0),
            subsample=trial.suggest_float("subsample", 0.5, 1.0),
            reg_lambda=trial.suggest_float("reg_lambda", 1e-8, 10.0, log=True),
        )
        est.fit(
            x_tr,
            y.iloc[tr],
            eval_X=x_va,
            eval_y=y.iloc[va],
            callbacks=[lightgbm.early_stopping(100, verbose=False)],
        )
        rmse = float(np.sqrt(np.mean((est.predict(x_va) - y.iloc[va]) ** 2)))
        if rmse < best.get("rmse", np.inf):
            best.update(rmse=rmse, est=est)
        return rmse

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(
        {
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 20,
            "colsample_bytree": 1.0,
            "subsample": 1.0,
            "reg_lambda": 1e-8,
        }
    )
    study.optimize(objective, timeout=BUDGET)
    return _Encoded(best["est"], encode)


def fit_mlp(X, y, tr, va, seed):
    from sklearn.neural_network import MLPRegressor

    mlp = MLPRegressor(
        hidden_layer_sizes=(256, 256, 256), early_stopping=True, max_iter=200, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Tabular(mlp).fit(X.iloc[np.concatenate([tr, va])], y.iloc[np.concatenate([tr, va])])


MODELS = {
    "dnnreg defaults": fit_dnnreg,
    "dnnreg tuned": fit_dnnreg_tuned,
    "LightGBM defaults": fit_lgbm,
    "LightGBM early stopping": fit_lgbm_early_stopping,
    "LightGBM tuned": fit_lgbm_tuned,
    "sklearn MLP": fit_mlp,
}
BUDGET = 30.0  # seconds of search per dataset, seed and tuned model


def previous_runs(models: list[str], seeds: int) -> dict:
    """The runs of ``models`` in the committed results, to reuse rather than refit: for
    baselines whose code did not change, when dnnreg's rows are rerun. Only runs made with
    the same seeds and budget are taken."""
    if not models:
        return {}
    import json
    from pathlib import Path

    old = json.loads((Path(__file__).parent / "results" / "accuracy.json").read_text())
    if old["budget_seconds"] != BUDGET:
        raise SystemExit(
            f"--reuse needs the same --budget as the stored run ({old['budget_seconds']})"
        )
    out = {}
    for name, r in old["datasets"].items():
        for m in models:
            runs = [x for x in r["runs"][m] if x["seed"] < seeds]
            if len(runs) == seeds:
                out[(name, m)] = runs
    return out


def main(seeds: int = 3, reuse: tuple = ()):
    results, reused = {}, previous_runs(list(reuse), seeds)
    for name, X, y in tables(DATASETS):
        X, y = X.reset_index(drop=True), y.reset_index(drop=True)
        runs = {m: list(reused.get((name, m), [])) for m in MODELS}
        for seed in range(seeds):
            tr, va, te = train_val_test_indices(len(X), seed=seed)
            for model_name, fit in MODELS.items():
                if (name, model_name) in reused:
                    continue
                start = time.perf_counter()
                model = fit(X, y, tr, va, seed)
                rmse = float(np.sqrt(np.mean((model.predict(X.iloc[te]) - y.iloc[te]) ** 2)))
                runs[model_name].append(
                    {"seed": seed, "rmse": rmse, "fit_seconds": time.perf_counter() - start}
                )
                print(name, seed, model_name, f"{rmse:.4g}", flush=True)
        means = {m: float(np.mean([r["rmse"] for r in v])) for m, v in runs.items()}
        order = sorted(means, key=means.get)
        results[name] = {
            "rows": len(X),
            "runs": runs,
            "mean_rmse": means,
            "rank": {m: order.index(m) + 1 for m in means},
        }
        report(results, seeds, reuse)  # after every table: a cut-short run leaves results


def report(results: dict, seeds: int, reuse: tuple = ()) -> None:
    models = list(MODELS)
    lines = ["| dataset | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for name, r in results.items():
        best = min(r["mean_rmse"].values())
        cells = []
        for m in models:
            rm = [x["rmse"] for x in r["runs"][m]]
            cells.append(
                f"{np.mean(rm):.4g} ± {np.std(rm):.2g} (#{r['rank'][m]}, "
                f"{100 * (np.mean(rm) / best - 1):+.1f} %)"
            )
        lines.append(f"| {name} ({r['rows']}) | " + " | ".join(cells) + " |")
    mean_rank = {m: float(np.mean([r["rank"][m] for r in results.values()])) for m in models}
    lines.append("| mean rank | " + " | ".join(f"{mean_rank[m]:.2f}" for m in models) + " |")
    lines.append(
        f"\n64/16/20 split per seed, {seeds} seeds; test RMSE mean ± std (rank, gap to "
        "the dataset's best model)."
    )
    lines += [
        "\nMean seconds per fit (the tuned dnnreg row adds its search to the defaults' "
        "fit, which it reuses as its first trial):\n",
        "| dataset | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | "
            + " | ".join(f"{np.mean([x['fit_seconds'] for x in r['runs'][m]]):.1f}" for m in models)
            + " |"
        )
    command = (
        f"python bench/accuracy.py --seeds {seeds} --budget {BUDGET:g} --datasets "
        + ",".join(DATASETS)
        + (f" --reuse '{','.join(reuse)}'" if reuse else "")
    )
    lines.append(
        f"\nReproduce: `{command}`; tuned models search {BUDGET:g} s per dataset and "
        "seed (TPE, first trial the defaults, scored on the validation rows)."
    )
    if reuse:
        lines.append(
            f"\nNot refitted in this run: {', '.join(reuse)} — their runs (same seeds, "
            "splits, budget and machine; their code unchanged) come from the previous "
            "results file, so their seconds were measured in that run."
        )
    write(
        "accuracy",
        {
            "protocol": f"train_val_test_indices 64/16/20, seeds 0..{seeds - 1}",
            "command": command,
            "budget_seconds": BUDGET,
            "reused": list(reuse),
            "datasets": results,
            "mean_rank": mean_rank,
        },
        "\n".join(lines),
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--budget",
        type=float,
        default=BUDGET,
        help="seconds of search per dataset, seed and tuned model",
    )
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument(
        "--reuse",
        default="",
        help="comma-separated models whose runs are taken from the committed "
        "results instead of refitted (e.g. 'LightGBM tuned,sklearn MLP')",
    )
    args = parser.parse_args()
    BUDGET = args.budget
    DATASETS = {name: DATASETS[name] for name in args.datasets.split(",")}
    reuse = tuple(m for m in args.reuse.split(",") if m)
    unknown = [m for m in reuse if m not in MODELS]
    if unknown:
        raise SystemExit(f"--reuse: unknown model(s) {unknown}; choose from {list(MODELS)}")
    main(args.seeds, reuse)
