"""Any DataFrame a user has: polars and pyarrow tables keep their column names and dtypes,
``categorical_features`` declares integer-coded categoricals, and device strings name a
device or say which ones exist."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from dnnreg import DNNRegressor, load, load_numpy, save

TINY = dict(hidden_layer_sizes=(16,), n_ensemble=1, max_iter=3, random_state=0)


def _table(n=200):
    rng = np.random.default_rng(0)
    zone = rng.integers(0, 4, n)  # an integer code: a category, not a quantity
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "zone": zone,
            "color": pd.Categorical(rng.choice(["red", "blue"], n)),
        }
    )
    y = frame["size"] + np.array([0.0, 3.0, -2.0, 1.0])[zone] + (frame["color"] == "red")
    return frame, y.astype(float)


def test_a_pyarrow_table_keeps_names_and_dtypes():
    frame, y = _table()
    model = DNNRegressor(**TINY).fit(pa.Table.from_pandas(frame), y)
    assert model.preprocessor_.columns == ["size", "zone", "color"]
    assert "color" in model.preprocessor_.categorical
    shuffled = pa.Table.from_pandas(frame[["color", "zone", "size"]])  # by name, any order
    np.testing.assert_allclose(model.predict(shuffled), model.predict(frame), rtol=1e-6)


def test_a_polars_frame_keeps_names_and_dtypes():
    pl = pytest.importorskip("polars")
    frame, y = _table()
    model = DNNRegressor(**TINY).fit(pl.from_pandas(frame), y)
    assert model.preprocessor_.columns == ["size", "zone", "color"]
    assert "color" in model.preprocessor_.categorical
    reordered = pl.from_pandas(frame[["zone", "color", "size"]])
    np.testing.assert_allclose(model.predict(reordered), model.predict(frame), rtol=1e-6)


@pytest.mark.parametrize("spec", [["zone"], [1], [False, True, False]])
def test_categorical_features_by_name_position_or_mask(spec):
    frame, y = _table()
    model = DNNRegressor(**TINY, categorical_features=spec).fit(frame, y)
    pre = model.preprocessor_
    assert "zone" in pre.categorical and "zone" not in pre.numeric
    assert pre.categorical["zone"]["categories"] == ["0", "1", "2", "3"]
    assert "zone" in DNNRegressor(**TINY).fit(frame, y).preprocessor_.numeric  # default


def test_an_integer_code_reads_the_same_when_missing_values_made_it_float(tmp_path):
    """Level 3 is level 3 whether the column arrives as int64 or as float64 with NaN, in
    every engine (torch, NumPy, ONNX)."""
    frame, y = _table()
    model = DNNRegressor(**TINY, categorical_features=["zone"]).fit(frame, y)
    as_float = frame.assign(zone=frame["zone"].astype(float))
    np.testing.assert_array_equal(model.predict(as_float), model.predict(frame))
    save(model, tmp_path / "m")
    engines = [load(tmp_path / "m").predict, load_numpy(tmp_path / "m").predict]
    ort = pytest.importorskip("onnxruntime")
    from dnnreg.inference.onnx import export_onnx, onnx_feeds

    session = ort.InferenceSession(str(export_onnx(tmp_path / "m", tmp_path / "m.onnx")))
    engines.append(
        lambda f: session.run(["prediction"], onnx_feeds(f, tmp_path / "m"))[0].reshape(-1)
    )
    for predict in engines:
        np.testing.assert_allclose(predict(as_float), model.predict(frame), rtol=1e-5)
    with_missing = as_float.copy()
    with_missing.loc[0, "zone"] = np.nan  # the unknown bucket, as for an unseen level
    unseen = frame.copy()
    unseen.loc[0, "zone"] = 99
    assert model.predict(with_missing)[0] == pytest.approx(model.predict(unseen)[0], rel=1e-6)


def test_categorical_features_that_name_no_column_are_refused():
    frame, y = _table()
    with pytest.raises(ValueError, match=r"categorical_features names no column for \['zip'\]"):
        DNNRegressor(**TINY, categorical_features=["zip"]).fit(frame, y)
    with pytest.raises(ValueError, match="mask of 2 values for 3 columns"):
        DNNRegressor(**TINY, categorical_features=[True, False]).fit(frame, y)


def test_device_strings_name_a_device_or_say_which_exist():
    frame, y = _table(40)
    with pytest.raises(ValueError, match="'cuda:N' or 'mps', got device='gpu'"):
        DNNRegressor(**TINY, device="gpu").fit(frame, y)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device='cuda:1' is not on this machine"):
            DNNRegressor(**TINY, device="cuda:1").fit(frame, y)
    if not (torch.backends.mps.is_available()):
        with pytest.raises(ValueError, match="no MPS device"):
            DNNRegressor(**TINY, device="mps").fit(frame, y)
