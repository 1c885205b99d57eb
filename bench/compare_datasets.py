"""`compare` on six regression tables: California housing, concrete, wine quality,
airfoil, yacht and diamonds. 5-fold cross-validation, seed 0, every model on the same
folds; a time budget of 600 s per dataset stops after the fold in which it runs out.

Run: ``.venv/bin/python bench/compare_datasets.py`` (the same as ``dnnreg compare DATA
--target COL --folds 5 --time-budget 600`` per dataset). Results: results/compare.{json,md}.
"""

from __future__ import annotations

import logging

from _common import tables, write
from dnnreg import compare

DATASETS = {
    "california_housing": "MedHouseVal",
    "concrete": "compressive_strength_mpa",
    "wine_quality": "quality",
    "airfoil_self_noise": "scaled_sound_pressure_db",
    "yacht_hydrodynamics": "residuary_resistance",
    "diamonds": "price",
}


def main():
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    payload, lines = {}, []
    for name, X, y in tables(DATASETS):
        res = compare(X, y, task="regression", folds=5, time_budget=600, seed=0)
        summary, verdict = res.attrs["summary"], res.attrs["verdict"]
        payload[name] = {
            "rows": len(X),
            "folds_done": int(res["split"].nunique()),
            "summary": summary,
            "verdict": verdict,
            "notes": res.attrs["notes"],
        }
        lines.append(f"\n### {name} ({len(X)} rows, {payload[name]['folds_done']} folds)\n")
        lines.append("| model | RMSE | R² | fit s |")
        lines.append("|---|---|---|---|")
        for r in summary:
            lines.append(
                f"| {r['model']} | {r['rmse_mean']:.4g} ± {r['rmse_std']:.2g} | "
                f"{r['r2_mean']:.4f} | {r['fit_seconds_mean']:.1f} |"
            )
        for model, note in res.attrs["notes"].items():
            lines.append(f"\n{model}: {note}")
        lines.append(f"\n{verdict['text']}")
        print("\n".join(lines[-len(summary) - 4 :]), flush=True)
    write(
        "compare",
        {
            "protocol": "5-fold CV, seed 0, time budget 600 s per dataset",
            "command": "dnnreg compare DATA --target COL --folds 5 --time-budget 600",
            "datasets": payload,
        },
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
