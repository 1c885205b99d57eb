import json

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import QuantileTransformer, StandardScaler

from dnnreg.tables.preprocessing import SCALINGS, TablePreprocessor, TargetScaler


def test_imputes_with_training_median_and_adds_indicator():
    train = pd.DataFrame({"a": [1.0, 2.0, np.nan, 10.0]})
    pre = TablePreprocessor(numeric_scaling="standard").fit(train)
    filled = np.array([1.0, 2.0, 2.0, 10.0])  # median of 1, 2, 10 is 2
    out = pre.transform(pd.DataFrame({"a": [np.nan, 4.0]})).numeric
    assert np.allclose(out[:, 0], (np.array([2.0, 4.0]) - filled.mean()) / filled.std())
    assert out[:, 1].tolist() == [1.0, 0.0]  # the missing-value indicator


def test_state_comes_from_training_rows_only():
    train = pd.DataFrame({"a": np.arange(10.0)})
    pre = TablePreprocessor(numeric_scaling="standard").fit(train)
    before = json.dumps(pre.to_dict())
    pre.transform(pd.DataFrame({"a": np.arange(1000.0)}))
    assert json.dumps(pre.to_dict()) == before
    assert pre.numeric["a"]["center"] == 4.5


def test_standard_scaling_equals_sklearn():
    X = np.random.default_rng(0).lognormal(size=(200, 3))
    ours = TablePreprocessor(numeric_scaling="standard").fit(X).transform(X).numeric
    assert np.allclose(ours, StandardScaler().fit_transform(X), atol=1e-5)


def test_robust_scaling_is_median_over_iqr():
    x = np.random.default_rng(1).exponential(size=(101, 1))
    ours = TablePreprocessor(numeric_scaling="robust").fit(x).transform(x).numeric[:, 0]
    q25, q50, q75 = np.percentile(x[:, 0], [25, 50, 75])
    assert np.allclose(ours, (x[:, 0] - q50) / (q75 - q25), atol=1e-5)


def test_smooth_clip_is_robust_scaling_bent_by_its_formula():
    x = np.random.default_rng(1).lognormal(sigma=2.0, size=(301, 1))
    ours = TablePreprocessor(numeric_scaling="smooth_clip").fit(x).transform(x).numeric[:, 0]
    q25, q50, q75 = np.percentile(x[:, 0], [25, 50, 75])
    z = (x[:, 0] - q50) / (q75 - q25)
    assert np.allclose(ours, z / np.sqrt(1 + z**2 / 9), atol=1e-5)
    assert ours.max() < 3.0 and z.max() > 30  # a heavy tail squeezed below the bound
    # The array path (all-numeric input) and the DataFrame path agree bit for bit.
    pre = TablePreprocessor(numeric_scaling="smooth_clip").fit(pd.DataFrame({"x": x[:, 0]}))
    np.testing.assert_array_equal(
        pre.transform(pd.DataFrame({"x": x[:, 0]})).numeric, pre.transform(x).numeric
    )


def test_quantile_scaling_matches_sklearn_at_its_knots():
    rng = np.random.default_rng(2)
    X = rng.lognormal(size=(2000, 2))
    pre = TablePreprocessor(numeric_scaling="quantile", n_quantiles=200).fit(X)
    sk = QuantileTransformer(n_quantiles=200, output_distribution="normal").fit(X)
    inner = X[(X[:, 0] > np.quantile(X[:, 0], 0.01)) & (X[:, 0] < np.quantile(X[:, 0], 0.99))]
    ours = pre.transform(inner).numeric[:, 0]
    # Between knots we interpolate in score space, sklearn in probability space: close,
    # not equal; at interior points the difference is a small fraction of a unit.
    assert np.max(np.abs(ours - sk.transform(inner)[:, 0])) < 0.02
    # Outside the training range values are clamped to the extreme scores, never extrapolated.
    far = pre.transform(np.array([[1e9, 1e9], [-1e9, -1e9]])).numeric
    assert np.all(np.abs(far) < 5.3)


def test_quantile_ties_map_to_the_middle_of_their_mass():
    x = np.array([[0.0]] * 50 + [[1.0]] * 50)
    out = TablePreprocessor(numeric_scaling="quantile").fit(x).transform(np.array([[0.0], [1.0]]))
    from scipy.stats import norm

    assert np.allclose(out.numeric[:, 0], norm.ppf([0.25, 0.75]), atol=0.02)


def test_categoricals_one_hot_with_unknown_bucket_and_embedding_codes():
    train = pd.DataFrame({"c": ["b", "a", "b", None]})
    onehot = TablePreprocessor().fit(train)
    assert onehot.feature_names_out() == ["c=<unknown>", "c=a", "c=b"]
    out = onehot.transform(pd.DataFrame({"c": ["a", "zzz", None]})).numeric
    assert out.tolist() == [[0, 1, 0], [1, 0, 0], [1, 0, 0]]
    emb = TablePreprocessor(categorical_encoding="embedding").fit(train)
    enc = emb.transform(pd.DataFrame({"c": ["a", "b", "new"]}))
    assert enc.numeric.shape == (3, 0) and enc.categorical[:, 0].tolist() == [1, 2, 0]
    assert emb.cardinalities() == [3]


def test_json_round_trip_gives_identical_encodings(mixed_frame):
    X = mixed_frame.drop(columns="y")
    pre = TablePreprocessor().fit(X)
    again = TablePreprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert np.array_equal(pre.transform(X).numeric, again.transform(X).numeric)


def test_bad_columns_are_named():
    pre = TablePreprocessor().fit(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}))
    with pytest.raises(
        ValueError, match=r"missing column\(s\) \['b'\] and unexpected column\(s\) \['c'\]"
    ):
        pre.transform(pd.DataFrame({"a": [1.0], "c": [2.0]}))
    with pytest.raises(ValueError, match=r"\['e'\] have no values"):
        TablePreprocessor().fit(pd.DataFrame({"a": [1.0, 2.0], "e": [np.nan, np.nan]}))
    with pytest.raises(ValueError, match="'a' contains inf"):
        TablePreprocessor().fit(pd.DataFrame({"a": [1.0, np.inf]}))


def test_target_scaler_round_trip():
    y = np.array([3.0, 5.0, 10.0])
    ts = TargetScaler().fit(y)
    z = ts.transform(y)
    assert np.isclose(z.mean(), 0) and np.isclose(z.std(), 1)
    assert np.allclose(ts.inverse(z), y)


@pytest.mark.parametrize("scaling", SCALINGS)
def test_array_path_equals_the_dataframe_path(scaling):
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {
            "a": rng.normal(size=200),
            "b": rng.exponential(size=200),
            "c": rng.integers(0, 3, size=200).astype(float),
        }
    )
    train.loc[::7, "a"] = np.nan  # "a" gets a missing-value indicator
    pre = TablePreprocessor(numeric_scaling=scaling).fit(train)
    test = train.sample(50, random_state=1).to_numpy().copy()
    test[0] = [np.nan, 100.0, -5.0]  # missing, and beyond the training range
    via_frame = pre.transform(pd.DataFrame(test, columns=train.columns)).numeric
    via_array = pre.transform(test)
    np.testing.assert_array_equal(via_array.numeric, via_frame)
    assert via_array.numeric.shape == (50, 4) and via_array.categorical.shape == (50, 0)


def test_array_path_names_an_infinite_column():
    pre = TablePreprocessor().fit(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}))
    with pytest.raises(ValueError, match="column 'b' contains inf"):
        pre.transform(np.array([[1.0, np.inf]]))


def test_an_all_numeric_frame_takes_the_array_path_with_nullable_columns():
    train = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0], "n": pd.array([1, None, 3, 4], "Int64")})
    pre = TablePreprocessor().fit(train)
    rows = pd.DataFrame({"a": [np.nan, 3.0], "n": pd.array([None, 2], "Int64")})
    general = pre.transform(rows.astype(object)).numeric  # object columns: the pandas path
    np.testing.assert_array_equal(pre.transform(rows).numeric, general)


def test_scaled_columns_go_by_role_not_by_name():
    # "a__missing" is a real column here, and also the name of a's missing indicator.
    df = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "a__missing": [5.0, 6.0, 7.0, 8.0]})
    pre = TablePreprocessor().fit(df)
    assert pre.feature_names_out() == ["a", "a__missing", "a__missing"]
    assert pre.scaled_columns() == [0, 2]  # the indicator (position 1) is not embedded


def test_auto_encoding_pools_rare_levels_and_chooses_by_cardinality():
    from dnnreg.tables.preprocessing import MIN_LEVEL_COUNT, ONEHOT_MAX_LEVELS

    rng = np.random.default_rng(0)
    n = 2000
    few = rng.choice(["a", "b", "c"], n)
    many = np.array([f"L{i}" for i in rng.integers(0, 40, n)], dtype=object)  # ~50 per level
    many[:4] = ["rare1", "rare2", "twice", "twice"]  # seen once: fewer than MIN_LEVEL_COUNT
    frame = pd.DataFrame({"few": few, "many": many, "x": rng.normal(size=n)})
    pre = TablePreprocessor(categorical_encoding="auto").fit(frame)
    assert pre.encoding("few") == "onehot" and pre.encoding("many") == "embedding"
    assert len(pre.categorical["many"]["categories"]) > ONEHOT_MAX_LEVELS
    assert "rare1" not in pre.categorical["many"]["categories"]
    assert "twice" in pre.categorical["many"]["categories"]  # seen MIN_LEVEL_COUNT times
    assert pre.categorical["many"]["pooled"] == 2 and MIN_LEVEL_COUNT == 2
    enc = pre.transform(frame)
    assert enc.categorical.shape == (n, 1)  # only "many" is embedded
    assert enc.categorical[:2, 0].tolist() == [0, 0]  # rare -> the unknown bucket
    assert enc.categorical[2, 0] > 0
    assert pre.cardinalities() == [len(pre.categorical["many"]["categories"]) + 1]
    assert [c for c in pre.feature_names_out() if c.startswith("few=")] == [
        "few=<unknown>",
        "few=a",
        "few=b",
        "few=c",
    ]
    again = TablePreprocessor.from_dict(pre.to_dict())
    assert np.array_equal(again.transform(frame).numeric, enc.numeric)
    assert np.array_equal(again.transform(frame).categorical, enc.categorical)
