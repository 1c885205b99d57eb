"""The model file, read and written without torch: a directory of ``config.json``,
``preprocessor.json`` and ``weights.safetensors``. Never pickle: JSON and safetensors load
without running code. ``config.json`` records the sha256 of the other two files, so a
truncated or edited file is caught at load time, and the format version, so a file from
another version is refused with a message naming it.

Writes go through :mod:`dnnreg._files`: a sibling temp directory, fsynced, exchanged into
place, so a crash leaves either the old model or the new one, never half of one, and an
existing path is replaced only when it holds a dnnreg output and ``overwrite=True`` says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import numpy as np

from dnnreg._files import output_dir, write_file, write_json

FORMAT_VERSION = 2
FILES = ("config.json", "preprocessor.json", "weights.safetensors")


class ModelFormatError(ValueError):
    """A model directory is missing, corrupt, truncated or from an unknown format version."""


@contextlib.contextmanager
def damaged_as_format_error(path):
    """Turn what a parseable but damaged model file raises deep inside the loader (a
    missing key, a value of the wrong type; found by tests/test_fuzz.py) into one
    :class:`ModelFormatError` naming the model. config.json carries the other files'
    checksums but none of its own, so a hand-edited one reaches the loader."""
    try:
        yield
    except (KeyError, TypeError, AttributeError, IndexError) as err:
        detail = f"missing {err}" if isinstance(err, KeyError) else str(err).splitlines()[0][:120]
        raise ModelFormatError(
            f"model {str(path)!r} is damaged: config.json or preprocessor.json does not hold "
            f"what this version of dnnreg wrote ({detail}); re-save the model"
        ) from err


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def params_from_json(params: dict) -> dict:
    """Undo :func:`json_params`: lists back to the tuples the estimators take."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def json_params(model) -> dict:
    """``get_params()`` as plain JSON: tuples become lists; a RandomState object, which
    JSON cannot hold, becomes null."""
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in model.get_params().items()}
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None
    return params


def write_model(
    path, *, weights: dict, preprocessor: dict, config: dict, overwrite: bool = False
) -> Path:
    """Write a model directory: ``weights`` (name -> NumPy array), the preprocessor's
    state, and ``config`` (plain JSON), to which the format version and the files'
    checksums are added."""
    from safetensors.numpy import save

    path = Path(path)
    with output_dir(path, kind="model", overwrite=overwrite) as tmp:
        # serialised here and written by write_file: safetensors' own save_file creates
        # its file 0600 whatever the umask, which a server running as another user
        # cannot read
        data = save(
            {k: np.ascontiguousarray(v) for k, v in weights.items()},
            metadata={"format_version": str(FORMAT_VERSION)},
        )
        write_file(tmp / "weights.safetensors", data)
        write_json(tmp / "preprocessor.json", preprocessor)
        config = {
            "format_version": FORMAT_VERSION,
            **config,
            "sha256": {f: _sha256(tmp / f) for f in ("preprocessor.json", "weights.safetensors")},
        }
        write_json(tmp / "config.json", config)
    return path


def read_config(path) -> dict:
    """Read and check a model directory's ``config.json`` and file checksums."""
    path = Path(path)
    if not path.exists():
        raise ModelFormatError(
            f"model {str(path)!r} does not exist; pass a directory written "
            "by 'dnnreg train' or dnnreg.save()"
        )
    if not path.is_dir():
        raise ModelFormatError(
            f"model {str(path)!r} is a file, not a model directory; pass "
            "the directory holding config.json"
        )
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise ModelFormatError(
            f"model directory {str(path)!r} is missing {missing}; it is not "
            "a complete dnnreg model, re-save or re-train it"
        )
    try:
        config = json.loads((path / "config.json").read_text())
        version = config["format_version"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ModelFormatError(
            f"model file {str(path / 'config.json')!r} is corrupt or "
            f"truncated ({type(err).__name__}); re-save the model"
        ) from err
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"model format_version must be {FORMAT_VERSION}, got "
            f"format_version={version!r}; load it with the dnnreg version "
            f"that wrote it ({config.get('dnnreg_version', 'unknown')})"
        )
    for name, digest in config.get("sha256", {}).items():
        if _sha256(path / name) != digest:
            raise ModelFormatError(
                f"model file {str(path / name)!r} is corrupt or truncated "
                "(checksum mismatch); re-save the model"
            )
    return config


def read_preprocessor(path):
    """The fitted ``(TablePreprocessor, TargetScaler)`` of a model directory (no torch)."""
    from dnnreg.tables.preprocessing import TablePreprocessor, TargetScaler

    state = json.loads((Path(path) / "preprocessor.json").read_text())
    target = state["target"]
    return (
        TablePreprocessor.from_dict(state["features"]),
        None if target is None else TargetScaler.from_dict(target),
    )


def read_weights(path) -> dict:
    """The weights of a model directory as NumPy arrays (name -> array)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    try:
        return load_file(path / "weights.safetensors")
    except (SafetensorError, OSError) as err:
        raise ModelFormatError(
            f"model file {str(path / 'weights.safetensors')!r} is corrupt "
            "or truncated; re-save the model"
        ) from err
