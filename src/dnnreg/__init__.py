"""dnnreg: deep-neural-network regression (and classification) on tabular data.

The package follows the data, table → preprocessing → network → training → model file →
predictions / report, one folder (a wing) per stage and one file per concept:

- ``options``: every option's values, defaults, presets, the shared constants, and
  ``resolve_auto``, the one place each "auto" is decided (torch-free);
- ``notices``, ``progress``, ``cores``: how dnnreg talks to its user (warnings, verbose
  output, the progress bar) and which CPU cores it may use (torch-free);
- ``tables/``: reading files, the bundled datasets, row splits, preprocessing (torch-free);
- ``metrics``, ``predictions``, ``conformal``, ``temperature``, ``model_file``: metrics,
  outputs → predictions, conformal intervals and the classifier's temperature, the model
  file's format
  (torch-free; they sit beside ``tables`` because the estimators, the runtime and the
  studies all need them);
- ``network/``: layers, the ensemble MLP, embeddings, losses (torch);
- ``training/``: the loop, optimisers and schedules, devices, pretraining, callbacks, and
  the plain-data verdicts (torch-free, here because a fit reports them when it ends);
- ``estimators/``: ``DNNRegressor``, ``DNNClassifier``, ``save`` / ``load``;
- ``inference/``: the torch-free runtime, ONNX export, the reference oracle (tests only);
- ``studies/``, ``report/``, ``run``, ``streamed_run``: comparisons and tuning; plots and
  the HTML report (torch-free); the run directory, in memory or streamed;
- ``cli``: the ``dnnreg`` command.

Import layers (``tests/test_architecture.py`` holds them): 0 ``_validation``,
``_optional``, ``_files``, ``_version``, ``options``, ``notices``, ``progress``,
``cores``; 1 ``tables``, ``metrics``, ``predictions``, ``conformal``, ``temperature``,
``model_file``; 2 ``network``; 3 ``training``; 4 ``estimators``; 5 ``inference``; 6
``studies``, ``report``, ``run``, ``streamed_run``; 7 ``cli`` and this package's public
names. A module imports only its own layer or below; nothing imports ``cli``; nothing in
production imports ``inference.reference``.
Two departures from ARCHITECTURE.md's sketch, for the reasons above: the verdicts live in
``training`` rather than ``report``, and ``metrics`` / ``predictions`` / ``conformal`` /
``temperature`` / ``model_file`` are top-level modules at layer 1.

Torch-backed names (``DNNRegressor``, ``DNNClassifier``, ``save``, ``load``) are imported
lazily, so that ``import dnnreg`` and the torch-free parts stay light.
"""

from __future__ import annotations

import importlib
import logging

# A library's logger stays silent unless its user configures logging (or asks for
# verbose output, see dnnreg.notices): no "No handlers could be found" and no output.
logging.getLogger("dnnreg").addHandler(logging.NullHandler())

from dnnreg._version import __version__  # noqa: E402
from dnnreg.metrics import classification_metrics, regression_metrics  # noqa: E402
from dnnreg.tables.datasets import list_datasets, load_dataset  # noqa: E402

_LAZY = {
    "DNNRegressor": "estimators.regressor",
    "DNNClassifier": "estimators.classifier",
    "save": "estimators.persistence",
    "load": "estimators.persistence",
    "load_numpy": "inference.runtime",
    "compare": "studies.comparison",
    "learning_curve": "studies.comparison",
}

__all__ = [
    "DNNRegressor",
    "DNNClassifier",
    "compare",
    "learning_curve",
    "save",
    "load",
    "load_numpy",
    "load_dataset",
    "list_datasets",
    "regression_metrics",
    "classification_metrics",
    "__version__",
]


def __getattr__(name):
    if name == "experiments":  # dnnreg.experiments.run(name, ...): the course's claims
        return importlib.import_module(".studies.experiments", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'dnnreg' has no attribute {name!r}")
