"""The run directory, written and read in one place: ``dnnreg train`` (and ``demo``) write
it, ``report``, ``diagnose``, ``predict`` and ``evaluate`` read it.

A run directory holds ``model/`` (a model file), ``config.json`` (data, target, task,
seed, split fractions, rows per split, parameters), ``history.json`` (per epoch),
``metrics.json`` (per split, for the DNN and its linear or logistic baseline),
``importance.json`` (permutation importance on the held-out rows) and
``predictions.csv``; ``report.html`` once reported. Reading it needs no torch.

While ``train`` runs, the run directory holds ``checkpoint/`` (:mod:`dnnreg.training.checkpoint`):
created, marked as a dnnreg run in state "training", when the path was free; put inside
the old run when one is being replaced (which stays whole until the new run takes its
place). A killed or interrupted training leaves it there for ``--resume``; the finished
run replaces the directory (and the checkpoint with it, unless ``--keep-checkpoint``); a
training that fails otherwise removes what it created.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from dnnreg._files import (
    OutputExistsError,
    check_output_dir,
    lock,
    make_output_dir,
    marker_of,
    output_dir,
    remove_output,
    write_json,
)
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


CHECKPOINT = "checkpoint"


def interrupted_epoch(out) -> int | None:
    """The epoch of the interrupted training whose checkpoint ``out`` holds, else ``None``."""
    try:
        state = json.loads((Path(out) / CHECKPOINT / "state.json").read_text())
        return int(state["state"]["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_run_dir(out, *, overwrite: bool, resume: bool, flag: str) -> None:
    """Refuse ``--out`` (and ``--resume``) before any data is read: an interrupted
    training is continued only with ``resume``, restarted only with ``overwrite``."""
    out = Path(out)
    epoch, marker = interrupted_epoch(out), marker_of(out)
    training = marker is not None and marker.get("state") == "training"
    if resume:
        if marker is None:
            raise OutputExistsError(
                f"--resume: {str(out)!r} holds no interrupted training to continue; "
                "drop --resume to train anew"
            )
        if epoch is None and not training:
            raise OutputExistsError(
                f"--resume: {str(out)!r} holds a finished run, nothing to continue; "
                f"pass {flag} to train again"
            )
        check_output_dir(out, resume=True)  # no files of the user's in it
        return
    if (epoch is not None or training) and not overwrite:
        where = "" if epoch is None else f" (checkpoint after epoch {epoch})"
        raise OutputExistsError(
            f"{str(out)!r} holds an interrupted training{where}; continue it with --resume, "
            f"or pass {flag} to start again"
        )
    check_output_dir(out, overwrite=overwrite, flag=flag)


def _training_dir(out: Path) -> None:
    """Make ``out`` ready to hold the checkpoint: a new run directory in state "training"
    when the path is free (an earlier run being replaced holds it meanwhile)."""
    if out.is_dir() and marker_of(out) is not None:
        return
    if out.is_dir():  # an empty directory: the checks allowed it
        out.rmdir()
    make_output_dir(out, kind="run", state="training")


def train_in_run(out: Path, fit, data_parallel: bool) -> None:
    """Run ``fit()`` with its checkpoint inside the run directory ``out``: resumable after
    a stop request or a full disk, cleaned up after any other failure."""
    if not data_parallel:
        _training_dir(out)
    try:
        fit()
    except (KeyboardInterrupt, OSError):  # a stop request, a full disk: resumable
        raise
    except BaseException:
        _abandon(out)
        raise


def _abandon(out: Path) -> None:
    """After a training that failed on its data or settings (resuming would fail again):
    remove the checkpoint, and the run directory too if it holds nothing else."""
    marker = marker_of(out)
    if marker is not None and marker.get("state") == "training":
        remove_output(out)
    elif marker_of(out / CHECKPOINT) is not None:
        remove_output(out / CHECKPOINT)


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
    resume: bool = False,
    keep_checkpoint: bool = False,
) -> dict:
    """Split, train dnnreg and a linear baseline (least squares or logistic regression), and
    write a complete RUN_DIR atomically (an earlier run there is replaced only with
    ``overwrite``; the path is checked before training, see :mod:`dnnreg._files`).
    ``weight`` names a column of row weights: dnnreg trains and early-stops with them
    (``sample_weight``), it is not a feature, and the metrics stay unweighted. Training
    checkpoints into ``out/checkpoint`` (see the module docstring); ``resume`` continues
    from there.

    Under ``torchrun`` (:mod:`dnnreg.training.distributed`) every rank reads the table,
    splits it alike and trains its share of the one model; rank 0 alone writes the run
    directory (and takes its lock), the others return ``None``. There is no checkpoint
    then: a data-parallel fit cannot be resumed yet.

    Returns the metrics dict that is also written to ``metrics.json``.
    """
    from dnnreg.training.distributed import launched, process_rank

    if launched():
        if resume or keep_checkpoint:
            raise ValueError(
                "--resume and --keep-checkpoint need a checkpoint, which a data-parallel "
                "(torchrun) training does not write yet; train in one process for them"
            )
        check_run_dir(out, overwrite=overwrite, resume=False, flag=flag)  # every rank
        if process_rank() != 0:
            params = {**params, "verbose": 0}  # one progress stream: rank 0's
            return _fit_rank(frame, target, params, task, test_fraction, val_fraction, seed,
                             unlabeled, weight)  # fmt: skip
    with lock(out):  # one writer from the check to the commit: the training takes minutes
        return _train_run(
            frame, target, out, params=params, task=task, test_fraction=test_fraction,
            val_fraction=val_fraction, seed=seed, source=source, unlabeled=unlabeled,
            overwrite=overwrite, flag=flag, weight=weight, resume=resume,
            keep_checkpoint=keep_checkpoint,
        )  # fmt: skip


def _fit_rank(frame, target, params, task, test_fraction, val_fraction, seed, unlabeled, weight):
    """A torchrun rank other than 0: the same split and fit as rank 0's (the ranks train
    one model together), and nothing written."""
    _, _, model, X, y, w, (train, val, _) = _run_model(
        frame, target, params, task, test_fraction, val_fraction, seed, weight
    )
    _fit_split(model, X, y, w, train, val, unlabeled)
    return None


def _fit_split(model, X, y, w, train, val, unlabeled, resume=False) -> None:
    """Fit on the training rows, early-stopping on the validation rows (with their
    weights) when the split has any."""
    eval_set = None if val is None else (X.iloc[val], y.iloc[val], None if w is None else w[val])
    model.fit(
        X.iloc[train],
        y.iloc[train],
        sample_weight=None if w is None else w[train],
        eval_set=eval_set,
        X_unlabeled=unlabeled,
        resume=resume,
    )


def _run_model(frame, target, params, task, test_fraction, val_fraction, seed, weight):
    """The run's task, estimator, features, target, weights and split, from the table
    and the command's settings."""
    from dnnreg.estimators.classifier import DNNClassifier
    from dnnreg.estimators.regressor import DNNRegressor
    from dnnreg.tables.reading import split_xy

    frame, w = _weight_column(frame, weight, target)
    task = resolve_task(task, frame, target, params.get("loss"))
    X, y = split_xy(frame, target, task=task)
    splits = run_split(
        len(X),
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        seed=seed,
        stratify=y if task == "classification" else None,
    )
    params = {"random_state": seed, **params}
    model = DNNClassifier(**params) if task == "classification" else DNNRegressor(**params)
    return frame, task, model, X, y, w, splits


def _train_run(
    frame, target, out, *, params, task, test_fraction, val_fraction, seed, source,
    unlabeled, overwrite, flag, weight, resume, keep_checkpoint,
) -> dict:  # fmt: skip
    from dnnreg.studies.baselines import LinearBaseline, LogisticBaseline
    from dnnreg.training.distributed import launched

    check_run_dir(out, overwrite=overwrite, resume=resume, flag=flag)
    data_parallel = launched()
    if not data_parallel:
        # the run's checkpoint is kept by the fit and goes with the directory it lives in
        params = {**params, "keep_checkpoint": True, "checkpoint_dir": str(out / CHECKPOINT)}
    frame, task, model, X, y, w, (train, val, test) = _run_model(
        frame, target, params, task, test_fraction, val_fraction, seed, weight
    )
    classify = task == "classification"
    baseline = LogisticBaseline() if classify else LinearBaseline()
    baseline_name = "logistic" if classify else "linear"
    train_in_run(
        out, lambda: _fit_split(model, X, y, w, train, val, unlabeled, resume), data_parallel
    )
    # The model file describes the model, not where this command kept its checkpoint.
    model.set_params(checkpoint_dir=None, keep_checkpoint=False)
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

    config = {
        "data": source,
        "target": target,
        "task": task,
        "seed": seed,
        "test_fraction": test_fraction,
        "val_fraction": val_fraction,
        "rows": {k: (0 if v is None else int(len(v))) for k, v in splits.items()},
    }
    parts = {"importance": importance, "metrics": metrics, "predictions": predictions}
    write_run(out, model, config, parts, keep_checkpoint=keep_checkpoint, flag=flag)
    return metrics


def write_run(out: Path, model, config: dict, parts: dict, *, keep_checkpoint, flag) -> None:
    """Write the finished run directory in one atomic step: the model, ``config.json``
    (``config`` plus the model's parameters), ``history.json``, ``metrics.json``,
    ``importance.json`` and ``predictions.csv`` (``parts``), and the checkpoint when it
    is kept."""
    from dnnreg.estimators.persistence import save
    from dnnreg.model_file import json_params

    config = {
        **config,
        "params": json_params(model),
        "resolved": {"batch_size": model.batch_size_},
        "dnnreg_version": __version__,
    }
    # overwrite: the path was checked before training and now holds this training's own
    # directory, or the earlier run that overwrite allowed to replace
    with output_dir(out, kind="run", overwrite=True, flag=flag) as tmp:
        if keep_checkpoint and marker_of(out / CHECKPOINT) is not None:
            os.rename(out / CHECKPOINT, tmp / CHECKPOINT)
        save(model, tmp / "model", metadata={"target": config["target"]})
        write_json(tmp / "importance.json", parts["importance"])
        write_json(tmp / "config.json", config)
        write_json(tmp / "history.json", model.history_)
        write_json(tmp / "metrics.json", parts["metrics"])
        parts["predictions"].to_csv(tmp / "predictions.csv", index=False)


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


def stream_predictions(
    model, chunks, out, *, parquet=False, keep=(), interval=None, by=None
) -> int:
    """Predict table chunks one at a time and append them to ``out`` (a path, or a text
    stream for CSV) as Parquet or CSV, so memory holds one chunk whatever the input's
    size. ``keep`` names input columns copied in front (an id); those that are not
    features are not given to the model. Returns the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer, rows = None, 0
    try:
        for chunk in chunks:
            missing = [c for c in keep if c not in chunk.columns]
            if missing:
                raise ValueError(
                    f"--keep names {missing}, which the table does not have; its columns "
                    f"are {list(chunk.columns)[:20]}"
                )
            features = model.preprocessor_.columns
            X = features_for(model, chunk.drop(columns=[c for c in keep if c not in features]))
            pred = prediction_frame(model, X, interval=interval, by=by)
            pred = pd.concat([chunk[list(keep)].reset_index(drop=True), pred], axis=1)
            if parquet:
                table = pa.Table.from_pandas(pred, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(out, table.schema)
                writer.write_table(table.cast(writer.schema))
            else:
                pred.to_csv(out, mode="a", header=rows == 0, index=False, float_format="%.17g")
            rows += len(pred)
    finally:
        if writer is not None:
            writer.close()
    return rows


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
