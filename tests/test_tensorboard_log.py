"""TensorBoard events, read back with tensorboard's own event reader."""

import numpy as np
import pytest

from dnnreg import DNNRegressor

pytest.importorskip("tensorboard", reason="tensorboard is in the 'tensorboard' extra")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def test_scalars_histograms_and_graph_are_written(tmp_path, mixed_frame):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    model = DNNRegressor(
        hidden_layer_sizes=(8, 8),
        max_iter=3,
        random_state=0,
        categorical_encoding="embedding",
        tensorboard_dir=str(tmp_path / "tb"),
    ).fit(X, y)
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"histograms": 0}).Reload()
    tags = events.Tags()
    assert {"train_loss", "val_loss", "val_rmse", "lr"} <= set(tags["scalars"])
    logged = [e.value for e in events.Scalars("val_rmse")]
    np.testing.assert_allclose(logged, [h["val_rmse"] for h in model.history_], rtol=1e-6)
    assert [e.step for e in events.Scalars("train_loss")] == [1, 2, 3]
    assert {
        "weights/blocks.0.linear.weight",
        "weights/head.bias",
        "gradients/blocks.1.linear.weight",
        "weights/embeddings.0.weight",
    } <= set(tags["histograms"])
    assert tags["graph"] is True


def test_cli_flag(tmp_path, mixed_frame):
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
                "--tensorboard",
                str(tmp_path / "tb"),
                "--set",
                "max_iter=2",
                "--set",
                "hidden_layer_sizes=8",
            ]
        )
        == 0
    )
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert len(events.Scalars("train_loss")) == 2
