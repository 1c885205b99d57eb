"""``dnnreg train`` on a table larger than memory: the run directory of :mod:`dnnreg.run`,
filled without ever holding the table.

The test rows are held out by a hash of their position
(:class:`~dnnreg.tables.streaming.Holdout`, ``test_fraction`` of them, salted with the
seed); the model trains streamed on the others (:mod:`dnnreg.estimators.streaming`, which
holds out its own validation rows the same way);
then one more pass reads every row once:

- every test row is predicted in chunks and scored exactly
  (:class:`~dnnreg.metrics.RunningRegressionMetrics`);
- the first :data:`KEPT_ROWS` test rows are kept for ``predictions.csv``, the permutation
  importance and the linear baseline's test score;
- a hashed sample of :data:`KEPT_ROWS` other rows (training and validation rows alike)
  fits the linear baseline and gives both models' "train" scores.

``metrics.json`` says how many rows each score saw (``n``). A classifier's accuracy and log
loss are exact over every test row
(:class:`~dnnreg.metrics.RunningClassificationMetrics`); its ROC AUC (two classes), which
needs every score at once, comes from the kept rows and says so (``roc_auc_n``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dnnreg.run import (
    CHECKPOINT,
    check_run_dir,
    permutation_importance_records,
    prediction_frame,
    train_in_run,
    write_run,
)

KEPT_ROWS = 100_000
_SALT_BASELINE = 0x5EED_0004


def streamed_rows(data, max_memory_rows="auto"):
    """``None`` when the table ``data`` (a file, a directory or glob of Parquet files) fits
    in ``max_memory_rows``; else its row count (CSV: estimated from the first 1 MB), which
    means ``dnnreg train`` streams it."""
    from dnnreg.tables.streaming import estimated_csv_rows, memory_rows, open_dataset

    path = Path(str(data))
    if path.is_file():
        try:  # a file that cannot be counted is read whole, which reports what is wrong
            if path.name.lower().endswith((".parquet", ".pq")):
                import pyarrow.parquet as pq

                meta = pq.ParquetFile(path).metadata
                rows, columns = meta.num_rows, meta.num_columns
            else:
                rows, columns = estimated_csv_rows(path)
        except Exception:  # noqa: BLE001 - pyarrow and gzip raise their own types
            return None
    else:
        dataset = open_dataset(data)
        rows, columns = dataset.count_rows(), len(dataset.schema.names)
    return rows if rows > memory_rows(max_memory_rows, columns) else None


def streamed_task(data, target: str) -> str:
    """``task="auto"`` for a table too large to read: classification when the target
    column's stored type is text, categories or booleans, else regression (the in-memory
    rule, :func:`~dnnreg.tables.reading.infer_task`, without its look at the values)."""
    import pyarrow as pa

    from dnnreg.tables.streaming import open_dataset

    schema = open_dataset(data).schema
    if target not in schema.names:
        return "regression"  # the fit names the missing column
    kind = schema.field(target).type
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    return (
        "classification"
        if text or pa.types.is_boolean(kind) or pa.types.is_dictionary(kind)
        else "regression"
    )


def streamed_train_run(
    data, target: str, out: Path, *, params: dict, task: str = "regression",
    test_fraction: float = 0.2,
    val_fraction: float = 0.2, seed: int = 0, overwrite: bool = False,
    flag: str = "overwrite=True", resume: bool = False, keep_checkpoint: bool = False,
) -> dict | None:  # fmt: skip
    """Train on the table ``data`` streamed and write a complete run directory ``out``
    (see the module docstring); returns the metrics, ``None`` on a torchrun rank other
    than 0 (which trains its share and writes nothing)."""
    from dnnreg._files import lock
    from dnnreg.estimators.classifier import DNNClassifier
    from dnnreg.estimators.regressor import DNNRegressor
    from dnnreg.tables.streaming import Holdout
    from dnnreg.training.distributed import launched, process_rank

    data_parallel = launched()
    if data_parallel and (resume or keep_checkpoint):
        raise ValueError(
            "--resume and --keep-checkpoint need a checkpoint, which a data-parallel "
            "(torchrun) training does not write yet; train in one process for them"
        )
    check_run_dir(out, overwrite=overwrite, resume=resume, flag=flag)
    holdout = Holdout(data, test_fraction, seed=seed)
    params = {
        "random_state": seed,
        **params,
        "validation_fraction": val_fraction / (1 - test_fraction),  # of the non-test rows
    }
    if not data_parallel:
        params.update(keep_checkpoint=True, checkpoint_dir=str(out / CHECKPOINT))
    model = (DNNClassifier if task == "classification" else DNNRegressor)(**params)
    if data_parallel and process_rank() != 0:
        model.set_params(verbose=0, checkpoint_dir=None, keep_checkpoint=False)
        model.fit(holdout, target)
        return None
    with lock(out):
        train_in_run(out, lambda: model.fit(holdout, target, resume=resume), data_parallel)
        model.set_params(checkpoint_dir=None, keep_checkpoint=False)
        metrics, kept, sample = _score(model, holdout, target, seed)
        importance = permutation_importance_records(
            model, kept.drop(columns=["row", target]), kept[target], seed
        )
        predictions = pd.concat([_predictions(sample, "train", model, target),
                                 _predictions(kept, "test", model, target)])  # fmt: skip
        streamed = model.resolved_["streamed"]
        config = {
            "data": str(data),
            "target": target,
            "task": task,
            "seed": seed,
            "test_fraction": test_fraction,
            "val_fraction": val_fraction,
            "rows": {
                "train": streamed["training_rows"],
                "validation": streamed["validation_rows"],
                "test": metrics["test"]["n"],
            },
            "streamed": True,
        }
        parts = {"importance": importance, "metrics": metrics, "predictions": predictions}
        write_run(out, model, config, parts, keep_checkpoint=keep_checkpoint, flag=flag)
    return metrics


def _score(model, holdout, target: str, seed: int):
    """One pass: the model's exact test metrics, the kept test rows, the baseline's
    training sample, the baseline fitted on it and both models' scores."""
    from dnnreg.metrics import RunningClassificationMetrics, RunningRegressionMetrics, score_model
    from dnnreg.studies.baselines import LinearBaseline, LogisticBaseline
    from dnnreg.tables.streaming import position_hash

    classify = hasattr(model, "classes_")
    if classify:
        running = RunningClassificationMetrics(model.classes_)
    else:
        running = RunningRegressionMetrics()
    kept, sample, n_kept = [], [], 0
    rows = holdout.dataset.count_rows()
    rate = KEPT_ROWS / max(1.0, rows * (1 - holdout.fraction))
    for frame, positions, held in holdout.chunks():
        y = frame[target].to_numpy() if classify else (
            pd.to_numeric(frame[target], errors="coerce").to_numpy(np.float64))  # fmt: skip
        frame = frame.assign(row=positions)
        test = frame[held]
        if len(test):
            X_test = test.drop(columns=["row", target])
            running.add(y[held], model.predict_proba(X_test) if classify else model.predict(X_test))
            if n_kept < KEPT_ROWS:
                kept.append(test.iloc[: KEPT_ROWS - n_kept])
                n_kept += len(kept[-1])
        taken = ~held & (position_hash(positions, seed ^ _SALT_BASELINE) < rate)
        sample.append(frame[taken])
    kept = pd.concat(kept, ignore_index=True)
    sample = pd.concat(sample, ignore_index=True)
    X_s, y_s = sample.drop(columns=["row", target]), sample[target]
    X_k, y_k = kept.drop(columns=["row", target]), kept[target]
    baseline = (LogisticBaseline() if classify else LinearBaseline()).fit(X_s, y_s)
    test_metrics = running.result()
    if classify and len(model.classes_) == 2:  # from the kept rows: it needs all at once
        kept_scores = score_model(model, X_k, y_k)
        if "roc_auc" in kept_scores:
            test_metrics.update(roc_auc=kept_scores["roc_auc"], roc_auc_n=kept_scores["n"])
    metrics = {
        "target": target,
        "task": "classification" if classify else "regression",
        "fit_seconds": model.fit_seconds_,
        "best_epoch": model.best_epoch_,
        "n_epochs": model.n_iter_,
        "train": score_model(model, X_s, y_s),
        "test": test_metrics,
        f"baseline_{'logistic' if classify else 'linear'}": {
            "train": score_model(baseline, X_s, y_s),
            "test": score_model(baseline, X_k, y_k),
        },
    }
    return metrics, kept, sample


def _predictions(rows: pd.DataFrame, split: str, model, target: str) -> pd.DataFrame:
    """``predictions.csv``'s rows for ``rows``: position, split, target, prediction."""
    head = pd.DataFrame({"row": rows["row"], "split": split, target: rows[target]})
    pred = prediction_frame(model, rows.drop(columns=["row", target]))
    return pd.concat([head.reset_index(drop=True), pred], axis=1)
