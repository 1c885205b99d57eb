"""The thread policy on an idle and on a busy machine: seconds per epoch of a one-member
default network on 8,000 California rows, with torch's threads fixed at 1, at every core,
and chosen by ``n_threads="auto"`` (:mod:`dnnreg.training.threads`), each alone and beside
one CPU-bound process (a Python busy loop pinned nowhere, as a user's other job would be).

The NumPy runtime follows the same rule for OpenBLAS (:mod:`dnnreg.cores`): the second
table times ``load_numpy(path, n_threads=...)`` predicting 20,000 rows with the default
ensemble (trained two epochs; the weights do not change the cost), idle and loaded.

The goal of the speed issue: under load, an epoch costs at most 2x its unloaded time.

Run: ``.venv/bin/python bench/threads.py [--epochs 3] [--repeats 2]``.
Results: results/threads.{json,md}.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import load_table, write
from dnnreg import DNNRegressor, save

BUSY = "import time\nend = time.time() + 600\nwhile time.time() < end:\n    pass\n"


def epoch_seconds(X, y, n_threads, epochs: int, repeats: int) -> float:
    """Best-of-``repeats`` mean seconds per epoch (the loop's own clock, no validation)."""
    best = np.inf
    for seed in range(repeats):
        model = DNNRegressor(
            n_ensemble=1,
            max_iter=epochs,
            early_stopping=False,
            n_threads=n_threads,
            random_state=seed,
        ).fit(X, y)
        best = min(best, model.history_[-1]["seconds"] / epochs)
    return best


def predict_seconds(path, X, n_threads, repeats: int) -> float:
    """Best-of-``repeats`` seconds for the NumPy runtime to predict ``X``."""
    from dnnreg import load_numpy

    engine = load_numpy(path, n_threads=n_threads)
    engine.predict(X.head(1000))
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        engine.predict(X)
        best = min(best, time.perf_counter() - start)
    return best


def ratio_lines(rows: dict, settings: dict, unit: str) -> list[str]:
    lines = [
        f"| threads | idle {unit} | beside a busy process {unit} | busy / idle "
        "| busy / best idle |",
        "|---|---|---|---|---|",
    ]
    best_idle = min(rows[("idle", n)] for n in settings)
    for name in settings:
        idle, busy = rows[("idle", name)], rows[("one busy process", name)]
        lines.append(
            f"| {name} | {idle:.3f} | {busy:.3f} | {busy / idle:.2f}x | {busy / best_idle:.2f}x |"
        )
    return lines


def main(epochs: int = 3, repeats: int = 2):
    X, y = load_table("california_housing", "MedHouseVal")
    X, y = X.iloc[:8000], y.iloc[:8000]
    cores = os.cpu_count()
    settings = {"1 thread": 1, f"{cores} threads": cores, "auto": "auto"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        save(DNNRegressor(max_iter=2, random_state=0).fit(X, y), path)
        big = pd.concat([X] * 3, ignore_index=True).head(20_000)
        rows, predict_rows = {}, {}
        for load in ("idle", "one busy process"):
            busy = None
            if load != "idle":
                busy = subprocess.Popen([sys.executable, "-c", BUSY])
                time.sleep(1.0)
            try:
                for name, n in settings.items():
                    rows[(load, name)] = epoch_seconds(X, y, n, epochs, repeats)
                    predict_rows[(load, name)] = predict_seconds(path, big, n, repeats)
                    print(
                        load,
                        name,
                        f"{rows[(load, name)]:.3f} s/epoch, "
                        f"{predict_rows[(load, name)]:.3f} s/20k rows",
                        flush=True,
                    )
            finally:
                if busy is not None:
                    busy.kill()
    command = f"python bench/threads.py --epochs {epochs} --repeats {repeats}"
    lines = [
        "Training (torch):\n",
        *ratio_lines(rows, settings, "s/epoch"),
        f"\nOne-member default network (PLE embedding, dropout), 8,000 California rows, batch "
        f"'auto', best of {repeats} fits of {epochs} epochs, {cores} cores. The busy process is "
        "a Python loop; 'auto' re-reads the runnable tasks after every epoch.",
        "\nPrediction (NumPy runtime, OpenBLAS):\n",
        *ratio_lines(predict_rows, settings, "s/20k rows"),
        "\nThe default ensemble, 20,000 rows, best of "
        f"{repeats}; 'auto' counts the idle cores once per call.",
        f"\nReproduce: `{command}`",
    ]
    write(
        "threads",
        {
            "command": command,
            "seconds_per_epoch": {f"{load} / {name}": v for (load, name), v in rows.items()},
            "numpy_predict_seconds_20k": {
                f"{load} / {name}": v for (load, name), v in predict_rows.items()
            },
        },
        "\n".join(lines),
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    main(args.epochs, args.repeats)
