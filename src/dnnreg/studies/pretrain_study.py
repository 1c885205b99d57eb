"""Does pretraining help on *this* table? The same splits and seeds with and without each
pretraining mode, at several fractions of labelled rows.

Protocol, per seed s: a random train/test split (stratified for classification); from the
training rows, a random ``fraction`` keep their labels and the rest become unlabelled rows
(``X_unlabeled``); every mode fits on exactly those rows with ``random_state=s``, and is
scored on the same test rows. Modes are compared with "none" seed by seed: for regression
as the log-ratio of test RMSE (so "3 % lower" means what it says at every scale), for
classification as the accuracy difference, each with Nadeau & Bengio's corrected interval
(the seeds' training sets overlap). The verdict says, per fraction and mode, whether
pretraining helped, hurt, or made no difference that the seeds can resolve.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from dnnreg.studies.evaluation import PRIMARY, paired_interval, score
from dnnreg.tables.splits import evaluation_splits

STUDY_MODES = ("none", "autoencoder", "denoising", "sparse", "rbm")
MIN_LABELLED = 10


def labelled_subset(train_rows: np.ndarray, fraction: float, seed: int) -> tuple:
    """``(labelled, unlabelled)``: a random ``fraction`` of ``train_rows`` (at least
    :data:`MIN_LABELLED`), and the rest."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(train_rows)
    n = min(len(order), max(MIN_LABELLED, int(math.ceil(fraction * len(order)))))
    return np.sort(order[:n]), np.sort(order[n:])


def pretrain_study(
    X,
    y,
    *,
    task: str = "regression",
    label_fractions=(0.01, 0.05, 0.2, 1.0),
    modes=STUDY_MODES,
    seeds: int = 5,
    test_fraction: float = 0.2,
    params: dict | None = None,
    log=print,
) -> pd.DataFrame:
    """One row per (seed, fraction, mode) with the test metrics, fit seconds and the number
    of labelled and unlabelled rows; ``.attrs["summary"]`` holds mean ± std and the paired
    comparison with "none", ``.attrs["verdict"]`` a paragraph."""
    from dnnreg.estimators.classifier import DNNClassifier
    from dnnreg.estimators.regressor import DNNRegressor

    if "none" not in modes:
        modes = ("none", *modes)
    cls = DNNRegressor if task == "regression" else DNNClassifier
    X = X.reset_index(drop=True) if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    y = pd.Series(np.asarray(y))
    splits = evaluation_splits(y, repeats=seeds, seed=0, task=task, test_fraction=test_fraction)
    rows = []
    for s, (train, test) in enumerate(splits):
        for fraction in label_fractions:
            labelled, unlabelled = labelled_subset(train, fraction, seed=s)
            for mode in modes:
                model = cls(**{**(params or {}), "pretrain": mode, "random_state": s})
                start = time.perf_counter()
                model.fit(
                    X.iloc[labelled],
                    y.iloc[labelled],
                    X_unlabeled=X.iloc[unlabelled] if mode != "none" and len(unlabelled) else None,
                )
                rows.append(
                    {
                        "seed": s,
                        "fraction": fraction,
                        "mode": mode,
                        "labelled": len(labelled),
                        "unlabelled": len(unlabelled),
                        "fit_seconds": time.perf_counter() - start,
                        **score(model, X.iloc[test], y.iloc[test], task),
                    }
                )
                if log:
                    metric = PRIMARY[task][0]
                    log(
                        f"seed {s} fraction {fraction:g} {mode:<12} {metric} {rows[-1][metric]:.4f}"
                    )
    frame = pd.DataFrame(rows)
    test_over_train = test_fraction / (1 - test_fraction)
    frame.attrs["summary"] = summarize_study(frame, task, test_over_train)
    frame.attrs["verdict"] = study_verdict(frame.attrs["summary"], task)
    return frame


def summarize_study(frame: pd.DataFrame, task: str, test_over_train: float) -> list[dict]:
    """Per (fraction, mode): mean and std of the primary metric, and against "none" the
    paired interval (log-ratio for regression, difference for classification)."""
    metric, _ = PRIMARY[task]
    out = []
    for (fraction, mode), group in frame.groupby(["fraction", "mode"], sort=True):
        entry = {
            "fraction": float(fraction),
            "mode": mode,
            "metric": metric,
            "mean": float(group[metric].mean()),
            "std": float(group[metric].std(ddof=1)) if len(group) > 1 else 0.0,
            "labelled": int(group["labelled"].iloc[0]),
        }
        if mode != "none":
            base = frame[(frame.fraction == fraction) & (frame["mode"] == "none")]
            paired = group.merge(base, on="seed", suffixes=("", "_none"))
            if task == "regression":
                d = np.log(paired[metric].to_numpy() / paired[f"{metric}_none"].to_numpy())
            else:
                d = paired[metric].to_numpy() - paired[f"{metric}_none"].to_numpy()
            entry["vs_none"] = paired_interval(d, test_over_train=test_over_train)
        out.append(entry)
    return out


def _effect(entry: dict, task: str) -> str:
    iv = entry["vs_none"]
    if task == "regression":
        lo, mid, hi = (100 * (math.exp(iv[k]) - 1) for k in ("low", "mean", "high"))
        better, worse = hi < 0, lo > 0
        size = f"RMSE {mid:+.1f} % (95 % interval {lo:+.1f} % to {hi:+.1f} %)"
    else:
        lo, mid, hi = (100 * iv[k] for k in ("low", "mean", "high"))
        better, worse = lo > 0, hi < 0
        size = f"accuracy {mid:+.1f} points (95 % interval {lo:+.1f} to {hi:+.1f})"
    word = "helps" if better else "hurts" if worse else "makes no clear difference"
    return f"{entry['mode']} {word}: {size}"


def study_verdict(summary: list[dict], task: str) -> str:
    """One line per label fraction: each mode's effect against no pretraining."""
    lines = []
    for fraction in sorted({e["fraction"] for e in summary}):
        entries = [e for e in summary if e["fraction"] == fraction and "vs_none" in e]
        labelled = entries[0]["labelled"] if entries else 0
        lines.append(
            f"{100 * fraction:g} % labelled ({labelled} rows): "
            + "; ".join(_effect(e, task) for e in entries)
            + "."
        )
    return "\n".join(lines)
