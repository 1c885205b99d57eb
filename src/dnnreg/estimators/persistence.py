"""Saving and loading the estimators: the estimator turns itself into plain data
(:meth:`~dnnreg.estimators.base._DNNBase.to_state`) and back
(:meth:`~dnnreg.estimators.base._DNNBase.from_state`); :mod:`dnnreg.model_file` reads and
writes the files, without torch."""

from __future__ import annotations

from pathlib import Path

from dnnreg.model_file import (
    ModelFormatError,
    damaged_as_format_error,
    read_config,
    read_preprocessor,
    read_weights,
    write_model,
)


def save(model, path, *, overwrite: bool = False, metadata: dict | None = None) -> Path:
    """Save a fitted ``DNNRegressor`` or ``DNNClassifier`` to the directory ``path``.

    ``path`` must be absent, an empty directory, or (with ``overwrite=True``) a model
    directory dnnreg wrote; anything else raises ``FileExistsError`` and is left untouched.
    ``metadata`` (plain JSON, e.g. the target column's name) is stored in ``config.json``.
    """
    state = model.to_state()
    return write_model(
        path,
        weights=state["weights"],
        preprocessor=state["preprocessor"],
        config={**state["config"], "metadata": metadata or {}},
        overwrite=overwrite,
    )


def load(path):
    """Load a model saved by :func:`save`; returns a fitted ``DNNRegressor`` or
    ``DNNClassifier`` on the CPU.

    Raises :class:`~dnnreg.model_file.ModelFormatError` for a missing, corrupt, truncated or
    unknown-version model, naming the file and the fix.
    """
    from dnnreg.estimators.classifier import DNNClassifier
    from dnnreg.estimators.regressor import DNNRegressor

    path = Path(path)
    with damaged_as_format_error(path):
        return _load(path, {"DNNRegressor": DNNRegressor, "DNNClassifier": DNNClassifier})


def _load(path: Path, classes: dict):
    config = read_config(path)
    if config.get("estimator") not in classes:
        raise ModelFormatError(
            f"model {str(path)!r} holds a {config.get('estimator')!r}; "
            f"this dnnreg version loads {sorted(classes)} models"
        )
    preprocessor, scaler = read_preprocessor(path)
    if preprocessor.schema() != config["feature_schema"]:
        raise ModelFormatError(
            f"model {str(path)!r}: preprocessor.json does not match the "
            "feature schema in config.json; re-save the model"
        )
    try:
        model = classes[config["estimator"]].from_state(
            config, preprocessor, scaler, read_weights(path)
        )
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0][:200]
        raise ModelFormatError(
            f"model file {str(path / 'weights.safetensors')!r} is corrupt "
            f"or does not match config.json ({first}); re-save the model"
        ) from err
    model.metadata_ = config.get("metadata", {})
    return model
