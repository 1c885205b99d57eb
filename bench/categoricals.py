"""High-cardinality categoricals: how each ``categorical_encoding`` (and the rule behind
"auto": its one-hot threshold and its rare-level pooling) trades test RMSE against fit
seconds and memory, on three tables built to have such columns, beside CatBoost and
LightGBM on the same rows.

Tables (64/16/20 splits, seeded):

- ``levels``: 6,000 rows; two numeric features; a 5,000-level column with Zipf(1.3)
  frequencies, a 300-level one, a 4-level one; every level's effect drawn from N(0, 1)
  independently, so even a rare level carries signal (the hardest case for pooling);
- ``zones``: California housing with latitude and longitude replaced by the 0.1° grid cell
  they fall in (a "zip code": ~800 levels, most seen a handful of times, neighbours
  similar but the network is not told so);
- ``ids``: 20,000 rows; Friedman #1's five features; a 20-level column with an effect; a
  6,000-level timestamp-like column and a 3,000-level tail-number-like column with no
  effect at all (the flight-delay table's shape: width that only costs).

Variants: ``onehot``; ``embedding`` (every level its own vector); ``auto`` (the library's
rule: one-hot up to 8 kept levels, an embedding beyond, levels seen fewer than
``MIN_LEVEL_COUNT`` times pooled); and ``auto`` with the threshold or the pooling set
(``auto_min5``: the rule until this bench, ``auto_min1``: no pooling, ``auto_min2``,
``auto_onehot32``). Each fit runs in its own process so its peak memory (``ru_maxrss``) is
its own.

Run: ``.venv/bin/python bench/categoricals.py [--tables ...] [--variants ...] [--seeds 0 1]``.
Results: results/categoricals.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys

import numpy as np
import pandas as pd

from _common import write

# variant -> (categorical_encoding, ONEHOT_MAX_LEVELS, MIN_LEVEL_COUNT); None keeps the
# library's constant
VARIANTS = {
    "onehot": ("onehot", None, None),
    "embedding": ("embedding", None, None),
    "auto": ("auto", None, None),
    "auto_min5": ("auto", None, 5),
    "auto_min1": ("auto", None, 1),
    "auto_min2": ("auto", None, 2),
    "auto_onehot32": ("auto", 32, None),
}
PEER_NAMES = ("CatBoost default", "LightGBM early stopping")


def _levels(seed: int):
    rng = np.random.default_rng(seed)
    n = 6000
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


def _zones(seed: int):
    from dnnreg import load_dataset

    frame = load_dataset("california_housing")
    cell = (frame["Latitude"] // 0.1).astype(int).astype(str) + "_"
    cell += (frame["Longitude"] // 0.1).astype(int).astype(str)
    X = frame.drop(columns=["Latitude", "Longitude", "MedHouseVal"]).assign(zone=cell)
    return X, frame["MedHouseVal"]


def _ids(seed: int):
    rng = np.random.default_rng(seed)
    n = 20_000
    x = rng.uniform(size=(n, 5))
    y = (
        10 * np.sin(np.pi * x[:, 0] * x[:, 1])
        + 20 * (x[:, 2] - 0.5) ** 2
        + 10 * x[:, 3]
        + 5 * x[:, 4]
        + rng.normal(size=n)
    )
    group = rng.integers(0, 20, n)
    y += 2 * rng.normal(size=20)[group]
    X = pd.DataFrame(x, columns=[f"x{i}" for i in range(5)])
    X["group"] = np.array([f"g{g}" for g in group], dtype=object)
    X["stamp"] = np.array([f"t{t}" for t in rng.integers(0, 6000, n)], dtype=object)
    p = 1.0 / np.arange(1, 3001) ** 0.7
    X["tail"] = np.array([f"N{t}" for t in rng.choice(3000, n, p=p / p.sum())], dtype=object)
    return X, pd.Series(y, name="y")


TABLES = {"levels": _levels, "zones": _zones, "ids": _ids}


def child(table: str, variant: str, seed: int) -> None:
    """Fit one variant (or a peer) and print a JSON line: seconds, RMSE, peak memory."""
    import resource
    import time

    from dnnreg.tables.splits import train_val_test_indices

    X, y = TABLES[table](0)  # the table is fixed; the seed moves the split and the fit
    tr, va, te = train_val_test_indices(len(X), seed=seed)
    start = time.perf_counter()
    if variant in VARIANTS:
        import dnnreg.tables.preprocessing as pre
        from dnnreg import DNNRegressor

        encoding, onehot_max, min_count = VARIANTS[variant]
        if onehot_max is not None:
            pre.ONEHOT_MAX_LEVELS = onehot_max
        if min_count is not None:
            pre.MIN_LEVEL_COUNT = min_count
        model = DNNRegressor(categorical_encoding=encoding, random_state=seed)
        model.fit(X.iloc[tr], y.iloc[tr], eval_set=(X.iloc[va], y.iloc[va]))
        width = int(model.model_.blocks[0].linear.weight.shape[-2])
    else:
        from peers import PEERS

        model = PEERS[variant](X, y, tr, va, seed, "regression")
        width = None
    seconds = time.perf_counter() - start
    rmse = float(np.sqrt(np.mean((model.predict(X.iloc[te]) - y.iloc[te].to_numpy()) ** 2)))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rmse": rmse, "peak_mb": peak_mb, "inputs": width}))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", nargs="+", default=list(TABLES))
    ap.add_argument("--variants", nargs="+", default=[*VARIANTS, *PEER_NAMES])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    args = ap.parse_args(argv)
    runs: dict = {}
    for table in args.tables:
        for variant in args.variants:
            for seed in args.seeds:
                done = subprocess.run(
                    [sys.executable, __file__, "--child", table, variant, str(seed)],
                    capture_output=True,
                    text=True,
                )
                if done.returncode != 0:
                    print(f"{table} {variant} {seed}: failed\n{done.stderr[-2000:]}")
                    continue
                result = json.loads(done.stdout.strip().splitlines()[-1])
                runs.setdefault(table, {}).setdefault(variant, {})[str(seed)] = result
                print(table, variant, seed, result, flush=True)
    command = "python bench/categoricals.py " + shlex.join(sys.argv[1:])
    write("categoricals", {"command": command, "runs": runs}, _markdown(runs, command))


def _markdown(runs: dict, command: str) -> str:
    lines = []
    for table, variants in runs.items():
        best = min(np.mean([r["rmse"] for r in v.values()]) for v in variants.values())
        lines += [
            f"**{table}**",
            "",
            "| variant | first-layer inputs | fit s | peak MB | test RMSE | / best |",
            "|---|---|---|---|---|---|",
        ]
        for name, seeds in variants.items():
            r = list(seeds.values())
            rmse = np.mean([x["rmse"] for x in r])
            label = f"dnnreg {name}" if name in VARIANTS else name
            lines.append(
                f"| {label} | {r[0]['inputs'] or '–'} | {np.median([x['seconds'] for x in r]):.1f} "
                f"| {max(x['peak_mb'] for x in r):.0f} | {rmse:.4f} | {rmse / best:.3f} |"
            )
        lines.append("")
    lines += [
        "Mean test RMSE over the seeds (each moves the 64/16/20 split and the fit), median fit "
        "seconds, the largest peak memory; first-layer inputs per member, after the numerical "
        "embedding. The default network otherwise (8 members).",
        "",
        f"Reproduce: `{command}`",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
