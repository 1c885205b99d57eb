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


def read_table(path, *, sep=None, encoding=None, na_values=None) -> pd.DataFrame:
    """Read a CSV (optionally ``.gz``) or Parquet file into a DataFrame.

    ``sep`` (default ``,``; ``\t`` for .tsv), ``encoding`` (default UTF-8) and ``na_values``
    (extra strings that mean "missing", e.g. ``["?"]``) apply to CSV files.

    Raises ``FileNotFoundError``/``ValueError`` with a one-line message for a missing,
    unreadable, empty or unknown-format file, and for a table that reads wrongly: one
    column whose header holds another delimiter (names the ``sep`` to pass), bytes that
    are not in the encoding (names ``encoding``), duplicate column names (pandas would
    rename the second ``price.1`` silently). Warns when a column is numbers but for a few
    tokens such as ``?``, which make it categorical (names ``na_values``).
    """
    path = Path(path)
    read_table_checks(path)
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        reader = _read_parquet
    else:
        options = _csv_options(name, sep, encoding, na_values)
        sep = options["sep"]
        reader = lambda p: _read_csv(p, **options)  # noqa: E731
    try:
        frame = reader(path)
    except UnicodeDecodeError as err:
        raise _not_encoded(path, encoding, err) from err
    except ValueError as err:
        if str(err).startswith("data file"):  # ours, from _read_csv: already one line
            raise
        raise _unreadable(path, err) from err
    except Exception as err:  # pandas, pyarrow and gzip each raise their own types
        raise _unreadable(path, err) from err
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"data file {str(path)!r} has no rows; pass a table with data rows")
    _check_delimiter(path, frame, sep if reader is not _read_parquet else None)
    duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if duplicated:
        raise _duplicates(path, duplicated)
    _warn_mostly_numeric(frame)
    return frame


CHUNK_ROWS = 20_000
"""Rows per chunk when streaming: bench/predict_memory.py measured the torch engine's peak
at 1.2 GB with chunks of 100,000 rows and 0.64 GB with 20,000, at the same speed (the
per-chunk overhead, a pandas frame and one batched forward pass, is amortised by then)."""


def iter_table(path, *, chunk_rows: int = CHUNK_ROWS, sep=None, encoding=None, na_values=None):
    """Yield a CSV or Parquet file (or a directory or glob of Parquet files) as DataFrames
    of at most ``chunk_rows`` rows, holding one chunk in memory at a time
    (:func:`read_table`'s checks and messages; its warnings judge the first chunk). CSV
    chunks are typed each on their own: a categorical column
    of integer codes reads "3" whether a chunk made it int or float
    (:func:`dnnreg.tables.preprocessing.level_strings`)."""
    path = Path(path)
    first = True
    csv_sep = None if path.name.lower().endswith(PARQUET_SUFFIXES) else (sep or ",")
    for frame in _chunks(path, chunk_rows, sep, encoding, na_values):
        if len(frame) == 0:  # a header-only CSV reads as one empty chunk
            continue
        if first:
            if frame.shape[1] == 0:
                raise ValueError(f"data file {str(path)!r} has no columns; pass a table")
            _check_delimiter(path, frame, csv_sep)
            _warn_mostly_numeric(frame)
            first = False
        yield frame
    if first:
        raise ValueError(f"data file {str(path)!r} has no rows; pass a table with data rows")


def _chunks(path: Path, chunk_rows: int, sep, encoding, na_values):
    if path.is_dir() or any(ch in str(path) for ch in "*?["):
        yield from _dataset_chunks(path, chunk_rows)  # a directory or glob of Parquet files
        return
    read_table_checks(path)
    name = path.name.lower()
    try:
        if name.endswith(PARQUET_SUFFIXES):
            import pyarrow.parquet as pq

            _refuse_duplicates(path, pq.read_schema(path).names)
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
            return
        options = _csv_options(name, sep, encoding, na_values)
        _refuse_duplicate_header(path, options)
        with pd.read_csv(path, chunksize=chunk_rows, **options) as reader:
            yield from reader
    except UnicodeDecodeError as err:
        raise _not_encoded(path, encoding, err) from err
    except ValueError as err:
        if str(err).startswith("data file"):
            raise
        raise _unreadable(path, err) from err
    except Exception as err:  # noqa: BLE001 - pandas, pyarrow and gzip raise their own
        raise _unreadable(path, err) from err


def _dataset_chunks(path: Path, chunk_rows: int):
    """A directory or glob of Parquet files, file after file in sorted order."""
    from dnnreg.tables.streaming import open_dataset

    dataset = open_dataset(path)
    _refuse_duplicates(path, dataset.schema.names)
    try:
        for batch in dataset.to_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    except Exception as err:  # noqa: BLE001 - pyarrow raises its own types
        raise _unreadable(path, err) from err


def read_table_checks(path: Path) -> None:
    """The file itself: present, a file, readable, not empty, a known format."""
    if not path.exists():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist; check the path")
    if path.is_dir():
        raise ValueError(f"data file {str(path)!r} is a directory; pass a CSV or Parquet file")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"data file {str(path)!r} is not readable; check its permissions")
    if path.stat().st_size == 0:
        raise ValueError(f"data file {str(path)!r} is empty; pass a table with a header and rows")
    name = path.name.lower()
    if not (name.endswith(PARQUET_SUFFIXES) or name.endswith(CSV_SUFFIXES) or name.endswith(".gz")):
        raise ValueError(
            f"data file {str(path)!r} has an unknown format; use .csv, .csv.gz or .parquet"
        )


def _not_encoded(path, encoding, err) -> ValueError:
    return ValueError(
        f"data file {str(path)!r} is not {encoding or 'UTF-8'} text (byte "
        f"{err.object[err.start]:#04x} at offset {err.start}); pass its encoding, e.g. "
        "--encoding latin-1 (library: read_table(path, encoding='latin-1'))"
    )


def _read_csv(path, **options) -> pd.DataFrame:
    """``pd.read_csv``, refusing duplicate header names (which pandas renames ``x.1``)."""
    _refuse_duplicate_header(path, options)
    return pd.read_csv(path, **options)


def _csv_options(name: str, sep, encoding, na_values) -> dict:
    """pandas' CSV options: ``,`` (tab for .tsv), UTF-8, the extra missing-value tokens."""
    sep = sep or ("\t" if name.endswith((".tsv", ".tsv.gz")) else ",")
    return dict(sep=sep, encoding=encoding or "utf-8", na_values=na_values)


def _refuse_duplicate_header(path, options) -> None:
    """Duplicate names in the raw header (pandas would rename the second ``x.1``)."""
    header = pd.read_csv(path, header=None, nrows=1, dtype=str, **options).iloc[0]
    _refuse_duplicates(path, header.tolist())


def _refuse_duplicates(path, names) -> None:
    duplicated = _duplicated([str(n) for n in names])
    if duplicated:
        raise _duplicates(path, duplicated)


def _read_parquet(path) -> pd.DataFrame:
    """``pd.read_parquet``, refusing duplicate column names (pyarrow fails on them with
    "Multiple matches for FieldRef")."""
    import pyarrow.parquet as pq

    _refuse_duplicates(path, pq.read_schema(path).names)
    return pd.read_parquet(path)


def _duplicated(names) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


def _duplicates(path, names) -> ValueError:
    return ValueError(
        f"data file {str(path)!r} has duplicate column names {names}; rename them so each "
        "column has one name"
    )


def _unreadable(path, err) -> ValueError:
    first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
    return ValueError(
        f"data file {str(path)!r} could not be read as a table "
        f"({type(err).__name__}: {first}); check that it is a valid CSV or Parquet file"
    )


DELIMITERS = (";", "\t", "|", ",", ":")


def _check_delimiter(path, frame, sep) -> None:
    """One column whose name holds another delimiter: the wrong ``sep``."""
    if sep is None or frame.shape[1] != 1:
        return
    header = str(frame.columns[0])
    counts = {d: header.count(d) for d in DELIMITERS if d != sep}
    best = max(counts, key=counts.get)
    if counts[best]:
        shown = "\\t" if best == "\t" else best
        raise ValueError(
            f"data file {str(path)!r} reads as one column named {header[:60]!r}; it looks "
            f"{shown!r}-delimited: pass --sep '{shown}' (library: read_table(path, "
            f"sep='{shown}'))"
        )


def _warn_mostly_numeric(frame) -> None:
    """A text column that is numbers but for a few distinct tokens (``?``, ``n/a``)."""
    for name in frame.columns:
        col = frame[name]
        if not (col.dtype == object or pd.api.types.is_string_dtype(col)):
            continue
        values = col.dropna().astype(str)
        numeric = pd.to_numeric(values, errors="coerce").notna()
        if len(values) < 10 or numeric.mean() < 0.8 or numeric.all():
            continue
        tokens = values[~numeric].value_counts()
        if len(tokens) > 3:
            continue
        share = 100 * (~numeric).sum() / len(col)
        listed = ", ".join(repr(t) for t in tokens.index)
        flags = " ".join(f"--na {t!r}" for t in tokens.index)
        warn(
            f"column {str(name)!r}: {share:.1f} % of values are {listed}, the rest numbers, so "
            f"it is read as categorical; if they mean missing, pass {flags} (library: "
            f"read_table(path, na_values=[{listed}]))"
        )


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
    _refuse_target_copies(X, values, target)
    return X, y.astype(np.float64)


def _refuse_target_copies(X: pd.DataFrame, values: np.ndarray, target: str) -> None:
    """A feature equal to the target on every row leaks the answer: the model and every
    baseline would score perfectly and mean nothing."""
    for name in X.columns:
        col = X[name]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            if np.array_equal(col.to_numpy(dtype=np.float64), values):
                raise ValueError(
                    f"feature column {str(name)!r} equals the target {target!r} on every row, "
                    "which leaks the answer; drop it from the table"
                )


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
