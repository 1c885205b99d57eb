import json
import os

import numpy as np
import pytest

import dnnreg
from dnnreg.estimators.persistence import load, save
from dnnreg.model_file import FORMAT_VERSION, ModelFormatError


@pytest.fixture
def fitted(mixed_frame, small_model):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    return small_model(
        max_iter=3, categorical_encoding="embedding", normalization="batch_norm"
    ).fit(X, y), X


def test_save_load_predict_is_bit_identical(fitted, tmp_path):
    model, X = fitted
    save(model, tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == [
        ".dnnreg.json",
        "config.json",
        "preprocessor.json",
        "weights.safetensors",
    ]
    again = load(tmp_path / "m")  # always onto the CPU
    if model.device_.type == "cpu":
        assert np.array_equal(again.predict(X), model.predict(X))
    else:  # fitted on a GPU: its float32 kernels round differently
        np.testing.assert_allclose(again.predict(X), model.predict(X), rtol=1e-5, atol=1e-6)
    assert again.get_params() == model.get_params()
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert (
        config["format_version"] == FORMAT_VERSION
        and config["dnnreg_version"] == dnnreg.__version__
    )
    assert [c["name"] for c in config["feature_schema"]] == ["a", "b", "color"]
    assert config["feature_schema"][2]["kind"] == "categorical"


def test_files_are_json_and_safetensors_and_load_without_pickle(fitted, tmp_path, monkeypatch):
    import pickle
    import struct

    save(fitted[0], tmp_path / "m")
    for name in ("config.json", "preprocessor.json"):
        json.loads((tmp_path / "m" / name).read_text())
    raw = (tmp_path / "m" / "weights.safetensors").read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])  # safetensors: u64 length + JSON header
    assert "blocks.0.linear.weight" in json.loads(raw[8 : 8 + header_len])

    def no_pickle(*a, **k):
        raise AssertionError("pickle must not be used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, no_pickle)
    load(tmp_path / "m")


def test_failed_save_leaves_the_old_model_and_no_debris(fitted, tmp_path, monkeypatch):
    model, X = fitted
    save(model, tmp_path / "m")
    before = {f.name: f.read_bytes() for f in (tmp_path / "m").iterdir()}
    import dnnreg.model_file as persistence

    def crash(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(persistence, "write_json", crash)
    with pytest.raises(RuntimeError):
        save(model, tmp_path / "m", overwrite=True)
    assert {f.name: f.read_bytes() for f in (tmp_path / "m").iterdir()} == before
    assert os.listdir(tmp_path) == ["m"]


def test_schema_mismatch_names_the_columns(fitted, tmp_path):
    model, X = fitted
    save(model, tmp_path / "m")
    with pytest.raises(
        ValueError, match=r"missing column\(s\) \['color'\].*unexpected column\(s\) \['z'\]"
    ):
        load(tmp_path / "m").predict(X.drop(columns="color").assign(z=1.0))


@pytest.mark.parametrize(
    "damage,match",
    [
        (
            lambda d: (d / "weights.safetensors").write_bytes(
                (d / "weights.safetensors").read_bytes()[:100]
            ),
            "corrupt or truncated",
        ),
        (
            lambda d: (d / "config.json").write_text('{"format_version": 1, '),
            "corrupt or truncated",
        ),
        (lambda d: (d / "preprocessor.json").unlink(), "missing \\['preprocessor.json'\\]"),
        (
            lambda d: (d / "config.json").write_text(
                json.dumps({**json.loads((d / "config.json").read_text()), "format_version": 99})
            ),
            f"format_version must be {FORMAT_VERSION}",
        ),
    ],
)
def test_damaged_models_raise_clear_errors(fitted, tmp_path, damage, match):
    save(fitted[0], tmp_path / "m")
    damage(tmp_path / "m")
    with pytest.raises(ModelFormatError, match=match):
        load(tmp_path / "m")


def test_weights_that_do_not_match_the_config_are_refused(fitted, tmp_path):
    """A weights file replaced wholesale (checksum updated too) still fails on shapes."""
    import hashlib

    import torch
    from safetensors.torch import save_file

    save(fitted[0], tmp_path / "m")
    save_file({"blocks.0.linear.weight": torch.zeros(1)}, tmp_path / "m" / "weights.safetensors")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["sha256"]["weights.safetensors"] = hashlib.sha256(
        (tmp_path / "m" / "weights.safetensors").read_bytes()
    ).hexdigest()
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match="does not match config.json"):
        load(tmp_path / "m")


def test_a_model_saved_before_values_were_recorded_still_loads(fitted, tmp_path, small_model):
    """Format-2 files of the previous release recorded no embedding kind, patience or init:
    the loader reads the kind from the weights, never from today's "auto" rule."""
    X = fitted[1]
    model = small_model(max_iter=2).fit(X, X["b"] * 2)  # defaults: piecewise-linear embedding
    save(model, tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    for key in ("numeric_embedding", "n_iter_no_change", "init"):
        del config["resolved"][key]
    path.write_text(json.dumps(config))  # config.json itself is not checksummed
    again = load(tmp_path / "m")
    assert again.resolved_["numeric_embedding"] == "piecewise_linear"
    assert np.array_equal(again.predict(X), model.predict(X))
