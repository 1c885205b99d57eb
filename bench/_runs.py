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
- **fit seconds per 1,000 training rows**, the median over tables, from the runs whose
  load average says nothing else ran beside them (:func:`quiet_run`).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings

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
        """Store one run, merged into the file as it is now: two benchmarks writing the
        same store (or an entry removed by hand) do not undo each other."""
        if self.path.exists():
            self.runs = json.loads(self.path.read_text())
        self.runs.setdefault(table, {}).setdefault(model, {})[str(seed)] = run
        RESULTS.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=RESULTS, prefix=".runs-")
        with os.fdopen(fd, "w") as f:
            json.dump(self.runs, f, indent=1)
        os.replace(tmp, self.path)


# A run's seconds count only if the 1-minute load average after it was at most the cores
# plus a little: its own threads load the machine by about the core count; more means
# something else ran beside it (another benchmark, the test suite).
LOAD_LIMIT = (os.cpu_count() or 1) + 0.75


def quiet_run(run: dict) -> bool:
    """Whether a stored run's seconds were measured with nothing else running."""
    return run.get("load_after", 0.0) <= LOAD_LIMIT


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
            quiet = [s for s in seeds if quiet_run(runs[m][s])]
            if quiet:
                per_1k[m].append(
                    np.mean(
                        [1000 * runs[m][s]["fit_seconds"] / runs[m][s]["n_train"] for s in quiet]
                    )
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


def run_grid(
    tables,
    models: dict,
    seeds: int,
    reuse: set,
    limits: dict,
    store: RunStore,
    *,
    task: str,
    split,
    score,
    before=None,
) -> None:
    """Fit every model on every ``(name, X, y)`` of ``tables`` and every seed, skipping
    runs that ``reuse`` takes from the store and runs beyond a model's ``limits``.

    ``split(X, y, seed) -> (tr, va, te)`` gives the rows; ``score(model, X_te, y_te)``
    the run's scores (a dict); ``before(model_name, X, y, tr, va, seed)`` runs first (the
    tuned row refits the defaults it starts from). Each run is stored as it ends, with its
    wall and CPU seconds and the load average after it."""
    for name, X, y in tables:
        X, y = X.reset_index(drop=True), y.reset_index(drop=True)
        for seed in range(seeds):
            tr, va, te = split(X, y, seed)
            for model_name, fit in models.items():
                max_seeds, max_rows = limits.get(model_name, (seeds, None))
                if seed >= max_seeds or (max_rows and len(X) > max_rows):
                    continue
                if model_name in reuse and store.get(name, model_name, seed):
                    continue
                if before is not None:
                    before(model_name, X, y, tr, va, seed)
                start, cpu = time.perf_counter(), time.process_time()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = fit(X, y, tr, va, seed, task)
                seconds = time.perf_counter() - start
                cpu = time.process_time() - cpu
                run = {
                    **score(model, X.iloc[te], y.iloc[te]),
                    "fit_seconds": seconds,
                    "cpu_seconds": cpu,  # all threads' CPU: robust to a busy machine
                    "n_train": len(tr),
                    "n_rows": len(X),
                    # the 1-minute load average after the fit: above ~2 on two cores
                    # something else ran beside it, and its seconds are not comparable
                    "load_after": round(os.getloadavg()[0], 2),
                }
                if getattr(fit, "params", None):
                    run["params"] = fit.params
                store.put(name, model_name, seed, run)
                shown = {
                    k: round(v, 4) for k, v in run.items() if k in ("rmse", "accuracy", "log_loss")
                }
                print(name, seed, model_name, shown, f"{seconds:.1f}s", flush=True)


def table_lines(runs: dict, models: list[str], key: str, label: str) -> list[str]:
    """Per table: ``key`` mean ± std over the seeds run, (seeds; rank, gap to the table's
    best mean); lower is better."""
    lines = [
        f"| dataset (rows): {label} | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for table, r in runs.items():
        r = {m: seeds for m, seeds in r.items() if seeds}  # a model whose runs were cut off
        means = {m: np.mean([x[key] for x in r[m].values()]) for m in models if m in r}
        if not means:
            continue
        best = min(means.values())
        order = sorted(means, key=means.get)
        cells = []
        for m in models:
            if m not in r:
                cells.append("–")
                continue
            v = [x[key] for x in r[m].values()]
            gap = 100 * (means[m] / best - 1) if best > 0 else 0.0
            rank = order.index(m) + 1
            cells.append(f"{np.mean(v):.4g} ± {np.std(v):.2g} ({len(v)}; #{rank}, {gap:+.1f} %)")
        n_rows = next(iter(next(iter(r.values())).values()))["n_rows"]
        lines.append(f"| {table} ({n_rows}) | " + " | ".join(cells) + " |")
    return lines


def add_arguments(parser, datasets: dict, models: dict) -> None:
    """The options both accuracy benchmarks take."""
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", default=",".join(datasets))
    parser.add_argument("--models", default=",".join(models), help="comma-separated")
    parser.add_argument("--variant", action="append", default=[], help="label=JSON params")
    parser.add_argument("--reuse", default="", help="models taken from the stored runs")
    parser.add_argument("--limit", default="TabM-D=1:10000", help="MODEL=SEEDS[:MAX_ROWS],...")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report only")
    parser.add_argument(
        "--store",
        default=None,
        help="keep runs in results/STORE_runs.json and write results/STORE.{json,md}: a "
        "study of candidate defaults on one machine, apart from the main benchmark",
    )


def chosen_models(args, known: dict, variant) -> dict:
    """``{name: fit}`` of ``--models`` (from ``known``) and of each ``--variant``
    ``label=JSON`` (``variant(params)`` makes its fitter, named ``dnnreg: label``)."""
    models = {}
    for m in filter(None, args.models.split(",")):
        if m not in known:
            raise SystemExit(f"--models: unknown model {m!r}; choose from {list(known)}")
        models[m] = known[m]
    for v in args.variant:
        label, _, params = v.partition("=")
        models[f"dnnreg: {label}"] = variant(json.loads(params))
    return models
