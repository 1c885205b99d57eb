"""The GPU path (``device="auto"`` on a CUDA machine): training throughput of dnnreg's
engine, fp32 and bf16, and the California housing fit end to end, with the table
resident on the GPU and streamed from host memory. Skips, saying so, without a GPU.

Run: ``python bench/gpu.py`` (on a machine with CUDA).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from dnnreg import DNNRegressor
from dnnreg.network.losses import make_loss
from dnnreg.network.mlp import MLP
from dnnreg.tables.datasets import load_california_housing
from dnnreg.tables.splits import train_val_test_indices
from dnnreg.training.loop import fit_model, plain_config


def rate(X, y, width, batch, k=1, precision="fp32", epochs=3) -> float:
    """Samples/s of dnnreg's loop over ``epochs`` timed epochs after a warm-up epoch."""
    dev = torch.device("cuda")
    net = MLP(
        d_numeric=X.shape[1],
        cardinalities=[],
        hidden_layer_sizes=(width,) * 3,
        activation="relu",
        n_ensemble=k,
    ).to(dev)
    config = plain_config(
        batch_size=batch,
        max_iter=epochs + 1,
        solver="adamw",
        n_iter_no_change=100,
        precision=precision,
    )
    data = (X.to(dev), torch.zeros(len(X), 0, dtype=torch.long, device=dev), y.to(dev))
    result = fit_model(
        net,
        make_loss("mse"),
        data,
        config=config,
        generator=torch.Generator().manual_seed(0),
        log_every=0,
    )
    torch.cuda.synchronize()
    seconds = result.history[-1]["seconds"] - result.history[0]["seconds"]
    return epochs * len(X) / seconds


def california(**params) -> dict:
    X, y = load_california_housing(return_X_y=True)
    tr, va, te = train_val_test_indices(len(X))
    model = DNNRegressor(random_state=0, **params)
    start = time.perf_counter()
    model.fit(X.iloc[tr], y.iloc[tr], eval_set=(X.iloc[va], y.iloc[va]))
    seconds = time.perf_counter() - start
    rmse = float(np.sqrt(np.mean((model.predict(X.iloc[te]) - y.iloc[te].to_numpy()) ** 2)))
    return {
        "params": params,
        "fit_seconds": seconds,
        "test_rmse": rmse,
        "device": str(model.device_),
    }


def main():
    if not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA GPU on this machine; skipped")
        return
    from _common import write

    X, y = load_california_housing(return_X_y=True)
    X = torch.tensor(X.to_numpy(np.float32))
    X = (X - X.mean(0)) / X.std(0)
    X = X.repeat(8, 1)  # 160k rows, so an epoch is long enough to time
    y = torch.tensor(y.to_numpy(np.float32)).repeat(8)
    rows = []
    for width in (256, 1024):
        for batch in (256, 4096):
            for precision in ("fp32", "bf16"):
                rows.append(
                    {
                        "width": width,
                        "batch": batch,
                        "precision": precision,
                        "samples_per_second": rate(X, y, width, batch, precision=precision),
                    }
                )
                print(rows[-1], flush=True)
    fits = [california(), california(precision="bf16"), california(batch_size=1024)]
    import dnnreg.training.devices

    dnnreg.training.devices.GPU_DATA_SHARE = 0.0  # force the host-memory path: batches copied over
    fits.append({**california(), "note": "table in host memory, batches copied"})
    for f in fits:
        print(f, flush=True)
    table = [
        f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}",
        "",
        "| width | batch | precision | samples/s |",
        "|---|---|---|---|",
    ]
    table += [
        f"| {r['width']} | {r['batch']} | {r['precision']} | {r['samples_per_second']:,.0f} |"
        for r in rows
    ]
    table += ["", "| California fit | seconds | test RMSE |", "|---|---|---|"]
    table += [
        f"| {f['params'] or 'defaults'} {f.get('note', '')} | {f['fit_seconds']:.1f} | "
        f"{f['test_rmse']:.4f} |"
        for f in fits
    ]
    write(
        "gpu",
        {"gpu": torch.cuda.get_device_name(), "throughput": rows, "california": fits},
        "\n".join(table),
    )


if __name__ == "__main__":
    sys.exit(main())
