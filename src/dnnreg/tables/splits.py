"""Row splits, made in one place: the run's train/validation/test split, a single hold-out,
cross-validation and repeated splits for comparisons, and the estimator's own validation
rows for early stopping. Every split is seeded, and stratified for classification where
each class can spare rows for every part.
"""

from __future__ import annotations

import numpy as np


def train_val_test_indices(
    n_rows: int,
    *,
    test_fraction: float = 0.2,
    val_fraction: float = 0.2,
    seed: int = 0,
    stratify=None,
):
    """Row indices of the standard tabular protocol's split (64/16/20 with the defaults).

    The test rows are ``test_fraction`` of all rows; the validation rows are
    ``val_fraction`` of the rest. This is ``sklearn.model_selection.train_test_split``
    applied twice with ``random_state=seed``, the split used by Gorishniy et al. (2021).
    ``stratify`` (the labels) keeps each class's share the same in all three parts.

    Examples
    --------
    >>> tr, va, te = train_val_test_indices(100)
    >>> len(tr), len(va), len(te)
    (64, 16, 20)
    """
    from sklearn.model_selection import train_test_split

    idx = np.arange(n_rows)
    rest, test = train_test_split(
        idx, test_size=test_fraction, random_state=seed, stratify=stratify
    )
    train, val = train_test_split(
        rest,
        test_size=val_fraction,
        random_state=seed,
        stratify=None if stratify is None else stratify[rest],
    )
    return train, val, test


def holdout(n_rows: int, fraction: float, *, seed: int, stratify=None):
    """``(kept_rows, held_out_rows)``: ``fraction`` of the rows held out, by
    ``sklearn.model_selection.train_test_split`` with ``random_state=seed``.

    >>> kept, held = holdout(10, 0.3, seed=0)
    >>> len(kept), len(held)
    (7, 3)
    """
    from sklearn.model_selection import train_test_split

    return tuple(
        train_test_split(
            np.arange(n_rows), test_size=fraction, random_state=seed, stratify=stratify
        )
    )


def stratifiable(y):
    """The labels ``y`` when every class has enough rows (3) to appear in each part of a
    train/validation/test split, else ``None`` (a plain random split)."""
    import pandas as pd

    y = pd.Series(np.asarray(y)) if y is not None else None
    if y is None or y.value_counts().min() < 3:
        return None
    return y.to_numpy()


def run_split(n_rows: int, *, test_fraction: float, val_fraction: float, seed: int, stratify=None):
    """``(train, validation, test)`` rows of a run (``dnnreg train``); a part whose fraction
    is 0 is ``None``. Stratified on ``stratify`` (labels) when :func:`stratifiable`."""
    rows = np.arange(n_rows)
    if test_fraction == 0 and val_fraction == 0:
        return rows, None, None
    if n_rows < 10:
        raise ValueError(
            f"the table has {n_rows} rows, too few for a train/validation/test "
            "split; add rows or pass --test-fraction 0 --val-fraction 0"
        )
    stratify = stratifiable(stratify)
    if test_fraction == 0 or val_fraction == 0:  # a single split: train + the other one
        train, held = holdout(n_rows, test_fraction or val_fraction, seed=seed, stratify=stratify)
        return (train, held, None) if test_fraction == 0 else (train, None, held)
    return train_val_test_indices(
        n_rows, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed, stratify=stratify
    )


def evaluation_splits(
    y,
    *,
    folds: int | None = 5,
    repeats: int | None = None,
    seed: int = 0,
    task: str = "regression",
    test_fraction: float = 0.2,
) -> list[tuple]:
    """``[(train_rows, test_rows), ...]``: K-fold (shuffled) or R random train/test splits,
    stratified for classification. The same list is handed to every model compared."""
    from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit

    y = np.asarray(y)
    stratify = task == "classification"
    if repeats:
        cls = StratifiedShuffleSplit if stratify else ShuffleSplit
        splitter = cls(n_splits=repeats, test_size=test_fraction, random_state=seed)
    else:
        cls = StratifiedKFold if stratify else KFold
        splitter = cls(n_splits=folds, shuffle=True, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in splitter.split(np.zeros(len(y)), y)]


def validation_rows(y, rng, fraction: float, *, stratify: bool = False):
    """The estimator's early-stopping split of its training rows: ``(fit_rows, val_rows)``,
    both sorted; ``val_rows`` is ``None`` below 10 rows (too few to spare). ``rng`` is the
    fit's ``RandomState``; with ``stratify`` (classification) each class keeps its share
    when every class can spare a row."""
    rows = np.arange(len(y))
    if len(y) < 10:
        return rows, None
    n_val = max(1, int(round(fraction * len(y))))
    perm = rng.permutation(len(y))
    fit, val = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    if not stratify:
        return fit, val
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(y, return_counts=True)
    if counts.min() < 2 or len(val) < len(counts):
        return fit, val
    fit, val = train_test_split(
        rows, test_size=len(val), stratify=y, random_state=rng.randint(np.iinfo(np.int32).max)
    )
    return np.sort(fit), np.sort(val)


def bagging_folds(y, n_folds: int, rng, *, stratify: bool = False) -> np.ndarray:
    """The fold of each row for bagging: ``n_folds`` folds of exactly ``len(y) // n_folds``
    rows (member i of the ensemble holds out fold ``i % n_folds``); the ``len(y) % n_folds``
    rows left over are in no fold (``-1``) and train every member. Equal folds give every
    member the same number of training rows, so the members still train as one batched
    model. ``rng`` is the fit's ``RandomState``; with ``stratify`` (classification) the
    rows are dealt out class by class, so each fold keeps each class's share.

    >>> folds = bagging_folds(np.arange(10), 3, np.random.RandomState(0))
    >>> sorted(np.bincount(folds[folds >= 0]).tolist()), int((folds == -1).sum())
    ([3, 3, 3], 1)
    """
    n = len(y)
    m = n // n_folds
    dealt = rng.permutation(n)[n - m * n_folds :]  # the first n % n_folds stay in no fold
    if stratify:
        dealt = dealt[np.argsort(np.asarray(y)[dealt], kind="stable")]
    folds = np.full(n, -1, dtype=np.int64)
    folds[dealt] = np.arange(len(dealt)) % n_folds
    return folds
