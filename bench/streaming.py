"""Streaming at scale (issue 20's acceptance): a generated regression table far larger than
the memory budget, trained streamed and predicted in chunks with a bounded peak RSS, against
the same model trained in memory on a 1M-row sample of it.

The table (numeric and categorical columns, Parquet files of ``--file-rows`` rows) is
written under ``--data-dir`` by this script and never committed; it is reused when its
manifest matches. Each measured step runs in a fresh process that reports its own peak
RSS (``VmHWM``), so no step's memory hides another's. Writes ``results/streaming.json``
and ``.md`` with the command that made them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import shlex  # noqa: E402

from _common import write  # noqa: E402

N_NUMERIC, LEVELS = 15, (4, 10, 20, 100, 1000)


def _block(rows: int, seed: int) -> pd.DataFrame:
    """``rows`` i.i.d. rows: 15 numeric columns (normal, uniform, log-normal, one with 5 %
    gaps), 5 categorical ones (4 to 1,000 levels, Zipf-like frequencies), and a target
    that mixes smooth interactions, a step, level effects and unit noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_NUMERIC)).astype(np.float32)
    x[:, 5:10] = rng.uniform(-2, 2, size=(rows, 5))
    x[:, 10:] = rng.lognormal(size=(rows, 5))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(N_NUMERIC)])
    effect = np.zeros(rows)
    for j, k in enumerate(LEVELS):
        p = 1.0 / np.arange(1, k + 1) ** 0.8
        codes = rng.choice(k, size=rows, p=p / p.sum())
        frame[f"c{j}"] = pd.Categorical.from_codes(codes, [f"L{i}" for i in range(k)]).astype(str)
        # each level's effect is a fixed function of its code: the same in every block
        effect += np.sin(1.7 * codes + j) * (2.0 if k <= 20 else 1.0)
    y = (
        2 * np.sin(x[:, 0] * x[:, 1])
        + x[:, 2] ** 2
        + np.abs(x[:, 5] - x[:, 6])
        + 1.5 * (x[:, 7] > 0.5)
        + np.log1p(x[:, 10])
        + effect
        + rng.normal(size=rows)
    )
    frame.loc[rng.random(rows) < 0.05, "x3"] = np.nan
    frame["y"] = y.astype(np.float64)
    return frame


def write_table(folder: Path, rows: int, file_rows: int, row_group: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = {"rows": rows, "file_rows": file_rows, "row_group": row_group, "version": 1}
    stamp = folder / "manifest.json"
    if stamp.exists():  # the same table already written: reuse it (timing aside)
        old = json.loads(stamp.read_text())
        if {k: v for k, v in old.items() if k != "write_seconds"} == manifest:
            return old
    (folder / "train").mkdir(parents=True, exist_ok=True)
    for old in (folder / "train").glob("*.parquet"):
        old.unlink()
    start = time.perf_counter()
    for i in range(-(-rows // file_rows)):
        block = _block(min(file_rows, rows - i * file_rows), seed=1000 + i)
        pq.write_table(
            pa.Table.from_pandas(block, preserve_index=False),
            folder / "train" / f"part{i:04d}.parquet",
            row_group_size=row_group,
        )
    _block(200_000, seed=7).to_parquet(folder / "test.parquet", index=False)
    manifest["write_seconds"] = round(time.perf_counter() - start, 1)
    stamp.write_text(json.dumps(manifest))
    return manifest


CHILD = r"""
import json, sys, time, numpy as np, pandas as pd
from pathlib import Path

def peak_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024

args = json.loads(sys.argv[1])
out = {}
if args["step"] == "fit":
    import torch
    from dnnreg import DNNRegressor, save
    model = DNNRegressor(**args["params"])
    watch = pd.read_parquet(args["test"]).iloc[:50_000]
    curve, steps, held, spent = [], [0], {}, [0.0]

    class Monitor:  # test RMSE on 50,000 fresh rows every `every` steps, eval mode
        def on_after_backward(self, net, last):
            steps[0] += 1
            if steps[0] % args["every"]:
                return
            begin = time.perf_counter()
            if not held:
                held["x"] = model._tensors(watch.drop(columns="y"))
            net.eval()
            with torch.no_grad():
                z = net(*held["x"]).float().mean(0).reshape(-1).numpy()
            net.train()
            pred = model.target_scaler_.inverse(z)
            curve.append((steps[0], float(np.sqrt(np.mean((pred - watch["y"].to_numpy()) ** 2)))))
            spent[0] += time.perf_counter() - begin

    start = time.perf_counter()
    model.fit(args["source"], "y", callbacks=[Monitor()] if args["every"] else [])
    out["fit_seconds"] = time.perf_counter() - start - spent[0]  # without the monitor's
    out["monitor"] = curve
    out["streamed"] = model.resolved_.get("streamed")
    out["epochs"] = model.n_iter_
    out["history"] = [{k: r[k] for k in ("epoch", "train_loss", "val_loss", "val_rmse", "seconds")
                       if k in r} for r in model.history_]  # fmt: skip
    out["fit_peak_mb"] = peak_mb()
    save(model, args["model"], overwrite=True)
    test = pd.read_parquet(args["test"])
    pred = model.predict(test.drop(columns="y"))
    out["test_rmse"] = float(np.sqrt(np.mean((pred - test["y"].to_numpy()) ** 2)))
elif args["step"] == "predict":
    from dnnreg.cli import main
    start = time.perf_counter()
    assert main(["predict", args["model"], args["source"], "--out", args["out"], "--overwrite",
                 "--engine", args["engine"], "--keep", "y"]) == 0
    out["predict_seconds"] = time.perf_counter() - start
    out["predict_peak_mb"] = peak_mb()
print("RESULT " + json.dumps(out))
"""


def child(step: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(step)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{step['step']} failed:\n{done.stderr[-3000:]}")
    line = [s for s in done.stdout.splitlines() if s.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--file-rows", type=int, default=1_000_000)
    ap.add_argument("--row-group", type=int, default=250_000)
    ap.add_argument("--budget", type=int, default=2_000_000, help="max_memory_rows")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", default="auto")
    ap.add_argument(
        "--dropouts",
        default="0.15,0",
        help="one streamed and one in-memory fit per dropout; the first is predicted",
    )
    ap.add_argument(
        "--monitor-every",
        type=int,
        default=10_000,
        help="test RMSE on 50,000 rows every this many steps (0: none)",
    )
    ap.add_argument("--ceiling-mb", type=float, default=2048)
    ap.add_argument("--data-dir", default="/tmp/dnnreg_streaming_bench")
    ap.add_argument("--skip-memory", action="store_true", help="no in-memory 1M-row fit")
    ap.add_argument("--store", default="streaming")
    args = ap.parse_args(argv)
    folder = Path(args.data_dir)
    manifest = write_table(folder, args.rows, args.file_rows, args.row_group)
    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    dropouts = [float(d) for d in args.dropouts.split(",")]
    params = dict(n_ensemble=1, max_iter=args.epochs, random_state=0, batch_size=batch,
                  categorical_encoding="auto", max_memory_rows=args.budget)  # fmt: skip
    common = {"test": str(folder / "test.parquet"), "step": "fit", "every": args.monitor_every}
    record = {
        "command": "python bench/streaming.py " + shlex.join(sys.argv[1:]),
        "table": manifest,
        "params": params,
        "fits": [],
    }
    for i, dropout in enumerate(dropouts):
        p = {**params, "dropout": dropout}
        fit = child({**common, "params": p, "source": str(folder / "train"),
                     "model": str(folder / f"model_streamed{i}")})  # fmt: skip
        n_train = fit["streamed"]["training_rows"]
        fit.update(kind="streamed", dropout=dropout,
                   train_rows_per_s=n_train * fit["epochs"] / fit["fit_seconds"])  # fmt: skip
        record["fits"].append(fit)
        if not args.skip_memory:
            first = str(folder / "train" / "part0000.parquet")  # i.i.d. rows: a 1M sample
            memory = {**p, "max_memory_rows": 10**9}
            fit = child({**common, "params": memory, "source": first,
                         "model": str(folder / f"model_1m{i}")})  # fmt: skip
            record["fits"].append({**fit, "kind": "in_memory_1m", "dropout": dropout})
    for engine in ("torch", "numpy"):  # prediction's cost does not depend on the weights
        pred = child({"step": "predict", "engine": engine, "source": str(folder / "train"),
                      "model": str(folder / "model_streamed0"),
                      "out": str(folder / f"pred_{engine}.parquet")})  # fmt: skip
        pred["rows_per_s"] = args.rows / pred["predict_seconds"]
        record[f"predict_{engine}"] = pred
    peaks = [f["fit_peak_mb"] for f in record["fits"] if f["kind"] == "streamed"] + [
        record[f"predict_{e}"]["predict_peak_mb"] for e in ("torch", "numpy")
    ]
    record["ceiling_mb"] = args.ceiling_mb
    record["within_ceiling"] = bool(max(peaks) < args.ceiling_mb)
    write(args.store, record, _markdown(record, args))
    print(_markdown(record, args))
    return 0 if record["within_ceiling"] else 1


def _markdown(r: dict, args) -> str:
    t = r["table"]
    lines = [
        "| step | dropout | rows | seconds | rows/s | peak RSS MB | test RMSE | best epoch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in r["fits"]:
        streamed = f["kind"] == "streamed"
        name = f"streamed fit, {f['epochs']} epochs" if streamed else (
            f"in-memory fit of the first file, {f['epochs']} epochs")  # fmt: skip
        rows = f"{f['streamed']['training_rows']:,} training" if streamed else f"{t['file_rows']:,}"
        speed = f"{f['train_rows_per_s']:,.0f}" if streamed else ""
        best = min(f["history"], key=lambda h: h["val_rmse"])["epoch"]
        lines.append(
            f"| {name} | {f['dropout']:g} | {rows} | {f['fit_seconds']:.0f} | {speed} "
            f"| {f['fit_peak_mb']:.0f} | {f['test_rmse']:.4f} | {best} |"
        )
    for e in ("torch", "numpy"):
        p = r[f"predict_{e}"]
        lines.append(
            f"| predict --engine {e} | | {t['rows']:,} | {p['predict_seconds']:.0f} "
            f"| {p['rows_per_s']:,.0f} | {p['predict_peak_mb']:.0f} | | |"
        )
    curves = [f for f in r["fits"] if f.get("monitor")]
    if curves:
        steps = sorted({s for f in curves for s, _ in f["monitor"]})
        head = " | ".join(f"{f['kind']}, dropout {f['dropout']:g}" for f in curves)
        lines += ["", "Test RMSE on 50,000 fresh rows during training (eval mode):", "",
                  f"| step | {head} |", "|---" * (len(curves) + 1) + "|"]  # fmt: skip
        for step in steps:
            cells = [dict(f["monitor"]).get(step) for f in curves]
            shown = " | ".join("" if c is None else f"{c:.4f}" for c in cells)
            lines.append(f"| {step:,} | {shown} |")
    lines += [
        "",
        f"{t['rows']:,} rows x 20 columns (15 numeric, 5 categorical with 4-1,000 levels) in "
        f"Parquet files of {t['file_rows']:,} rows, row groups of {t['row_group']:,}; "
        f"max_memory_rows={args.budget:,}; one member, the default network otherwise, "
        f"categorical_encoding='auto'. Test RMSE on 200,000 fresh rows (noise floor 1.0). "
        f"Peak RSS ceiling {r['ceiling_mb']:.0f} MB: "
        f"{'held' if r['within_ceiling'] else 'EXCEEDED'}.",
        "",
        f"Reproduce: `{r['command']}`",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
