"""The pretraining study of issue 9 on California housing and concrete: every pretraining
mode against none, at 1 %, 5 %, 20 % and 100 % of the training rows labelled (the rest
unlabelled), 5 seeds, dnnreg's default network with one member (``n_ensemble=1``: a
single network shows what its starting point does, and it fits the study into ~15 minutes;
an average of four members would also blur the effect of any one initialisation). Writes
``results/pretrain_<dataset>/`` (JSON, PNG) and ``results/pretrain_study.md``.

Run: ``.venv/bin/python bench/pretrain_study.py`` (about 15 minutes on 2 cores).
"""

from __future__ import annotations

import json
import sys

from _common import RESULTS, SHARED
from dnnreg.cli import main

DATASETS = {
    "concrete": ("concrete.csv", "compressive_strength_mpa"),
    "california": ("california_housing.csv.gz", "MedHouseVal"),
}


def run():
    if not SHARED.is_dir():
        print(f"bench/pretrain_study.py: {SHARED} is absent; skipped")
        return 0
    lines = [
        "# Pretraining study",
        "",
        "`dnnreg pretrain-study DATA --target COL --label-fractions 0.01,0.05,0.2,1.0 "
        "--seeds 5 --set n_ensemble=1`. Test RMSE, mean (std) over 5 seeds.",
        "",
    ]
    for name, (file, target) in DATASETS.items():
        out = RESULTS / f"pretrain_{name}"
        code = main(
            [
                "--quiet",
                "pretrain-study",
                str(SHARED / file),
                "--target",
                target,
                "--label-fractions",
                "0.01,0.05,0.2,1.0",
                "--seeds",
                "5",
                "--set",
                "n_ensemble=1",
                "--out",
                str(out),
            ]
        )
        if code:
            return code
        study = json.loads((out / "pretrain_study.json").read_text())
        modes = list(dict.fromkeys(e["mode"] for e in study["summary"]))
        lines += [
            f"## {name}",
            "",
            "| labelled rows | " + " | ".join(modes) + " |",
            "|---|" + "---|" * len(modes),
        ]
        for fraction in sorted({e["fraction"] for e in study["summary"]}):
            cells = {e["mode"]: e for e in study["summary"] if e["fraction"] == fraction}
            n = next(iter(cells.values()))["labelled"]
            lines.append(
                f"| {fraction:g} ({n}) | "
                + " | ".join(f"{cells[m]['mean']:.4f} ({cells[m]['std']:.4f})" for m in modes)
                + " |"
            )
        lines += ["", study["verdict"], ""]
    (RESULTS / "pretrain_study.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(run())
