"""Inference speed per engine on California housing: single-row latency (median of 200
calls, preprocessing included; the row passed as a one-row DataFrame and as a NumPy array)
and throughput on 100k rows, for dnnreg's torch engine, its NumPy runtime and
onnxruntime (same saved model), against sklearn's MLPRegressor and LightGBM, each fitted
on the same training split. dnnreg is measured with its default ensemble and with one
member (the plain 3x256 network that sklearn's MLP also is). The dnnreg models train two
epochs only: what a prediction costs depends on the architecture, not on the weights.

The arithmetic bounds the throughput: each row costs ``2 x`` the multiply-adds of every
member's layers (reported as MFLOP per row), so rows/s x MFLOP/row is the GFLOP/s the
engine reached, against the few hundred a 2-core AVX2 machine can do at best.

Run: ``.venv/bin/python bench/inference.py``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from _common import write
from dnnreg import DNNRegressor, load, load_numpy, save
from dnnreg.options import DEFAULTS
from dnnreg.tables.datasets import load_california_housing
from dnnreg.tables.splits import train_val_test_indices

K = DEFAULTS["DNNRegressor"]["n_ensemble"]


def latency_ms(predict, row, repeats=200) -> float:
    predict(row)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(row)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def rows_per_second(predict, frame) -> float:
    predict(frame.head(1000))
    start = time.perf_counter()
    predict(frame)
    return len(frame) / (time.perf_counter() - start)


def dnnreg_engines(X_train, y_train, path: Path, label: str, **params) -> dict:
    model = DNNRegressor(random_state=0, max_iter=2, **params).fit(X_train, y_train)
    FLOPS[label] = mflop_per_row(model)
    save(model, path)
    out = {
        f"dnnreg torch ({label})": load(path).predict,
        f"dnnreg numpy ({label})": load_numpy(path).predict,
    }
    try:
        import onnxruntime as ort

        from dnnreg.inference.onnx import export_onnx, onnx_feeds
        from dnnreg.model_file import read_preprocessor

        session = ort.InferenceSession(
            str(export_onnx(path, path.with_suffix(".onnx"))), providers=["CPUExecutionProvider"]
        )
        pre = read_preprocessor(path)[0]
        out[f"dnnreg onnxruntime ({label})"] = lambda f: session.run(
            ["prediction"], onnx_feeds(f, pre)
        )[0]
    except ImportError:
        pass
    return out


FLOPS: dict = {}


def mflop_per_row(model) -> float:
    """Multiply-adds of one row through every matrix, x 2, in millions: a member-batched
    weight ``(k, d_in, d_out)`` (or the embedding's ``(columns, bins, d)``) costs the
    product of its dimensions, a shared 2-D weight (TabM) ``d_in x d_out`` per member;
    categorical embeddings are lookups and cost nothing here."""
    macs = 0
    for name, w in model.model_.state_dict().items():
        if not name.endswith("weight") or w.ndim < 2 or name.startswith("embeddings."):
            continue
        macs += w.numel() * (model.model_.k if w.ndim == 2 else 1)
    return 2 * macs / 1e6


def engines(X_train, y_train, workdir: Path) -> dict:
    out = {
        **dnnreg_engines(X_train, y_train, workdir / "mk", f"{K} members"),
        **dnnreg_engines(X_train, y_train, workdir / "m1", "1 member", n_ensemble=1),
    }
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlp = make_pipeline(
        StandardScaler(),
        MLPRegressor(hidden_layer_sizes=(256, 256, 256), max_iter=20, random_state=0),
    ).fit(X_train, y_train)
    out["sklearn MLPRegressor"] = mlp.predict
    try:
        from lightgbm import LGBMRegressor

        out["lightgbm"] = LGBMRegressor(random_state=0, verbose=-1).fit(X_train, y_train).predict
    except ImportError:
        pass
    return out


def main():
    X, y = load_california_housing(return_X_y=True)
    tr, _, te = train_val_test_indices(len(X))
    big = pd.concat([X.iloc[te]] * (100_000 // len(te) + 1), ignore_index=True).head(100_000)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, predict in engines(X.iloc[tr], y.iloc[tr], Path(tmp)).items():
            results.append(
                {
                    "engine": name,
                    "single_row_us": 1000 * latency_ms(predict, X.iloc[te].head(1)),
                    "single_array_row_us": _array_latency_us(predict, X.iloc[te]),
                    "rows_per_second_100k": rows_per_second(predict, big),
                }
            )
            print(results[-1], flush=True)
    base = next(r for r in results if r["engine"] == "sklearn MLPRegressor")
    table = [
        "| engine | single row, DataFrame (µs) | single row, NumPy array (µs) | 100k rows/s "
        "| throughput vs sklearn MLP | MFLOP/row | GFLOP/s reached |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        arr = r["single_array_row_us"]
        label = next((k for k in FLOPS if r["engine"].endswith(f"({k})")), None)
        mflop = FLOPS.get(label)
        flops = f"{mflop:.2f} | {mflop * r['rows_per_second_100k'] / 1e3:.1f}" if mflop else "– | –"
        table.append(
            f"| {r['engine']} | {r['single_row_us']:.0f} | "
            f"{'n/a' if arr is None else f'{arr:.0f}'} | "
            f"{r['rows_per_second_100k']:,.0f} | "
            f"{r['rows_per_second_100k'] / base['rows_per_second_100k']:.2f}× | {flops} |"
        )
    table += [
        "",
        "dnnreg's models train two epochs (prediction cost does not depend on the weights).",
        "",
        "Reproduce: `python bench/inference.py`",
    ]
    write(
        "inference",
        {
            "dataset": "california_housing (test rows, repeated to 100k)",
            "model": f"DNNRegressor defaults ({K} members) and n_ensemble=1, 2 epochs",
            "mflop_per_row": FLOPS,
            "results": results,
        },
        "\n".join(table),
    )


def _array_latency_us(predict, frame):
    """Latency for a one-row NumPy array, or None for an engine that needs a DataFrame."""
    row = frame.head(1).to_numpy()
    try:
        predict(row)
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    return 1000 * latency_ms(predict, row)


if __name__ == "__main__":
    main()
