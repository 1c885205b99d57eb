"""What the ensemble's size and layout buy per second of fit: test RMSE against fit seconds
for k in {1, 4, 8, 16, 32} members, independent (``ensemble_kind="mlp_k"``, the default)
and shared-weight (``"tabm"``, TabM's rank-one adapters), every other option at its
default (bagging included: k members hold out ``n_folds(k)`` folds, one member a
validation split), on the protocol and rows of bench/accuracy.py.

k members cost k times the multiply-adds whatever their layout; the shared layout trains
fewer weights (the optimiser's per-step work, and what the member-batched matmuls read).
Each point is a (table, seed) fit; the figure shows per table the mean over seeds, and the
markdown the RMSE and seconds of each setting relative to the defaults' on the same
(table, seed), geometric means over them. The frontier (no other setting both faster and
more accurate on that mean) is marked.

Precision: ``--precisions fp32,bf16`` adds bf16 mixed precision (``precision="bf16"``)
for each setting, on a CPU with native bf16 (AVX512-BF16/AMX); elsewhere torch emulates it
at several times fp32's cost and the option is refused.

Runs are stored with accuracy.py's (``results/accuracy_runs.json``, named ``dnnreg: k=4``,
``dnnreg: tabm k=8``, ``dnnreg: bf16 k=8``, ...), so ``--reuse`` (the default) fits only
what is missing. Ratios are only meaningful between runs of one machine: ``--store NAME``
keeps this run's fits, the defaults' included, in ``results/NAME_runs.json`` apart from
runs made elsewhere, and ``--out NAME`` names the result files.

Run: ``.venv/bin/python bench/ensemble_frontier.py [--seeds 2] [--datasets a,b]
[--ks 1,4,8] [--kinds mlp_k,tabm] [--precisions fp32,bf16] [--store S --out O]``.
Results: results/ensemble_frontier.{json,md,png} (or ``--out``'s).
"""

from __future__ import annotations

import argparse
import shlex
import sys

import numpy as np

import accuracy
from _common import RESULTS, write
from _runs import RunStore
from dnnreg.options import DEFAULTS

KS = (1, 4, 8, 16, 32)
KINDS = ("mlp_k", "tabm")
PRECISIONS = ("fp32",)
DEFAULT_K = DEFAULTS["DNNRegressor"]["n_ensemble"]
DEFAULT_KIND = DEFAULTS["DNNRegressor"]["ensemble_kind"]
DEFAULT_PRECISION = DEFAULTS["DNNRegressor"]["precision"]


def label(kind: str, k: int, precision: str = DEFAULT_PRECISION) -> str:
    if (kind, k, precision) == (DEFAULT_KIND, DEFAULT_K, DEFAULT_PRECISION):
        return "dnnreg defaults"
    where = "" if precision == DEFAULT_PRECISION else f"{precision} "
    return f"dnnreg: {where}k={k}" if kind == "mlp_k" else f"dnnreg: {where}{kind} k={k}"


def grid():
    """Every (kind, k, precision) measured."""
    return [(kind, k, p) for kind in KINDS for k in KS for p in PRECISIONS]


def settings() -> dict:
    """``{model name: fitter}`` of every (kind, k, precision)."""
    out = {}
    for kind, k, precision in grid():
        name = label(kind, k, precision)
        params = {"n_ensemble": k, "ensemble_kind": kind, "precision": precision}
        out[name] = accuracy.fit_dnnreg if name == "dnnreg defaults" else accuracy.variant(params)
    return out


def relative(runs: dict, tables: list[str], seeds: int) -> dict:
    """Per setting: geometric means, over the (table, seed) pairs where it and the
    defaults both ran, of its RMSE and fit seconds relative to the defaults'."""
    out = {}
    for kind, k, precision in grid():
        name, pairs = label(kind, k, precision), []
        for t in tables:
            for s in map(str, range(seeds)):
                a, b = runs[t].get(name, {}).get(s), runs[t].get("dnnreg defaults", {}).get(s)
                if a and b:
                    pairs.append((a["rmse"] / b["rmse"], a["fit_seconds"] / b["fit_seconds"]))
        if pairs:
            r = np.array(pairs)
            out[name] = {
                "kind": kind,
                "k": k,
                "precision": precision,
                "pairs": len(pairs),
                "rmse_ratio": float(np.exp(np.log(r[:, 0]).mean())),
                "seconds_ratio": float(np.exp(np.log(r[:, 1]).mean())),
            }
    return out


def frontier(rel: dict) -> set:
    """Settings that no other setting matches on both RMSE and seconds while beating it on
    one."""
    point = {n: (r["rmse_ratio"], r["seconds_ratio"]) for n, r in rel.items()}

    def dominated(a):
        return any(
            b != a and all(x <= y for x, y in zip(point[b], point[a])) and point[b] != point[a]
            for b in point
        )

    return {a for a in point if not dominated(a)}


def figure(runs: dict, tables: list[str], seeds: int, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # a script of our own: no display
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 4), squeeze=False)
    for ax, t in zip(axes[0], tables):
        for i, (kind, precision) in enumerate((a, b) for a in KINDS for b in PRECISIONS):
            xs, ys = [], []
            for k in KS:
                r = [runs[t].get(label(kind, k, precision), {}).get(str(s)) for s in range(seeds)]
                r = [x for x in r if x]
                if r:
                    xs.append(np.mean([x["fit_seconds"] for x in r]))
                    ys.append(np.mean([x["rmse"] for x in r]))
                    ax.annotate(f"{k}", (xs[-1], ys[-1]), fontsize=8)
            ax.plot(xs, ys, marker="osv^"[i % 4], label=f"{kind}, {precision}")
        ax.set_xscale("log")
        ax.set_xlabel("fit seconds (2 cores)")
        ax.set_ylabel("test RMSE")
        ax.set_title(t)
        ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / f"{out}.png", dpi=110)
    plt.close(fig)


def main() -> None:
    global KS, KINDS, PRECISIONS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--datasets", default="concrete,airfoil_self_noise")
    parser.add_argument("--ks", default=",".join(map(str, KS)))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--store", default=accuracy.STORE, help="results/STORE_runs.json")
    parser.add_argument("--out", default="ensemble_frontier", help="results/OUT.{json,md,png}")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    KS = tuple(int(k) for k in args.ks.split(","))
    KINDS, PRECISIONS = tuple(args.kinds.split(",")), tuple(args.precisions.split(","))
    if "bf16" in PRECISIONS and not args.report_only:
        from dnnreg.training.devices import cpu_has_bf16

        if not cpu_has_bf16():
            sys.exit("this CPU has no native bf16: measure --precisions fp32 only")
    tables = args.datasets.split(",")
    accuracy.DATASETS = {t: accuracy.DATASETS[t] for t in tables}
    models = settings()
    models.setdefault("dnnreg defaults", accuracy.fit_dnnreg)  # every ratio's reference
    store = RunStore(args.store)
    if not args.report_only:
        accuracy.run_all(models, args.seeds, set(models), {}, store)
    runs = {t: store.runs[t] for t in tables}
    rel = relative(runs, tables, args.seeds)
    best = frontier(rel)
    figure(runs, tables, args.seeds, args.out)
    lines = [
        "| members | layout | precision | RMSE / defaults' | fit seconds / defaults' | pairs "
        "| frontier |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rel.items():
        lines.append(
            f"| {r['k']} | {r['kind']} | {r.get('precision', 'fp32')} | {r['rmse_ratio']:.3f} | "
            f"{r['seconds_ratio']:.2f} | {r['pairs']} | {'yes' if name in best else ''} |"
        )
    command = "python bench/ensemble_frontier.py " + shlex.join(sys.argv[1:])
    lines += [
        "",
        f"Tables: {', '.join(tables)}; seeds 0–{args.seeds - 1}. Geometric means over the "
        f"(table, seed) pairs of each setting's test RMSE and fit seconds divided by the "
        f"defaults' ({DEFAULT_K} members, {DEFAULT_KIND}, {DEFAULT_PRECISION}) on the same "
        f"pair, from runs in results/{args.store}_runs.json. Figure: {args.out}.png.",
        "",
        f"Reproduce: `{command}`",
    ]
    write(
        args.out,
        {"tables": tables, "seeds": args.seeds, "store": args.store, "relative": rel},
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
