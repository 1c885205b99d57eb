"""What a small table pays before training starts: imports, the first fit's fixed costs,
and the whole fit, on the bundled 442-row diabetes table, each in a fresh process.

A fresh interpreter (``python -c pass``) is the floor; then, in one child process and in
this order: ``import dnnreg`` (pandas, NumPy; torch is imported lazily by the first fit),
``import torch``, a one-epoch one-member fit (the first fit: torch's lazy initialisation,
the thread pool, the preprocessing and the model file's resolved options), the same fit
again (what the work itself costs once everything is warm, so the difference is the fixed
cost of the first fit), ``DNNRegressor.from_preset("fast")`` (one member, no embedding,
no dropout, its full training) and the defaults' full fit. Best of ``--repeats`` fresh
processes per number; scikit-learn's ``MLPRegressor`` (default settings) and LightGBM's
defaults on the same rows are the outside references, timed the same way in the same
child.

Run: ``.venv/bin/python bench/small_table.py [--repeats 3]``.
Results: results/small_table.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _common import write

CHILD = r"""
import json, time, warnings
warnings.simplefilter("ignore")
t = {}
s = time.perf_counter(); import dnnreg; t["import dnnreg"] = time.perf_counter() - s
s = time.perf_counter(); import torch; t["import torch"] = time.perf_counter() - s
from dnnreg import DNNRegressor
from dnnreg.tables.datasets import load_dataset
X, y = load_dataset("diabetes", return_X_y=True)
one = dict(n_ensemble=1, max_iter=1, early_stopping=False, random_state=0)
def timed(label, make):
    s = time.perf_counter(); make().fit(X, y); t[label] = time.perf_counter() - s
timed("first fit, one epoch, one member", lambda: DNNRegressor(**one))
timed("same fit again (warm)", lambda: DNNRegressor(**one))
timed("preset fast, full fit", lambda: DNNRegressor.from_preset("fast", random_state=0))
timed("defaults, full fit", lambda: DNNRegressor(random_state=0))
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
s = time.perf_counter()
make_pipeline(StandardScaler(), MLPRegressor(random_state=0, max_iter=500)).fit(X, y)
t["scikit-learn MLPRegressor (defaults, max_iter 500)"] = time.perf_counter() - s
try:
    import lightgbm
    s = time.perf_counter(); lightgbm.LGBMRegressor(verbose=-1).fit(X, y)
    t["LightGBM defaults"] = time.perf_counter() - s
except ImportError:
    pass
print(json.dumps(t))
"""


def fresh_interpreter() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def child() -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = [child() for _ in range(args.repeats)]
    best = {"fresh interpreter (python -c pass)": min(fresh_interpreter() for _ in range(3))}
    best |= {k: min(r[k] for r in runs) for k in runs[0]}
    fixed = best["first fit, one epoch, one member"] - best["same fit again (warm)"]
    lines = [
        "| step (diabetes, 442 rows; fresh process) | seconds |",
        "|---|---|",
        *(f"| {k} | {v:.3f} |" for k, v in best.items()),
        f"| fixed cost of the first fit (first minus warm) | {fixed:.3f} |",
        "",
        f"Best of {args.repeats} fresh processes per number.",
        "",
        "Reproduce: `python bench/small_table.py --repeats {}`".format(args.repeats),
    ]
    write(
        "small_table",
        {"repeats": args.repeats, "seconds": best, "first_fit_fixed": fixed, "runs": runs},
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
