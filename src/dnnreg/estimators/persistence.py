"""Model files: a directory of ``config.json``, ``preprocessor.json`` and
``weights.safetensors``. Never pickle: JSON and safetensors load without running code.

Writes go through :mod:`dnnreg._files`: a sibling temp directory, fsynced, exchanged into
place, so a crash leaves either the old model or the new one, never half of one, and an
existing path is replaced only when it holds a dnnreg output and ``overwrite=True`` says so.
``config.json`` records the sha256 of the other two files, so a truncated or edited file
is caught at load time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from dnnreg._files import output_dir, write_json

FORMAT_VERSION = 2
FILES = ("config.json", "preprocessor.json", "weights.safetensors")


class ModelFormatError(ValueError):
    """A model directory is missing, corrupt, truncated or from an unknown format version."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _params_from_json(params: dict) -> dict:
    """Undo :func:`json_params`: lists back to the tuples the estimators take."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def json_params(model) -> dict:
    """``get_params()`` as plain JSON: tuples become lists; a RandomState object, which
    JSON cannot hold, becomes null."""
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in model.get_params().items()}
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None
    return params


def save(model, path, *, overwrite: bool = False, metadata: dict | None = None) -> Path:
    """Save a fitted ``DNNRegressor`` or ``DNNClassifier`` to the directory ``path``.

    ``path`` must be absent, an empty directory, or (with ``overwrite=True``) a model
    directory dnnreg wrote; anything else raises ``FileExistsError`` and is left untouched.
    ``metadata`` (plain JSON, e.g. the target column's name) is stored in ``config.json``.
    """
    import torch
    from safetensors.torch import save_file
    from sklearn.utils.validation import check_is_fitted

    from dnnreg._version import __version__

    check_is_fitted(model, "model_")
    path = Path(path)
    with output_dir(path, kind="model", overwrite=overwrite) as tmp:
        state = {k: v.detach().to("cpu", copy=True).contiguous()
                 for k, v in model.model_.state_dict().items()}
        save_file(state, tmp / "weights.safetensors", metadata={"format_version": str(FORMAT_VERSION)})
        scaler = getattr(model, "target_scaler_", None)
        write_json(tmp / "preprocessor.json", {
            "features": model.preprocessor_.to_dict(),
            "target": None if scaler is None else scaler.to_dict()})
        config = {
            "format_version": FORMAT_VERSION,
            "dnnreg_version": __version__,
            "torch_version": torch.__version__,
            "estimator": type(model).__name__,
            "params": json_params(model),
            "resolved": {"batch_size": model.batch_size_, "max_iter": model.max_iter_,
                         "n_epochs": model.n_iter_,
                         "best_epoch": model.best_epoch_, "fit_seconds": model.fit_seconds_},
            "architecture": {"d_numeric": len(model.preprocessor_.feature_names_out()),
                             "cardinalities": model.preprocessor_.cardinalities(),
                             "d_out": model.loss_.n_outputs()},
            "classes": model.classes_.tolist() if hasattr(model, "classes_") else None,
            "feature_schema": model.preprocessor_.schema(),
            "fitted_with_names": hasattr(model, "feature_names_in_"),
            "metadata": metadata or {},
            "sha256": {f: _sha256(tmp / f) for f in ("preprocessor.json", "weights.safetensors")},
        }
        write_json(tmp / "config.json", config)
    return path


def read_config(path) -> dict:
    """Read and check a model directory's ``config.json`` and file checksums."""
    path = Path(path)
    if not path.exists():
        raise ModelFormatError(f"model {str(path)!r} does not exist; pass a directory written "
                               "by 'dnnreg train' or dnnreg.save()")
    if not path.is_dir():
        raise ModelFormatError(f"model {str(path)!r} is a file, not a model directory; pass "
                               "the directory holding config.json")
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise ModelFormatError(f"model directory {str(path)!r} is missing {missing}; it is not "
                               "a complete dnnreg model, re-save or re-train it")
    try:
        config = json.loads((path / "config.json").read_text())
        version = config["format_version"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ModelFormatError(f"model file {str(path / 'config.json')!r} is corrupt or "
                               f"truncated ({type(err).__name__}); re-save the model") from err
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"model format_version must be {FORMAT_VERSION}, got "
                               f"format_version={version!r}; load it with the dnnreg version "
                               f"that wrote it ({config.get('dnnreg_version', 'unknown')})")
    for name, digest in config.get("sha256", {}).items():
        if _sha256(path / name) != digest:
            raise ModelFormatError(f"model file {str(path / name)!r} is corrupt or truncated "
                                   "(checksum mismatch); re-save the model")
    return config


def read_preprocessor(path):
    """The fitted ``(TablePreprocessor, TargetScaler)`` of a model directory (no torch)."""
    from dnnreg.tables.preprocessing import TablePreprocessor, TargetScaler

    state = json.loads((Path(path) / "preprocessor.json").read_text())
    target = state["target"]
    return (TablePreprocessor.from_dict(state["features"]),
            None if target is None else TargetScaler.from_dict(target))


def _read_weights(path: Path, load_file):
    """Read ``weights.safetensors`` with ``load_file`` (torch or numpy flavour)."""
    from safetensors import SafetensorError

    try:
        return load_file(path / "weights.safetensors")
    except (SafetensorError, OSError) as err:
        raise ModelFormatError(f"model file {str(path / 'weights.safetensors')!r} is corrupt "
                               "or truncated; re-save the model") from err


def load(path):
    """Load a model saved by :func:`save`; returns a fitted ``DNNRegressor`` or
    ``DNNClassifier``.

    Raises :class:`ModelFormatError` for a missing, corrupt, truncated or unknown-version
    model, naming the file and the fix.
    """
    import torch
    from safetensors.torch import load_file

    from dnnreg.estimators.classifier import DNNClassifier
    from dnnreg.estimators.regressor import DNNRegressor

    path = Path(path)
    config = read_config(path)
    classes = {"DNNRegressor": DNNRegressor, "DNNClassifier": DNNClassifier}
    if config.get("estimator") not in classes:
        raise ModelFormatError(f"model {str(path)!r} holds a {config.get('estimator')!r}; "
                               f"this dnnreg version loads {sorted(classes)} models")
    model = classes[config["estimator"]](**_params_from_json(config["params"]))
    model.preprocessor_, scaler = read_preprocessor(path)
    if scaler is not None:
        model.target_scaler_ = scaler
    if config["classes"] is not None:
        model.classes_ = np.asarray(config["classes"])
    model.loss_ = model._make_loss()
    if model.preprocessor_.schema() != config["feature_schema"]:
        raise ModelFormatError(f"model {str(path)!r}: preprocessor.json does not match the "
                               "feature schema in config.json; re-save the model")
    resolved = config["resolved"]
    model.batch_size_, model.n_iter_ = resolved["batch_size"], resolved["n_epochs"]
    # Models saved before max_iter could be "auto" stored only the parameter.
    model.max_iter_ = resolved.get("max_iter", model.max_iter)
    model.best_epoch_, model.fit_seconds_ = resolved["best_epoch"], resolved["fit_seconds"]
    model.history_ = []
    model.n_features_in_ = len(model.preprocessor_.columns)
    if config["fitted_with_names"]:
        model.feature_names_in_ = np.asarray(model.preprocessor_.columns, dtype=object)
    model.device_ = torch.device("cpu")
    model.model_ = model._build_model()
    state = _read_weights(path, load_file)
    try:
        model.model_.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0][:200]
        raise ModelFormatError(f"model file {str(path / 'weights.safetensors')!r} is corrupt "
                               f"or does not match config.json ({first}); re-save the model") from err
    model.model_.eval()
    model.metadata_ = config.get("metadata", {})
    return model


class NumpyModel:
    """A saved model run by NumPy alone: preprocessing, the MLP and the output map.

    Created by :func:`load_numpy`; importing it needs only numpy, pandas and safetensors.
    ``predict`` returns what the estimator's ``predict`` returns: a value in the target's
    units, or a class label; ``predict_proba`` exists for classifiers.
    """

    def __init__(self, config: dict, preprocessor, target_scaler, net):
        # Attribute names match the estimators', so callers treat both engines alike.
        self.config_, self.preprocessor_, self.target_scaler_, self.net_ = (
            config, preprocessor, target_scaler, net)
        self.metadata_ = config.get("metadata", {})
        self.loss = config["params"]["loss"]
        classes = config.get("classes")
        if classes is not None:
            self.classes_ = np.asarray(classes)

    def _point(self, X):
        from dnnreg.inference.reference import output_map, point_prediction

        enc = self.preprocessor_.transform(X)
        per_member = output_map(self.loss, self.net_.outputs(enc.numeric, enc.categorical))
        return point_prediction(self.loss, per_member,
                                quantiles=self.config_["params"].get("quantiles", (0.5,)))

    def predict_proba(self, X):
        """Class probabilities (classifiers only). Shape: ``(n, C)``."""
        if not hasattr(self, "classes_"):
            raise ValueError("predict_proba needs a classifier; this model is a "
                             f"{self.config_['estimator']}, use predict")
        return self._point(X)

    def predict(self, X):
        """Predictions in the target's original units, or class labels. Shape: ``(n,)``."""
        if hasattr(self, "classes_"):
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        return self.target_scaler_.inverse(self._point(X))


def load_numpy(path) -> NumpyModel:
    """Load a saved model for torch-free inference (float32 NumPy, as the torch engine).

    Predictions equal the torch model's to about 1e-6 relative. An all-numeric model
    predicts a NumPy array without building a DataFrame (the low-latency path).
    """
    from safetensors.numpy import load_file

    from dnnreg.inference.runtime import InferenceNet

    path = Path(path)
    config = read_config(path)
    pre, target = read_preprocessor(path)
    params = config["params"]
    net = InferenceNet(_read_weights(path, load_file),
                       hidden_layer_sizes=params["hidden_layer_sizes"],
                       activation=params["activation"], normalization=params["normalization"],
                       residual=params["residual"])
    return NumpyModel(config, pre, target, net)
