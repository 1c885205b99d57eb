"""Time to accuracy, peak memory and fixed overhead, tool against tool, on California
housing's fixed 64/16/20 split (the test rows never steer training).

- **Time to accuracy**: wall-clock seconds from the start of ``fit`` until the test RMSE
  first reaches ``TARGET`` ($100k), and the RMSE at the end of training. The test RMSE is
  traced after every epoch with the clock paused, so tracing costs no tool anything.
  dnnreg runs its defaults and each speed option (one member, bf16, torch.compile), so the
  table also shows that no option trades accuracy for speed. Peers train the same
  architecture (3 hidden ReLU layers of 256) with Adam at 1e-3 on standardized features:
  sklearn's MLPRegressor (float64, ``partial_fit`` per epoch, batch 200, its default), a
  tutorial PyTorch loop (DataLoader, batch 256) and Keras 3 on the torch backend, for
  ``PEER_EPOCHS`` epochs.
- **Memory**: every tool runs in a fresh process; peak RSS (``ru_maxrss``) and the RSS
  before training (after imports and data) are recorded.
- **Fixed overhead**: ``fit`` on the 442-row diabetes table, timed in a fresh process after
  ``import torch`` and ``import dnnreg``, against sklearn's MLPRegressor.

Run: ``.venv/bin/python bench/speed_options.py``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

TARGET = 0.52
PEER_EPOCHS = 40
DNNREG = {
    "dnnreg (defaults)": {},
    "dnnreg n_ensemble=1": {"n_ensemble": 1},
    "dnnreg bf16": {"precision": "bf16"},
    "dnnreg compile": {"compile": True},
    "dnnreg bf16 + compile": {"precision": "bf16", "compile": True},
}
PEERS = ("sklearn MLPRegressor", "tutorial torch loop", "keras (torch backend)")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Trace:
    """Test RMSE after each epoch, on a clock that stops while it measures."""

    def __init__(self, predict, X_test, y_test):
        self.predict, self.X_test, self.y_test = predict, X_test, y_test
        self.start, self.paused, self.points = time.perf_counter(), 0.0, []

    def epoch_end(self):
        pause = time.perf_counter()
        rmse = float(np.sqrt(np.mean((self.predict(self.X_test) - self.y_test) ** 2)))
        self.points.append((pause - self.start - self.paused, rmse))
        self.paused += time.perf_counter() - pause

    def seconds(self) -> float:
        return time.perf_counter() - self.start - self.paused


def split():
    from dnnreg.tables.datasets import load_california_housing
    from dnnreg.tables.splits import train_val_test_indices

    X, y = load_california_housing(return_X_y=True)
    tr, va, te = train_val_test_indices(len(X))
    train = np.concatenate([tr, va])  # peers have no early stopping: they train on both
    return X, y, train, tr, va, te


def run_dnnreg(options: dict) -> dict:
    from dnnreg import DNNRegressor

    X, y, _, tr, va, te = split()
    model = DNNRegressor(random_state=0, **options)
    trace = Trace(model.predict, X.iloc[te], y.iloc[te].to_numpy())

    class OnEpochEnd:
        def on_epoch_end(self, record, net):
            trace.epoch_end()

    before = rss_mb()
    trace.start = time.perf_counter()
    model.fit(X.iloc[tr], y.iloc[tr], eval_set=(X.iloc[va], y.iloc[va]), callbacks=[OnEpochEnd()])
    seconds = trace.seconds()
    final = float(np.sqrt(np.mean((model.predict(X.iloc[te]) - y.iloc[te].to_numpy()) ** 2)))
    return {
        "trace": trace.points,
        "seconds": seconds,
        "final_rmse": final,
        "rss_before_mb": before,
        "epochs": model.n_iter_,
    }


def _standardized(X, y, train, te):
    Xn = X.to_numpy(np.float64)
    mean, std = Xn[train].mean(0), Xn[train].std(0)
    Xs = (Xn - mean) / std
    return Xs[train], y.to_numpy()[train], Xs[te], y.to_numpy()[te]


def run_sklearn() -> dict:
    from sklearn.neural_network import MLPRegressor

    X, y, train, _, _, te = split()
    X_tr, y_tr, X_te, y_te = _standardized(X, y, train, te)
    model = MLPRegressor(hidden_layer_sizes=(256, 256, 256), random_state=0)
    trace = Trace(model.predict, X_te, y_te)
    before = rss_mb()
    trace.start = time.perf_counter()
    for _ in range(PEER_EPOCHS):
        model.partial_fit(X_tr, y_tr)
        trace.epoch_end()
    return {
        "trace": trace.points,
        "seconds": trace.seconds(),
        "final_rmse": trace.points[-1][1],
        "rss_before_mb": before,
        "epochs": PEER_EPOCHS,
    }


def run_tutorial() -> dict:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    X, y, train, _, _, te = split()
    X_tr, y_tr, X_te, y_te = _standardized(X, y, train, te)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(8, 256),
        nn.ReLU(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Linear(256, 1),
    )
    loader = DataLoader(
        TensorDataset(
            torch.tensor(X_tr, dtype=torch.float32), torch.tensor(y_tr, dtype=torch.float32)
        ),
        batch_size=256,
        shuffle=True,
    )
    x_te = torch.tensor(X_te, dtype=torch.float32)

    def predict(_):
        with torch.no_grad():
            return model(x_te).squeeze(-1).numpy()

    trace = Trace(predict, None, y_te)
    before = rss_mb()
    trace.start = time.perf_counter()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(PEER_EPOCHS):
        for xb, yb in loader:
            loss = nn.functional.mse_loss(model(xb).squeeze(-1), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        trace.epoch_end()
    return {
        "trace": trace.points,
        "seconds": trace.seconds(),
        "final_rmse": trace.points[-1][1],
        "rss_before_mb": before,
        "epochs": PEER_EPOCHS,
    }


def run_keras() -> dict | None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        return None
    X, y, train, _, _, te = split()
    X_tr, y_tr, X_te, y_te = _standardized(X, y, train, te)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,))]
        + [keras.layers.Dense(256, activation="relu") for _ in range(3)]
        + [keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    trace = Trace(lambda x: model.predict(x, verbose=0, batch_size=4096)[:, 0], X_te, y_te)

    class OnEpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            trace.epoch_end()

    before = rss_mb()
    trace.start = time.perf_counter()
    model.fit(
        X_tr.astype(np.float32),
        y_tr.astype(np.float32),
        batch_size=256,
        epochs=PEER_EPOCHS,
        verbose=0,
        callbacks=[OnEpochEnd()],
    )
    return {
        "trace": trace.points,
        "seconds": trace.seconds(),
        "final_rmse": trace.points[-1][1],
        "rss_before_mb": before,
        "epochs": PEER_EPOCHS,
    }


def run_diabetes(tool: str) -> dict:
    """Seconds of one ``fit`` on the diabetes table in this fresh process."""
    from sklearn.datasets import load_diabetes

    if tool == "dnnreg":
        import torch  # noqa: F401  (the goal times fit after both imports)

        from dnnreg import DNNRegressor

        model = DNNRegressor(random_state=0)
    else:
        from sklearn.neural_network import MLPRegressor

        model = MLPRegressor(random_state=0, max_iter=200)
    X, y = load_diabetes(return_X_y=True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        model.fit(X, y)
        return {"fit_seconds": time.perf_counter() - start}


def child(tool: str) -> dict:
    if tool.startswith("diabetes "):
        return run_diabetes(tool.split()[1])
    if tool in DNNREG:
        out = run_dnnreg(DNNREG[tool])
    else:
        out = {
            "sklearn MLPRegressor": run_sklearn,
            "tutorial torch loop": run_tutorial,
            "keras (torch backend)": run_keras,
        }[tool]()
    if out is not None:
        out["peak_rss_mb"] = peak_rss_mb()
    return out


def in_fresh_process(tool: str) -> dict | None:
    result = subprocess.run(
        [sys.executable, __file__, "--child", tool],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )
    if result.returncode != 0:
        print(result.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def time_to(trace, target=TARGET):
    return next((s for s, rmse in trace if rmse <= target), None)


def main():
    from _common import write

    results = {}
    for tool in (*DNNREG, *PEERS):
        results[tool] = in_fresh_process(tool)
        print(tool, {k: v for k, v in (results[tool] or {}).items() if k != "trace"}, flush=True)
    diabetes = {
        t: min(in_fresh_process(f"diabetes {t}")["fit_seconds"] for _ in range(3))
        for t in ("dnnreg", "sklearn")
    }
    sk = time_to(results["sklearn MLPRegressor"]["trace"])
    default_rmse = results["dnnreg (defaults)"]["final_rmse"]
    table = [
        f"| tool | seconds to test RMSE ≤ {TARGET} | vs sklearn | final test RMSE | "
        "vs dnnreg defaults | training seconds | epochs | peak RSS MB | RSS before fit MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for tool, r in results.items():
        if r is None:
            continue
        t = time_to(r["trace"])
        table.append(
            f"| {tool} | {'never' if t is None else f'{t:.1f}'} | "
            f"{'' if t is None or sk is None else f'{t / sk:.2f}×'} | {r['final_rmse']:.4f} | "
            f"{100 * (r['final_rmse'] / default_rmse - 1):+.1f} % | {r['seconds']:.1f} | "
            f"{r['epochs']} | {r['peak_rss_mb']:.0f} | {r['rss_before_mb']:.0f} |"
        )
    table.append(
        f"\nFixed overhead, `fit` on diabetes (442 rows) in a fresh process, best of 3: "
        f"dnnreg {diabetes['dnnreg']:.2f} s (after `import torch, dnnreg`), sklearn "
        f"MLPRegressor {diabetes['sklearn']:.2f} s."
    )
    write(
        "speed_options",
        {"target_rmse": TARGET, "results": results, "diabetes_fit_seconds": diabetes},
        "\n".join(table),
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
    else:
        main()
