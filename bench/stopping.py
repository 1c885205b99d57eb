"""Stopping earlier without losing accuracy: what each patience rule would cost and save,
on the regression tables and protocol of bench/accuracy.py.

A patience rule only reads the validation loss of the epochs so far, and the one-cycle
schedule is planned from ``max_iter`` alone, so every rule's fit is the same fit up to
the epoch where that rule stops. One default fit per table and seed, trained to its last
epoch (``n_iter_no_change`` = ``max_iter``), therefore shows what every rule would have
done: a callback records after each epoch the loop's clock (less its own time), the
out-of-fold validation loss the fit monitors and the test RMSE of the current weights.
A rule then stops at the first epoch that is ``patience`` epochs past the best so far
and keeps that best epoch: its test RMSE is the curve's at that epoch, its training time
the clock at the stop.

The test RMSE here is of the unclipped predictions (``clip_predictions="auto"`` is
decided after training, on the validation rows), the same for every rule; the chosen rule
is then measured as a real default in bench/accuracy.py.

Rules: half the epochs (the default until this study, the column everything is measured
against), shorter fractions (a quarter is the default since), and fixed patiences.

Run: ``.venv/bin/python bench/stopping.py [--seeds 3] [--datasets a,b] [--report-only]``.
Results: results/stopping.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

import numpy as np

from _common import RESULTS, tables, write
from accuracy import DATASETS
from dnnreg import DNNRegressor
from dnnreg.tables.splits import train_val_test_indices

# name -> patience in epochs, given the fit's max_iter
RULES = {
    "1/2 of the epochs (before)": lambda epochs: max(1, epochs // 2),
    "1/3": lambda epochs: max(1, epochs // 3),
    "1/4 (the default now)": lambda epochs: max(1, epochs // 4),
    "1/6": lambda epochs: max(1, epochs // 6),
    "1/8": lambda epochs: max(1, epochs // 8),
    "16 epochs": lambda epochs: min(epochs, 16),
    "8 epochs": lambda epochs: min(epochs, 8),
}
DEFAULT_RULE = next(iter(RULES))


class Curve:
    """Callback: per epoch the loop's clock less this callback's time, the monitored
    validation loss and the current weights' test RMSE."""

    def __init__(self, model, X_te, y_te):
        self.model, self.X_te, self.y_te = model, X_te, np.asarray(y_te)
        self.seconds, self.val, self.test, self.spent = [], [], [], 0.0

    def on_epoch_end(self, record, net):
        start = time.perf_counter()
        pred = np.asarray(self.model.predict(self.X_te))
        self.seconds.append(record["seconds"] - self.spent)
        self.val.append(record["val_loss"])
        self.test.append(float(np.sqrt(np.mean((pred - self.y_te) ** 2))))
        self.spent += time.perf_counter() - start


def stop(val: list, patience: int) -> tuple[int, int]:
    """``(stop, best)``: the 0-based epoch where a rule with this patience stops (the last
    epoch if never) and the best epoch it keeps (the first of equal losses, as the loop).

    >>> stop([3.0, 2.0, 2.5, 2.6, 1.0], 2)
    (3, 1)
    >>> stop([3.0, 2.0, 2.5, 2.6, 1.0], 3)
    (4, 4)
    """
    best = 0
    for epoch, loss in enumerate(val):
        if loss < val[best]:
            best = epoch
        if epoch - best >= patience:
            return epoch, best
    return len(val) - 1, best


def one_fit(X, y, seed: int) -> dict:
    tr, va, te = train_val_test_indices(len(X), seed=seed)
    rows = np.concatenate([tr, va])  # bagged, as bench/accuracy.py fits the defaults
    model = DNNRegressor(random_state=seed, n_iter_no_change=10**6)
    curve = Curve(model, X.iloc[te], y.iloc[te])
    start = time.perf_counter()
    model.fit(X.iloc[rows], y.iloc[rows], callbacks=[curve])
    fixed = time.perf_counter() - start - curve.spent - curve.seconds[-1]
    return {
        "max_iter": model.n_iter_,
        "fixed_seconds": fixed,
        "seconds": curve.seconds,
        "val_loss": curve.val,
        "test_rmse": curve.test,
    }


def outcome(run: dict, rule) -> dict:
    end, best = stop(run["val_loss"], rule(run["max_iter"]))
    return {
        "stop": end + 1,
        "best": best + 1,
        "rmse": run["test_rmse"][best],
        "seconds": run["fixed_seconds"] + run["seconds"][end],
    }


def report(runs: dict, command: str) -> str:
    """Per table: mean test RMSE and mean fit seconds of each rule across seeds, relative
    to the default rule; overall geo-means and the worst table."""
    head = "| table | " + " | ".join(RULES) + " |"
    lines = [
        "Test RMSE change / fit-time ratio against half the epochs (mean over seeds):",
        "",
        head,
        "|---" * (len(RULES) + 1) + "|",
    ]
    ratios = {rule: ([], []) for rule in RULES}
    for table, seeds in runs.items():
        results = {r: [outcome(run, f) for run in seeds.values()] for r, f in RULES.items()}
        base = results[DEFAULT_RULE]
        base_rmse = np.mean([o["rmse"] for o in base])
        base_s = np.mean([o["seconds"] for o in base])
        cells = []
        for rule, outs in results.items():
            rmse = np.mean([o["rmse"] for o in outs]) / base_rmse
            secs = np.mean([o["seconds"] for o in outs]) / base_s
            ratios[rule][0].append(rmse)
            ratios[rule][1].append(secs)
            cells.append(f"{100 * (rmse - 1):+.1f} % / {secs:.2f}x")
        epochs = "/".join(str(o["stop"]) for o in base)
        lines.append(f"| {table} ({base_s:.0f} s, stops {epochs}) | " + " | ".join(cells) + " |")
    geo = lambda v: float(np.exp(np.mean(np.log(v))))  # noqa: E731
    lines.append(
        "| **geo-mean** | "
        + " | ".join(f"{100 * (geo(r) - 1):+.2f} % / {geo(s):.2f}x" for r, s in ratios.values())
        + " |"
    )
    lines.append(
        "| **worst table** | "
        + " | ".join(f"{100 * (max(r) - 1):+.1f} %" for r, _ in ratios.values())
        + " |"
    )
    lines += [
        "",
        "One default fit per table and seed trained to its last epoch; each rule's stop and "
        "kept epoch found from its validation-loss curve (bench/stopping.py's docstring). "
        "Seconds include the fit's fixed costs; the first column's mean after each table.",
        "",
        f"Reproduce: `{command}`",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--report-only", action="store_true", help="rewrite the report")
    args = parser.parse_args(argv)
    if args.report_only:  # the stored curves, reported again (e.g. after relabelling)
        stored = json.loads((RESULTS / "stopping.json").read_text())
        runs = {t: {int(s): r for s, r in seeds.items()} for t, seeds in stored["runs"].items()}
        write("stopping", stored, report(runs, stored["command"]))
        return
    chosen = {name: DATASETS[name] for name in args.datasets.split(",")}
    runs: dict = {}
    for name, X, y in tables(chosen):
        for seed in range(args.seeds):
            runs.setdefault(name, {})[seed] = run = one_fit(X, y, seed)
            best = outcome(run, RULES[DEFAULT_RULE])
            print(f"{name} seed {seed}: {run['max_iter']} epochs, default rule {best}", flush=True)
    command = "python bench/stopping.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    write("stopping", {"command": command, "runs": runs}, report(runs, command.strip()))


if __name__ == "__main__":
    main()
