"""Conformal prediction intervals: bounds calibrated on rows the model did not train on, in
NumPy, shared by both engines (the estimators and the torch-free runtime).

A *conformity score* measures how wrong the model was on a calibration row. If the
calibration rows and a new row are exchangeable, the new row's score is below the
``ceil((1 - α)(n + 1))``-th smallest of the n calibration scores with probability at least
``1 - α``, whatever the model or the data (Vovk et al. 2005; Lei et al. 2018, "Distribution-
free predictive inference for regression"). Inverting that bound gives the interval.

- **Split conformal** (one holdout, ``n_folds == 1``): ``ŷ(x) ± s(x) R_(k)``.
- **CV+** (Barber et al. 2021, "Predictive inference with the jackknife+"), when members
  were trained on different folds (bagging): calibration row i was held out by the members of
  its fold f(i), so its score compares it with *their* prediction, and the bounds at x are
  order statistics of ``{ŷ_f(i)(x) - s_f(i)(x) R_i}`` and ``{ŷ_f(i)(x) + s_f(i)(x) R_i}``
  over all training rows: every row calibrates, no row is spent on calibration only.
  Guaranteed coverage is ``1 - 2α`` in the worst case, ``1 - α`` in practice (their §4).
- **Scores.** ``absolute``: ``|y - ŷ|`` (s = 1: the same width everywhere). ``normalized``:
  ``|y - μ| / σ`` for a model that predicts a spread (``loss="gaussian_nll"``): wide where the
  model is unsure (Lei et al. 2018, §5.2). ``cqr``: ``max(q_lo - y, y - q_hi)`` for quantile
  heads (Romano et al. 2019, "Conformalized quantile regression"): the predicted quantile
  band, widened or narrowed by a calibrated constant.
- **Mondrian** (Vovk 2003): calibrated within each level of a categorical column, so the
  coverage holds per level, not only on average; a level with too few calibration rows
  falls back to all rows, with a warning.

Scores are unweighted (``sample_weight`` shapes the fit, not the exchangeability the
guarantee rests on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dnnreg.model_file import ModelFormatError
from dnnreg.notices import warn

SCORES = ("absolute", "normalized", "cqr")
PREFIX = "calibration."  # the arrays' names in weights.safetensors


def score_kind(loss: str, quantiles) -> str:
    """The conformity score a loss supports best: cqr for two or more quantile levels,
    normalized for a predicted variance, else absolute."""
    if loss == "quantile" and len(quantiles) >= 2:
        return "cqr"
    return "normalized" if loss == "gaussian_nll" else "absolute"


def base_predictions(loss: str, per_member: np.ndarray, n_folds: int, scaler, quantiles):
    """What the scores compare with, per fold sub-ensemble, in the target's units.

    ``per_member``: each member's mapped output (:func:`dnnreg.predictions.output_map`),
    ``(k, n)``, ``(k, n, q)`` or ``(k, n, 2)``; member i belongs to fold ``i mod n_folds``.
    Returns ``(n_folds, n, d)``: the point (d = 1), the sorted quantiles (d = q), or the
    mixture's mean and standard deviation (d = 2) of each fold's members.
    """
    k = per_member.shape[0]
    grouped = per_member.reshape(k // n_folds, n_folds, *per_member.shape[1:])
    mean = grouped.mean(axis=0)  # (F, n, ...)
    kind = score_kind(loss, quantiles)
    if kind == "cqr":
        return scaler.inverse(mean)
    if kind == "normalized":
        mu, var = grouped[..., 0], grouped[..., 1]
        total = var.mean(0) + (mu**2).mean(0) - mean[..., 0] ** 2  # law of total variance
        std = np.sqrt(np.maximum(total, 0.0)) * scaler.std
        return np.stack([scaler.inverse(mean[..., 0]), std], axis=-1)
    point = mean if mean.ndim == 2 else mean[..., 0]  # (F, n); one quantile level: it
    return scaler.inverse(point)[..., None]


def _cqr_pair(levels, coverage: float) -> tuple[int, int]:
    """The symmetric pair of quantile levels whose nominal coverage is nearest ``coverage``
    (the outer pair on a tie): CQR is valid with any pair, narrowest near the right one."""
    q = len(levels)
    pairs = [(i, q - 1 - i) for i in range(q // 2)]
    return min(pairs, key=lambda p: (abs(levels[p[1]] - levels[p[0]] - coverage), p[0]))


@dataclass
class Calibration:
    """The calibration rows a fitted regressor keeps (and its model file stores).

    ``y``: their targets ``(n,)``; ``pred``: the base prediction each was held out from,
    ``(n, d)`` as :func:`base_predictions`; ``fold``: which fold sub-ensemble made it;
    ``n_folds``: 1 for split conformal, F for CV+; ``codes``: per categorical column, the
    rows' level codes (for Mondrian calibration)."""

    y: np.ndarray
    pred: np.ndarray
    fold: np.ndarray
    n_folds: int
    score: str
    levels: tuple = ()
    codes: dict = field(default_factory=dict)

    @property
    def method(self) -> str:
        return "split" if self.n_folds == 1 else "cv+"

    def to_state(self) -> tuple[dict, dict]:
        """``(meta, arrays)``: plain JSON for config.json, arrays for the safetensors file."""
        columns = list(self.codes)
        meta = {
            "method": self.method,
            "score": self.score,
            "n_folds": int(self.n_folds),
            "levels": [float(v) for v in self.levels],
            "group_columns": columns,
            "n_rows": int(len(self.y)),
        }
        arrays = {
            PREFIX + "y": np.asarray(self.y, np.float64),
            PREFIX + "pred": np.asarray(self.pred, np.float64),
            PREFIX + "fold": np.asarray(self.fold, np.int32),
        }
        if columns:
            arrays[PREFIX + "codes"] = np.stack([self.codes[c] for c in columns], 1).astype(
                np.int32
            )
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict | None, arrays: dict) -> "Calibration | None":
        if not meta:
            return None
        missing = [PREFIX + a for a in ("y", "pred", "fold") if PREFIX + a not in arrays]
        if missing:
            raise ModelFormatError(
                f"weights.safetensors does not match config.json: it lacks {missing}, the "
                "calibration rows config.json records; re-save the model"
            )
        codes = arrays.get(PREFIX + "codes")
        columns = meta["group_columns"]
        return cls(
            y=arrays[PREFIX + "y"],
            pred=arrays[PREFIX + "pred"],
            fold=arrays[PREFIX + "fold"].astype(np.int64),
            n_folds=int(meta["n_folds"]),
            score=meta["score"],
            levels=tuple(meta["levels"]),
            codes={c: codes[:, j].astype(np.int64) for j, c in enumerate(columns)},
        )

    # ------------------------------------------------------------------ the interval
    def _scores_and_bases(self, bases: np.ndarray, coverage: float):
        """Calibration scores ``(n,)`` and the test rows' lower and upper centres and
        scale, each ``(F, n_test)``."""
        y, p = self.y, self.pred
        if self.score == "cqr":
            a, b = _cqr_pair(self.levels, coverage)
            scores = np.maximum(p[:, a] - y, y - p[:, b])
            return scores, bases[..., a], bases[..., b], np.ones_like(bases[..., 0])
        if self.score == "normalized":
            scale = np.maximum(bases[..., 1], np.finfo(float).tiny)
            scores = np.abs(y - p[:, 0]) / np.maximum(p[:, 1], np.finfo(float).tiny)
            return scores, bases[..., 0], bases[..., 0], scale
        return np.abs(y - p[:, 0]), bases[..., 0], bases[..., 0], np.ones_like(bases[..., 0])

    def interval(self, bases: np.ndarray, coverage: float, groups=None):
        """Lower and upper bounds ``((n,), (n,))`` for test rows whose base predictions are
        ``bases`` ``(F, n, d)``; ``groups``: ``(column, codes (n,))`` for Mondrian
        calibration, else None."""
        scores, lo, hi, scale = self._scores_and_bases(bases, coverage)
        n_test = bases.shape[1]
        lower, upper = np.empty(n_test), np.empty(n_test)
        if groups is None:
            parts = [(np.arange(n_test), np.arange(len(scores)), None)]
        else:
            parts = self._mondrian_parts(groups, coverage)
        for test_rows, cal_rows, _ in parts:
            lower[test_rows], upper[test_rows] = _bounds(
                scores[cal_rows],
                self.fold[cal_rows],
                self.n_folds,
                lo[:, test_rows],
                hi[:, test_rows],
                scale[:, test_rows],
                coverage,
            )
        return lower, upper

    def _mondrian_parts(self, groups, coverage):
        """``(test rows, calibration rows, code)`` for each level among the test rows; a
        level with fewer calibration rows than ``coverage`` needs uses all of them."""
        column, test_codes = groups
        cal_codes = self.codes[column]
        need = needed_rows(coverage)
        parts, pooled = [], []
        for code in np.unique(test_codes):
            cal_rows = np.flatnonzero(cal_codes == code)
            test_rows = np.flatnonzero(test_codes == code)
            if len(cal_rows) < need:
                pooled.append(int(code))
                cal_rows = np.arange(len(cal_codes))
            parts.append((test_rows, cal_rows, code))
        if pooled:
            warn(
                f"interval by {column!r}: {len(pooled)} level(s) have fewer than {need} "
                f"calibration rows, the least coverage={coverage} needs; their intervals use "
                "every calibration row instead"
            )
        return parts


def needed_rows(coverage: float) -> int:
    """The fewest calibration rows for which a ``coverage`` interval is finite:
    ``ceil(coverage (n + 1)) <= n``."""
    n = 1
    while _rank(coverage, n) > n:
        n += 1
    return n


def _rank(coverage: float, n: int) -> int:
    """``ceil(coverage (n + 1))``, robust to the float error in the product."""
    return math.ceil(coverage * (n + 1) - 1e-9)


def _bounds(scores, fold, n_folds, lo, hi, scale, coverage):
    """The conformal bounds of :class:`Calibration.interval` for one set of calibration
    rows: the ``k``-th smallest of ``hi_f + s_f R_i`` (upper) and minus that of
    ``-lo_f + s_f R_i`` (lower), ``k = ceil(coverage (n + 1))``."""
    n = len(scores)
    k = _rank(coverage, n)
    if k > n:
        warn(
            f"coverage={coverage} needs at least {needed_rows(coverage)} calibration rows, "
            f"got {n}; the interval is unbounded (lower the coverage or calibrate on more rows)"
        )
        inf = np.full(lo.shape[1], np.inf)
        return -inf, inf
    by_fold = [np.sort(scores[fold == f]) for f in range(n_folds)]
    return -_union_kth(-lo, scale, by_fold, k), _union_kth(hi, scale, by_fold, k)


def _union_kth(c, s, by_fold, k):
    """For each test row j, the ``k``-th smallest of ``∪_f {c[f, j] + s[f, j] R : R in
    by_fold[f]}`` (each ``by_fold[f]`` sorted, ``s >= 0``).

    One fold: an index. Several: bisection on the value, counting with one binary search
    per fold, until the bracket is ~1e-12 of the values' range; then the largest counted
    value, an exact member of the set."""
    folds = [f for f, r in enumerate(by_fold) if len(r)]
    if len(folds) == 1:
        f = folds[0]
        return c[f] + s[f] * by_fold[f][k - 1]
    s = np.maximum(s, np.finfo(float).tiny)
    first = np.min([c[f] + s[f] * by_fold[f][0] for f in folds], axis=0)
    last = np.max([c[f] + s[f] * by_fold[f][-1] for f in folds], axis=0)
    low = first - 1.0 - np.abs(first)  # nothing counted at or below it
    high = last + 1e-9 * (1.0 + np.abs(last))  # everything counted, whatever the rounding
    tol = 1e-12 * (np.abs(high) + np.abs(low))

    def count(t):
        # s ~ 0 sends (t - c) / s to +-inf, which counts all or none: what s = 0 means
        with np.errstate(over="ignore"):
            return sum(np.searchsorted(by_fold[f], (t - c[f]) / s[f], side="right") for f in folds)

    for _ in range(200):
        open_ = high - low > tol
        if not open_.any():
            break
        mid = 0.5 * (low + high)
        enough = count(mid) >= k
        high = np.where(open_ & enough, mid, high)
        low = np.where(open_ & ~enough, mid, low)
    best = np.full(c.shape[1], -np.inf)
    for f in folds:
        with np.errstate(over="ignore"):
            i = np.searchsorted(by_fold[f], (high - c[f]) / s[f], side="right")
        value = c[f] + s[f] * by_fold[f][np.maximum(i - 1, 0)]
        best = np.maximum(best, np.where(i > 0, value, -np.inf))
    return best


def mondrian_groups(calibration: "Calibration", preprocessor, frame, by):
    """``(by, codes of frame's rows)`` for :meth:`Calibration.interval`, or None when ``by``
    is None; a ValueError naming the choices when ``by`` is not a categorical column the
    calibration rows were recorded with."""
    if by is None:
        return None
    if by not in calibration.codes:
        choices = sorted(calibration.codes)
        raise ValueError(
            f"by must name a categorical column of the model, got by={by!r}; "
            + (
                f"choose one of {choices}"
                if choices
                else "the model has none (pass "
                "categorical_features=[...] at fit to treat a column as categorical)"
            )
        )
    return by, preprocessor.level_codes(frame, [by])[by]


def check_coverage(coverage) -> float:
    """``coverage`` as a float in (0, 1), or a ValueError naming the fix."""
    ok = isinstance(coverage, (float, int, np.floating)) and not isinstance(coverage, bool)
    if not (ok and 0 < float(coverage) < 1):
        raise ValueError(
            f"coverage must be a number in (0, 1), got coverage={coverage!r}; e.g. 0.9 for a "
            "90 % interval"
        )
    return float(coverage)
