"""High-cardinality categoricals: fit seconds, peak memory and test RMSE of the default
network under each ``categorical_encoding`` on a table built to have them.

The table (seeded, 6,000 rows): two numeric features, a column with 5,000 levels drawn
with Zipf(1.3) frequencies (a few frequent levels, thousands seen once or twice, like tail
numbers or timestamps), one with 300 levels and one with 4. The target is
``sin(2 x1) + x2²/2 + effect(level5000) + effect(level300) + effect(level4) + N(0, 0.5²)``,
every level's effect drawn from N(0, 1). 64/16/20 split; each encoding is fitted in its own
process so that its peak resident memory (``ru_maxrss``) is its own. CatBoost's and
LightGBM's defaults on the same rows are the reference (when installed).

Run: ``.venv/bin/python bench/categoricals.py``. Results: results/categoricals.{json,md}.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd

from _common import write

ENCODINGS = ("onehot", "embedding", "auto")


def table(seed: int = 0, n: int = 6000) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = np.sin(2 * x1) + x2**2 / 2 + 0.5 * rng.normal(size=n)
    columns = {"x1": x1, "x2": x2}
    for levels, zipf in ((5000, 1.3), (300, 1.1), (4, None)):
        if zipf is None:
            code = rng.integers(0, levels, n)
        else:
            p = 1.0 / np.arange(1, levels + 1) ** zipf
            code = rng.choice(levels, n, p=p / p.sum())
        y += rng.normal(size=levels)[code]
        columns[f"c{levels}"] = np.array([f"v{c}" for c in code], dtype=object)
    return pd.DataFrame(columns), pd.Series(y, name="y")


def child(encoding: str) -> None:
    """Fit one encoding (or a peer) and print a JSON line: seconds, RMSE, peak memory."""
    import resource
    import time

    from dnnreg.tables.splits import train_val_test_indices

    X, y = table()
    tr, va, te = train_val_test_indices(len(X), seed=0)
    start = time.perf_counter()
    if encoding in ENCODINGS:
        from dnnreg import DNNRegressor

        model = DNNRegressor(categorical_encoding=encoding, random_state=0)
        model.fit(X.iloc[tr], y.iloc[tr], eval_set=(X.iloc[va], y.iloc[va]))
        width = model.model_.blocks[0].linear.weight.shape[-2]
    else:
        from peers import PEERS

        model = PEERS[encoding](X, y, tr, va, 0, "regression")
        width = None
    seconds = time.perf_counter() - start
    rmse = float(np.sqrt(np.mean((model.predict(X.iloc[te]) - y.iloc[te].to_numpy()) ** 2)))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rmse": rmse, "peak_mb": peak_mb, "inputs": width}))


def main():
    rows = {}
    for name in (*ENCODINGS, "CatBoost default", "LightGBM early stopping"):
        done = subprocess.run(
            [sys.executable, __file__, "--child", name], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr[-2000:]}")
            continue
        rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(name, rows[name], flush=True)
    lines = [
        "| model | first-layer inputs | fit s | peak memory MB | test RMSE |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        label = f"dnnreg, categorical_encoding={name!r}" if name in ENCODINGS else name
        lines.append(
            f"| {label} | {r['inputs'] or '–'} | {r['seconds']:.1f} | {r['peak_mb']:.0f} "
            f"| {r['rmse']:.4f} |"
        )
    lines += [
        "\n6,000 rows (64/16/20, seed 0): a 5,000-level Zipf column, a 300-level one, a "
        "4-level one, two numeric features; the default network otherwise. First-layer "
        "inputs are per member, after the numerical embedding.",
        "\nReproduce: `python bench/categoricals.py`",
    ]
    write(
        "categoricals", {"command": "python bench/categoricals.py", "runs": rows}, "\n".join(lines)
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
