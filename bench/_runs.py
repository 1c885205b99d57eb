"""The protocol the accuracy benchmarks share: one run per (table, model, seed) kept in a
store as soon as it finishes, and the summary the issue tracker asks for.

A run of every peer on every table costs hours on two cores (TabM-D alone ~4 minutes on a
660-row table), so runs are kept in ``results/<name>_runs.json`` the moment each ends: a
benchmark cut short keeps what it did, and ``--reuse`` takes a peer's stored runs instead of
refitting it when its code has not changed. Every stored run records the seed, the
training rows and the fit seconds.

The summary compares models only on the (table, seed) pairs every one of them has run, so
a model run on fewer seeds or tables (TabM-D) is never ranked against other models' luckier
seeds: the overall statistics are

- **mean rank** over tables (rank of the mean score over the common seeds),
- **geometric mean of score / per-table best** (for a loss: RMSE, log-loss, error rate),
- **fit seconds per 1,000 training rows**, the median over tables.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from _common import RESULTS


class RunStore:
    """``{table: {model: {seed: run}}}`` in ``results/<name>_runs.json``, rewritten
    atomically after every run."""

    def __init__(self, name: str):
        self.path = RESULTS / f"{name}_runs.json"
        self.runs = json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, table: str, model: str, seed: int):
        return self.runs.get(table, {}).get(model, {}).get(str(seed))

    def put(self, table: str, model: str, seed: int, run: dict) -> None:
        self.runs.setdefault(table, {}).setdefault(model, {})[str(seed)] = run
        RESULTS.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=RESULTS, prefix=".runs-")
        with os.fdopen(fd, "w") as f:
            json.dump(self.runs, f, indent=1)
        os.replace(tmp, self.path)


def common_seeds(runs: dict, models: list[str]) -> list[str]:
    """The seeds of one table that every model in ``models`` has run."""
    sets = [set(runs.get(m, {})) for m in models]
    return sorted(set.intersection(*sets), key=int) if sets else []


def summary(store: dict, tables: list[str], models: list[str], key: str) -> dict:
    """Mean rank, geometric mean of ``key`` / per-table best, and median fit seconds per
    1,000 training rows of ``models``, over the tables where they share a seed. ``key`` is
    a loss (lower is better)."""
    ranks = {m: [] for m in models}
    ratios = {m: [] for m in models}
    per_1k = {m: [] for m in models}
    used = []
    for table in tables:
        runs = store.get(table, {})
        seeds = common_seeds(runs, models)
        if not seeds:
            continue
        used.append(table)
        mean = {m: np.mean([runs[m][s][key] for s in seeds]) for m in models}
        best = min(mean.values())
        order = sorted(models, key=mean.get)
        for m in models:
            ranks[m].append(order.index(m) + 1)
            ratios[m].append(mean[m] / best)
            per_1k[m].append(
                np.mean([1000 * runs[m][s]["fit_seconds"] / runs[m][s]["n_train"] for s in seeds])
            )
    return {
        "tables": used,
        "mean_rank": {m: float(np.mean(v)) for m, v in ranks.items() if v},
        "geomean_ratio_to_best": {
            m: float(np.exp(np.mean(np.log(v)))) for m, v in ratios.items() if v
        },
        "worst_ratio_to_best": {m: float(np.max(v)) for m, v in ratios.items() if v},
        "median_fit_seconds_per_1k_rows": {m: float(np.median(v)) for m, v in per_1k.items() if v},
    }


def summary_lines(title: str, s: dict, models: list[str]) -> list[str]:
    """A markdown table of :func:`summary`'s statistics, one column per model."""
    models = [m for m in models if m in s["mean_rank"]]
    if not models:
        return []
    rows = [
        ("mean rank", "mean_rank", "{:.2f}"),
        ("geo-mean score / best", "geomean_ratio_to_best", "{:.3f}"),
        ("worst score / best", "worst_ratio_to_best", "{:.3f}"),
        ("fit s per 1,000 rows (median)", "median_fit_seconds_per_1k_rows", "{:.2f}"),
    ]
    lines = [
        f"\n**{title}** ({len(s['tables'])} tables: {', '.join(s['tables'])})\n",
        "| | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for label, key, fmt in rows:
        lines.append(f"| {label} | " + " | ".join(fmt.format(s[key][m]) for m in models) + " |")
    return lines


def parse_limits(text: str) -> dict:
    """``"TabM-D=1:10000,X=2"`` -> ``{"TabM-D": (1, 10000), "X": (2, None)}``: a model run on
    at most that many seeds, and only on tables with at most that many rows."""
    out = {}
    for item in filter(None, text.split(",")):
        model, _, spec = item.partition("=")
        seeds, _, rows = spec.partition(":")
        out[model.strip()] = (int(seeds), int(rows) if rows else None)
    return out
