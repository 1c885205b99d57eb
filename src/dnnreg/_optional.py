"""Import an optional dependency, or fail with a message naming the pip extra to install."""

from __future__ import annotations

import importlib

_EXTRA_OF = {
    "lightgbm": "baselines",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "tensorboard": "tensorboard",
    "optuna": "tune",
    "fastapi": "serve",
    "uvicorn": "serve",
}


def import_optional(module: str):
    """Import ``module`` or raise ``ImportError`` telling the user which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        extra = _EXTRA_OF.get(module.split(".")[0], module)
        raise ImportError(
            f"{module} is required for this feature; install it with pip install 'dnnreg[{extra}]'"
        ) from err
