"""What every benchmark shares: the machine it ran on, and writing JSON plus a markdown
table next to it in bench/results/."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def environment() -> dict:
    """CPU, thread count and library versions, recorded with every result."""
    import numpy
    import sklearn
    import torch

    import dnnreg

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {
        "python": platform.python_version(),
        "dnnreg": dnnreg.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }
    try:
        import lightgbm

        versions["lightgbm"] = lightgbm.__version__
    except ImportError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "versions": versions,
    }


def write(name: str, payload: dict, table: str) -> None:
    """``results/<name>.json`` (with the environment) and ``results/<name>.md``."""
    RESULTS.mkdir(exist_ok=True)
    payload = {"environment": environment(), **payload}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text(table + "\n")
    print(table)


def load_table(name: str, target: str):
    """``(X, y)`` of a bundled dataset, else of ../shared/datasets/<name>.csv[.gz]; ``None``
    when neither has it."""
    import pandas as pd

    from dnnreg.tables.datasets import DATASETS, load_dataset

    if name in DATASETS:
        frame = load_dataset(name)
    else:
        files = list(SHARED.glob(f"{name}.csv*"))
        if not files:
            return None
        frame = pd.read_csv(files[0])
    return frame.drop(columns=[target]), frame[target]


def tables(datasets: dict):
    """Yield ``(name, X, y)`` for each ``{name: target}`` that is bundled or in
    ../shared/datasets, saying which are skipped."""
    for name, target in datasets.items():
        data = load_table(name, target)
        if data is None:
            print(f"skip {name}: not bundled and not in {SHARED}")
            continue
        yield (name, *data)
