"""The thread policy on an idle and on a busy machine: seconds per epoch of a one-member
default network on 8,000 California rows, with torch's threads fixed at 1, at every core,
and chosen by ``n_threads="auto"`` (:mod:`dnnreg.training.threads`), each alone and beside
one CPU-bound process (a Python busy loop pinned nowhere, as a user's other job would be).

The goal of the speed issue: under load, an epoch costs at most 2x its unloaded time.

Run: ``.venv/bin/python bench/threads.py [--epochs 3] [--repeats 2]``.
Results: results/threads.{json,md}.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from _common import load_table, write
from dnnreg import DNNRegressor

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


def main(epochs: int = 3, repeats: int = 2):
    X, y = load_table("california_housing", "MedHouseVal")
    X, y = X.iloc[:8000], y.iloc[:8000]
    cores = os.cpu_count()
    settings = {"1 thread": 1, f"{cores} threads": cores, "auto": "auto"}
    rows = {}
    for load in ("idle", "one busy process"):
        busy = None
        if load != "idle":
            busy = subprocess.Popen([sys.executable, "-c", BUSY])
            time.sleep(1.0)
        try:
            for name, n in settings.items():
                rows[(load, name)] = epoch_seconds(X, y, n, epochs, repeats)
                print(load, name, f"{rows[(load, name)]:.3f} s/epoch", flush=True)
        finally:
            if busy is not None:
                busy.kill()
    lines = [
        "| threads | idle s/epoch | beside a busy process s/epoch | busy / idle "
        "| busy / best idle |",
        "|---|---|---|---|---|",
    ]
    best_idle = min(rows[("idle", n)] for n in settings)
    for name in settings:
        idle, busy = rows[("idle", name)], rows[("one busy process", name)]
        lines.append(
            f"| {name} | {idle:.3f} | {busy:.3f} | {busy / idle:.2f}x | {busy / best_idle:.2f}x |"
        )
    command = f"python bench/threads.py --epochs {epochs} --repeats {repeats}"
    lines += [
        f"\nOne-member default network (PLE embedding, dropout), 8,000 California rows, batch "
        f"'auto', best of {repeats} fits of {epochs} epochs, {cores} cores. The busy process is "
        "a Python loop; 'auto' re-reads the runnable tasks after every epoch.",
        f"\nReproduce: `{command}`",
    ]
    write(
        "threads",
        {
            "command": command,
            "seconds_per_epoch": {f"{load} / {name}": v for (load, name), v in rows.items()},
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
