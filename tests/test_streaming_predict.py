"""predict streams: the table is read, predicted and written chunk by chunk, giving what a
whole-table predict gives, for both engines, CSV and Parquet in and out, stdout, kept id
columns; a failure in a late chunk leaves no output and the previous file intact."""

import numpy as np
import pandas as pd
import pytest

from dnnreg import DNNClassifier, DNNRegressor, save
from dnnreg.cli import main
from dnnreg.tables.reading import iter_table


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 53
    zone = rng.integers(0, 4, n).astype(float)
    zone[::9] = np.nan  # integer codes that missing values make float in some chunks only
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "x": rng.normal(size=n),
            "zone": zone,
            "kind": rng.choice(["a", "b", "c"], n),
            "y": rng.normal(size=n),
        }
    )


@pytest.fixture(scope="module")
def models(table, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    X = table[["x", "zone", "kind"]]
    small = dict(hidden_layer_sizes=(8,), n_ensemble=2, max_iter=3, random_state=0)
    reg = DNNRegressor(**small, categorical_features=["zone"]).fit(X, table["y"])
    clf = DNNClassifier(**small, categorical_features=["zone"]).fit(X, table["kind"] == "a")
    return {"reg": save(reg, root / "reg"), "clf": save(clf, root / "clf")}, X


def _write(frame, path):
    frame.to_parquet(path, index=False) if path.suffix == ".parquet" else frame.to_csv(
        path, index=False
    )
    return path


def _read(path):
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


@pytest.mark.parametrize("engine", ["torch", "numpy"])
@pytest.mark.parametrize("kind", ["reg", "clf"])
@pytest.mark.parametrize(
    "src, dst", [(".csv", ".csv"), (".parquet", ".parquet"), (".csv", ".parquet")]
)
def test_chunks_predict_what_the_whole_table_does(tmp_path, table, models, engine, kind, src, dst):
    paths, X = models
    data = _write(table.drop(columns="y"), tmp_path / f"in{src}")
    whole, chunked = tmp_path / f"whole{dst}", tmp_path / f"chunked{dst}"
    common = ["predict", str(paths[kind]), str(data), "--engine", engine, "--keep", "id"]
    interval = ["--interval", "0.8"] if kind == "reg" else []
    assert main([*common, *interval, "--out", str(whole), "--chunk-rows", "1000"]) == 0
    assert main([*common, *interval, "--out", str(chunked), "--chunk-rows", "7"]) == 0
    a, b = _read(whole), _read(chunked)
    # 8 chunks, one without missing zones, equal to one chunk up to float32 rounding (a
    # matrix product's summation order depends on the batch's rows)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-5, atol=1e-6)
    assert list(b.columns[:2]) == ["id", "prediction"] and b["id"].tolist() == table["id"].tolist()
    if kind == "reg":
        assert {"lower", "upper"} <= set(b.columns)
    else:
        assert [c for c in b.columns if c.startswith("proba_")] == ["proba_False", "proba_True"]


def test_the_model_never_sees_more_than_a_chunk(tmp_path, table, models, monkeypatch):
    from dnnreg.inference.runtime import NumpyModel

    paths, _ = models
    data = _write(table.drop(columns="y"), tmp_path / "in.csv")
    seen = []
    real = NumpyModel.predict
    monkeypatch.setattr(NumpyModel, "predict", lambda self, X: seen.append(len(X)) or real(self, X))
    out = tmp_path / "p.csv"
    assert main(["predict", str(paths["reg"]), str(data), "--engine", "numpy", "--keep", "id",
                 "--out", str(out), "--chunk-rows", "10"]) == 0  # fmt: skip
    assert seen == [10, 10, 10, 10, 10, 3] and len(pd.read_csv(out)) == len(table)


def test_out_dash_writes_csv_to_stdout(tmp_path, table, models, capsys):
    paths, _ = models
    data = _write(table.drop(columns=["y", "id"]), tmp_path / "in.csv")
    file = tmp_path / "p.csv"
    assert main(["predict", str(paths["reg"]), str(data), "--out", str(file)]) == 0
    capsys.readouterr()
    assert main(["predict", str(paths["reg"]), str(data), "--out", "-"]) == 0
    assert capsys.readouterr().out == file.read_text()  # the same bytes, nothing else


def test_a_bad_late_chunk_leaves_the_old_output(tmp_path, table, models, capsys):
    paths, _ = models
    bad = table.drop(columns=["y", "id"]).astype({"x": object})
    bad.loc[50, "x"] = "oops"  # in the last chunk of 10
    data = _write(bad, tmp_path / "in.csv")
    out = tmp_path / "p.csv"
    out.write_text("old\n")
    args = ["predict", str(paths["reg"]), str(data), "--out", str(out), "--overwrite"]
    assert main([*args, "--chunk-rows", "10"]) == 1
    assert "'oops'" in capsys.readouterr().err
    assert out.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "in.csv",
        "p.csv",
    ]


def test_iter_table_keeps_read_tables_refusals(tmp_path):
    (tmp_path / "d.csv").write_text("a,a,y\n1,2,3\n")
    with pytest.raises(ValueError, match="duplicate column names"):
        list(iter_table(tmp_path / "d.csv"))
    (tmp_path / "s.csv").write_text("a;b;y\n1;2;3\n")
    with pytest.raises(ValueError, match="--sep ';'"):
        list(iter_table(tmp_path / "s.csv"))
    (tmp_path / "h.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="has no rows"):
        list(iter_table(tmp_path / "h.csv"))
    with pytest.raises(ValueError, match="has no rows"):
        list(iter_table(tmp_path / "h.csv", chunk_rows=1))


@pytest.mark.parametrize("glob", [False, True])
def test_a_directory_of_parquet_files_predicts_file_after_file(tmp_path, table, models, glob):
    paths, _ = models
    folder = tmp_path / "parts"
    folder.mkdir()
    rows = table.drop(columns="y")
    for i, start in enumerate((0, 20, 40)):  # sorted names: part0, part1, part2
        rows.iloc[start : start + 20].to_parquet(folder / f"part{i}.parquet", index=False)
    one = _write(rows, tmp_path / "all.parquet")
    source = str(folder / "part*.parquet") if glob else str(folder)
    whole, parts = tmp_path / "whole.csv", tmp_path / "parts.csv"
    for data, out in ((one, whole), (source, parts)):
        assert (
            main(["predict", str(paths["reg"]), str(data), "--keep", "id", "--out", str(out)]) == 0
        )
    a, b = _read(whole), _read(parts)
    assert b["id"].tolist() == table["id"].tolist()
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-5, atol=1e-6)
