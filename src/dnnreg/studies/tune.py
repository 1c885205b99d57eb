"""Hyperparameter search with Optuna: TPE sampling (Bergstra et al. 2011) and median
pruning, in a persistent study that can be resumed and shared.

Protocol: the rows are split once (seeded) into a search-training part and a validation
part; every trial fits on the first with its own early stopping (the estimator's internal
split of those rows) and is scored on the second, so the test rows of any later evaluation
never steer the search. After each epoch a trial reports its validation loss; the median
pruner stops a trial whose loss is worse than the median of earlier trials at the same
epoch (after ``PRUNE_WARMUP`` epochs), which spends the budget on promising settings.

Storage: by default a journal file (plain append-only text, safe for several processes
on one machine); any SQLAlchemy URL (``sqlite:///study.db``,
``postgresql://user@host/db``) works the same, so several machines can share one study.
The same ``study_name`` and storage resume a study where it stopped.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dnnreg._optional import import_optional

logger = logging.getLogger("dnnreg")

PRUNE_WARMUP = 5  # epochs before a trial may be pruned
WIDTHS = (128, 256, 512)


def search_space(trial) -> dict:
    """The parameters TPE samples; everything else keeps the estimator's default.

    Ranges follow what the tabular-DL literature tunes (Gorishniy et al. 2021, 2022, 2024):
    depth and width, dropout, the AdamW rate and decay, batch size, the input scaling, and
    the numerical embedding with its frequency scale σ (log-uniform, as the PLR paper) or
    its bins (quantile or target-aware).
    """
    depth = trial.suggest_int("depth", 1, 4)
    width = trial.suggest_categorical("width", WIDTHS)
    embedding = trial.suggest_categorical(
        "numeric_embedding", ["none", "periodic", "piecewise_linear"]
    )
    extra = {}
    if embedding == "periodic":
        extra["embedding_sigma"] = trial.suggest_float("embedding_sigma", 0.01, 1.0, log=True)
    if embedding == "piecewise_linear":
        extra["embedding_binning"] = trial.suggest_categorical(
            "embedding_binning", ["quantile", "tree"]
        )
    return {
        **extra,
        "numeric_embedding": embedding,
        "hidden_layer_sizes": (width,) * depth,
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
        "learning_rate_init": trial.suggest_float("learning_rate_init", 1e-4, 5e-3, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", ["auto", 64, 128, 256, 512]),
        "numeric_scaling": trial.suggest_categorical(
            "numeric_scaling", ["quantile", "standard", "robust", "smooth_clip"]
        ),
    }


def default_trial(model, n_numeric: int) -> dict:
    """The point of :func:`search_space` that matches ``model``'s settings (its defaults,
    unless ``fixed`` changed them) on a table with ``n_numeric`` numeric columns, for
    Optuna's ``enqueue_trial``."""
    from dnnreg.options import AUTO_DROPOUT, resolve_embedding

    p = model.get_params()
    if p["dropout"] == "auto":  # what "auto" is on a table in memory, the only kind tuned
        p["dropout"] = AUTO_DROPOUT
    p["numeric_embedding"] = resolve_embedding(p["numeric_embedding"], n_numeric)
    sizes = tuple(p["hidden_layer_sizes"]) or (WIDTHS[1],)
    point = {
        "depth": len(sizes),
        "dropout": p["dropout"],
        "learning_rate_init": p["learning_rate_init"],
        "weight_decay": p["weight_decay"],
        "batch_size": p["batch_size"],
        "numeric_scaling": p["numeric_scaling"],
        "numeric_embedding": p["numeric_embedding"],
    }
    if p["numeric_embedding"] == "periodic":
        point["embedding_sigma"] = p["embedding_sigma"]
    if p["numeric_embedding"] == "piecewise_linear":
        point["embedding_binning"] = p["embedding_binning"]
    if sizes[0] in WIDTHS:  # else Optuna samples the width
        point["width"] = sizes[0]
    return point


JOURNAL = "study.journal"


def study_dir(path, *, overwrite: bool = False, flag: str = "overwrite=True") -> bool:
    """Make ``path`` the directory of a tuning study; True when it resumes one there.

    Absent (or empty): created and marked as dnnreg's. An earlier study directory: resumed,
    or with ``overwrite`` replaced by an empty one (the old study is deleted). Any other
    dnnreg output is replaced only with ``overwrite``; anything else is refused
    (``FileExistsError``), as every dnnreg output path is (see :mod:`dnnreg._files`).
    """
    from dnnreg._files import check_output_dir, make_output_dir, marker_of, output_dir

    path = Path(path)
    transient = [JOURNAL + ".lock*"]  # Optuna's lock symlinks come and go beside the journal
    marker = marker_of(path)
    resume = marker is not None and marker["dnnreg_output"] == "tune" and not overwrite
    existing = check_output_dir(path, overwrite=overwrite, flag=flag, resume=resume)
    if resume:
        return True
    if existing is None and not path.exists():
        make_output_dir(path, kind="tune", files={JOURNAL: None}, transient=transient)
    else:  # an empty directory, or an output to replace: swap in a fresh, marked one
        with output_dir(
            path, kind="tune", overwrite=True, flag=flag, transient=transient, files={JOURNAL: None}
        ):
            pass
    return False


def _check_journal(path: Path) -> None:
    """Refuse a ``--storage`` file that exists and is not an Optuna journal: the journal
    backend appends to it, which would change a file dnnreg did not write."""
    if not path.exists():
        return
    with open(path, "rb") as f:
        first = f.readline()
    try:
        ok = not first.strip() or "op_code" in json.loads(first)
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise FileExistsError(
            f"storage {str(path)!r} exists and is not an Optuna journal; "
            "name a new file or an existing study's journal"
        )


def open_study(
    storage: str | None,
    study_name: str,
    *,
    direction: str,
    seed: int,
    default_dir: Path,
    overwrite: bool = False,
):
    """Create or resume the study ``study_name`` in ``storage`` (a SQLAlchemy URL, a journal
    file path, or None for ``default_dir/study.journal``: see :func:`study_dir`)."""
    optuna = import_optional("optuna")
    if storage is None or "://" not in storage:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        if storage:
            path = Path(storage)
            _check_journal(path)
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            study_dir(default_dir, overwrite=overwrite)
            path = Path(default_dir) / JOURNAL
        storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction=direction,
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_warmup_steps=PRUNE_WARMUP),
    )


class _ReportEpochs:
    """Fit callback: report each epoch's validation loss to the trial; raise
    ``TrialPruned`` (ending the fit) when the pruner says so."""

    def __init__(self, trial):
        self.trial = trial

    def on_epoch_end(self, record, model):
        value = record.get("val_loss")
        if value is None or not math.isfinite(value):
            return
        self.trial.report(value, record["epoch"])
        if self.trial.should_prune():
            import optuna

            raise optuna.TrialPruned(f"pruned at epoch {record['epoch']}")


def _optuna_warnings_only(search):
    """Run ``search`` with Optuna's own logging at WARNING (dnnreg reports the trials that
    matter) and restore the user's Optuna verbosity afterwards, whatever happens."""

    @functools.wraps(search)
    def quiet(*args, **kwargs):
        optuna = import_optional("optuna")
        before = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            return search(*args, **kwargs)
        finally:
            optuna.logging.set_verbosity(before)

    return quiet


@_optuna_warnings_only
def tune(
    X,
    y,
    *,
    task: str = "regression",
    time_budget: float | None = 600.0,
    n_trials: int | None = None,
    storage: str | None = None,
    study_name: str = "dnnreg",
    seed: int = 0,
    val_fraction: float = 0.2,
    fixed: dict | None = None,
    default_dir: Path | str = "runs/tune",
    pruner=None,
    eval_set=None,
    start_with_defaults: bool = True,
    overwrite: bool = False,
):
    """Search the DNN's hyperparameters; returns the Optuna study (``study.best_params``,
    ``study.best_value``; ``study.user_attrs["best_estimator_params"]`` holds the full
    parameter dict to pass to the estimator; ``study.best_model_`` the best fitted model of
    this call's trials, or None). ``fixed`` parameters are held constant.

    Each trial fits on ``val_fraction``'s complement of the rows and is scored on the rest;
    with ``eval_set=(X_val, y_val)`` it fits on all of ``X, y`` and is scored (and early
    stopped) on those rows instead, the protocol of the tabular benchmarks.

    ``time_budget`` bounds the whole search: no trial starts after it, and a running trial
    stops training when it runs out (``max_time``), keeping its best epoch so far. A new
    study's first trial is the defaults unless ``start_with_defaults=False``.

    Without ``storage`` the study lives in ``default_dir`` (:func:`study_dir`): an earlier
    study there is resumed, or replaced with ``overwrite=True``."""
    from dnnreg.estimators.classifier import DNNClassifier
    from dnnreg.estimators.regressor import DNNRegressor
    from dnnreg.studies.evaluation import PRIMARY, score
    from dnnreg.tables.splits import holdout

    metric, maximize = PRIMARY[task]
    study = open_study(
        storage,
        study_name,
        direction="maximize" if maximize else "minimize",
        seed=seed,
        default_dir=Path(default_dir),
        overwrite=overwrite,
    )
    if pruner is not None:
        study.pruner = pruner
    X = X.reset_index(drop=True) if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    y = pd.Series(np.asarray(y))
    if eval_set is None:
        fit_rows, val_rows = holdout(
            len(y), val_fraction, seed=seed, stratify=y if task == "classification" else None
        )
        X_fit, y_fit, X_val, y_val = (
            X.iloc[fit_rows],
            y.iloc[fit_rows],
            X.iloc[val_rows],
            y.iloc[val_rows],
        )
        held_out = None
    else:
        X_fit, y_fit = X, y
        X_val, y_val = eval_set[0], pd.Series(np.asarray(eval_set[1]))
        held_out = (X_val, y_val)
    cls = DNNRegressor if task == "regression" else DNNClassifier

    kept = {}
    deadline = None if time_budget is None else time.monotonic() + time_budget

    def objective(trial):
        params = {**search_space(trial), **(fixed or {}), "random_state": seed}
        trial.set_user_attr(
            "params", {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
        )
        model = cls(**params)
        if deadline is not None:  # not in the stored parameters: a refit has its own clock
            left = max(deadline - time.monotonic(), 1.0)
            model.set_params(max_time=min(left, params.get("max_time") or math.inf))
        model.fit(X_fit, y_fit, eval_set=held_out, callbacks=[_ReportEpochs(trial)])
        value = score(model, X_val, y_val, task)[metric]
        if "value" not in kept or (value > kept["value"] if maximize else value < kept["value"]):
            kept.update(value=value, model=model)
        return value

    import optuna

    if start_with_defaults and not study.trials:  # tuning starts from the defaults
        study.enqueue_trial(
            default_trial(cls(**(fixed or {})), X_fit.select_dtypes("number").shape[1])
        )
    study.optimize(objective, n_trials=n_trials, timeout=time_budget, catch=(ValueError,))
    # The best model fitted by this call (a resumed study's earlier trials left no model):
    # the same as refitting its parameters, without paying for the fit twice.
    study.best_model_ = kept.get("model")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = study.best_trial.user_attrs["params"]
        study.set_user_attr("best_estimator_params", best)
    return study
