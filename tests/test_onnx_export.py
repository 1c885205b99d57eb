"""ONNX export with preprocessing: onnxruntime's predictions equal dnnreg's."""

import numpy as np
import pandas as pd
import pytest

from dnnreg import DNNClassifier, DNNRegressor, save
from dnnreg.inference.onnx import export_onnx, onnx_feeds
from dnnreg.tables.splits import train_val_test_indices

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the 'onnx' extra")


def _run(path, frame, model_dir):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, onnx_feeds(frame, model_dir))))


CONFIGS = [
    dict(activation="relu"),
    dict(activation="gelu", normalization="batch_norm", categorical_encoding="embedding"),
    dict(activation="prelu", normalization="layer_norm", residual=True),
    dict(activation="mish", numeric_scaling="standard"),
    dict(activation="softplus", numeric_scaling="robust", residual=True),
    dict(activation="elu", loss="quantile"),
    dict(activation="silu", loss="gaussian_nll"),
    dict(activation="tanh", loss="poisson"),
    dict(activation="leaky_relu", loss="huber", normalization="batch_norm"),
    dict(activation="sigmoid", loss="mae"),
    dict(
        numeric_embedding="periodic",
        ensemble_kind="tabm",
        clip_predictions=True,
        numeric_scaling="smooth_clip",
    ),
    dict(numeric_embedding="piecewise_linear", ensemble_kind="tabm_mini", embedding_bins=8),
]


@pytest.mark.parametrize("params", CONFIGS, ids=lambda p: "-".join(map(str, p.values())))
def test_regression_graph_equals_dnnreg(params, mixed_frame, tmp_path):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    if params.get("loss") == "poisson":
        y = y - y.min()
    model = DNNRegressor(
        hidden_layer_sizes=(16, 16), n_ensemble=3, max_iter=3, random_state=0, **params
    ).fit(X, y)
    save(model, tmp_path / "m")
    out = _run(export_onnx(tmp_path / "m", tmp_path / "m.onnx"), X, tmp_path / "m")
    np.testing.assert_allclose(out["prediction"], model.predict(X), rtol=1e-5, atol=1e-5)
    if params.get("loss") == "quantile":
        np.testing.assert_allclose(
            out["quantiles"], model.predict_quantiles(X), rtol=1e-5, atol=1e-5
        )
    if params.get("loss") == "gaussian_nll":
        np.testing.assert_allclose(out["variance"], model.predict_mean_variance(X)[1], rtol=1e-4)


@pytest.mark.parametrize("loss", ["cross_entropy", "sigmoid_mse"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classification_graph_equals_dnnreg(loss, n_classes, mixed_frame, tmp_path):
    X = mixed_frame.drop(columns="y")
    y = pd.qcut(mixed_frame["y"], n_classes, labels=["lo", "mid", "hi"][:n_classes]).astype(str)
    clf = DNNClassifier(
        hidden_layer_sizes=(16,),
        max_iter=3,
        loss=loss,
        random_state=0,
        categorical_encoding="embedding",
    ).fit(X, y)
    save(clf, tmp_path / "m")
    out = _run(export_onnx(tmp_path / "m", tmp_path / "m.onnx"), X, tmp_path / "m")
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(X), atol=1e-6)
    assert out["label"].tolist() == clf.predict(X).tolist()


def test_unseen_and_missing_categories_go_to_the_unknown_bucket(mixed_frame, tmp_path):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    model = DNNRegressor(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
    save(model, tmp_path / "m")
    rows = X.head(3).assign(color=["purple", None, "red"], a=[np.nan, 0.5, 1e6])
    out = _run(export_onnx(tmp_path / "m", tmp_path / "m.onnx"), rows, tmp_path / "m")
    np.testing.assert_allclose(out["prediction"], model.predict(rows), rtol=1e-5, atol=1e-5)


def _split_check(frame, target, tmp_path, **params):
    X, y = frame.drop(columns=[target]), frame[target]
    tr, _, te = train_val_test_indices(len(X))
    model = DNNRegressor(random_state=0, **params).fit(X.iloc[tr], y.iloc[tr])
    save(model, tmp_path / "m")
    out = _run(export_onnx(tmp_path / "m", tmp_path / "m.onnx"), X.iloc[te], tmp_path / "m")
    expected = model.predict(X.iloc[te])
    np.testing.assert_allclose(
        out["prediction"], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max()
    )


def test_california_housing_test_split(tmp_path):
    from dnnreg.tables.datasets import load_california_housing

    _split_check(load_california_housing(), "MedHouseVal", tmp_path, max_iter=2)


def test_diamonds_test_split_with_categoricals(shared_datasets, tmp_path):
    frame = pd.read_csv(shared_datasets / "diamonds.csv.gz")
    _split_check(frame, "price", tmp_path, max_iter=1, hidden_layer_sizes=(64, 64))


def test_cli_export_writes_a_graph_that_predicts_like_the_cli(mixed_frame, tmp_path):
    from dnnreg.cli import main

    mixed_frame.to_csv(tmp_path / "t.csv", index=False)
    assert (
        main(
            [
                "--quiet",
                "train",
                str(tmp_path / "t.csv"),
                "--target",
                "y",
                "--out",
                str(tmp_path / "run"),
                "--set",
                "max_iter=2",
                "--set",
                "hidden_layer_sizes=8",
            ]
        )
        == 0
    )
    assert main(["export", str(tmp_path / "run"), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert (
        main(
            [
                "predict",
                str(tmp_path / "run"),
                str(tmp_path / "t.csv"),
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
        == 0
    )
    X = mixed_frame.drop(columns="y")
    out = _run(tmp_path / "m.onnx", X, tmp_path / "run" / "model")
    cli = pd.read_csv(tmp_path / "p.csv")["prediction"]
    np.testing.assert_allclose(out["prediction"], cli, rtol=1e-5, atol=1e-5)


def test_export_of_a_missing_model_is_one_line(tmp_path, capsys):
    from dnnreg.cli import main

    assert main(["export", str(tmp_path / "nope"), "--onnx", str(tmp_path / "m.onnx")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("m", [1, 5, 64, 65, 200, 999])
def test_blockwise_count_equals_searchsorted(m):
    from onnx import TensorProto, helper

    from dnnreg.inference.onnx import OPSET, _count_at_or_below, _Graph

    rng = np.random.default_rng(m)
    values = np.sort(rng.normal(size=m))
    x = np.concatenate([values, rng.normal(size=50) * 2, [-np.inf, np.inf]]).reshape(-1, 1)
    g = _Graph()
    out = _count_at_or_below(g, values, "x")
    g.nodes.append(helper.make_node("Identity", [out], ["count"]))
    graph = helper.make_graph(
        g.nodes,
        "t",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 1])],
        [helper.make_tensor_value_info("count", TensorProto.INT64, ["N", 1])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x})[0]
    assert np.array_equal(got[:, 0], np.searchsorted(values, x[:, 0], side="right"))
