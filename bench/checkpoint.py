"""What checkpoints cost and what resuming costs: the default DNNRegressor on California
housing (80 % of the rows, seed 0), fitted without checkpoints, with the default cadence
(``checkpoint_every="auto"``) and with one checkpoint per epoch (the worst case), in one
run; then a fit stopped by SIGINT halfway and resumed.

Reported: fit seconds and their ratio to the fit without checkpoints, the number of
writes and the seconds spent writing (the loop's own clock: the overhead without the
run-to-run noise of whole fits), whether the predictions are identical, and the time from
calling ``fit(..., resume=True)`` to the first resumed batch against a fresh fit's time to
its first batch (the same preprocessing; the difference is reading the checkpoint).

Run: ``.venv/bin/python bench/checkpoint.py``. Results: results/checkpoint.{json,md}.
"""

from __future__ import annotations

import signal
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import load_table, write
from dnnreg import DNNRegressor
from dnnreg.training.checkpoint import Checkpointer, TrainingInterrupted

COMMAND = ".venv/bin/python bench/checkpoint.py"
WRITES: list[float] = []  # seconds of each checkpoint write of the current fit
_save = Checkpointer.save


def _timed_save(self, state):
    start = time.perf_counter()
    _save(self, state)
    WRITES.append(time.perf_counter() - start)


Checkpointer.save = _timed_save


class Clock:
    """Records when training starts (its first epoch) and can stop it at an epoch."""

    def __init__(self, stop_at=None):
        self.start, self.first_epoch, self.stop_at, self.epochs = (
            time.perf_counter(),
            None,
            stop_at,
            0,
        )

    def on_epoch_begin(self, model):
        if self.first_epoch is None:
            self.first_epoch = time.perf_counter() - self.start

    def on_epoch_end(self, record, model):
        self.epochs += 1
        if self.epochs == self.stop_at:
            signal.raise_signal(signal.SIGINT)


def fit(X, y, callbacks=(), resume=False, **params):
    model = DNNRegressor(random_state=0, **params)
    clock = Clock()
    start = time.perf_counter()
    model.fit(X, y, callbacks=[clock, *callbacks], resume=resume)
    return model, time.perf_counter() - start, clock


def main() -> None:
    X, y = load_table("california_housing", "MedHouseVal")
    rows = np.random.default_rng(0).permutation(len(X))[: int(0.8 * len(X))]
    X, y = X.iloc[rows], y.iloc[rows]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        plain, plain_s, plain_clock = fit(X, y)
        reference = plain.predict(X)
        for label, every in (("auto", "auto"), ("every epoch", 1)):
            ck = Path(tmp) / label.replace(" ", "_")
            model = DNNRegressor(random_state=0, checkpoint_dir=ck, checkpoint_every=every)
            WRITES.clear()
            start = time.perf_counter()
            model.fit(X, y)
            seconds = time.perf_counter() - start
            results[label] = {
                "fit_seconds": seconds,
                "ratio": seconds / plain_s,
                "writes": len(WRITES),
                "write_seconds": sum(WRITES),
                "write_share": sum(WRITES) / seconds,
                "identical": bool(np.array_equal(model.predict(X), reference)),
            }
        ck = Path(tmp) / "stopped"
        half = max(1, plain.n_iter_ // 2)
        try:
            fit(X, y, callbacks=[Clock(stop_at=half)], checkpoint_dir=ck)
        except TrainingInterrupted:
            pass
        resumed, resumed_s, clock = fit(X, y, resume=True, checkpoint_dir=ck)
        results["resume"] = {
            "stopped_after_epoch": half,
            "seconds_to_first_batch": clock.first_epoch,
            "fresh_seconds_to_first_batch": plain_clock.first_epoch,
            "identical": bool(np.array_equal(resumed.predict(X), reference)),
            "checkpoint_mb": sum(f.stat().st_size for f in ck.glob("*")) / 1e6
            if ck.exists()
            else None,
        }
    table = [
        f"Checkpoint cost, default DNNRegressor on California housing ({len(X)} training rows, "
        f"{plain.n_iter_} epochs, fit without checkpoints {plain_s:.1f} s). `{COMMAND}`",
        "",
        "| cadence | fit s | vs none | writes | writing s | share of fit | identical predictions |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in ("auto", "every epoch"):
        r = results[label]
        table.append(
            f"| {label} | {r['fit_seconds']:.1f} | {r['ratio']:.3f}x | {r['writes']} | "
            f"{r['write_seconds']:.2f} | {100 * r['write_share']:.2f} % | {r['identical']} |"
        )
    r = results["resume"]
    table += [
        "",
        f"Stopped by SIGINT after epoch {r['stopped_after_epoch']} and resumed: "
        f"{r['seconds_to_first_batch']:.2f} s from `fit(resume=True)` to the first resumed "
        f"batch, against {r['fresh_seconds_to_first_batch']:.2f} s for a fresh fit to its first "
        f"batch; predictions identical to the uninterrupted fit: {r['identical']}.",
    ]
    write(
        "checkpoint",
        {"command": COMMAND, "plain_fit_seconds": plain_s, "epochs": plain.n_iter_, **results},
        "\n".join(table),
    )


if __name__ == "__main__":
    main()
