"""Bagging across validation folds: every ensemble member holds out its own fold of the
training rows for early stopping and trains on the rest, so every row trains most members
and no row is spent on validation only (how AutoGluon and TabArena bag every model).

With k members and F folds (F divides k), member i holds out fold ``i mod F``; each fold is
held out by k/F members. The *out-of-fold* (OOF) prediction of a row is the mean of the
members that never trained on it: an honest estimate of the ensemble's error from the
training rows alone, which is what early stopping monitors here (the ensemble's
validation loss over all folds, one best epoch for all members), what
``clip_predictions="auto"`` decides on, and what a conformal interval needs.

Folds have equal sizes (:func:`dnnreg.tables.splits.bagging_folds`), so member rows are
``(k, n - m)`` and ``(k, m)`` index tensors and the members still train as one batched
model.
"""

from __future__ import annotations

import numpy as np
import torch

from dnnreg.training.loop import forward_in_chunks

MAX_FOLDS = 8  # TabArena's and AutoGluon's 8-fold bagging


def n_folds(k: int, n_rows: int) -> int:
    """Folds for ``k`` members: the largest divisor of ``k`` up to :data:`MAX_FOLDS`, when
    each fold gets at least 2 rows; 1 (no bagging) otherwise.

    >>> n_folds(8, 1000), n_folds(32, 1000), n_folds(6, 1000), n_folds(1, 1000), n_folds(8, 10)
    (8, 8, 6, 1, 1)
    """
    f = max(d for d in range(1, min(k, MAX_FOLDS) + 1) if k % d == 0)
    return f if f > 1 and n_rows // f >= 2 else 1


class Bagging:
    """The member-to-row maps of one bagged fit.

    ``trained``: ``(k, n - m)`` rows each member trains on; ``held``: ``(k, m)`` rows it
    holds out; ``rows``: the ``F·m`` rows in some fold, in the order of :meth:`oof`.
    """

    def __init__(self, folds: np.ndarray, k: int):
        folds = np.asarray(folds)
        self.n_folds = int(folds.max()) + 1
        per_fold = [np.flatnonzero(folds == f) for f in range(self.n_folds)]
        others = [np.flatnonzero(folds != f) for f in range(self.n_folds)]
        fold_of = [i % self.n_folds for i in range(k)]
        self.held = torch.from_numpy(np.stack([per_fold[f] for f in fold_of]))
        self.trained = torch.from_numpy(np.stack([others[f] for f in fold_of]))
        self.rows = torch.from_numpy(np.concatenate(per_fold))

    def outputs(self, model, x_num, x_cat) -> torch.Tensor:
        """Each member's raw outputs on the rows it holds out. Shape: ``(k, m, d_out)``."""
        held = self.held.to(x_num.device)
        return forward_in_chunks(model, x_num[held], x_cat[held])

    def oof(self, out: torch.Tensor) -> torch.Tensor:
        """Member outputs regrouped so that "row" j is ``rows[j]`` and the members are the
        k/F that held it out: ``(k, m, d) -> (k/F, F·m, d)``, the shape the estimator's
        ensemble average takes."""
        k, m, d = out.shape
        return out.reshape(k // self.n_folds, self.n_folds * m, d)

    def targets(self, target: torch.Tensor) -> torch.Tensor:
        """The target of every member's held-out rows: ``(k, m, ...)``."""
        return target[self.held.to(target.device)]
