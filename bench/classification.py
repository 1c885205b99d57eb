"""DNNClassifier with its defaults against logistic regression and LightGBM (defaults) on
five classification tables: a stratified 80/20 split with seed 0, as the tests use.

Run: ``.venv/bin/python bench/classification.py`` (``make bench`` runs every benchmark).
Digits is bundled; the others are read from ../shared/datasets and skipped when absent.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from _common import tables, write
from dnnreg import DNNClassifier
from dnnreg.metrics import classification_metrics
from dnnreg.studies.baselines import LogisticBaseline

DATASETS = {
    "digits": "digit",
    "mnist_5k": "label",
    "adult": "income",
    "magic_telescope": "is_gamma",
    "letter_recognition": "letter",
}


def models():
    out = {"dnnreg": lambda: DNNClassifier(random_state=0), "logistic regression": LogisticBaseline}
    try:
        from lightgbm import LGBMClassifier

        out["lightgbm"] = lambda: LGBMClassifier(random_state=0, verbose=-1)
    except ImportError:
        pass
    return out


def run_one(make, Xtr, Xte, ytr, yte) -> dict:
    model = make()
    if type(model).__name__ == "LGBMClassifier":  # LightGBM wants pandas categories
        Xtr, Xte = (
            X.apply(lambda c: c if pd.api.types.is_numeric_dtype(c) else c.astype("category"))
            for X in (Xtr, Xte)
        )
    start = time.perf_counter()
    model.fit(Xtr, ytr)
    seconds = time.perf_counter() - start
    index = np.searchsorted(model.classes_, np.asarray(yte))
    result = classification_metrics(index, model.predict_proba(Xte))
    return {**result, "fit_seconds": seconds}


def main():
    rows = []
    for name, X, y in tables(DATASETS):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
        for model_name, make in models().items():
            r = run_one(make, Xtr, Xte, ytr, yte)
            rows.append(
                {
                    "dataset": name,
                    "model": model_name,
                    "rows": len(X),
                    "classes": int(y.nunique()),
                    **r,
                }
            )
            print(rows[-1], flush=True)
    table = [
        "| dataset | rows | classes | model | accuracy | log-loss | fit s |",
        "|---|---|---|---|---|---|---|",
    ]
    table += [
        f"| {r['dataset']} | {r['rows']} | {r['classes']} | {r['model']} | "
        f"{r['accuracy']:.4f} | {r['log_loss']:.4f} | {r['fit_seconds']:.1f} |"
        for r in rows
    ]
    write(
        "classification",
        {"protocol": "stratified 80/20 split, seed 0; defaults", "results": rows},
        "\n".join(table),
    )


if __name__ == "__main__":
    main()
