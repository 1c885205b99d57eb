"""``dnnreg.compare`` and ``dnnreg.learning_curve``: the DNN against every shallow
baseline on the user's own data, on identical splits, with a verdict.

This module only assembles the models (the DNN next to :mod:`dnnreg.studies.baselines`); the
protocol and the statistics live in :mod:`dnnreg.studies.evaluation`, which knows nothing of torch.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from dnnreg.studies.baselines import SVM_MAX_ROWS, baseline_factories
from dnnreg.studies.evaluation import (
    DNN,
    crossover,
    evaluate_models,
    evaluation_splits,
    learning_curve_results,
    summarize,
    verdict,
)
from dnnreg.tables.reading import infer_task

logger = logging.getLogger("dnnreg")

CURVE_MODELS = {
    "regression": ["linear", "random_forest", "gbdt", "knn", DNN],
    "classification": ["logistic", "random_forest", "gbdt", "knn", DNN],
}


def model_factories(task: str, names=None, *, n_rows: int, dnn_params: dict | None = None):
    """``(factories, notes)``: name -> factory(seed) for the requested models (all by
    default), and a note for each model left out (kernel SVMs above 20k rows)."""
    from dnnreg.estimators.classifier import DNNClassifier
    from dnnreg.estimators.regressor import DNNRegressor

    cls = DNNRegressor if task == "regression" else DNNClassifier
    available = {
        DNN: lambda seed: cls(**{"random_state": seed, **(dnn_params or {})}),
        **baseline_factories(task),
    }
    names = list(available) if names is None else list(names)
    unknown = [n for n in names if n not in available]
    if unknown:
        from dnnreg._validation import did_you_mean

        raise ValueError(
            f"models must be among {sorted(available)}, got {unknown}"
            + did_you_mean(unknown[0], available)
        )
    if DNN not in names:
        names.insert(0, DNN)  # the comparison is about the DNN
    notes = {}
    for svm in ("svr", "svc"):
        if svm in names and n_rows > SVM_MAX_ROWS:
            names.remove(svm)
            notes[svm] = (
                f"skipped: {n_rows} rows > {SVM_MAX_ROWS}; an RBF kernel machine "
                "costs O(n²) memory and O(n²)-O(n³) time"
            )
    return {n: available[n] for n in names}, notes


def _task(y, task):
    return infer_task(y) if task == "auto" else task


def compare(
    X,
    y,
    *,
    task: str = "auto",
    models=None,
    folds: int | None = 5,
    repeats: int | None = None,
    time_budget: float | None = None,
    seed: int = 0,
    dnn_params: dict | None = None,
) -> pd.DataFrame:
    """Fit the DNN and the baselines on identical splits; return one tidy row per (model,
    split) with its test metrics, fit and predict seconds.

    ``attrs`` of the returned frame hold ``summary`` (mean and std per model, best
    first), ``verdict`` (the DNN against the best other model, with a paired 95 %
    interval and one paragraph of text), ``notes`` (models left out, and why) and
    ``task``.

    Examples
    --------
    >>> from dnnreg.tables.datasets import load_yacht_hydrodynamics
    >>> X, y = load_yacht_hydrodynamics(return_X_y=True)
    >>> res = compare(X, y, models=["linear", "gbdt"], folds=2,
    ...               dnn_params={"max_iter": 5, "hidden_layer_sizes": (32,)})
    >>> sorted(res["model"].unique())
    ['dnnreg', 'gbdt', 'linear']
    >>> res.attrs["verdict"]["best_other"] in ("linear", "gbdt")
    True
    """
    task = _task(y, task)
    factories, notes = model_factories(task, models, n_rows=len(y), dnn_params=dnn_params)
    splits = evaluation_splits(y, folds=folds, repeats=repeats, seed=seed, task=task)
    results = evaluate_models(
        X, y, factories, splits, task=task, seed=seed, time_budget=time_budget
    )
    results.attrs = {
        "task": task,
        "notes": notes,
        "summary": summarize(results).to_dict(orient="records"),
        "verdict": verdict(results, task=task) if len(factories) > 1 else None,
    }
    return results


def learning_curve(
    X,
    y,
    *,
    task: str = "auto",
    models=None,
    repeats: int = 3,
    sizes=None,
    time_budget: float | None = None,
    seed: int = 0,
    dnn_params: dict | None = None,
) -> pd.DataFrame:
    """Test metrics of each model family against training-set size (50, 100, 200, ...,
    all training rows); one tidy row per (model, size, repeat). ``attrs["crossover"]`` is
    the size from which the DNN beats every other model for good, or ``None``."""
    task = _task(y, task)
    names = CURVE_MODELS[task] if models is None else models
    factories, notes = model_factories(task, names, n_rows=len(y), dnn_params=dnn_params)
    curve = learning_curve_results(
        X, y, factories, task=task, repeats=repeats, seed=seed, sizes=sizes, time_budget=time_budget
    )
    curve.attrs = {"task": task, "notes": notes, "crossover": crossover(curve, task=task)}
    return curve


def as_records(frame: pd.DataFrame) -> list[dict]:
    """Plain JSON rows (NaN -> None)."""
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in frame.to_dict(orient="records")
    ]
