"""DNNClassifier's defaults against the strongest tabular classifiers, the protocol of
bench/accuracy.py: a stratified 64/16/20 train/validation/test split per seed, every model
given the same training rows and the same validation rows (for early stopping), test
accuracy and log-loss.

Models: dnnreg's defaults; from ``peers.py`` RealMLP-TD, TabM-D, CatBoost-TD (pytabkit),
CatBoost's and LightGBM's defaults and LightGBM early-stopped; logistic regression.
``--variant 'label={"n_ensemble": 8}'`` adds candidate defaults, ``--reuse`` takes stored
runs, ``--limit 'TabM-D=1:10000'`` bounds the expensive peer, as in accuracy.py. Runs are
kept in ``results/classification_runs.json``; the summaries rank on the error rate
(1 - accuracy) and on log-loss.

Tables: digits (bundled), MNIST-5k, adult, magic telescope, letter recognition from
../shared/datasets (skipped when absent).

Run: ``.venv/bin/python bench/classification.py [--seeds 3]``.
Results: results/classification.{json,md}.
"""

from __future__ import annotations

import shlex
import sys

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
from dnnreg import DNNClassifier
from dnnreg.studies.baselines import LogisticBaseline
from dnnreg.tables.splits import train_val_test_indices
from peers import PEERS, versions

DATASETS = {
    "digits": "digit",
    "mnist_5k": "label",
    "adult": "income",
    "magic_telescope": "is_gamma",
    "letter_recognition": "letter",
}


def fit_dnnreg(X, y, tr, va, seed, task, params=None):
    """DNNClassifier with its defaults (updated by ``params``), early-stopped on the
    validation rows; a bagged variant gets training and validation rows together."""
    model = DNNClassifier(random_state=seed, **(params or {}))
    if model.bagging:
        rows = np.concatenate([tr, va])
        return model.fit(X.iloc[rows], y.iloc[rows])
    return model.fit(X.iloc[tr], y.iloc[tr], eval_set=(X.iloc[va], y.iloc[va]))


def fit_logistic(X, y, tr, va, seed, task):
    return LogisticBaseline().fit(X.iloc[tr], y.iloc[tr])


MODELS = {"dnnreg defaults": fit_dnnreg, **PEERS, "logistic regression": fit_logistic}


def variant(params: dict):
    fit = lambda X, y, tr, va, seed, task: fit_dnnreg(X, y, tr, va, seed, task, params)  # noqa: E731
    fit.params = params
    return fit


def score(model, X_te, y_te) -> dict:
    """Accuracy, error rate and log-loss (probabilities clipped at 1e-15, as sklearn)."""
    from sklearn.metrics import log_loss

    proba = np.asarray(model.predict_proba(X_te), dtype=np.float64)
    classes = np.asarray(model.classes_)
    y = np.asarray(y_te)
    accuracy = float(np.mean(classes[proba.argmax(axis=1)] == y))
    proba = proba / proba.sum(axis=1, keepdims=True)
    return {
        "accuracy": accuracy,
        "error": 1.0 - accuracy,
        "log_loss": float(log_loss(y, proba, labels=classes)),
    }


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, DATASETS, MODELS)
    args = parser.parse_args(argv)
    datasets = {name: DATASETS[name] for name in args.datasets.split(",")}
    models = chosen_models(args, MODELS, variant)
    limits = parse_limits(args.limit)
    store_name = args.store or "classification"
    store = RunStore(store_name)

    def split(X, y, seed):
        return train_val_test_indices(len(X), seed=seed, stratify=np.asarray(y))

    if not args.report_only:
        run_grid(
            tables(datasets),
            models,
            args.seeds,
            {m for m in args.reuse.split(",") if m},
            limits,
            store,
            task="classification",
            split=split,
            score=score,
        )
    command = "python bench/classification.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    runs = {t: store.runs[t] for t in datasets if t in store.runs}
    names = list(models)
    lines = table_lines(runs, names, "error", "test error rate (1 - accuracy)")
    lines += [""] + table_lines(runs, names, "log_loss", "test log-loss")
    # Everyone first, on the tables every model ran; then without each peer limited to
    # fewer seeds or rows, and without all of them, wherever that reaches more tables
    # (TabM-D ran on digits alone, RealMLP-TD not on adult).
    limited = [m for m in limits if m in names]
    left_out = [[]] + [[m] for m in limited] + ([limited] if len(limited) > 1 else [])
    summaries = {}
    for key in ("error", "log_loss"):
        covered = []
        for out in left_out:
            group = [n for n in names if n not in out]
            s = summary(runs, list(runs), group, key)
            if s["tables"] in covered:
                continue  # the same tables as a summary with more models in it
            covered.append(s["tables"])
            title = f"all models but {', '.join(out)}" if out else "all models"
            summaries[f"{key}: {title}"] = s
            lines += summary_lines(f"{key}: {title}, on the (table, seed) pairs they all ran",
                                   s, group)  # fmt: skip
    lines.append(f"\nStratified 64/16/20 split per seed. Reproduce: `{command}`")
    write(
        store_name,
        {"command": command, "peer_versions": versions(), "models": names, "summaries": summaries},
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
