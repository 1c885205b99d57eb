"""The run directory, written and read in one place: ``dnnreg train`` (and ``demo``) write
it, ``report``, ``diagnose``, ``predict`` and ``evaluate`` read it.

A run directory holds ``model/`` (a model file), ``config.json`` (data, target, task,
seed, split fractions, rows per split, parameters), ``history.json`` (per epoch),
``metrics.json`` (per split, for the DNN and its linear or logistic baseline),
``importance.json`` (permutation importance on the held-out rows) and
``predictions.csv``; ``report.html`` once reported. Reading it needs no torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dnnreg._files import check_output_dir, output_dir, write_json
from dnnreg._version import __version__
from dnnreg.metrics import score_model
from dnnreg.tables.splits import run_split


def resolve_task(task: str, frame: pd.DataFrame, target: str, loss: str | None = None) -> str:
    """``task``, or for ``auto`` what the target column and ``loss`` imply (regression when
    the column is missing: ``split_xy`` then names it)."""
    from dnnreg.tables.reading import infer_task

    if task != "auto":
        return task
    if target not in frame.columns:
        return "regression"
    return infer_task(frame[target], loss=loss)


def _weight_column(frame: pd.DataFrame, weight: str | None, target: str):
    """``(frame without the weight column, weights)``; ``(frame, None)`` without one."""
    if weight is None:
        return frame, None
    if weight not in frame.columns:
        raise ValueError(
            f"--weight: no column {weight!r} in the table; its columns are {list(frame.columns)}"
        )
    if weight == target:
        raise ValueError(f"--weight {weight!r} is the target; name another column")
    w = pd.to_numeric(frame[weight], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(w).any():
        raise ValueError(
            f"--weight column {weight!r} holds {int(np.isnan(w).sum())} missing or "
            "non-numeric values; give every row a number >= 0"
        )
    return frame.drop(columns=weight), w


def train_run(
    frame: pd.DataFrame,
    target: str,
    out: Path,
    *,
    params: dict,
    task: str = "auto",
    test_fraction: float = 0.2,
    val_fraction: float = 0.2,
    seed: int = 0,
    source: str = "",
    unlabeled: pd.DataFrame | None = None,
    overwrite: bool = False,
    flag: str = "overwrite=True",
    weight: str | None = None,
) -> dict:
    """Split, train dnnreg and a linear baseline (least squares or logistic regression), and
    write a complete RUN_DIR atomically (an earlier run there is replaced only with
    ``overwrite``; the path is checked before training, see :mod:`dnnreg._files`).
    ``weight`` names a column of row weights: dnnreg trains and early-stops with them
    (``sample_weight``), it is not a feature, and the metrics stay unweighted.

    Returns the metrics dict that is also written to ``metrics.json``.
    """
    from dnnreg.estimators.classifier import DNNClassifier
    from dnnreg.estimators.persistence import save
    from dnnreg.estimators.regressor import DNNRegressor
    from dnnreg.model_file import json_params
    from dnnreg.studies.baselines import LinearBaseline, LogisticBaseline
    from dnnreg.tables.reading import split_xy

    check_output_dir(out, overwrite=overwrite, flag=flag)
    frame, w = _weight_column(frame, weight, target)
    task = resolve_task(task, frame, target, params.get("loss"))
    X, y = split_xy(frame, target, task=task)
    train, val, test = run_split(
        len(X),
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        seed=seed,
        stratify=y if task == "classification" else None,
    )
    params = {"random_state": seed, **params}
    if task == "classification":
        model, baseline, baseline_name = DNNClassifier(**params), LogisticBaseline(), "logistic"
    else:
        model, baseline, baseline_name = DNNRegressor(**params), LinearBaseline(), "linear"
    eval_set = None
    if val is not None:
        eval_set = (X.iloc[val], y.iloc[val], None if w is None else w[val])
    model.fit(
        X.iloc[train],
        y.iloc[train],
        sample_weight=None if w is None else w[train],
        eval_set=eval_set,
        X_unlabeled=unlabeled,
    )
    baseline.fit(X.iloc[train], y.iloc[train])

    splits = {"train": train, "validation": val, "test": test}
    metrics: dict = {
        "target": target,
        "task": task,
        **({"weight": weight} if weight else {}),
        "fit_seconds": model.fit_seconds_,
        "best_epoch": model.best_epoch_,
        "n_epochs": model.n_iter_,
    }
    predictions = _score_splits(metrics, model, baseline, baseline_name, X, y, splits, target)
    held_out = test if test is not None else (val if val is not None else train)
    importance = permutation_importance_records(model, X.iloc[held_out], y.iloc[held_out], seed)

    with output_dir(out, kind="run", overwrite=overwrite, flag=flag) as tmp:
        save(model, tmp / "model", metadata={"target": target})
        write_json(tmp / "importance.json", importance)
        write_json(
            tmp / "config.json",
            {
                "data": source,
                "target": target,
                "task": task,
                "seed": seed,
                "test_fraction": test_fraction,
                "val_fraction": val_fraction,
                "rows": {k: (0 if v is None else int(len(v))) for k, v in splits.items()},
                "params": json_params(model),
                "resolved": {"batch_size": model.batch_size_},
                "dnnreg_version": __version__,
            },
        )
        write_json(tmp / "history.json", model.history_)
        write_json(tmp / "metrics.json", metrics)
        predictions.to_csv(tmp / "predictions.csv", index=False)
    return metrics


def _score_splits(metrics, model, baseline, baseline_name, X, y, splits, target) -> pd.DataFrame:
    """Fill ``metrics`` with the model's and the baseline's scores on each split; return
    every row's prediction, tagged with its split (the run's ``predictions.csv``)."""
    frames = []
    for name, rows in splits.items():
        if rows is None:
            continue
        X_part, y_part = X.iloc[rows], y.iloc[rows]
        metrics[name] = score_model(model, X_part, y_part)
        metrics.setdefault(f"baseline_{baseline_name}", {})[name] = score_model(
            baseline, X_part, y_part
        )
        rows_frame = pd.DataFrame({"row": rows, "split": name, target: y_part.to_numpy()})
        frames.append(pd.concat([rows_frame, prediction_frame(model, X_part)], axis=1))
    return pd.concat(frames)


def permutation_importance_records(model, X, y, seed: int) -> list[dict]:
    """How much the held-out score (R² or accuracy) drops when one column is shuffled,
    mean and std over 5 shuffles (Breiman 2001), most important first."""
    from sklearn.inspection import permutation_importance

    rows = min(len(X), 5000)  # the ranking is stable long before every row is used
    result = permutation_importance(
        model, X.iloc[:rows], y.iloc[:rows], n_repeats=5, random_state=seed
    )
    records = [
        {"feature": str(c), "mean": float(m), "std": float(s)}
        for c, m, s in zip(X.columns, result.importances_mean, result.importances_std)
    ]
    return sorted(records, key=lambda r: -r["mean"])


def prediction_frame(model, X, *, interval=None, by=None) -> pd.DataFrame:
    """``prediction`` (a value or a label), plus ``proba_<class>`` columns for a classifier,
    or ``lower`` and ``upper`` (the conformal interval of coverage ``interval``, calibrated
    within the levels of column ``by`` if given) for a regressor."""
    if not hasattr(model, "classes_"):
        frame = pd.DataFrame({"prediction": model.predict(X)})
        if interval is not None:
            frame["lower"], frame["upper"] = model.predict_interval(X, interval, by=by)
        return frame
    if interval is not None:
        raise ValueError(
            "intervals are for regression models; a classifier's predict writes class "
            "probabilities (drop --interval)"
        )
    proba = model.predict_proba(X)
    frame = pd.DataFrame({"prediction": model.classes_[proba.argmax(axis=1)]})
    for j, c in enumerate(model.classes_):
        frame[f"proba_{c}"] = proba[:, j]
    return frame


def model_dir(path) -> Path:
    """Accept a model directory or a RUN_DIR that holds one under ``model/``."""
    p = Path(path)
    return p / "model" if (p / "model" / "config.json").exists() else p


def features_for(model, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without the model's target column, when the table still holds it."""
    target = getattr(model, "metadata_", {}).get("target")
    if target in frame.columns and target not in model.preprocessor_.columns:
        frame = frame.drop(columns=[target])
    return frame


def read_run(run_dir) -> dict:
    """A run directory's JSON files as plain data: ``config``, ``metrics``, ``history``,
    ``importance`` (None where absent) and ``model_config`` (the model file's config).
    Raises ``ValueError`` naming what is missing when ``run_dir`` is not a complete run."""
    run = Path(run_dir)

    def read(path):
        return json.loads(path.read_text()) if path.is_file() else None

    parts = {
        "config": read(run / "config.json"),
        "metrics": read(run / "metrics.json"),
        "history": read(run / "history.json"),
        "importance": read(run / "importance.json"),
        "model_config": read(run / "model" / "config.json"),
    }
    missing = [
        name for name in ("config", "metrics", "history", "model_config") if parts[name] is None
    ]
    if missing:
        raise ValueError(
            f"{str(run)!r} is not a complete run directory (it lacks "
            f"{', '.join(missing)}: config.json, metrics.json, history.json, "
            "model/); pass the --out directory of 'dnnreg train'"
        )
    return parts
