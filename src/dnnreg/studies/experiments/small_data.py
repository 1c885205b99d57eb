"""Small data: the course says that with few labelled samples simple models often
generalise better. Learning curves from 50 rows to every training row of two bundled tables
(concrete strength, 1,030 rows; California housing, 20,640) for linear regression, a
decision tree, a random forest, gradient boosting and dnnreg's default network, each
with its training error beside its test error. The test split (20 %) is fixed per seed and
the training subsets are nested (the first n rows of one shuffle), so a curve changes only
by the rows added.

The simple models are the course's low-capacity ones, linear regression and one tree;
the random forest and gradient boosting are shallow but not simple (ensembles of hundreds
of trees), and are reported beside them. The crossover is the smallest size from which the
DNN's test RMSE beats the simple models (and, second, every shallow model) at that size
and every larger one. The y-axis is logarithmic; a curve that leaves
the plot (more than three times the mean predictor's test RMSE) is clipped at that line
and the figure says so, so one exploding fit cannot flatten the others."""

from __future__ import annotations

import warnings

import numpy as np

CLAIM = (
    "With few labelled samples, simple models generalise better than a deep network; the "
    "deep network overtakes them as the rows grow."
)

SIMPLE = ("linear", "tree")  # the course's simple models: low capacity
SHALLOW = (*SIMPLE, "random_forest", "gbdt")  # with the ensembles of trees
MODELS = (*SHALLOW, "dnn")
TABLES = ("concrete", "california_housing")
CLIP = 3.0  # curves above CLIP x the mean predictor's test RMSE are clipped in the figure


def _factory(name: str, quick: bool, seed: int):
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import LinearRegression
    from sklearn.tree import DecisionTreeRegressor

    from dnnreg.estimators.regressor import DNNRegressor

    if name == "dnn":  # the defaults in the full run; fewer members and epochs when quick
        return DNNRegressor(
            random_state=seed, **({"n_ensemble": 2, "max_iter": 40} if quick else {})
        )
    return {
        "linear": lambda: LinearRegression(),
        "tree": lambda: DecisionTreeRegressor(min_samples_leaf=5, random_state=seed),
        "random_forest": lambda: RandomForestRegressor(
            n_estimators=50 if quick else 200, n_jobs=1, random_state=seed
        ),
        # min_samples_leaf below sklearn's 20, which would leave a 50-row table 2 leaves
        "gbdt": lambda: HistGradientBoostingRegressor(min_samples_leaf=5, random_state=seed),
    }[name]()


def sizes(n_train: int, quick: bool) -> list[int]:
    """50, then x4 (quick) or x2 (full) until every training row, which is always last.

    >>> sizes(824, quick=True)
    [50, 200, 800, 824]
    """
    out, s = [], 50
    while s < n_train:
        out.append(s)
        s *= 4 if quick else 2
    return out + [n_train]


def _curves(table: str, quick: bool, seed: int) -> dict:
    """Training and test RMSE of each model at each size, for one seed's split."""
    from dnnreg.metrics import rmse
    from dnnreg.tables.datasets import load_dataset

    X, y = load_dataset(table, return_X_y=True)
    X, y = X.to_numpy(float), np.asarray(y, dtype=float)
    order = np.random.default_rng(seed).permutation(len(y))
    if quick and table == "california_housing":
        order = order[:2000]  # a 1,600-row curve keeps quick under its 30 s
    n_test = len(order) // 5
    test, train = order[:n_test], order[n_test:]
    scale = X[train].mean(0), X[train].std(0) + 1e-12  # linear and DNN see scaled inputs alike
    Xs = (X - scale[0]) / scale[1]
    rows = []
    for n in sizes(len(train), quick):
        fit_rows = train[:n]
        for name in MODELS:
            model = _factory(name, quick, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # small-data warnings are this study's subject
                model.fit(Xs[fit_rows], y[fit_rows])
            rows.append(
                {
                    "model": name,
                    "rows": int(n),
                    "train_rmse": rmse(y[fit_rows], model.predict(Xs[fit_rows])),
                    "test_rmse": rmse(y[test], model.predict(Xs[test])),
                }
            )
    return {
        "mean_predictor_rmse": rmse(y[test], np.full(len(test), y[train].mean())),
        "curve": rows,
    }


def _mean_over_seeds(runs: list[dict]) -> dict:
    first = runs[0]["curve"]
    curve = [
        {**row}
        | {k: float(np.mean([r["curve"][i][k] for r in runs])) for k in ("train_rmse", "test_rmse")}
        for i, row in enumerate(first)
    ]
    return {
        "mean_predictor_rmse": float(np.mean([r["mean_predictor_rmse"] for r in runs])),
        "curve": curve,
    }


def crossover(curve: list[dict], rivals=SIMPLE) -> int | None:
    """The smallest size from which the DNN's test RMSE is below every rival's at that
    size and at every larger size; None if it never is.

    >>> c = [{"model": m, "rows": n, "test_rmse": e} for m, n, e in
    ...      [("dnn", 50, 3), ("linear", 50, 2), ("dnn", 100, 1), ("linear", 100, 2)]]
    >>> crossover(c, rivals=("linear",))
    100
    """
    import pandas as pd

    from dnnreg.studies.evaluation import crossover as against_every_other

    frame = pd.DataFrame(curve).rename(columns={"rows": "size", "test_rmse": "rmse"})
    frame = frame[frame["model"].isin({*rivals, "dnn"})]  # "every other model" = the rivals
    return against_every_other(frame, task="regression", dnn="dnn")


def _at_size(at: dict, n: int) -> dict:
    best = lambda models: min(models, key=lambda m: at[(m, n)]["test_rmse"])  # noqa: E731
    simple, shallow = best(SIMPLE), best(SHALLOW)
    return {
        "rows": n,
        "dnn": at[("dnn", n)]["test_rmse"],
        "best_simple": simple,
        "best_simple_rmse": at[(simple, n)]["test_rmse"],
        "best_shallow": shallow,
        "best_shallow_rmse": at[(shallow, n)]["test_rmse"],
    }


def _table_numbers(curve: list[dict]) -> dict:
    at = {(r["model"], r["rows"]): r for r in curve}
    counts = sorted({r["rows"] for r in curve})
    smallest, largest = _at_size(at, counts[0]), _at_size(at, counts[-1])
    return {
        "sizes": counts,
        "crossover_simple": crossover(curve, SIMPLE),
        "crossover_shallow": crossover(curve, SHALLOW),
        "smallest": smallest,
        "largest": largest,
        # the course's pattern: a simple model ahead at the smallest size, the DNN at the largest
        "pattern": smallest["best_simple_rmse"] < smallest["dnn"]
        and largest["dnn"] < largest["best_simple_rmse"],
    }


def _sentence(table: str, n: dict) -> str:
    s, l = n["smallest"], n["largest"]
    cross = lambda c: f"from {c:,} rows on" if c else "at no size"  # noqa: E731
    return (
        f"On {table}, at {s['rows']} rows: DNN {s['dnn']:.3f}, best simple model "
        f"({s['best_simple']}) {s['best_simple_rmse']:.3f}, best shallow model "
        f"({s['best_shallow']}) {s['best_shallow_rmse']:.3f}; at {l['rows']:,} rows: DNN "
        f"{l['dnn']:.3f}, {l['best_simple']} {l['best_simple_rmse']:.3f}, {l['best_shallow']} "
        f"{l['best_shallow_rmse']:.3f} (test RMSE). The DNN beats linear regression and the "
        f"tree {cross(n['crossover_simple'])}, and every shallow model "
        f"{cross(n['crossover_shallow'])}."
    )


def measure(*, quick: bool, seeds: int) -> dict:
    tables = {t: _mean_over_seeds([_curves(t, quick, s) for s in range(seeds)]) for t in TABLES}
    numbers = {t: _table_numbers(v["curve"]) for t, v in tables.items()}
    shown = [t for t in TABLES if numbers[t]["pattern"]]
    status = (
        "holds" if len(shown) == len(TABLES) else "holds only when" if shown else "does not hold"
    )
    lead = {
        "holds": "Holds on both tables: a simple model is ahead at the smallest size and the "
        "DNN at the largest.",
        "holds only when": f"Holds only on {', '.join(shown)}: there a simple model is ahead at "
        "the smallest size and the DNN at the largest; not on the other table.",
        "does not hold": "Does not hold: on neither table is a simple model (linear regression "
        "or one tree) ahead at the smallest size with the DNN ahead at the largest.",
    }[status]
    dnn = "2 members, 40 epochs (quick)" if quick else "dnnreg's defaults"
    return {
        "status": status,
        "verdict": " ".join([lead, *(_sentence(t, numbers[t]) for t in TABLES)])
        + f" DNN: {dnn}; simple: linear regression, one tree (5 rows a leaf); shallow "
        "ensembles: a random forest and gradient boosting.",
        "numbers": numbers,
        "tables": tables,
    }


def figure(result: dict, path) -> None:
    from matplotlib.ticker import NullLocator

    from dnnreg.report.plots import _save, _subplots

    fig, axes = _subplots(1, len(result["tables"]), figsize=(5.5 * len(result["tables"]), 4))
    colours = dict(zip(MODELS, ("C0", "C1", "C2", "C3", "C4")))
    clipped = []
    for ax, (table, data) in zip(np.atleast_1d(axes), result["tables"].items()):
        ceiling = CLIP * data["mean_predictor_rmse"]
        for name in MODELS:
            cells = sorted(
                (r for r in data["curve"] if r["model"] == name), key=lambda r: r["rows"]
            )
            n = [r["rows"] for r in cells]
            for key, style in (("test_rmse", "o-"), ("train_rmse", "--")):
                values = np.array([r[key] for r in cells])
                if (values > ceiling).any():
                    clipped.append(f"{name} {key.split('_')[0]} on {table}")
                ax.plot(n, np.clip(values, None, ceiling), style, color=colours[name],
                        label=f"{name} ({'test' if key == 'test_rmse' else 'training'})",
                        lw=1.6 if key == "test_rmse" else 0.9)  # fmt: skip
        ax.axhline(data["mean_predictor_rmse"], color="0.5", lw=0.8, ls=":", label="mean predictor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        counts = result["numbers"][table]["sizes"]
        ax.set_xticks(counts, [f"{c:,}" for c in counts], fontsize=7)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("training rows")
        ax.set_ylabel("RMSE")
        cross = result["numbers"][table]["crossover_simple"]
        if cross and cross > counts[0]:
            ax.axvline(cross, color="C4", lw=0.8, ls="-.")
        ax.set_title(
            f"{table}: DNN beats linear and tree from {cross:,} rows"
            if cross else f"{table}: DNN never beats linear and tree for good",
            fontsize=9,
        )  # fmt: skip
    np.atleast_1d(axes)[-1].legend(fontsize=6, ncol=2)
    title = "Small data: training (dashed) and test (solid) error against rows"
    if clipped:
        title += f"\nclipped at {CLIP:g}x the mean predictor: " + ", ".join(clipped)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)
