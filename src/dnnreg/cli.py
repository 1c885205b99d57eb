"""The ``dnnreg`` command line: parse, call the library, write files. No ML logic here.

Every failure the user can fix becomes one line on stderr and exit code 1 (2 for usage
errors); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import warnings
from pathlib import Path

import pandas as pd

from dnnreg._validation import did_you_mean
from dnnreg._version import __version__
from dnnreg.notices import cli_showwarning
from dnnreg.run import features_for, model_dir, resolve_task, train_run

logger = logging.getLogger("dnnreg")


class UsageError(Exception):
    """A mistake in the command line itself (exit code 2)."""


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every flag's default in its help line (unless there is none to show); epilogs (the
    --set keys) kept as written."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, not argparse's usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ---------------------------------------------------------------------- --set parsing
_BOOLEAN_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def parse_value(key: str, text: str):
    """Turn ``--set`` text into a Python value: JSON first, then a comma list of numbers.

    >>> parse_value("hidden_layer_sizes", "128,64"), parse_value("dropout", "0.1")
    ((128, 64), 0.1)
    >>> parse_value("early_stopping", "False"), parse_value("bagging", "0")
    (False, False)
    >>> parse_value("max_time", "None")
    """
    from dnnreg.options import OPTIONS

    word = text.strip().lower()
    if word in ("none", "null"):
        return None
    if isinstance(OPTIONS.get(key, (None,))[0], bool) and word in _BOOLEAN_WORDS:
        return _BOOLEAN_WORDS[word]
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
        if "," in text:
            try:
                value = tuple(json.loads(p) for p in text.split(",") if p.strip())
            except json.JSONDecodeError:
                pass
    if isinstance(value, list):
        value = tuple(value)
    if (
        key in ("hidden_layer_sizes", "quantiles")
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    ):
        value = (value,)
    return value


def _settings(args, task: str) -> dict:
    """The DNN's parameters for a command: the ``--config`` file's, then the ``--preset``'s,
    then each ``--set``, then ``--device`` and ``--threads``; checked together."""
    from dnnreg import DNNClassifier, DNNRegressor

    cls = DNNClassifier if task == "classification" else DNNRegressor
    params = {}
    if getattr(args, "config_params", None):
        params.update(checked_settings(dict(args.config_params), cls, f"--config {args.config}"))
    if getattr(args, "preset", None):
        params.update(_preset_params(args.preset, task))
    params.update(parse_settings(args.set, cls))
    if getattr(args, "device", None):
        params["device"] = args.device
    if getattr(args, "threads", None):
        params["n_threads"] = "auto" if args.threads == "auto" else int(args.threads)
    return checked_settings(params, cls, "the settings")


def _preset_params(preset: str, task: str) -> dict:
    """The settings a preset changes from the defaults (``--set`` overrides them)."""
    from dnnreg import DNNClassifier, DNNRegressor

    cls = DNNClassifier if task == "classification" else DNNRegressor
    default = cls().get_params()
    return {k: v for k, v in cls.from_preset(preset).get_params().items() if v != default[k]}


def checked_settings(params: dict, estimator_cls, source: str) -> dict:
    """``params`` (from a config file) with unknown keys refused and every value checked
    by the estimator, as ``--set`` values are; lists become tuples where the option's
    default is a tuple."""
    valid = estimator_cls().get_params()
    unknown = [k for k in params if k not in valid]
    if unknown:
        raise UsageError(
            f"{source}: unknown parameter(s) {unknown}"
            + did_you_mean(unknown[0], valid)
            + "; 'dnnreg train --help' lists the keys"
        )
    params = {
        k: tuple(v) if isinstance(v, list) and isinstance(valid[k], tuple) else v
        for k, v in params.items()
    }
    try:
        estimator_cls(**params).check_params()
    except ValueError as err:
        raise UsageError(f"bad value in {source}: {err}") from err
    return params


def parse_settings(pairs: list[str], estimator_cls) -> dict:
    """``["key=value", ...]`` -> checked keyword arguments for ``estimator_cls``."""
    valid = estimator_cls().get_params()
    params, errors = {}, []
    for pair in pairs or []:
        if "=" not in pair:
            errors.append(f"--set takes key=value, got {pair!r}")
            continue
        key, text = (s.strip() for s in pair.split("=", 1))
        if key not in valid:
            errors.append(
                f"unknown --set key {key!r}"
                + did_you_mean(key, valid)
                + "; 'dnnreg train --help' lists the keys"
            )
            continue
        params[key] = parse_value(key, text)
    if errors:
        raise UsageError("; ".join(errors))
    try:
        estimator_cls(**params).check_params()
    except ValueError as err:
        raise UsageError(f"bad --set value: {err}") from err
    return params


# ---------------------------------------------------------------------- shared steps
OVERWRITE = "--overwrite"  # how the CLI spells overwrite=True in the messages of _files


def _check_out_dir(args) -> None:
    """Refuse ``--out`` before any data is read or any model trained (see dnnreg._files)."""
    from dnnreg._files import check_output_dir

    check_output_dir(args.out, overwrite=args.overwrite, flag=OVERWRITE)


def _print_metrics(metrics: dict) -> None:
    classify = metrics.get("task") == "classification"
    columns = ("accuracy", "log_loss") if classify else ("rmse", "mae", "r2")
    baseline_key = "baseline_logistic" if classify else "baseline_linear"
    baseline = "logistic regression" if classify else "linear regression"
    print(f"{'split':<11}{'model':<21}" + "".join(f"{c:>10}" for c in columns) + f"{'rows':>8}")
    for name in ("train", "validation", "test"):
        if name in metrics:
            for label, m in (("dnnreg", metrics[name]), (baseline, metrics[baseline_key][name])):
                print(
                    f"{name:<11}{label:<21}"
                    + "".join(f"{m[c]:>10.4f}" for c in columns)
                    + f"{m['n']:>8}"
                )
    print(
        f"fit: {metrics['fit_seconds']:.1f} s, best epoch {metrics['best_epoch']} of "
        f"{metrics['n_epochs']}"
    )


# ---------------------------------------------------------------------- commands
def cmd_train(args) -> int:
    from dnnreg.network.losses import CLASSIFICATION_LOSSES
    from dnnreg.run import check_run_dir
    from dnnreg.streamed_run import streamed_rows

    check_run_dir(args.out, overwrite=args.overwrite, resume=args.resume, flag=OVERWRITE)
    loss = dict(p.split("=", 1) for p in args.set or [] if "=" in p).get("loss", "").strip()
    loss = loss or str((args.config_params or {}).get("loss", ""))
    task = args.task
    if task == "auto" and loss:  # the loss decides the task: check settings before reading
        task = "classification" if loss in CLASSIFICATION_LOSSES else "regression"
    if task != "auto":
        _settings(args, task)
    if args.data is not None:
        # the task's own settings: a classifier's (class_weight, ...) are checked as such
        settings = _settings(args, "classification" if task == "classification" else "regression")
        budget = settings.get("max_memory_rows", "auto")
        streamed = streamed_rows(args.data, budget)
        if streamed is not None:
            return _train_streamed(args, streamed, task)
    frame = _read(args, args.data)
    task = resolve_task(task, frame, args.target)
    params = _train_params(args, task)
    unlabeled = None
    if args.unlabeled:
        unlabeled = _read(args, args.unlabeled)
        unlabeled = unlabeled.drop(columns=[args.target], errors="ignore")
        if params.get("pretrain", "none") == "none":
            raise UsageError(
                "--unlabeled rows are used by pretraining only; add --set "
                "pretrain=autoencoder (or denoising, sparse, rbm)"
            )
    metrics = train_run(
        frame,
        args.target,
        Path(args.out),
        params=params,
        task=task,
        test_fraction=args.test_fraction,
        val_fraction=args.val_fraction,
        seed=args.seed,
        source=str(args.data),
        unlabeled=unlabeled,
        overwrite=args.overwrite,
        flag=OVERWRITE,
        weight=args.weight,
        resume=args.resume,
        keep_checkpoint=args.keep_checkpoint,
    )
    return _report_run(args, metrics)


def _train_params(args, task: str) -> dict:
    """The DNN's parameters for ``train``: the settings, plus what its own flags ask
    (progress unless ``--quiet``, ``--diagnose``, ``--tensorboard``); the checkpoint's
    place is the run's, never a setting."""
    params = _settings(args, task)
    for key in ("checkpoint_dir", "keep_checkpoint"):
        if params.get(key) not in (None, False):  # a replayed config.json holds the defaults
            raise UsageError(
                f"train keeps its checkpoint in {args.out}/checkpoint; drop --set {key} "
                "(--keep-checkpoint keeps it after the run)"
            )
    if not args.quiet:
        params.setdefault("verbose", 1)
    if args.diagnose:
        params["diagnostics"] = True
    if args.tensorboard:
        params["tensorboard_dir"] = args.tensorboard
    return params


def _report_run(args, metrics) -> int:
    """Print a finished run's metrics; ``None`` is a torchrun rank other than 0, which
    leaves reporting and writing to rank 0."""
    if metrics is None:
        return 0
    _print_metrics(metrics)
    print(f"saved model, metrics, history and predictions to {args.out}/")
    return 0


def _train_streamed(args, rows: int, task: str) -> int:
    """``train`` on a table over the memory budget (:mod:`dnnreg.streamed_run`); ``task``
    "auto" is read from the target column's type (text, categories or booleans are
    classes; numbers, integers too, are regression)."""
    from dnnreg.streamed_run import streamed_task, streamed_train_run

    for flag, value in (("--weight", args.weight), ("--unlabeled", args.unlabeled)):
        if value is not None:
            raise UsageError(
                f"{flag} cannot be used with a table streamed from disk ({rows:,} rows is more "
                "than max_memory_rows); drop it, or raise --set max_memory_rows"
            )
    task = streamed_task(args.data, args.target) if task == "auto" else task
    params = _train_params(args, task)
    if not args.quiet:
        print(f"dnnreg: streaming {args.data} ({rows:,} rows, more than fit in memory)")
    metrics = streamed_train_run(
        args.data, args.target, Path(args.out), params=params, task=task,
        test_fraction=args.test_fraction, val_fraction=args.val_fraction, seed=args.seed,
        overwrite=args.overwrite, flag=OVERWRITE, resume=args.resume,
        keep_checkpoint=args.keep_checkpoint,
    )  # fmt: skip
    return _report_run(args, metrics)


def cmd_demo(args) -> int:
    from dnnreg.tables.datasets import dataset_info, load_dataset

    _check_out_dir(args)
    info = dataset_info("california_housing")
    params = {} if args.quiet else {"verbose": 1}
    print(
        "dnnreg demo: the default network on California housing "
        f"({info.rows} rows; target {info.target} in $100k), split 64/16/20 with seed 0"
    )
    metrics = train_run(
        load_dataset(info.name),
        info.target,
        Path(args.out),
        params=params,
        seed=0,
        source=f"bundled:{info.name}",
        overwrite=args.overwrite,
        flag=OVERWRITE,
    )
    _print_metrics(metrics)
    out = Path(args.out)
    print(
        f"saved model to {out / 'model'}/, predictions to {out / 'predictions.csv'}, "
        f"metrics to {out / 'metrics.json'}"
    )
    return 0


def cmd_predict(args) -> int:
    """Stream the table through the model in chunks (bounded memory, any input size) into
    a CSV or Parquet file written atomically, or CSV on stdout with ``--out -``."""
    from dnnreg._files import check_output_file, output_file
    from dnnreg.run import stream_predictions
    from dnnreg.tables.reading import iter_table

    to_stdout = args.out == "-"
    if not to_stdout:
        check_output_file(args.out, overwrite=args.overwrite, flag=OVERWRITE)
    if args.interval_by is not None and args.interval is None:
        raise ValueError("--interval-by needs --interval COVERAGE (e.g. --interval 0.9)")
    if args.engine == "numpy":
        from dnnreg.inference.runtime import load_numpy as load
    else:
        from dnnreg import load
    model = load(model_dir(args.model))
    chunks = iter_table(
        args.data,
        chunk_rows=args.chunk_rows,
        sep=args.sep,
        encoding=args.encoding,
        na_values=args.na,
    )
    options = dict(keep=args.keep or (), interval=args.interval, by=args.interval_by)
    if to_stdout:
        stream_predictions(model, chunks, sys.stdout, **options)
        return 0
    parquet = args.out.lower().endswith((".parquet", ".pq"))
    with output_file(args.out, overwrite=args.overwrite, flag=OVERWRITE) as tmp:
        rows = stream_predictions(model, chunks, tmp, parquet=parquet, **options)
    print(f"wrote {rows} predictions to {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    from dnnreg import load
    from dnnreg.tables.reading import split_xy

    model = load(model_dir(args.model))
    task = "classification" if hasattr(model, "classes_") else "regression"
    X, y = split_xy(_read(args, args.data), args.target, min_rows=1, task=task)
    from dnnreg.metrics import score_model

    print(json.dumps(score_model(model, features_for(model, X), y), indent=1))
    return 0


def _load_xy(args):
    """Read DATA, pick the task, split off the target (the same checks as ``train``)."""
    from dnnreg.tables.reading import split_xy

    frame = _read(args, args.data)
    task = resolve_task(args.task, frame, args.target)
    X, y = split_xy(frame, args.target, task=task)
    return X, y, task


def _model_list(text):
    return None if text is None else [m.strip() for m in text.split(",") if m.strip()]


def cmd_compare(args) -> int:
    from dnnreg._files import output_dir, write_json
    from dnnreg.report.plots import comparison_plot
    from dnnreg.studies.comparison import as_records, compare
    from dnnreg.studies.evaluation import PRIMARY

    _check_out_dir(args)
    X, y, task = _load_xy(args)
    results = compare(
        X,
        y,
        task=task,
        models=_model_list(args.models),
        folds=args.folds,
        repeats=args.repeats,
        time_budget=args.time_budget,
        seed=args.seed,
        dnn_params=_settings(args, task),
    )
    summary, verdict = results.attrs["summary"], results.attrs["verdict"]
    metric = PRIMARY[task][0]
    _print_summary(summary, task)
    for name, note in results.attrs["notes"].items():
        print(f"{name}: {note}")
    if verdict:
        print("\n" + verdict["text"])
    with output_dir(args.out, kind="compare", overwrite=args.overwrite, flag=OVERWRITE) as tmp:
        write_json(
            tmp / "results.json",
            {
                "data": str(args.data),
                "target": args.target,
                "task": task,
                "seed": args.seed,
                "protocol": {
                    "folds": None if args.repeats else args.folds,
                    "repeats": args.repeats,
                },
                "summary": summary,
                "verdict": verdict,
                "notes": results.attrs["notes"],
                "splits": as_records(results),
            },
        )
        comparison_plot(
            summary, metric, tmp / "comparison.png", title=f"{Path(args.data).name}: {args.target}"
        )
    print(f"wrote {args.out}/results.json and {args.out}/comparison.png")
    return 0


def _print_summary(summary: list[dict], task: str) -> None:
    columns = ("rmse", "mae", "r2") if task == "regression" else ("accuracy", "log_loss")
    print(
        f"{'model':<15}" + "".join(f"{c:>20}" for c in columns) + f"{'fit s':>9}{'predict s':>11}"
    )
    for r in summary:
        cells = "".join(f"{r[c + '_mean']:>11.4f} ± {r[c + '_std'] or 0:<6.4f}" for c in columns)
        print(
            f"{r['model']:<15}{cells}{r['fit_seconds_mean']:>9.2f}{r['predict_seconds_mean']:>11.3f}"
        )


def cmd_learning_curve(args) -> int:
    from dnnreg._files import output_dir, write_json
    from dnnreg.report.plots import learning_curve_plot
    from dnnreg.studies.comparison import as_records, learning_curve
    from dnnreg.studies.evaluation import PRIMARY

    _check_out_dir(args)
    X, y, task = _load_xy(args)
    curve = learning_curve(
        X,
        y,
        task=task,
        models=_model_list(args.models),
        repeats=args.repeats,
        time_budget=args.time_budget,
        seed=args.seed,
        dnn_params=_settings(args, task),
    )
    metric = PRIMARY[task][0]
    means = curve.groupby(["size", "model"])[metric].mean().unstack()
    print(f"mean test {metric} by training rows:")
    print(means.to_string(float_format=lambda v: f"{v:.4f}"))
    size = curve.attrs["crossover"]
    print(
        "\n"
        + (
            f"crossover: from {size} training rows on, the DNN beats every other model"
            if size is not None
            else "no crossover: the DNN does not beat the best "
            "shallow model for good at any size tried"
        )
    )
    with output_dir(
        args.out, kind="learning-curve", overwrite=args.overwrite, flag=OVERWRITE
    ) as tmp:
        write_json(
            tmp / "learning_curve.json",
            {
                "data": str(args.data),
                "target": args.target,
                "task": task,
                "metric": metric,
                "crossover": size,
                "notes": curve.attrs["notes"],
                "rows": as_records(curve),
            },
        )
        learning_curve_plot(
            as_records(curve),
            metric,
            tmp / "learning_curve.png",
            crossover=size,
            title=f"{Path(args.data).name}: {args.target}",
        )
    print(f"wrote {args.out}/learning_curve.json and {args.out}/learning_curve.png")
    return 0


def cmd_tune(args) -> int:
    from dnnreg._files import write_owned
    from dnnreg.studies.tune import study_dir, tune

    if args.n_trials is not None and args.n_trials < 1:
        raise UsageError(f"--n-trials must be at least 1, got {args.n_trials}")
    # The study lives in --out from its first trial, so a killed search resumes there.
    if study_dir(args.out, overwrite=args.overwrite, flag=OVERWRITE):
        print(f"resuming the study in {args.out}/ (pass --overwrite to start afresh)")
    X, y, task = _load_xy(args)
    fixed = _settings(args, task)
    study = tune(
        X,
        y,
        task=task,
        time_budget=args.time_budget,
        n_trials=args.n_trials,
        storage=args.storage,
        study_name=args.study_name,
        seed=args.seed,
        fixed=fixed,
        default_dir=Path(args.out),
    )
    trials = [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "params": t.user_attrs.get("params"),
        }
        for t in study.trials
    ]
    counts = pd.Series([t["state"] for t in trials]).value_counts().to_dict()
    print(f"study {args.study_name!r}: {len(trials)} trials so far ({counts})")
    best = study.user_attrs.get("best_estimator_params")
    if best is None:
        raise ValueError("no trial completed; raise --time-budget or --n-trials")
    print(f"best validation score {study.best_value:.4f} (trial {study.best_trial.number}):")
    print(json.dumps(best, indent=1))
    write_owned(
        args.out,
        "tune.json",
        (
            json.dumps(
                {
                    "data": str(args.data),
                    "target": args.target,
                    "task": task,
                    "best_value": study.best_value,
                    "best_params": best,
                    "trials": trials,
                },
                indent=1,
                allow_nan=False,
            )
            + "\n"
        ).encode("utf-8"),
    )
    best_config = {"data": str(args.data), "target": args.target, "task": task}
    best_config["params"] = {k: v for k, v in best.items() if k != "random_state"}
    write_owned(
        args.out, "best_config.json", (json.dumps(best_config, indent=1) + "\n").encode("utf-8")
    )
    print(
        f"wrote {args.out}/tune.json and {args.out}/best_config.json; train with it:\n"
        f"  dnnreg train --config {args.out}/best_config.json --out runs/tuned"
    )
    return 0


def cmd_pretrain_study(args) -> int:
    from dnnreg._files import output_dir, write_json
    from dnnreg.report.plots import pretrain_study_plot
    from dnnreg.studies.pretrain_study import STUDY_MODES, pretrain_study

    _check_out_dir(args)
    fractions = _fractions(args.label_fractions)
    modes = _model_list(args.modes)
    unknown = [m for m in modes if m not in STUDY_MODES]
    if unknown:
        raise UsageError(f"--modes must be among {list(STUDY_MODES)}, got {unknown}")
    if args.seeds < 2:
        raise UsageError(f"--seeds must be at least 2 to compare modes, got --seeds={args.seeds}")
    X, y, task = _load_xy(args)
    params = _settings(args, task)
    study = pretrain_study(
        X,
        y,
        task=task,
        label_fractions=fractions,
        modes=tuple(modes),
        seeds=args.seeds,
        params=params,
        log=None if args.quiet else lambda line: print(line, file=sys.stderr),
    )
    summary = study.attrs["summary"]
    metric = summary[0]["metric"]
    table = study.groupby(["fraction", "mode"])[metric].agg(["mean", "std"]).unstack()
    print(f"test {metric}, mean (std) over {args.seeds} seeds, by labelled fraction:")
    for fraction in sorted(study["fraction"].unique()):
        cells = [
            f"{m} {table.loc[fraction, ('mean', m)]:.4f} ({table.loc[fraction, ('std', m)]:.4f})"
            for m in modes
            if ("mean", m) in table.columns
        ]
        print(f"  {fraction:g}: " + "  ".join(cells))
    print("\n" + study.attrs["verdict"])
    with output_dir(
        args.out, kind="pretrain-study", overwrite=args.overwrite, flag=OVERWRITE
    ) as tmp:
        write_json(
            tmp / "pretrain_study.json",
            {
                "data": str(args.data),
                "target": args.target,
                "task": task,
                "metric": metric,
                "params": params,
                "seeds": args.seeds,
                "summary": summary,
                "verdict": study.attrs["verdict"],
                "rows": study.to_dict(orient="records"),
            },
        )
        pretrain_study_plot(
            summary, tmp / "pretrain_study.png", title=f"{Path(args.data).name}: {args.target}"
        )
    print(f"wrote {args.out}/pretrain_study.json and {args.out}/pretrain_study.png")
    return 0


def _fractions(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(
            f"--label-fractions takes numbers like 0.01,0.1,1.0, got {text!r}"
        ) from None
    if not values or not all(0 < v <= 1 for v in values):
        raise UsageError(f"--label-fractions must be in (0, 1], got {text!r}")
    return values


def cmd_diagnose(args) -> int:
    from dnnreg.run import read_run
    from dnnreg.training.verdicts import format_verdict, verdicts

    run = read_run(args.run_dir)
    history, params = run["history"], run["config"]["params"]
    if not any("diagnostics" in r for r in history):
        print("this run recorded no diagnostics; train it again with --diagnose")
    found = verdicts(history, activation=params["activation"], loss=params["loss"])
    for v in found:
        print(format_verdict(v))
    if not found:
        print("no problems found: gradients flow, no layer is mostly dead or saturated")
    return 0


def cmd_report(args) -> int:
    from dnnreg.report.html import write_report

    path = write_report(args.run_dir, args.out, overwrite=args.overwrite, flag=OVERWRITE)
    print(f"wrote {path}")
    return 0


def cmd_export(args) -> int:
    from dnnreg.inference.onnx import export_onnx

    path = export_onnx(model_dir(args.model), args.onnx, overwrite=args.overwrite, flag=OVERWRITE)
    print(
        f"wrote {path}: one input per feature column (numeric: double, categorical: "
        "string; shape (N, 1)), preprocessing included"
    )
    return 0


def cmd_datasets(args) -> int:
    from dnnreg.tables.datasets import list_datasets

    table = list_datasets()[["name", "rows", "features", "target", "license"]]
    print(table.to_string(index=False))
    return 0


def _reading_args(p) -> None:
    """How a CSV is read: its delimiter, encoding and extra missing-value tokens."""
    p.add_argument("--sep", metavar="CHAR", help="CSV delimiter (default ',', tab for .tsv)")
    p.add_argument("--encoding", metavar="NAME", help="CSV text encoding (default utf-8)")
    p.add_argument(
        "--na",
        action="append",
        metavar="TOKEN",
        help="a value that means missing, e.g. '?' (repeatable)",
    )


def _read(args, path):
    """``read_table`` with the command's reading flags; a directory or glob of Parquet
    files read whole (it fits: a larger one is streamed, see :func:`cmd_train`)."""
    from dnnreg.tables.reading import read_table

    if path is not None and (Path(path).is_dir() or any(ch in str(path) for ch in "*?[")):
        from dnnreg.tables.streaming import open_dataset

        return open_dataset(path).to_table().to_pandas()

    return read_table(
        path,
        sep=getattr(args, "sep", None),
        encoding=getattr(args, "encoding", None),
        na_values=getattr(args, "na", None),
    )


def _table_args(p) -> None:
    """DATA, --target and --task: what every command that reads a labelled table takes
    (each may come from ``--config`` instead, see :func:`_apply_config`)."""
    p.add_argument("data", metavar="DATA", nargs="?", help="CSV (optionally .gz) or Parquet file")
    _reading_args(p)
    p.add_argument("--target", help="name of the column to predict (required)")
    p.add_argument(
        "--task",
        choices=("auto", "regression", "classification"),
        help="auto: classification for a text/categorical/boolean target or a "
        "classification loss, else regression (default: auto)",
    )
    _settings_args(p)


# Flags a --config file may also give; the command line wins, then the file, then these.
CONFIG_FLAGS = {
    "data": None,
    "target": None,
    "task": "auto",
    "seed": 0,
    "test_fraction": 0.2,
    "val_fraction": 0.2,
    "weight": None,
}


def _settings_args(p) -> None:
    """--config, --device, --threads, and the list of --set keys in the epilog."""
    p.add_argument(
        "--config",
        metavar="FILE",
        help="a JSON or TOML file of DNN parameters ({'dropout': 0.1, ...}, or under "
        "'params'), optionally with data, target, task, seed and the split fractions: a "
        "run's config.json replays that run, tune's best_config.json trains its best "
        "trial; flags and --set override it",
    )
    p.add_argument("--device", help="shorthand for --set device=... (auto, cpu, cuda:N, mps)")
    p.add_argument("--threads", help="shorthand for --set n_threads=... (auto or N)")
    p.epilog = _set_keys()
    p.formatter_class = _Help


def _set_keys() -> str:
    """Every --set key with its default and what it accepts, from the option table."""
    from dnnreg.options import CLASSIFICATION_ONLY, OPTIONS, REGRESSION_ONLY

    lines = ["--set KEY=VALUE keys (default; accepted values):"]
    for key, (default, allowed) in OPTIONS.items():
        shown = ", ".join(allowed) if isinstance(allowed, tuple) else allowed
        only = (
            " [regression]"
            if key in REGRESSION_ONLY
            else " [classification]"
            if key in CLASSIFICATION_ONLY
            else ""
        )
        lines.append(f"  {key} = {default!r}{only}; {shown}")
    return "\n".join(lines)


def _read_config(path) -> dict:
    """A JSON (or, by its .toml suffix, TOML) mapping, with one-line errors."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError(f"--config {path}: cannot read it ({err.strerror or err})") from err
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            config = tomllib.loads(text)
        else:
            config = json.loads(text)
    except (ValueError, ImportError) as err:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise UsageError(f"--config {path}: not valid {kind} ({err})") from err
    if not isinstance(config, dict):
        raise UsageError(f"--config {path}: expected a mapping of settings")
    return config


def _apply_config(args) -> None:
    """Fill the flags of :data:`CONFIG_FLAGS` left unset from ``--config`` (then their
    defaults), and keep the file's DNN parameters in ``args.config_params``: a mapping
    under "params" (a run's config.json) or "best_params" (tune.json), else the file's
    other keys."""
    if not hasattr(args, "config"):
        return
    config = _read_config(args.config) if args.config else {}
    for key, default in CONFIG_FLAGS.items():
        if hasattr(args, key) and getattr(args, key) is None:
            setattr(args, key, config.get(key, default))
    params = config.get("params", config.get("best_params"))
    if params is None:
        params = {k: v for k, v in config.items() if k not in CONFIG_FLAGS}
    args.config_params = {k: v for k, v in params.items() if k != "random_state"}
    for key in ("data", "target"):
        if hasattr(args, key) and getattr(args, key) is None:
            name = "DATA" if key == "data" else "--target"
            raise UsageError(f"{name} is required (on the command line or in a --config file)")


def _data_args(p) -> None:
    _table_args(p)
    p.add_argument(
        "--models",
        metavar="A,B,...",
        help="comma-separated model names (default: all); the DNN is always included",
    )
    p.add_argument(
        "--time-budget",
        type=float,
        metavar="S",
        help="stop after the split (or repeat) during which S seconds pass",
    )
    p.add_argument("--seed", type=int, help="(default: 0)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a DNNRegressor/DNNClassifier parameter for the DNN (repeatable)",
    )


def _overwrite_arg(p) -> None:
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier dnnreg output at that path (anything else there "
        "is always refused)",
    )


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train on a CSV/Parquet table and save a run directory")
    p.add_argument("data", metavar="DATA", nargs="?", help="CSV (optionally .gz) or Parquet file")
    _reading_args(p)
    p.add_argument("--target", help="name of the column to predict (required)")
    _settings_args(p)
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a DNNRegressor/DNNClassifier parameter, e.g. --set "
        "hidden_layer_sizes=128,128 "
        "--set dropout=0.1 (repeatable)",
    )
    p.add_argument(
        "--preset",
        choices=("fast", "default"),
        help="a bundle of settings (DNNRegressor.from_preset); --set overrides it",
    )
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write")
    p.add_argument(
        "--weight",
        metavar="COL",
        help="a column of non-negative row weights (sample_weight); not a feature",
    )
    _overwrite_arg(p)
    p.add_argument("--test-fraction", type=float, help="(default: 0.2)")
    p.add_argument(
        "--val-fraction",
        type=float,
        help="fraction of the non-test rows used for early stopping (default: 0.2)",
    )
    p.add_argument("--seed", type=int, help="(default: 0)")
    p.add_argument(
        "--task",
        choices=("auto", "regression", "classification"),
        help="auto: classification for a text/categorical/boolean target or a "
        "classification loss, else regression (default: auto)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the killed or interrupted training whose checkpoint RUN_DIR holds "
        "(same data and settings; gives the model an uninterrupted run would)",
    )
    p.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep RUN_DIR/checkpoint after the run finishes (removed by default)",
    )
    p.add_argument(
        "--diagnose",
        action="store_true",
        help="record per-layer gradient health and print verdicts",
    )
    p.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="write TensorBoard events (scalars, histograms, graph) to DIR",
    )
    p.add_argument(
        "--unlabeled",
        metavar="FILE",
        help="rows without the target (same features) for pretraining; needs --set pretrain=...",
    )
    p.set_defaults(func=cmd_train)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page about a run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", metavar="FILE", help="default: RUN_DIR/report.html")
    _overwrite_arg(p)
    p.set_defaults(func=cmd_report)


def _add_diagnose(sub) -> None:
    p = sub.add_parser("diagnose", help="verdicts on a run's gradient health")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(func=cmd_diagnose)


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict with a saved model")
    p.add_argument("model", metavar="MODEL", help="model directory or RUN_DIR")
    p.add_argument("data", metavar="DATA")
    _reading_args(p)
    p.add_argument(
        "--out",
        required=True,
        help="file to write: .parquet for Parquet, else CSV; '-' for CSV on stdout",
    )
    _overwrite_arg(p)
    p.add_argument(
        "--keep",
        action="append",
        metavar="COL",
        help="copy this input column (an id) in front of the predictions (repeatable)",
    )
    p.add_argument(
        "--chunk-rows",
        type=_at_least_one,
        default=20_000,
        metavar="N",
        help="rows read, predicted and written at a time: memory is bounded by this, not by "
        "the table's size (default: 20000)",
    )
    p.add_argument(
        "--engine",
        choices=("torch", "numpy"),
        default="torch",
        help="numpy runs the saved model without PyTorch",
    )
    p.add_argument(
        "--interval",
        type=_coverage,
        metavar="COVERAGE",
        help="add lower and upper columns: a conformal interval holding the target with "
        "this probability, e.g. 0.9 (regression)",
    )
    p.add_argument(
        "--interval-by",
        metavar="COL",
        help="calibrate the interval within each level of this categorical column",
    )
    p.set_defaults(func=cmd_predict)


def _coverage(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), e.g. 0.9, got {text!r}")
    return value


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics of a saved model on a labelled table")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    _reading_args(p)
    p.add_argument("--target", required=True)
    p.set_defaults(func=cmd_evaluate)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="train the default network on bundled California housing")
    p.add_argument("--out", default="runs/demo", metavar="RUN_DIR")
    _overwrite_arg(p)
    p.set_defaults(func=cmd_demo)


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="the DNN against shallow baselines on identical splits")
    _data_args(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--folds", type=int, default=5, help="K-fold cross-validation (default 5)")
    group.add_argument("--repeats", type=int, help="R random 80/20 splits instead of folds")
    p.add_argument("--out", default="runs/compare", metavar="DIR")
    _overwrite_arg(p)
    p.set_defaults(func=cmd_compare)


def _add_learning_curve(sub) -> None:
    p = sub.add_parser(
        "learning-curve", help="test error of each model family against training-set size"
    )
    _data_args(p)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="runs/learning-curve", metavar="DIR")
    _overwrite_arg(p)
    p.set_defaults(func=cmd_learning_curve)


def _add_tune(sub) -> None:
    p = sub.add_parser(
        "tune",
        help="search the DNN's hyperparameters (Optuna TPE with "
        "pruning) in a persistent, resumable study",
    )
    _table_args(p)
    p.add_argument(
        "--time-budget",
        type=float,
        default=600.0,
        metavar="S",
        help="the whole search's seconds: no trial starts after S, and a running "
        "trial stops there, keeping its best epoch (default 600)",
    )
    p.add_argument("--n-trials", type=int, metavar="N", help="stop after N more trials")
    p.add_argument(
        "--storage",
        metavar="URL_OR_FILE",
        help="a SQLAlchemy URL (sqlite:///s.db, postgresql://...) or a journal "
        "file; default OUT/study.journal. The same storage and --study-name "
        "resume a study",
    )
    p.add_argument("--study-name", default="dnnreg")
    p.add_argument("--seed", type=int, help="(default: 0)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="hold a DNNRegressor/DNNClassifier parameter fixed (repeatable)",
    )
    p.add_argument("--out", default="runs/tune", metavar="DIR")
    _overwrite_arg(p)
    p.set_defaults(func=cmd_tune)


def _add_pretrain_study(sub) -> None:
    from dnnreg.studies.pretrain_study import STUDY_MODES  # torch-free

    p = sub.add_parser(
        "pretrain-study",
        help="does layer-wise pretraining help on this "
        "table? every mode, at several label fractions",
    )
    _table_args(p)
    p.add_argument(
        "--label-fractions",
        default="0.01,0.05,0.2,1.0",
        metavar="F,F,...",
        help="fractions of the training rows that keep their labels",
    )
    p.add_argument("--modes", default=",".join(STUDY_MODES), metavar="M,M,...")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a DNNRegressor/DNNClassifier parameter for every fit (repeatable)",
    )
    p.add_argument("--out", default="runs/pretrain-study", metavar="DIR")
    _overwrite_arg(p)
    p.set_defaults(func=cmd_pretrain_study)


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a saved model to ONNX, preprocessing included")
    p.add_argument("model", metavar="MODEL", help="model directory or RUN_DIR")
    p.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    _overwrite_arg(p)
    p.set_defaults(func=cmd_export)


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="answer predictions over HTTP (needs dnnreg[serve])")
    p.add_argument("model", metavar="MODEL", help="model directory or RUN_DIR")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=_at_least_one, default=1, help="worker processes")
    p.add_argument(
        "--engine",
        choices=("numpy", "torch"),
        default="numpy",
        help="numpy answers without loading PyTorch",
    )
    p.add_argument("--max-rows", type=_at_least_one, default=100_000, help="rows per request")
    p.add_argument("--max-body-mb", type=float, default=16.0, help="request body limit, in MiB")
    p.set_defaults(func=cmd_serve)


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def cmd_serve(args) -> int:
    from dnnreg.serve import serve

    serve(
        args.model,
        host=args.host,
        port=args.port,
        workers=args.workers,
        engine=args.engine,
        max_rows=args.max_rows,
        max_body_bytes=int(args.max_body_mb * 2**20),
    )
    return 0


def _add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="list the bundled datasets")
    p.set_defaults(func=cmd_datasets)


def _add_experiment(sub) -> None:
    p = sub.add_parser(
        "experiment", help="run one of the course's claims as an experiment with a verdict"
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="the experiment (see --list)")
    p.add_argument("--list", action="store_true", help="list the experiments and their claims")
    p.add_argument("--quick", action="store_true", help="a small run (under 30 s)")
    p.add_argument("--seeds", type=_at_least_one, default=1, help="repeats (default: 1)")
    p.add_argument("--out", metavar="DIR", help="write result.json and figure.png there")
    _overwrite_arg(p)
    p.set_defaults(func=cmd_experiment)


def cmd_experiment(args) -> int:
    from dnnreg import experiments

    if args.list:
        for entry in experiments.catalogue():
            print(f"{entry['name']:<22} {entry['claim']}")
        return 0
    if args.name is None:
        raise UsageError("name an experiment, e.g. dnnreg experiment feature-engineering (--list)")
    if args.out:
        _check_out_dir(args)
    result = experiments.run(
        args.name, quick=args.quick, seeds=args.seeds, out=args.out, overwrite=args.overwrite
    )
    print(f"claim: {result['claim']}")
    print(f"verdict ({result['status']}): {result['verdict']}")
    if args.out:
        print(f"wrote {args.out}/result.json and {args.out}/figure.png")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `dnnreg` parser: global flags, then one sub-parser per command (`_add_*`)."""
    parser = _Parser(prog="dnnreg", description="Deep-neural-network regression on tables.")
    parser.add_argument("--version", action="version", version=f"dnnreg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    sub.add_parser = _with_global_flags(sub.add_parser)
    for add in (
        _add_train,
        _add_report,
        _add_diagnose,
        _add_predict,
        _add_evaluate,
        _add_demo,
        _add_compare,
        _add_learning_curve,
        _add_tune,
        _add_pretrain_study,
        _add_export,
        _add_serve,
        _add_datasets,
        _add_experiment,
    ):
        add(sub)
    return parser


def _with_global_flags(add_parser):
    """Every sub-command also takes --debug and --quiet (after its name, as users type
    them); SUPPRESS keeps the top-level value when the flag is not repeated there."""

    def add(*args, **kwargs):
        p = add_parser(*args, **kwargs)
        p.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
        )
        p.add_argument(
            "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress"
        )
        return p

    return add


def _check_fractions(args) -> None:
    for name in ("test_fraction", "val_fraction"):
        value = getattr(args, name, 0.0)
        if not 0.0 <= value < 1.0:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be in [0, 1), got {flag}={value}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    # Warnings print as one "dnnreg: warning: ..." line for this command only
    # (catch_warnings restores the process's showwarning and filters afterwards).
    with warnings.catch_warnings(), _sigterm_as_interrupt():
        if not debug:
            warnings.showwarning = cli_showwarning
        return _run(argv, debug)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that a write in progress removes its temp files and
    the command exits 143 with one line (by default the process would vanish silently)."""

    exit_code = 128 + signal.SIGTERM


@contextlib.contextmanager
def _sigterm_as_interrupt():
    def terminate(signum, frame):
        raise _Terminated("SIGTERM")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(argv, debug: bool) -> int:
    """Parse and run one command; every expected failure becomes one line and an exit
    code, and the dnnreg logger is left as it was found."""
    handler, level = None, logger.level
    try:
        args = build_parser().parse_args(argv)
        _apply_config(args)
        _check_fractions(args)
        if not args.quiet and not _real_handlers():
            from dnnreg.progress import ProgressHandler

            # Installed for this command only: a caller in the same process (a notebook,
            # a test) must not keep writing to this call's stderr afterwards.
            handler = ProgressHandler(sys.stderr)
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
        return args.func(args)
    except UsageError as err:
        if debug:
            raise
        print(f"dnnreg: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        code = getattr(err, "exit_code", 130)  # a TrainingInterrupted names its signal
        print(f"dnnreg: interrupted{': ' + str(err) if str(err) else ''}", file=sys.stderr)
        return code
    except (ValueError, TypeError, OSError, KeyError, ImportError) as err:
        if debug:
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"dnnreg: error: {message}", file=sys.stderr)
        return 1
    finally:
        if handler is not None:
            logger.removeHandler(handler)
        logger.setLevel(level)


def _real_handlers() -> list:
    """The dnnreg logger's handlers other than the library's NullHandler."""
    return [h for h in logger.handlers if not isinstance(h, logging.NullHandler)]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
