import gzip

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from dnnreg.tables.reading import read_table, split_xy
from dnnreg.tables.splits import train_val_test_indices


def test_reads_csv_gz_and_parquet_identically(tmp_path):
    frame = pd.DataFrame({"a": [1.5, 2.5], "c": ["x", "y"], "y": [0.0, 1.0]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress((tmp_path / "t.csv").read_bytes()))
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.csv.gz", "t.parquet"):
        pd.testing.assert_frame_equal(read_table(tmp_path / name), frame, check_dtype=False)


@pytest.mark.parametrize(
    "content,match",
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"a,b,y\n", "has no rows"),
        (b"PAR1 this is not parquet", "could not be read"),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path, content, match):
    path = tmp_path / ("bad.parquet" if content and content.startswith(b"PAR1") else "bad.csv")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises((ValueError, FileNotFoundError), match=match) as err:
        read_table(path)
    assert "\n" not in str(err.value)


def test_unknown_suffix_is_named(tmp_path):
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(ValueError, match="unknown format"):
        read_table(tmp_path / "t.xlsx")


def test_split_xy_checks_the_target():
    frame = pd.DataFrame({"feat": [1, 2, 3], "price": [1.0, 2.0, 3.0], "s": ["a", "b", "c"]})
    with pytest.raises(ValueError, match="did you mean 'price'"):
        split_xy(frame, "prise")
    with pytest.raises(ValueError, match="must be numeric"):
        split_xy(frame, "s")
    with pytest.raises(ValueError, match="1 NaN and 0 inf"):
        split_xy(frame.assign(price=[1.0, np.nan, 2.0]), "price")
    with pytest.raises(ValueError, match="0 NaN and 1 inf"):
        split_xy(frame.assign(price=[1.0, np.inf, 2.0]), "price")
    with pytest.raises(ValueError, match="is constant"):
        split_xy(frame.assign(price=2.0), "price")
    with pytest.raises(ValueError, match="at least 2 rows"):
        split_xy(frame.head(1), "price")


def test_standard_split_is_64_16_20_and_matches_sklearn_twice():
    tr, va, te = train_val_test_indices(1000, seed=0)
    assert (len(tr), len(va), len(te)) == (640, 160, 200)
    assert len(np.unique(np.concatenate([tr, va, te]))) == 1000
    rest, test = train_test_split(np.arange(1000), test_size=0.2, random_state=0)
    train, val = train_test_split(rest, test_size=0.2, random_state=0)
    assert np.array_equal(te, test) and np.array_equal(va, val) and np.array_equal(tr, train)
