"""Accuracy on ten regression tables against the strongest tabular models, the standard
protocol of the tabular-DL literature: a fixed 64/16/20 train/validation/test split per
seed (``dnnreg.tables.splits.train_val_test_indices``), test RMSE mean ± std in the
target's units.

Every model gets the same training rows and the same validation rows (for early
stopping): dnnreg's defaults, and the peers of ``peers.py`` — RealMLP-TD, TabM-D and
CatBoost-TD from pytabkit, CatBoost's and LightGBM's defaults, LightGBM early-stopped.
``--models`` adds the older rows too: dnnreg tuned and LightGBM tuned (``--budget``
seconds of TPE search each) and scikit-learn's MLP. ``--variant 'label={"n_ensemble": 16}'``
(repeatable) adds dnnreg with the defaults updated by those parameters, the way candidate
defaults are measured; a key ``"_NAME"`` sets the "auto" rules' constant
``dnnreg.options.NAME`` for that variant (``{"_AUTO_STEPS": 2000}``).

Each run is kept in ``results/accuracy_runs.json`` as it ends (``_runs.RunStore``);
``--reuse`` takes the named models' stored runs instead of refitting them (peers whose code
and version did not change). ``--limit 'TabM-D=1:10000'`` runs a model on one seed and only
on tables of at most 10,000 rows (TabM-D costs minutes per thousand rows on two cores).
The summary compares models on the (table, seed) pairs all of them ran.

Run: ``.venv/bin/python bench/accuracy.py [--seeds 3] [--datasets a,b] [--reuse M1,M2]``.
Results: results/accuracy.{json,md} and results/accuracy_runs.json.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from _common import tables, write
from _runs import (
    RunStore,
    add_arguments,
    chosen_models,
    parse_limits,
    run_grid,
    summary,
    summary_lines,
    table_lines,
)
from dnnreg import DNNRegressor
from dnnreg.studies.baselines import Tabular
from dnnreg.tables.splits import train_val_test_indices
from peers import PEERS, versions

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


def fit_dnnreg(X, y, tr, va, seed, task=None, params=None):
    """DNNRegressor with its defaults (or the defaults updated by ``params``, a variant),
    early-stopped on the validation rows. A bagged model (``bagging=True``) is given the
    training and validation rows together, as ``fit(X, y)``: each member then holds out
    its own fold of them, which is how bagging uses the rows the others validate on."""
    params = dict(params or {})
    rules = {k[1:]: params.pop(k) for k in list(params) if k.startswith("_")}
    model = DNNRegressor(random_state=seed, **params)
    with _auto_rules(rules):
        if model.bagging:
            rows = np.concatenate([tr, va])
            model.fit(X.iloc[rows], y.iloc[rows])
        else:
            model.fit(X.iloc[tr], y.iloc[tr], eval_set=(X.iloc[va], y.iloc[va]))
    _LAST.update(model=model, seed=seed, n=len(tr))
    return model


@contextlib.contextmanager
def _auto_rules(rules: dict):
    """A variant's ``"_NAME": value`` entries replace ``dnnreg.options.NAME`` (a constant of
    the "auto" rules, such as ``AUTO_STEPS``) during its fit: how a candidate rule is
    measured before it becomes one."""
    from dnnreg import options

    saved = {name: getattr(options, name) for name in rules}
    for name, value in rules.items():
        setattr(options, name, tuple(value) if isinstance(value, list) else value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(options, name, value)


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


def fit_dnnreg_tuned(X, y, tr, va, seed, task=None):
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


def fit_lgbm_tuned(X, y, tr, va, seed, task=None):
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


def fit_mlp(X, y, tr, va, seed, task=None):
    from sklearn.neural_network import MLPRegressor

    mlp = MLPRegressor(
        hidden_layer_sizes=(256, 256, 256), early_stopping=True, max_iter=200, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Tabular(mlp).fit(X.iloc[np.concatenate([tr, va])], y.iloc[np.concatenate([tr, va])])


MODELS = {"dnnreg defaults": fit_dnnreg, **PEERS}
EXTRA = {"dnnreg tuned": fit_dnnreg_tuned, "LightGBM tuned": fit_lgbm_tuned, "sklearn MLP": fit_mlp}
BUDGET = 30.0  # seconds of search per dataset, seed and tuned model
STORE = "accuracy"


def variant(params: dict):
    """A candidate default: dnnreg with the defaults updated by ``params``."""
    fit = lambda X, y, tr, va, seed, task: fit_dnnreg(X, y, tr, va, seed, params=params)  # noqa: E731
    fit.params = params
    return fit


def run_all(models: dict, seeds: int, reuse: set, limits: dict, store: RunStore) -> None:
    """Fit every model on every table and seed not already reused from the store."""

    def split(X, y, seed):
        return train_val_test_indices(len(X), seed=seed)

    def score(model, X_te, y_te):
        return {"rmse": float(np.sqrt(np.mean((model.predict(X_te) - y_te.to_numpy()) ** 2)))}

    def before(model_name, X, y, tr, va, seed):
        if model_name == "dnnreg tuned" and _LAST.get("seed") != seed:
            fit_dnnreg(X, y, tr, va, seed)  # its first trial, when not fitted above

    run_grid(
        tables(DATASETS),
        models,
        seeds,
        reuse,
        limits,
        store,
        task="regression",
        split=split,
        score=score,
        before=before,
    )


def report(
    store: RunStore, models: list[str], command: str, limits: dict, out: str = STORE
) -> None:
    """The per-table table and the summaries, from the store's runs of ``models``."""
    runs = {t: store.runs[t] for t in DATASETS if t in store.runs}
    lines = table_lines(runs, models, "rmse", "test RMSE")
    lines.append(
        "\nTest RMSE mean ± std (seeds run; rank among the models run on that table, gap to "
        "the table's best mean). 64/16/20 split per seed."
    )
    limited = [m for m in models if m in limits]
    groups = [("All models but " + ", ".join(limited), [m for m in models if m not in limited])]
    groups = groups if limited else []
    groups.append(("All models, on the (table, seed) pairs every one ran", models))
    summaries = {}
    for title, group in groups:
        s = summary(runs, list(runs), group, "rmse")
        summaries[title] = s
        lines += summary_lines(title, s, group)
    lines += [
        "\nMedian fit seconds per 1,000 training rows (of the training split) are over the "
        "same tables, from runs with nothing else running beside them (1-minute load "
        "average after the fit at most the cores + 0.75). pytabkit's models are given both "
        "cores (their default is half the logical cores).",
        f"\nReproduce: `{command}`",
    ]
    write(
        out,
        {
            "protocol": f"train_val_test_indices 64/16/20; runs in {out}_runs.json",
            "command": command,
            "peer_versions": versions(),
            "limits": {m: list(v) for m, v in limits.items()},
            "models": models,
            "summaries": summaries,
        },
        "\n".join(lines),
    )


def main(argv=None):
    global BUDGET, DATASETS
    import argparse
    import shlex
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, DATASETS, MODELS)
    parser.add_argument("--budget", type=float, default=BUDGET, help="tuned models' seconds")
    args = parser.parse_args(argv)
    BUDGET = args.budget
    DATASETS = {name: DATASETS[name] for name in args.datasets.split(",")}
    models = chosen_models(args, {**MODELS, **EXTRA}, variant)
    reuse = {m for m in args.reuse.split(",") if m}
    limits = parse_limits(args.limit)
    store_name = args.store or STORE
    store = RunStore(store_name)
    if not args.report_only:
        run_all(models, args.seeds, reuse, limits, store)
    report(
        store,
        list(models),
        "python bench/accuracy.py " + shlex.join(sys.argv[1:] if argv is None else argv),
        limits,
        store_name,
    )


if __name__ == "__main__":
    main()
