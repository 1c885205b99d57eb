"""Tables that read wrongly get one line naming the problem and the flag that fixes it,
before any training: a wrong delimiter, a wrong encoding, duplicate headers, a numeric
column with a few '?' tokens, a feature that is a copy of the target."""

import numpy as np
import pandas as pd
import pytest

from dnnreg.cli import main
from dnnreg.tables.reading import read_table, split_xy


def _csv(tmp_path, text, name="t.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _rows(n=30):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=n), rng.normal(size=n)
    return a, b, a + 2 * b


def test_a_semicolon_file_names_the_sep_to_pass(tmp_path):
    a, b, y = _rows()
    text = "a;b;price\n" + "".join(f"{u};{v};{w}\n" for u, v, w in zip(a, b, y))
    path = _csv(tmp_path, text)
    with pytest.raises(ValueError, match=r"looks ';'-delimited: pass --sep ';'"):
        read_table(path)
    assert list(read_table(path, sep=";").columns) == ["a", "b", "price"]


def test_latin1_bytes_name_the_encoding_to_pass(tmp_path):
    path = _csv(tmp_path, "city,price\nMálaga,1\nCádiz,2\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"is not UTF-8 text \(byte 0xe1 .*--encoding latin-1"):
        read_table(path)
    assert read_table(path, encoding="latin-1")["city"].tolist() == ["Málaga", "Cádiz"]


def test_duplicate_headers_are_refused_by_name(tmp_path):
    path = _csv(tmp_path, "a,price,price\n1,2,3\n4,5,6\n")
    with pytest.raises(ValueError, match=r"duplicate column names \['price'\]"):
        read_table(path)


def test_duplicate_parquet_names_are_refused_too(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table([[1, 2], [3, 4]], names=["x", "x"])
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(ValueError, match=r"duplicate column names \['x'\]"):
        read_table(tmp_path / "t.parquet")


def test_a_few_question_marks_are_named_with_the_na_flag(tmp_path):
    a, b, y = _rows(40)
    cells = [str(v) for v in a]
    cells[3] = cells[17] = "?"  # 5 % of the rows
    text = "a,b,price\n" + "".join(f"{u},{v},{w}\n" for u, v, w in zip(cells, b, y))
    path = _csv(tmp_path, text)
    with pytest.warns(UserWarning, match=r"column 'a': 5.0 % of values are '\?'.*--na '\?'"):
        frame = read_table(path)
    assert not pd.api.types.is_numeric_dtype(frame["a"])
    clean = read_table(path, na_values=["?"])
    assert clean["a"].dtype == np.float64 and clean["a"].isna().sum() == 2


def test_a_copy_of_the_target_is_refused():
    a, b, y = _rows()
    frame = pd.DataFrame({"a": a, "leak": y.copy(), "price": y})
    with pytest.raises(ValueError, match=r"feature column 'leak' equals the target 'price'"):
        split_xy(frame, "price")


def test_the_cli_says_it_in_one_line_and_the_flags_work(tmp_path, capsys):
    a, b, y = _rows(60)
    cells = [str(v) for v in a]
    cells[5] = "?"
    text = "a;b;price\n" + "".join(f"{u};{v};{w}\n" for u, v, w in zip(cells, b, y))
    path = _csv(tmp_path, text)
    out = tmp_path / "run"
    assert main(["train", str(path), "--target", "price", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "pass --sep ';'" in err and "Traceback" not in err and not out.exists()
    fast = ["--set", "max_iter=2", "--set", "n_ensemble=1", "--set", "hidden_layer_sizes=8"]
    argv = ["train", str(path), "--target", "price", "--out", str(out), "--sep", ";"]
    assert main([*argv, "--na", "?", *fast]) == 0
    assert (out / "model" / "config.json").exists()
    assert "--na" not in capsys.readouterr().err  # '?' is missing now: no warning


def test_an_identifier_column_is_warned_about_and_a_category_is_not():
    import warnings as w

    import numpy as np
    import pandas as pd

    from dnnreg.tables.preprocessing import TablePreprocessor

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "id": [f"u{i}" for i in range(200)]})
    with pytest.warns(UserWarning, match=r"column 'id' has a different value in 100 %.*--keep"):
        TablePreprocessor().fit(frame)
    frame["id"] = rng.choice([f"c{i}" for i in range(30)], 200)  # 30 levels: a category
    with w.catch_warnings():
        w.simplefilter("error")
        TablePreprocessor().fit(frame)
