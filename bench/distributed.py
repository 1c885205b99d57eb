"""Data-parallel training on one machine: ``torchrun --nproc-per-node=2`` (gloo, one thread
per rank) against one process with one and with two threads, the same model, rows, seed
and global batch, on California housing's 64 % training split (validation 16 %).

Each configuration trains ``--epochs`` epochs without early stopping; the table reports
training rows per second (the fit's own clock: the loop, not process start-up or
torchrun's rendezvous), the ratio to one process with two threads, and the validation
RMSE after the last epoch (the ranks' steps equal one process's on the global batch, so
it should agree to float rounding). The same three configurations run again on the rows
written as a Parquet directory of 16 row groups and streamed (``max_memory_rows`` below
the table), where each torchrun rank reads only its own shard of the row groups; their
validation is the stream's hashed hold-out, so their RMSE compares among themselves.
With two cores the two ranks compete for the same
cores one process with two threads uses, and each step adds a gradient all-reduce, so
little or no gain is expected; the number says what DDP costs here.

Run: ``.venv/bin/python bench/distributed.py [--epochs 3] [--repeats 2]``.
Results: results/distributed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import load_table, write

FIT = r"""
import json, os, sys
sys.path.insert(0, sys.argv[3])
from _common import load_table
from dnnreg import DNNRegressor
from dnnreg.tables.splits import train_val_test_indices
X, y = load_table("california_housing", "MedHouseVal")
tr, va, _ = train_val_test_indices(len(X), seed=0)
params = json.loads(sys.argv[2])
folder = params.pop("stream_from", None)
if folder is None:
    model = DNNRegressor(**params).fit(X.iloc[tr], y.iloc[tr], eval_set=(X.iloc[va], y.iloc[va]))
    rows = len(tr)
else:
    model = DNNRegressor(**params).fit(folder, "MedHouseVal")
    rows = model.resolved_["streamed"]["training_rows"]
if os.environ.get("RANK", "0") == "0":
    h = model.history_[-1]
    json.dump({"seconds": h["seconds"], "val_rmse": h["val_rmse"], "rows": rows,
               "sharded": model.resolved_.get("streamed", {}).get("sharded")},
              open(sys.argv[1], "w"))
"""


def write_parquet(folder: Path) -> None:
    """The training and validation rows (80 %) as one Parquet file of 16 row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dnnreg.tables.splits import train_val_test_indices

    X, y = load_table("california_housing", "MedHouseVal")
    tr, va, _ = train_val_test_indices(len(X), seed=0)
    rows = X.iloc[list(tr) + list(va)].assign(MedHouseVal=y.iloc[list(tr) + list(va)])
    folder.mkdir()
    table = pa.Table.from_pandas(rows.reset_index(drop=True))
    pq.write_table(table, folder / "part0.parquet", row_group_size=-(-len(rows) // 16))


def run(script: Path, params: dict, ranks: int, threads: int) -> dict:
    out = script.with_suffix(f".{ranks}x{threads}.json")
    args = [str(out), json.dumps({**params, "n_threads": threads}), str(Path(__file__).parent)]
    if ranks == 1:
        cmd = [sys.executable, str(script), *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={ranks}",
               "--standalone", str(script), *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    # the default network without bagging (its holdout is the validation split), 8 members
    params = {"max_iter": args.epochs, "early_stopping": False, "bagging": False,
              "batch_size": 256, "random_state": 0}  # fmt: skip
    configs = {"one process, 1 thread": (1, 1), "one process, 2 threads": (1, 2),
               "torchrun, 2 ranks x 1 thread": (2, 1)}  # fmt: skip
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "fit.py"
        script.write_text(FIT)
        write_parquet(Path(tmp) / "table")
        # validation_fraction 0.2 of the 80 %: the in-memory runs' 16 % of all rows
        # a streamed fit validates on its hashed hold-out: early stopping on, never firing
        streamed = {**params, "stream_from": str(Path(tmp) / "table"), "max_memory_rows": 2000,
                    "validation_fraction": 0.2, "early_stopping": True,
                    "n_iter_no_change": 100}  # fmt: skip
        for _ in range(args.repeats):
            for name, (ranks, threads) in configs.items():
                for label, p in (("", params), ("streamed, ", streamed)):
                    r = run(script, p, ranks, threads)
                    best = results.get(label + name)
                    if best is None or r["seconds"] < best["seconds"]:
                        results[label + name] = r
    ref = results["one process, 2 threads"]
    lines = [
        "| configuration | training rows/s | vs one process, 2 threads | val RMSE |",
        "|---|---|---|---|",
    ]
    for name, r in results.items():
        r["rows_per_s"] = r["rows"] * args.epochs / r["seconds"]
        same = results["streamed, one process, 2 threads" if "streamed" in name else
                       "one process, 2 threads"]  # fmt: skip
        r["ratio"] = same["seconds"] / r["seconds"]
        lines.append(
            f"| {name} | {r['rows_per_s']:,.0f} | {r['ratio']:.2f}x | {r['val_rmse']:.4f} |"
        )
    command = "python bench/distributed.py " + shlex.join(sys.argv[1:])
    lines += [
        "",
        f"California housing, {ref['rows']:,} training rows, the default network (8 members) "
        f"without bagging, global batch 256, {args.epochs} epochs, best of {args.repeats}; "
        "the fit's own clock. Streamed rows: the same 80 % as one Parquet file of 16 row "
        "groups, max_memory_rows 2,000, validated on the stream's hashed 20 %, and without dropout "
        "(dropout='auto' is 0 on a streamed table, 0.15 in memory): each ratio is against one "
        "process with 2 threads reading the same way. Sharded (each rank reads "
        "only its row groups): "
        + str(results["streamed, torchrun, 2 ranks x 1 thread"]["sharded"])
        + ".",
        "",
        f"Reproduce: `{command}`",
    ]
    write("distributed", {"command": command, "params": params, "results": results},
          "\n".join(lines))  # fmt: skip


if __name__ == "__main__":
    main()
