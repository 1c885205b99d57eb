"""Peak memory of ``dnnreg predict`` against the input's size: the default regressor
(8 members; trained 2 epochs, which does not change the cost) predicting CSV tables of
50,000 and 500,000 rows with each engine, streamed in chunks of 20,000 rows (the default)
and read whole (one chunk as large as the table: what predict did before it streamed).
Peak RSS is the child process's ``ru_maxrss``.

Run: ``.venv/bin/python bench/predict_memory.py``. Results: results/predict_memory.{json,md}.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import write
from dnnreg import DNNRegressor, save

COMMAND = ".venv/bin/python bench/predict_memory.py"
ROWS = (50_000, 500_000)

PROBE = r"""
import resource, sys
from dnnreg.cli import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 8)), columns=[f"x{i}" for i in range(8)])
    frame["kind"] = rng.choice(list("abcdef"), n)
    return frame


def peak_mb(model: Path, data: Path, engine: str, chunk_rows: int) -> tuple[float, float]:
    out = data.with_suffix(".pred.csv")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "predict", str(model), str(data), "--engine", engine,
         "--out", str(out), "--overwrite", "--chunk-rows", str(chunk_rows), "--quiet"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return int(proc.stderr.strip().splitlines()[-1]) / 1024, seconds


def main() -> None:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train = table(5_000, seed=1)
        y = train["x0"] + np.sin(train["x1"]) + (train["kind"] == "a")
        model = save(DNNRegressor(max_iter=2, random_state=0).fit(train, y), root / "model")
        for n in ROWS:
            data = root / f"rows_{n}.csv"
            table(n).to_csv(data, index=False)
            for engine in ("torch", "numpy"):
                for label, chunk in (("streamed", 20_000), ("whole", 10**9)):
                    mb, seconds = peak_mb(model, data, engine, chunk)
                    results.append(
                        dict(rows=n, engine=engine, mode=label, peak_mb=mb, seconds=seconds)
                    )
    header = " | ".join(f"{n:,} rows" for n in ROWS)
    lines = [
        f"Peak RSS of `dnnreg predict` (default 8-member regressor, 9 columns). `{COMMAND}`",
        "",
        f"| engine | mode | {header} | {ROWS[1] // ROWS[0]}x the rows costs |",
        "|---|---|" + "---|" * (len(ROWS) + 1),
    ]
    for engine in ("torch", "numpy"):
        for mode in ("streamed", "whole"):
            cells = [r for r in results if r["engine"] == engine and r["mode"] == mode]
            peaks = [r["peak_mb"] for r in cells]
            lines.append(
                f"| {engine} | {mode} | "
                + " | ".join(f"{r['peak_mb']:.0f} MB ({r['seconds']:.1f} s)" for r in cells)
                + f" | {peaks[-1] / peaks[0]:.2f}x memory |"
            )
    write("predict_memory", {"command": COMMAND, "results": results}, "\n".join(lines))


if __name__ == "__main__":
    main()
