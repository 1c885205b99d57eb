"""Reading tables and splitting them into features and target (row splits live in
:mod:`dnnreg.tables.splits`).

Numbers go in, errors come out early: every problem with a user's table is reported here
with its column name and a fix, before any training starts.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from dnnreg._validation import did_you_mean
from dnnreg.notices import warn

CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(path) -> pd.DataFrame:
    """Read a CSV (optionally ``.gz``) or Parquet file into a DataFrame.

    Raises ``FileNotFoundError``/``ValueError`` with a one-line message for a missing,
    unreadable, empty or unknown-format file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist; check the path")
    if path.is_dir():
        raise ValueError(f"data file {str(path)!r} is a directory; pass a CSV or Parquet file")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"data file {str(path)!r} is not readable; check its permissions")
    if path.stat().st_size == 0:
        raise ValueError(f"data file {str(path)!r} is empty; pass a table with a header and rows")
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        reader = pd.read_parquet
    elif name.endswith(CSV_SUFFIXES) or name.endswith(".gz"):
        sep = "\t" if name.endswith((".tsv", ".tsv.gz")) else ","
        reader = lambda p: pd.read_csv(p, sep=sep)  # noqa: E731
    else:
        raise ValueError(
            f"data file {str(path)!r} has an unknown format; use .csv, .csv.gz or .parquet"
        )
    try:
        frame = reader(path)
    except Exception as err:  # pandas, pyarrow and gzip each raise their own types
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise ValueError(
            f"data file {str(path)!r} could not be read as a table "
            f"({type(err).__name__}: {first}); check that it is a valid CSV or "
            "Parquet file"
        ) from err
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"data file {str(path)!r} has no rows; pass a table with data rows")
    return frame


def split_xy(frame: pd.DataFrame, target: str, *, min_rows: int = 2, task: str = "regression"):
    """Split ``frame`` into features and a target column, checking the target.

    The target must exist and have no missing values; for regression it must be numeric
    and finite, for classification hold at least two classes; and there must be at least
    ``min_rows`` rows.

    Examples
    --------
    >>> X, y = split_xy(pd.DataFrame({"a": [1, 2, 3], "y": [0.5, 1.5, 2.0]}), "y")
    >>> list(X.columns), y.tolist()
    (['a'], [0.5, 1.5, 2.0])
    """
    if target not in frame.columns:
        raise ValueError(
            f"target column {target!r} is not in the table"
            + did_you_mean(target, map(str, frame.columns))
            + f"; columns are {list(map(str, frame.columns))[:20]}"
        )
    y = frame[target]
    if task == "classification":
        return _check_labels(frame, target, min_rows)
    if not (pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)):
        converted = pd.to_numeric(y, errors="coerce")
        bad = y[converted.isna() & y.notna()]
        example = bad.iloc[0] if len(bad) else y.iloc[0]
        raise ValueError(
            f"target column {target!r} must be numeric for regression, got "
            f"values such as {example!r}; encode it as numbers or pick another column"
        )
    values = y.to_numpy(dtype=np.float64)
    n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
    if n_nan or n_inf:
        raise ValueError(
            f"target column {target!r} contains {n_nan} NaN and {n_inf} inf "
            "values; drop or fill those rows before training"
        )
    if len(frame) < min_rows:
        raise ValueError(
            f"the table must have at least {min_rows} rows to train, got {len(frame)}; add rows"
        )
    if np.all(values == values[0]):
        raise ValueError(
            f"target column {target!r} is constant ({values[0]!r}); there is "
            "nothing to learn, pick another target"
        )
    X = frame.drop(columns=[target])
    if X.shape[1] == 0:
        raise ValueError(
            f"the table has no feature columns besides the target {target!r}; add features"
        )
    return X, y.astype(np.float64)


def _check_labels(frame: pd.DataFrame, target: str, min_rows: int):
    y = frame[target]
    if y.isna().any():
        raise ValueError(
            f"target column {target!r} has {int(y.isna().sum())} missing labels; "
            "drop those rows before training"
        )
    if len(frame) < min_rows:
        raise ValueError(
            f"the table must have at least {min_rows} rows to train, got {len(frame)}; add rows"
        )
    return frame.drop(columns=[target]), y


def infer_task(y, *, loss: str | None = None) -> str:
    """``classification`` for a text, categorical or boolean target or a classification
    loss; ``regression`` for numbers (integer labels are numbers until told otherwise,
    with a warning when there are few of them).

    >>> infer_task(pd.Series(["a", "b"])), infer_task(pd.Series([1.5, 2.0]))
    ('classification', 'regression')
    """

    y = pd.Series(y)
    if (
        loss in ("cross_entropy", "sigmoid_mse")
        or not pd.api.types.is_numeric_dtype(y)
        or pd.api.types.is_bool_dtype(y)
    ):
        return "classification"
    n_unique = y.nunique()
    if pd.api.types.is_integer_dtype(y) and n_unique <= 20:
        warn(
            f"the target {y.name!r} holds {n_unique} integer values; treating it as a "
            "number (use DNNClassifier, or --task classification, if they are classes)",
        )
    return "regression"
