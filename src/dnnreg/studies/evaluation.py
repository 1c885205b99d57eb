"""Same-split comparisons, paired confidence intervals, verdicts and learning curves for
any models with ``fit``/``predict`` (duck-typed: no torch here; the DNN arrives as a
factory like every other model).

Every model is fitted on exactly the same rows with the same seed, so differences between
models are paired: the fold-to-fold noise that all models share cancels, and the interval
of the mean difference is far tighter than the two models' separate error bars suggest.
"""

from __future__ import annotations

import logging
import math
import time
import warnings

import numpy as np
import pandas as pd

from dnnreg.notices import warn
from dnnreg.tables.splits import evaluation_splits

logger = logging.getLogger("dnnreg")

# task -> (primary metric, larger is better)
PRIMARY = {"regression": ("rmse", False), "classification": ("accuracy", True)}
DNN = "dnnreg"


# ---------------------------------------------------------------------- splits
# ---------------------------------------------------------------------- scoring
def score(model, X, y, task: str) -> dict:
    """Test metrics of a fitted model (:func:`dnnreg.metrics.score_model`) that studies
    compare: rmse, mae, r2 or accuracy, log_loss."""
    from dnnreg.metrics import score_model

    out = score_model(model, X, y)
    keys = ("rmse", "mae", "r2") if task == "regression" else ("accuracy", "log_loss")
    return {k: out[k] for k in keys}


def _fit(model, X, y):
    """Fit without the baselines' convergence chatter: a comparison reports their scores,
    not their optimisers' warnings (sklearn's MLP warns at its iteration cap)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def evaluate_models(
    X,
    y,
    factories: dict,
    splits: list,
    *,
    task: str,
    seed: int = 0,
    time_budget: float | None = None,
) -> pd.DataFrame:
    """Fit every model on every split; one tidy row per (model, split).

    ``factories`` maps a name to ``factory(seed) -> unfitted model``. Splits run one after
    another, each for all models, so if ``time_budget`` (seconds) runs out every model
    has the same completed splits.
    """
    X = X.reset_index(drop=True) if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    y = pd.Series(np.asarray(y))
    rows, start = [], time.perf_counter()
    for split, (train, test) in enumerate(splits):
        for name, factory in factories.items():
            model = factory(seed)
            t0 = time.perf_counter()
            _fit(model, X.iloc[train], y.iloc[train])
            t1 = time.perf_counter()
            metrics = score(model, X.iloc[test], y.iloc[test], task)
            t2 = time.perf_counter()
            rows.append(
                {
                    "model": name,
                    "split": split,
                    "n_train": len(train),
                    "n_test": len(test),
                    **metrics,
                    "fit_seconds": t1 - t0,
                    "predict_seconds": t2 - t1,
                }
            )
            logger.info(
                "split %d/%d %-14s %s  fit %.1fs",
                split + 1,
                len(splits),
                name,
                "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
                t1 - t0,
            )
        if (
            time_budget is not None
            and time.perf_counter() - start > time_budget
            and split + 1 < len(splits)
        ):
            warn(
                f"time budget of {time_budget:.0f} s spent after {split + 1} of {len(splits)} "
                "splits; the results use those splits (raise time_budget for all of them)",
            )
            break
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over splits of every metric and time, per model,
    sorted best first by the primary metric."""
    metrics = [c for c in results.columns if c not in ("model", "split", "n_train", "n_test")]
    table = results.groupby("model", sort=False)[metrics].agg(["mean", "std"])
    table.columns = [f"{m}_{s}" for m, s in table.columns]
    primary, larger = ("accuracy", True) if "accuracy_mean" in table else ("rmse", False)
    return table.sort_values(f"{primary}_mean", ascending=not larger).reset_index()


# ---------------------------------------------------------------------- paired comparison
def paired_interval(differences, *, test_over_train: float, confidence: float = 0.95) -> dict:
    """Mean and confidence interval of paired per-split differences.

    The splits share training rows, so their differences are correlated and the textbook
    t-interval is too narrow. Nadeau & Bengio (2003) correct the variance of the mean:
    ``Var = (1/J + n_test/n_train) · s²`` over J splits with sample variance s², and the
    interval is ``d̄ ± t_{J-1} · √Var``.
    """
    from scipy.stats import t as student_t

    d = np.asarray(differences, dtype=np.float64)
    j = len(d)
    mean = float(d.mean())
    if j < 2:
        return {"mean": mean, "half_width": math.inf, "low": -math.inf, "high": math.inf, "n": j}
    var = (1.0 / j + test_over_train) * float(d.var(ddof=1))
    half = float(student_t.ppf(0.5 + confidence / 2, j - 1)) * math.sqrt(var)
    return {"mean": mean, "half_width": half, "low": mean - half, "high": mean + half, "n": j}


def _relative(log_ratio: dict) -> str:
    """A log-ratio interval as words: "4.1 % below (95 % interval -6.9 % to -1.2 %)", or
    "3.2 times (95 % interval 2.1 to 4.8 times)" for large ratios."""
    mid, lo, hi = (math.exp(log_ratio[k]) for k in ("mean", "low", "high"))
    if 0.5 <= mid <= 2.0:
        where = "below" if mid < 1 else "above"
        return (
            f"{100 * abs(mid - 1):.1f} % {where} (95 % interval {100 * (lo - 1):+.1f} % to "
            f"{100 * (hi - 1):+.1f} %)"
        )
    return f"{mid:.3g} times (95 % interval {lo:.3g} to {hi:.3g} times)"


def verdict(results: pd.DataFrame, *, task: str, dnn: str = DNN) -> dict:
    """The DNN against the best other model on the primary metric, as numbers and one
    paragraph of plain language.

    Regression errors are compared as paired log-ratios, log(RMSE_dnn / RMSE_other) per
    split: errors scale multiplicatively (halving an error matters the same at 10 as at
    0.01), and one hard split no longer drowns a model that loses on every split. The
    verdict reads that interval as a percentage; the absolute difference ± its interval
    is given too. Accuracy is compared as a plain difference (percentage points).
    """
    metric, larger = PRIMARY[task]
    means = results.groupby("model")[metric].mean()
    others = means.drop(dnn)
    best = others.idxmax() if larger else others.idxmin()
    paired = results.pivot(index="split", columns="model", values=metric)
    first = results.iloc[0]
    ratio = first["n_test"] / first["n_train"]
    absolute = paired_interval(paired[dnn] - paired[best], test_over_train=ratio)
    times = results.groupby("model")["fit_seconds"].mean()
    plus_minus = f"{abs(absolute['mean']):.3g} ± {absolute['half_width']:.3g}"
    if larger:  # accuracy: percentage points; > 0 means the DNN is better
        decide = absolute
        low, high = decide["low"], decide["high"]
        size = (
            f"{100 * abs(decide['mean']):.2f} ± {100 * decide['half_width']:.2f} "
            f"percentage points of {metric}"
        )
    else:  # errors: log-ratio; < 0 means the DNN is better
        floor = 1e-12 * max(1.0, float(paired[[dnn, best]].abs().max().max()))
        decide = paired_interval(
            np.log(np.maximum(paired[dnn], floor) / np.maximum(paired[best], floor)),
            test_over_train=ratio,
        )
        low, high = -decide["high"], -decide["low"]
        size = (
            f"the DNN's {metric} is {_relative(decide)} {best}'s (absolute difference {plus_minus})"
        )
    detail = (
        f"{metric} {means[dnn]:.4g} against {means[best]:.4g} over {decide['n']} paired "
        "splits (Nadeau-Bengio corrected interval)"
    )
    if low > 0:
        outcome = "better"
        text = f"On this data the DNN is better than {best}: {size}; {detail}."
    elif high < 0:
        outcome = "worse"
        text = f"On this data the DNN is not better than {best}: {size}; {detail}. Prefer {best}."
    else:
        outcome = "tie"
        text = (
            f"On this data the DNN and {best} are indistinguishable: {size}, an interval "
            f"that contains no difference; {detail}."
        )
    text += (
        f" Fitting took {times[dnn]:.1f} s for the DNN and {times[best]:.1f} s for "
        f"{best} per split."
    )
    if outcome == "tie":
        text += f" The simpler, faster {best} is the sensible choice here."
    return {
        "metric": metric,
        "dnn": dnn,
        "best_other": best,
        "outcome": outcome,
        "difference": absolute,
        "decision_interval": decide,
        "decision_scale": "difference" if larger else "log_ratio",
        "dnn_mean": float(means[dnn]),
        "best_other_mean": float(means[best]),
        "text": text,
    }


# ---------------------------------------------------------------------- learning curves
def training_sizes(n_train: int, smallest: int = 50) -> list[int]:
    """50, 100, 200, ... doubling, then every training row.

    >>> training_sizes(500)
    [50, 100, 200, 400, 500]
    """
    sizes, s = [], smallest
    while s < n_train:
        sizes.append(s)
        s *= 2
    return sizes + [n_train]


def learning_curve_results(
    X,
    y,
    factories: dict,
    *,
    task: str,
    repeats: int = 3,
    seed: int = 0,
    sizes=None,
    time_budget: float | None = None,
    test_fraction: float = 0.2,
) -> pd.DataFrame:
    """Test metrics of every model against training-set size; one row per (model, size,
    repeat). Each repeat draws its own test split, and its training subsets are nested
    (the first s rows of one shuffle), so a curve changes only by the added rows."""
    X = X.reset_index(drop=True) if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    y = pd.Series(np.asarray(y))
    splits = evaluation_splits(
        y, repeats=repeats, seed=seed, task=task, test_fraction=test_fraction
    )
    rows, start = [], time.perf_counter()
    for r, (train, test) in enumerate(splits):
        order = np.random.default_rng(seed + r).permutation(train)
        for size in sizes or training_sizes(len(train)):
            subset = order[:size]
            for name, factory in factories.items():
                model = factory(seed + r)
                _fit(model, X.iloc[subset], y.iloc[subset])
                rows.append(
                    {
                        "model": name,
                        "size": int(size),
                        "repeat": r,
                        **score(model, X.iloc[test], y.iloc[test], task),
                    }
                )
            logger.info("repeat %d/%d, %d rows: done", r + 1, len(splits), size)
        if (
            time_budget is not None
            and time.perf_counter() - start > time_budget
            and r + 1 < len(splits)
        ):
            warn(
                f"time budget spent after {r + 1} of {len(splits)} repeats; the curve uses "
                "those repeats (raise time_budget for all of them)",
            )
            break
    return pd.DataFrame(rows)


def crossover(curve: pd.DataFrame, *, task: str, dnn: str = DNN):
    """The smallest training size from which the DNN's mean test metric beats every other
    model's at that size and at every larger size; ``None`` if it never does."""
    metric, larger = PRIMARY[task]
    means = curve.groupby(["size", "model"])[metric].mean().unstack()
    others = means.drop(columns=dnn)
    best = others.max(axis=1) if larger else others.min(axis=1)
    wins = (means[dnn] > best) if larger else (means[dnn] < best)
    size = None
    for s in sorted(wins.index, reverse=True):
        if not wins[s]:
            break
        size = int(s)
    return size
