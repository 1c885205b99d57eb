"""dnnreg: deep-neural-network regression on tabular data.

Torch-backed names (``DNNRegressor``, ``DNNClassifier``, ``save``, ``load``) are imported lazily, so that
``import dnnreg`` and the torch-free parts stay light.
"""

from __future__ import annotations

import importlib

from dnnreg._version import __version__  # noqa: E402

from dnnreg.tables.datasets import list_datasets, load_dataset  # noqa: E402
from dnnreg.metrics import classification_metrics, regression_metrics  # noqa: E402

_LAZY = {"DNNRegressor": "estimators.regressor", "DNNClassifier": "estimators.classifier",
         "save": "estimators.persistence", "load": "estimators.persistence",
         "load_numpy": "inference.runtime", "compare": "studies.comparison",
         "learning_curve": "studies.comparison"}

__all__ = ["DNNRegressor", "DNNClassifier", "compare", "learning_curve", "save", "load", "load_numpy", "load_dataset", "list_datasets",
           "regression_metrics", "classification_metrics", "__version__"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'dnnreg' has no attribute {name!r}")
