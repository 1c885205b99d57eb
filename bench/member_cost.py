"""What each piece of the default network costs per member: seconds for 10 epochs at batch
256 on California's 13,209 training rows (no validation), best of ``--repeats`` fits, each
configuration against the plain 3x256 one-member network in the same run.

Pieces: the piecewise-linear embedding (``numeric_embedding``), dropout 0.15, both (the
default network, one member), and the default ensemble. Two rows show the same pieces
the way they were computed before: dropout through ``nn.Dropout`` (torch's Bernoulli
draws) and the embedding through its full codes (T = 48 entries per column and a
(48 x 16) product) rather than the prefix-sum lookup. scikit-learn's MLPRegressor of the
same shape, 10 epochs, is the outside reference.

Run: ``.venv/bin/python bench/member_cost.py [--repeats 2]``.
Results: results/member_cost.{json,md}.
"""

from __future__ import annotations

import time
import warnings

from _common import load_table, write
from dnnreg import DNNRegressor
from dnnreg.network import embeddings, mlp
from dnnreg.options import DEFAULTS

PLAIN = {"n_ensemble": 1, "numeric_embedding": "none", "dropout": 0.0}
K = DEFAULTS["DNNRegressor"]["n_ensemble"]
CONFIGS = {
    "plain 3x256, one member": PLAIN,
    "+ piecewise-linear embedding": {**PLAIN, "numeric_embedding": "auto"},
    "+ dropout 0.15": {**PLAIN, "dropout": 0.15},
    "default network, one member": {"n_ensemble": 1},
    f"plain 3x256, {K} members": {**PLAIN, "n_ensemble": K},
    f"the defaults ({K} members)": {},
    "+ dropout 0.15 through nn.Dropout (before)": {**PLAIN, "dropout": 0.15, "_old": "dropout"},
    "default network, one member, embedding by codes (before)": {"n_ensemble": 1, "_old": "ple"},
    f"the defaults ({K} members), both pieces as before": {"_old": "both"},
}


def seconds(X, y, params: dict, repeats: int) -> float:
    params = dict(params)
    old = params.pop("_old", "")
    saved = (mlp.MLP.seed_dropout, embeddings.LOOKUP_MIN_ENTRIES)
    if old in ("dropout", "both"):
        mlp.MLP.seed_dropout = lambda self, seed: None  # blocks fall back to nn.Dropout
    if old in ("ple", "both"):
        embeddings.LOOKUP_MIN_ENTRIES = float("inf")
    try:
        best = float("inf")
        for seed in range(repeats):
            model = DNNRegressor(
                max_iter=10, early_stopping=False, batch_size=256, random_state=seed, **params
            ).fit(X, y)
            best = min(best, model.history_[-1]["seconds"])
        return best
    finally:
        mlp.MLP.seed_dropout, embeddings.LOOKUP_MIN_ENTRIES = saved


def sklearn_seconds(X, y, repeats: int) -> float:
    from sklearn.neural_network import MLPRegressor

    from dnnreg.studies.baselines import Tabular

    best = float("inf")
    for seed in range(repeats):
        est = Tabular(
            MLPRegressor(
                hidden_layer_sizes=(256, 256, 256), batch_size=256, max_iter=10, random_state=seed
            )
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            est.fit(X, y)
        best = min(best, time.perf_counter() - start)
    return best


def main(repeats: int = 2):
    X, y = load_table("california_housing", "MedHouseVal")
    X, y = X.iloc[:13209], y.iloc[:13209]
    rows = {}
    for name, params in CONFIGS.items():
        rows[name] = seconds(X, y, params, repeats)
        print(f"{name}: {rows[name]:.2f} s", flush=True)
    rows["scikit-learn MLPRegressor, same shape"] = sklearn_seconds(X, y, repeats)
    plain = rows["plain 3x256, one member"]
    lines = ["| configuration | seconds (10 epochs) | vs plain |", "|---|---|---|"]
    for name, s in rows.items():
        lines.append(f"| {name} | {s:.2f} | {s / plain:.2f}x |")
    overhead = rows[f"the defaults ({K} members)"] / rows[f"plain 3x256, {K} members"]
    lines.append(
        f"\nPer-member overhead of the default architecture at the same shape ({K} members, "
        f"defaults / plain): **{overhead:.2f}x** (goal 1.3x)."
    )
    command = f"python bench/member_cost.py --repeats {repeats}"
    lines += [
        f"\nCalifornia's first 13,209 rows, batch 256, 10 epochs, best of {repeats}; the "
        "loop's own clock (preprocessing excluded; sklearn's fit includes its own).",
        f"\nReproduce: `{command}`",
    ]
    write(
        "member_cost",
        {"command": command, "seconds": rows, "per_member_overhead": overhead},
        "\n".join(lines),
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    main(parser.parse_args().repeats)
