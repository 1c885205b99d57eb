"""Turn a raw table into the numbers a network trains on, and back for the target.

Fitted on training rows only. Numeric columns are imputed with the training median (plus a
0/1 missing-value indicator for each column that had gaps), then scaled; categorical
columns become integer codes with code 0 reserved for "unknown or missing", either
one-hot encoded here or left as codes for an embedding layer. The whole fitted state is
plain JSON, so the torch-free runtime and the ONNX exporter can replay it exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dnnreg._validation import check_choice, raise_all
from dnnreg.notices import warn
from dnnreg.options import CATEGORICAL_ENCODINGS, SCALINGS  # noqa: F401

# smooth_clip: z / √(1 + (z/3)²) after robust scaling (RealMLP, Holzmüller et al. 2024).
SMOOTH_CLIP = 3.0
# categorical_encoding="auto": a column keeps one 0/1 input per level up to this many kept
# levels and gets a learned embedding beyond (RealMLP-TD's rule, Holzmüller et al. 2024),
# and levels seen fewer than MIN_LEVEL_COUNT times in training share the unknown bucket: a
# level seen once cannot be learned (its one row is all there is), and its own vector would
# only memorise that row. Pooling levels seen up to 4 times (MIN_LEVEL_COUNT 5) cost
# accuracy in bench/categoricals.py: test RMSE 0.898 against 0.787 with MIN_LEVEL_COUNT 2
# on a table whose every level carries its own effect, 0.4868 against 0.4779 on California
# with a 1,581-level grid-cell column (MIN_LEVEL_COUNT 1: 0.789 and 0.4784).
ONEHOT_MAX_LEVELS = 8
MIN_LEVEL_COUNT = 2
# Normal scores are clipped where sklearn's QuantileTransformer clips them (±5.2σ).
_QUANTILE_BOUND = 1e-7


@dataclass
class Encoded:
    """Network inputs: ``numeric`` (n, d_num) float32 and ``categorical`` (n, n_cat) int64."""

    numeric: np.ndarray
    categorical: np.ndarray


def as_frame(X, columns=None) -> pd.DataFrame:
    """Return ``X`` as a DataFrame with string column names (``x0, x1, ...`` for arrays).

    Any other DataFrame keeps its column names and dtypes: a polars DataFrame or a pyarrow
    Table (or RecordBatch) through its own ``to_pandas`` (dictionary and Categorical
    columns become pandas categories), anything else that speaks the DataFrame
    interchange protocol (``__dataframe__``) through pandas' reader of it."""
    X = pandas_frame(X)
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
            raise TypeError(
                "sparse input is not supported; pass a dense array or DataFrame (e.g. X.toarray())"
            )
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(
                f"X must be 2-dimensional (rows x columns), got an array of "
                f"shape {arr.shape}; reshape it, e.g. X.reshape(-1, 1) for a "
                "single feature"
            )
        if np.iscomplexobj(arr):
            raise ValueError("X must be real-valued, got complex data; pass real numbers")
        names = list(columns) if columns is not None else [f"x{i}" for i in range(arr.shape[1])]
        frame = pd.DataFrame(
            arr,
            columns=names[: arr.shape[1]]
            if len(names) >= arr.shape[1]
            else [f"x{i}" for i in range(arr.shape[1])],
        )
    frame = frame.copy(deep=False)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def pandas_frame(X):
    """A polars DataFrame, a pyarrow Table or RecordBatch, or another interchange-protocol
    table as a pandas DataFrame with its names and dtypes; anything else unchanged."""
    if isinstance(X, (pd.DataFrame, np.ndarray)):
        return X
    module = type(X).__module__.split(".")[0]
    if module in ("polars", "pyarrow") and hasattr(X, "to_pandas"):
        return X.to_pandas()
    if hasattr(X, "__dataframe__"):
        return pd.api.interchange.from_dataframe(X)
    return X


def level_strings(col: pd.Series) -> pd.Series:
    """A categorical column's values as the strings its levels are named by, missing
    values kept missing. Numbers that are whole are written without a fraction, so an
    integer code column reads the same when missing values have made it float (3 and
    3.0 are both level "3")."""
    present = col.notna()
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        values = col.astype(np.float64)
        whole = present & (values == np.floor(values.where(present, 0.0)))
        text = values.astype(str).where(~whole, values.where(whole, 0).astype(np.int64).astype(str))
        return text.where(present, None)
    return col.astype(object).where(present, None).map(str, na_action="ignore")


def _warn_if_identifier(name, col: pd.Series) -> None:
    """A text column with a different value in (almost) every row is an identifier: each
    level is seen once, so the model can only memorise it, and any new row is unseen."""
    n = int(col.notna().sum())
    distinct = col.nunique(dropna=True)
    if n >= 50 and distinct >= 0.95 * n:
        warn(
            f"column {name!r} has a different value in {100 * distinct / n:.0f} % of the rows, "
            "like an identifier: the model can only memorise it and every new row's value is "
            "unseen; drop it from the features (the CLI's predict --keep keeps it beside the "
            "predictions)"
        )


def _numeric_or_none(col: pd.Series):
    """The column as float64 if every present value is a number (or a bool), else None."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return None
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        if pd.api.types.is_complex_dtype(col):
            raise ValueError(f"column {col.name!r} holds complex numbers; pass real numbers")
        return col.astype(np.float64).to_numpy()
    try:
        return pd.to_numeric(col, errors="raise").astype(np.float64).to_numpy()
    except (ValueError, TypeError):
        return None


def _normal_ppf(p: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri  # fit-time only; transform is pure numpy

    return ndtri(p)


def _quantile_knots(values: np.ndarray, n_quantiles: int) -> dict:
    """Knots of a piecewise-linear map from a column to normal scores.

    The knots are the column's quantiles at ``n_quantiles`` evenly spaced levels. A value
    repeated across several levels (a tie, common in discrete columns) becomes one knot at
    the middle of its levels, as in sklearn's QuantileTransformer, so a frequent value
    maps to the centre of its probability mass rather than to an extreme.
    """
    levels = np.linspace(0.0, 1.0, n_quantiles)
    quantiles = np.quantile(values, levels)
    knots, first = np.unique(quantiles, return_index=True)
    last = np.append(first[1:] - 1, n_quantiles - 1)
    mid = 0.5 * (levels[first] + levels[last])
    scores = _normal_ppf(np.clip(mid, _QUANTILE_BOUND, 1 - _QUANTILE_BOUND))
    return {"quantiles": knots.tolist(), "scores": scores.tolist()}


def smooth_clip(z: np.ndarray, bound: float) -> np.ndarray:
    """``z / √(1 + (z/bound)²)``: slope 1 at 0, tends to ±bound.

    >>> smooth_clip(np.array([0.0, 3.0, 1e6]), 3.0).round(4).tolist()
    [0.0, 2.1213, 3.0]
    """
    return z / np.sqrt(1.0 + (z / bound) ** 2)


def categorical_state(counts: pd.Series, mode: str) -> dict:
    """A categorical column's fitted state from the counts of its levels (``counts``:
    level string -> rows): the kept levels (sorted; code i+1 is level i, code 0 the
    unknown bucket) and, under ``mode="auto"``, its own encoding and how many rare levels
    were pooled into the bucket.

    >>> categorical_state(pd.Series({"b": 9, "a": 1}), "auto")
    {'categories': ['b'], 'encoding': 'onehot', 'pooled': 1}
    """
    if mode != "auto":
        return {"categories": sorted(counts.index.tolist())}
    kept = sorted(counts.index[counts >= MIN_LEVEL_COUNT].tolist())
    encoding = "onehot" if len(kept) <= ONEHOT_MAX_LEVELS else "embedding"
    return {"categories": kept, "encoding": encoding, "pooled": int(len(counts) - len(kept))}


class TablePreprocessor:
    """Fit on training rows, then encode any table with the same columns.

    Parameters
    ----------
    numeric_scaling : {"quantile", "robust", "standard"}
        ``quantile`` maps each column through its empirical CDF to normal scores (robust to
        heavy tails and outliers; best for MLPs on skewed tables); ``robust`` subtracts the
        median and divides by the interquartile range; ``smooth_clip`` follows that with
        z / √(1 + (z/3)²), which is the identity near 0 and bends outliers smoothly into
        (-3, 3) (RealMLP, Holzmüller, Grinsztajn & Steinwart 2024, "Better by Default");
        ``standard`` uses mean and std.
    categorical_encoding : {"auto", "onehot", "embedding"}
        ``onehot`` expands codes into 0/1 columns here; ``embedding`` leaves integer codes
        for an embedding layer in the network; ``auto`` decides per column: levels seen
        fewer than :data:`MIN_LEVEL_COUNT` times join the unknown bucket, then one-hot up
        to :data:`ONEHOT_MAX_LEVELS` kept levels, an embedding beyond.
    n_quantiles : int
        Knots of the quantile map (capped at the number of training rows).

    Examples
    --------
    >>> df = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "c": ["x", "y", "x", None]})
    >>> pre = TablePreprocessor(numeric_scaling="standard").fit(df)
    >>> pre.feature_names_out()
    ['a', 'a__missing', 'c=<unknown>', 'c=x', 'c=y']
    >>> pre.transform(df).numeric.shape
    (4, 5)
    """

    def __init__(
        self,
        *,
        numeric_scaling="quantile",
        categorical_encoding="onehot",
        n_quantiles=1000,
        categorical_features=(),
    ):
        raise_all(
            [
                check_choice("numeric_scaling", numeric_scaling, SCALINGS),
                check_choice("categorical_encoding", categorical_encoding, CATEGORICAL_ENCODINGS),
            ]
        )
        self.numeric_scaling = numeric_scaling
        self.categorical_encoding = categorical_encoding
        self.categorical_features = list(categorical_features)
        self.n_quantiles = int(n_quantiles)

    # ---------------------------------------------------------------- fitting
    def fit(self, X, *, level_counts=None, missing=()) -> "TablePreprocessor":
        """Fit on the rows of ``X``. A streamed fit (:mod:`dnnreg.tables.streaming`) fits
        on a sample of the rows and passes what one pass over all of them counted
        exactly: ``level_counts`` (column -> counts of each level, as a Series indexed by
        :func:`level_strings`) replaces the sample's vocabulary, and every numeric column
        named in ``missing`` gets its missing-value indicator even when the sample had no
        gap."""
        frame = as_frame(X)
        if frame.shape[0] == 0:
            raise ValueError("X must have at least one row, got 0 rows; pass data")
        if frame.shape[1] == 0:
            raise ValueError("X must have at least one column, got 0 columns; pass features")
        self.columns = list(frame.columns)
        self.numeric, self.categorical, self._cached = {}, {}, None
        empty = [c for c in self.columns if frame[c].isna().all()]
        if empty:
            raise ValueError(f"column(s) {empty} have no values (all missing); drop them")
        forced = set(self.categorical_features)
        for name in self.columns:
            values = None if name in forced else _numeric_or_none(frame[name])
            if values is None:
                _warn_if_identifier(name, frame[name])
                counts = (level_counts or {}).get(name)
                if counts is None:
                    counts = level_strings(frame[name]).dropna().value_counts()
                self.categorical[name] = categorical_state(counts, self.categorical_encoding)
            else:
                self._check_finite(name, values)
                self.numeric[name] = self._fit_numeric(values)
                self.numeric[name]["indicator"] |= name in missing
        return self

    @staticmethod
    def _check_finite(name, values):
        if np.isinf(values).any():
            raise ValueError(
                f"column {name!r} contains inf; replace it with NaN (treated as "
                "missing) or a finite value"
            )

    def _fit_numeric(self, values: np.ndarray) -> dict:
        present = values[~np.isnan(values)]
        state = {"median": float(np.median(present)), "indicator": bool(np.isnan(values).any())}
        filled = np.where(np.isnan(values), state["median"], values)
        if self.numeric_scaling == "standard":
            std = float(filled.std())
            state.update(center=float(filled.mean()), scale=std if std > 0 else 1.0)
        elif self.numeric_scaling in ("robust", "smooth_clip"):
            q25, q75 = np.percentile(filled, [25, 75])
            iqr = float(q75 - q25) or float(filled.std()) or 1.0
            state.update(center=float(np.median(filled)), scale=iqr)
            if self.numeric_scaling == "smooth_clip":
                state["smooth_clip"] = SMOOTH_CLIP
        else:
            state.update(_quantile_knots(filled, max(2, min(self.n_quantiles, len(filled)))))
        return state

    def encoding(self, name: str) -> str:
        """How categorical column ``name`` enters the network: "onehot" or "embedding"
        (decided per column under ``categorical_encoding="auto"``)."""
        return self.categorical[name].get("encoding", self.categorical_encoding)

    # ---------------------------------------------------------------- encoding
    def select_columns(self, X) -> pd.DataFrame:
        """Check ``X`` has exactly the training columns (any order) and return them in order.

        A bare array (or a frame with default integer names) is taken positionally.
        """
        frame = as_frame(X, columns=self.columns)
        if list(frame.columns) == self.columns:
            return frame
        missing = [c for c in self.columns if c not in frame.columns]
        extra = [c for c in frame.columns if c not in self.columns]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing column(s) {missing}")
            if extra:
                parts.append(f"unexpected column(s) {extra}")
            raise ValueError(
                "the table's columns do not match the model's features: "
                + " and ".join(parts)
                + f"; the model expects {self.columns}"
            )
        return frame[self.columns]

    def transform(self, X) -> Encoded:
        array = self._as_numeric_array(X)
        if array is not None:
            return self._transform_numeric_array(array)
        frame = self.select_columns(X)
        n = len(frame)
        blocks, codes = [], []
        for name in self.columns:
            if name in self.numeric:
                blocks.extend(self._encode_numeric(name, frame[name]))
            else:
                c = self._codes(name, frame[name])
                if self.encoding(name) == "onehot":
                    k = len(self.categorical[name]["categories"]) + 1
                    blocks.append(np.eye(k, dtype=np.float64)[c])
                else:
                    codes.append(c)
        numeric = (
            np.column_stack([b.reshape(n, -1) for b in blocks]) if blocks else np.zeros((n, 0))
        )
        cat = np.column_stack(codes) if codes else np.zeros((n, 0), dtype=np.int64)
        return Encoded(numeric.astype(np.float32), cat.astype(np.int64))

    def _encode_numeric(self, name, col):
        values = _numeric_or_none(col)
        if values is None:
            bad = col[pd.to_numeric(col, errors="coerce").isna() & col.notna()].iloc[0]
            raise ValueError(
                f"column {name!r} was numeric in training but holds {bad!r}; "
                "pass numbers (or NaN for missing)"
            )
        self._check_finite(name, values)
        st = self.numeric[name]
        missing = np.isnan(values)
        scaled = self._scale(name, np.where(missing, st["median"], values), self._arrays()["knots"])
        return [scaled, missing.astype(np.float64)] if st["indicator"] else [scaled]

    def _scale(self, name: str, filled: np.ndarray, knots: dict) -> np.ndarray:
        """A numeric column's scaling, applied to its imputed values (both paths use it;
        ``knots`` is ``self._arrays()["knots"]``, fetched once per call by the caller)."""
        if name in knots:
            return np.interp(filled, *knots[name])
        st = self.numeric[name]
        z = (filled - st["center"]) / st["scale"]
        return smooth_clip(z, st["smooth_clip"]) if "smooth_clip" in st else z

    def _arrays(self) -> dict:
        """Fitted state as arrays, built once: each quantile column's knots (converting
        1,000-knot lists on every call would cost more than the map itself), the medians
        and the encoded width, for the array path."""
        if getattr(self, "_cached", None) is None:
            self._cached = {
                "knots": {
                    name: (np.asarray(st["quantiles"]), np.asarray(st["scores"]))
                    for name, st in self.numeric.items()
                    if "quantiles" in st
                },
                "medians": np.array([self.numeric[c]["median"] for c in self.numeric]),
                "width": sum(2 if st["indicator"] else 1 for st in self.numeric.values()),
            }
        return self._cached

    def _as_numeric_array(self, X) -> np.ndarray | None:
        """``X`` as a float array when the model is all-numeric and ``X`` is a numeric array
        of the right width, or a frame with exactly the training columns, all numeric;
        else None (the general DataFrame path handles it, with its error messages)."""
        if self.categorical:
            return None
        if isinstance(X, np.ndarray):
            ok = X.dtype.kind in "fiub" and X.ndim == 2 and X.shape[1] == len(self.columns)
            return X if ok else None
        if (
            isinstance(X, pd.DataFrame)
            and X.columns.tolist() == self.columns
            and all(dt.kind in "fiub" for dt in X.dtypes)
        ):
            return X.to_numpy(dtype=np.float64, na_value=np.nan)  # pd.NA in nullable columns
        return None

    def _transform_numeric_array(self, X: np.ndarray) -> Encoded:
        """The same encoding for an all-numeric array, without building a DataFrame: the
        latency path (one row in ~10 µs rather than ~1 ms through pandas)."""
        X = X.astype(np.float64, copy=False)
        if np.isinf(X).any():
            self._check_finite(self.columns[int(np.isinf(X).any(axis=0).argmax())], X)
        n, arrays = X.shape[0], self._arrays()
        out = np.empty((n, arrays["width"]), dtype=np.float32)
        missing = np.isnan(X)
        filled = np.where(missing, arrays["medians"], X)
        j, knots = 0, arrays["knots"]
        for i, name in enumerate(self.columns):
            out[:, j] = self._scale(name, filled[:, i], knots)
            if self.numeric[name]["indicator"]:
                out[:, j + 1] = missing[:, i]
                j += 1
            j += 1
        return Encoded(out, np.zeros((n, 0), dtype=np.int64))

    def level_codes(self, X: pd.DataFrame, columns=None) -> dict:
        """Each row's level code in the categorical ``columns`` (default: all of them), as
        ``name -> (n,)``, code 0 the unknown-or-missing bucket: the groups of Mondrian
        calibration (:mod:`dnnreg.conformal`)."""
        names = list(self.categorical) if columns is None else columns
        return {name: self._codes(name, X[name]) for name in names}

    def _codes(self, name, col) -> np.ndarray:
        strings = level_strings(col)
        codes = pd.Index(self.categorical[name]["categories"]).get_indexer(strings)
        return codes.astype(np.int64) + 1  # unknown and missing are -1 -> bucket 0

    # ---------------------------------------------------------------- description
    def _numeric_inputs(self):
        """``(name, role)`` of each numeric network input, in order; role is "scaled",
        "missing" (an indicator) or "onehot"."""
        for name in self.columns:
            if name in self.numeric:
                yield name, "scaled"
                if self.numeric[name]["indicator"]:
                    yield f"{name}__missing", "missing"
            elif self.encoding(name) == "onehot":
                yield f"{name}=<unknown>", "onehot"
                for c in self.categorical[name]["categories"]:
                    yield f"{name}={c}", "onehot"

    def feature_names_out(self) -> list[str]:
        """Names of the numeric network inputs, in order."""
        return [name for name, _ in self._numeric_inputs()]

    def scaled_columns(self) -> list[int]:
        """Positions, among :meth:`feature_names_out`, of the scaled numeric columns (not
        missing indicators or one-hot columns): what numerical embeddings embed. By role,
        not by name, so a column named like another's indicator cannot be mistaken."""
        return [j for j, (_, role) in enumerate(self._numeric_inputs()) if role == "scaled"]

    def cardinalities(self) -> list[int]:
        """Number of codes (categories + the unknown bucket) of each embedded column."""
        return [
            len(self.categorical[c]["categories"]) + 1
            for c in self.columns
            if c in self.categorical and self.encoding(c) == "embedding"
        ]

    def schema(self) -> list[dict]:
        """The feature schema saved with a model: each column's name and kind."""
        return [
            {"name": c, "kind": "numeric" if c in self.numeric else "categorical"}
            for c in self.columns
        ]

    def to_dict(self) -> dict:
        return {
            "numeric_scaling": self.numeric_scaling,
            "categorical_encoding": self.categorical_encoding,
            "n_quantiles": self.n_quantiles,
            "columns": self.columns,
            "numeric": self.numeric,
            "categorical": self.categorical,
        }

    @classmethod
    def from_dict(cls, state: dict) -> "TablePreprocessor":
        pre = cls(
            numeric_scaling=state["numeric_scaling"],
            categorical_encoding=state["categorical_encoding"],
            n_quantiles=state["n_quantiles"],
        )
        pre.columns = list(state["columns"])
        pre.numeric, pre.categorical = dict(state["numeric"]), dict(state["categorical"])
        return pre


FAR = 50.0
"""Robust standard deviations (1.4826 x MAD) from the median beyond which a target value
is a far outlier: a normal sample has none (p < 1e-500), a lognormal with sigma 1 one in
28,000."""


def far_outliers(y) -> np.ndarray:
    """The mask of target values more than :data:`FAR` robust standard deviations from the
    median (none when half the values are equal: the MAD is then 0).

    >>> far_outliers(np.r_[np.arange(100.0), 1e6]).nonzero()[0].tolist()
    [100]
    """
    y = np.asarray(y, dtype=np.float64)
    median = np.median(y)
    scale = 1.4826 * np.median(np.abs(y - median))
    if not scale > 0:
        return np.zeros(len(y), dtype=bool)
    return np.abs(y - median) > FAR * scale


class TargetScaler:
    """Standardize the target for training; map predictions back to original units.

    With ``clip`` set, :meth:`inverse` also clips predictions to the training target's
    range [low, high]: a network extrapolates linearly beyond the data it saw, and a
    target with hard bounds (California's prices are capped at $500k) gains from it.

    Examples
    --------
    >>> ts = TargetScaler().fit(np.array([1.0, 3.0]))
    >>> ts.transform(np.array([1.0, 3.0])).tolist(), ts.inverse(np.array([0.0])).tolist()
    ([-1.0, 1.0], [2.0])
    >>> ts.clip = True; ts.inverse(np.array([5.0])).tolist()
    [3.0]
    """

    clip = False

    def fit(self, y, sample_weight=None) -> "TargetScaler":
        """Mean and standard deviation of ``y`` (weighted by ``sample_weight``), and its
        range for clipping."""
        y = np.asarray(y, dtype=np.float64)
        self.mean = float(np.average(y, weights=sample_weight))
        std = float(np.sqrt(np.average((y - self.mean) ** 2, weights=sample_weight)))
        self.std = std if std > 0 and math.isfinite(std) else 1.0
        self.low, self.high = float(y.min()), float(y.max())
        return self

    def fit_robust(self, y) -> "TargetScaler":
        """Median and 1.4826 x the median absolute deviation (the standard deviation of a
        normal sample, estimated so that a few far values cannot move it), for a target
        with far outliers: the mean and standard deviation would squash every ordinary
        value into a sliver the network cannot resolve."""
        y = np.asarray(y, dtype=np.float64)
        self.mean = float(np.median(y))
        scale = 1.4826 * float(np.median(np.abs(y - self.mean)))
        self.std = scale if scale > 0 else 1.0
        self.low, self.high = float(y.min()), float(y.max())
        return self

    def transform(self, y):
        return (np.asarray(y, dtype=np.float64) - self.mean) / self.std

    def inverse(self, z):
        y = np.asarray(z, dtype=np.float64) * self.std + self.mean
        return np.clip(y, self.low, self.high) if self.clip else y

    def to_dict(self) -> dict:
        return {
            "mean": self.mean,
            "std": self.std,
            "low": self.low,
            "high": self.high,
            "clip": bool(self.clip),
        }

    @classmethod
    def from_dict(cls, state: dict) -> "TargetScaler":
        ts = cls()
        ts.mean, ts.std, ts.low, ts.high = (state[k] for k in ("mean", "std", "low", "high"))
        ts.clip = bool(state.get("clip", False))  # absent in models saved before 0.x clipping
        return ts


def embedding_dim(cardinality: int) -> int:
    """Width of a categorical embedding: fast.ai's rule of thumb 1.6 * c^0.56, kept
    between 2 and 16 (a table's categoricals rarely need more). Here, not in the torch
    model, so that torch-free readers of a model (the report) size it the same way.

    >>> embedding_dim(3), embedding_dim(10000)
    (3, 16)
    """
    return int(min(16, max(2, round(1.6 * cardinality**0.56))))
