"""Training throughput (samples/s) of dnnreg's engine against sklearn's MLPRegressor, a
tutorial-style PyTorch loop (DataLoader, plain Adam, ``.item()`` per batch) and Keras 3
on the torch backend (when it is installed), on the same data (California housing
training split, 8 standardized features) and architecture (3 hidden ReLU layers of width
w, Adam, MSE), at batch sizes 256/1024/4096 and widths 64/256/1024; and each as a
fraction of the measured fp32 matmul peak, counting 6 × parameters FLOPs per sample.

sklearn is timed on float64 inputs, what a user's DataFrame gives it (it computes in the
input's dtype), and again on float32. dnnreg is also timed with ``precision="bf16"`` and
with ``torch.compile`` at width 256. Each tool trains a warm-up epoch, then ``EPOCHS``
timed epochs, best of ``REPEATS`` runs (this shared 2-core machine is noisy). Run:
``.venv/bin/python bench/training_throughput.py``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

from _common import write
from dnnreg.network.losses import make_loss
from dnnreg.network.mlp import MLP
from dnnreg.tables.datasets import load_california_housing
from dnnreg.tables.splits import train_val_test_indices
from dnnreg.training.loop import fit_model, plain_config

EPOCHS, REPEATS = 2, 2
BATCHES, WIDTHS = (256, 1024, 4096), (64, 256, 1024)


def matmul_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best of ``repeats`` fp32 n×n matmuls with torch's thread pool, in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def flops_per_sample(d_in: int, width: int) -> float:
    params = d_in * width + 2 * width * width + width + 3 * width + 1
    return 6.0 * params


def data():
    X, y = load_california_housing(return_X_y=True)
    tr, _, _ = train_val_test_indices(len(X))
    X, y = X.to_numpy(np.float32)[tr], y.to_numpy(np.float32)[tr]
    X = (X - X.mean(0)) / X.std(0)
    return X, (y - y.mean()) / y.std()


def dnnreg_rate(X, y, width, batch, k=1, precision="fp32", compile=False) -> float:
    torch.manual_seed(0)
    net = MLP(
        d_numeric=X.shape[1],
        cardinalities=[],
        hidden_layer_sizes=(width,) * 3,
        activation="relu",
        n_ensemble=k,
    )
    config = plain_config(
        batch_size=batch,
        max_iter=EPOCHS + 1,
        n_iter_no_change=100,
        precision=precision,
        compile=compile,
    )
    data = (torch.from_numpy(X), torch.zeros(len(X), 0, dtype=torch.long), torch.from_numpy(y))
    result = fit_model(
        net,
        make_loss("mse"),
        data,
        config=config,
        generator=torch.Generator().manual_seed(0),
        log_every=0,
    )
    seconds = result.history[-1]["seconds"] - result.history[0]["seconds"]
    return EPOCHS * len(X) / seconds


def tutorial_rate(X, y, width, batch) -> float:
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(X.shape[1], width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, 1),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(
        TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), batch_size=batch, shuffle=True
    )
    times = []
    for _ in range(EPOCHS + 1):
        start = time.perf_counter()
        total = 0.0
        for xb, yb in loader:
            loss = nn.functional.mse_loss(model(xb).squeeze(-1), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        times.append(time.perf_counter() - start)
    return EPOCHS * len(X) / sum(times[1:])


def sklearn_rate(X, y, width, batch, dtype=np.float64) -> float:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    def fit(epochs):
        model = MLPRegressor(
            hidden_layer_sizes=(width,) * 3,
            batch_size=batch,
            max_iter=epochs,
            tol=0.0,
            n_iter_no_change=10**6,
            shuffle=True,
            random_state=0,
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        return time.perf_counter() - start

    X, y = X.astype(dtype), y.astype(dtype)
    return EPOCHS * len(X) / (fit(EPOCHS + 1) - fit(1))  # the difference drops set-up costs


def keras_rate(X, y, width, batch):
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        return None
    model = keras.Sequential(
        [keras.Input((X.shape[1],))]
        + [keras.layers.Dense(width, activation="relu") for _ in range(3)]
        + [keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, y, batch_size=batch, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(X, y, batch_size=batch, epochs=EPOCHS, verbose=0)
    return EPOCHS * len(X) / (time.perf_counter() - start)


TOOLS = {
    "dnnreg": dnnreg_rate,
    "sklearn MLPRegressor": sklearn_rate,
    "sklearn MLPRegressor (float32)": lambda *a: sklearn_rate(*a, dtype=np.float32),
    "tutorial torch loop": tutorial_rate,
    "keras (torch backend)": keras_rate,
    "dnnreg bf16": lambda *a: dnnreg_rate(*a, precision="bf16"),
    "dnnreg compile": lambda *a: dnnreg_rate(*a, compile=True),
}
ONLY_AT_256 = ("dnnreg bf16", "dnnreg compile")


def best_rate(rate_of, *args):
    rates = [rate_of(*args) for _ in range(REPEATS)]
    return None if rates[0] is None else max(rates)


def main():
    X, y = data()
    peak = matmul_peak_gflops()
    print(f"fp32 matmul peak {peak:.0f} GFLOP/s on {torch.get_num_threads()} threads", flush=True)
    rows = []
    for width in WIDTHS:
        for batch in BATCHES:
            for tool, rate_of in TOOLS.items():
                if tool in ONLY_AT_256 and width != 256:
                    continue
                rate = best_rate(rate_of, X, y, width, batch)
                if rate is None:
                    continue
                gflops = rate * flops_per_sample(X.shape[1], width) / 1e9
                rows.append(
                    {
                        "tool": tool,
                        "width": width,
                        "batch": batch,
                        "samples_per_second": rate,
                        "gflops": gflops,
                        "fraction_of_peak": gflops / peak,
                    }
                )
                print(rows[-1], flush=True)
    ensemble = {w: {k: best_rate(dnnreg_rate, X, y, w, 256, k) for k in (1, 8)} for w in (64, 256)}
    table = [
        "| width | batch | tool | samples/s | GFLOP/s | % of fp32 peak | vs sklearn |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = next(
            b
            for b in rows
            if b["tool"] == "sklearn MLPRegressor"
            and b["width"] == r["width"]
            and b["batch"] == r["batch"]
        )
        table.append(
            f"| {r['width']} | {r['batch']} | {r['tool']} | {r['samples_per_second']:,.0f} | "
            f"{r['gflops']:.0f} | {100 * r['fraction_of_peak']:.0f} % | "
            f"{r['samples_per_second'] / base['samples_per_second']:.2f}× |"
        )
    # An epoch of k members passes every row once per member: time ratio = rate₁ / rate₈.
    table.append(f"\nfp32 matmul peak: {peak:.0f} GFLOP/s.")
    for w, e in ensemble.items():
        table.append(
            f"Ensemble (width {w}, batch 256): an epoch of 8 members takes "
            f"{e[1] / e[8]:.2f}× the time of one member ({e[1]:,.0f} vs {e[8]:,.0f} "
            "rows/s)."
        )
    write(
        "training_throughput",
        {"peak_gflops": peak, "results": rows, "ensemble_samples_per_second": ensemble},
        "\n".join(table),
    )


if __name__ == "__main__":
    main()
