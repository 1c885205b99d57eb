"""Inference-only forward pass of a saved network, in float32 NumPy.

:mod:`dnnreg.inference.reference` is the oracle: float64, and every forward pass keeps what the
backward pass needs (pre-activations, derivatives). Prediction needs none of it, so this
module runs the same network lean:

- float32, as the torch engine computes (half the memory traffic of float64);
- eval-mode batch norm folded into the preceding linear map,
  ``W' = W γ/√(σ² + ε)`` and ``b' = (b - μ) γ/√(σ² + ε) + β``, so it costs nothing;
- each bias folded into its weight matrix as one more input row, fed by a constant 1
  carried in one extra column of every activation buffer: the matmul adds the bias, which
  saves a pass over the activations per layer (measured 10 % of the forward pass);
- activations written straight into that buffer, no derivatives;
- rows in chunks of :data:`CHUNK` so each layer's activations stay in cache;
- one row (the latency case) skips the chunking and the member broadcast.

A test holds it equal to :class:`dnnreg.inference.reference.NumpyMLP` and to the torch
engine; it shares no code with the reference (which only the tests import).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

import dnnreg.cores as cores
from dnnreg.conformal import PREFIX as CALIBRATION_PREFIX
from dnnreg.conformal import Calibration, base_predictions, check_coverage, mondrian_groups
from dnnreg.model_file import (
    ModelFormatError,
    damaged_as_format_error,
    read_config,
    read_preprocessor,
    read_weights,
)
from dnnreg.options import ACTIVATIONS, LEAKY_SLOPE, NORM_EPS, NORMALIZATIONS
from dnnreg.predictions import output_map, point_prediction, sigmoid, softplus

CHUNK = 512  # rows per chunk; measured best of 256-4096 for 3x256 on this 2-core machine
THREADED_ROWS = 256  # from here on the thread policy applies (see InferenceNet.outputs)


def _erf(z):
    from scipy.special import erf  # scipy ships with scikit-learn, a core dependency

    return erf(z)


def _relu(z):
    return np.maximum(z, 0.0, out=z)


def _leaky_relu(z):
    return np.maximum(z, LEAKY_SLOPE * z, out=z)  # slope < 1: max(z, az) is leaky ReLU


# Forward forms of every activation (the derivatives live in the reference, for training
# checks); in place or float32-preserving where that is cheap.
_ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    "gelu": lambda z: 0.5 * z * (1.0 + _erf(z * np.float32(1.0 / math.sqrt(2.0)))),
    "silu": lambda z: z * sigmoid(z),
    "mish": lambda z: z * np.tanh(softplus(z)),
    "tanh": lambda z: np.tanh(z, out=z),
    "sigmoid": sigmoid,
    "softplus": softplus,
}


def member_weights(params: dict) -> dict:
    """Each member's own weight matrix where members share one through rank-one adapters
    (TabM's :class:`dnnreg.network.mlp.SharedLinear`): ``W_i[a, b] = r_i[a] W[a, b] s_i[b]``,
    since ``((x ⊙ r_i) W) ⊙ s_i = x W_i``. Returns the parameters in the independent-member
    layout ``(k, d_in, d_out)`` without ``r`` and ``s``; other entries are unchanged.

    >>> p = {"blocks.0.linear.weight": np.ones((2, 3)), "blocks.0.linear.bias": np.zeros((2, 1, 3)),
    ...      "blocks.0.linear.r": np.array([[[1.0, -1.0]], [[2.0, 1.0]]])}
    >>> member_weights(p)["blocks.0.linear.weight"][:, :, 0].tolist()
    [[1.0, -1.0], [2.0, 1.0]]
    """
    out = dict(params)
    for name, w in params.items():
        if not (name.endswith("linear.weight") and np.ndim(w) == 2):
            continue
        prefix = name[: -len("weight")]
        k = params[prefix + "bias"].shape[0]
        r = out.pop(prefix + "r", None)  # (k, 1, d_in)
        s = out.pop(prefix + "s", None)  # (k, 1, d_out)
        r = np.ones((k, w.shape[0]), w.dtype) if r is None else r.reshape(k, -1)
        s = np.ones((k, w.shape[1]), w.dtype) if s is None else s.reshape(k, -1)
        out[name] = np.einsum("ka,ab,kb->kab", r, w, s)
    return out


def embed_numeric(p: dict, x_num: np.ndarray) -> np.ndarray:
    """The numerical embedding's forward pass (:mod:`dnnreg.network.embeddings`):
    ``[ReLU(code_j(x_j) W_j + b_j) for each embedded column j, then the others]``, where the
    code is periodic ``[cos 2πcx, sin 2πcx]`` or piecewise linear (each bin's share of x).
    Shape: ``(n, d_numeric) -> (n, f * d_embedding + n_passthrough)``; without an
    embedding in ``p``, ``x_num`` itself."""
    if "num_embedding.weight" not in p:
        return x_num
    cols = p["num_embedding.columns"].astype(np.int64)
    rest = p["num_embedding.passthrough"].astype(np.int64)
    x = x_num[:, cols, None]  # (n, f, 1)
    if "num_embedding.frequencies" in p:
        angle = x * (p["num_embedding.frequencies"] * x.dtype.type(2.0 * math.pi))
        code = np.concatenate([np.cos(angle), np.sin(angle)], axis=-1)
    else:
        code = np.clip(
            (x - p["num_embedding.left"]) / p["num_embedding.width"],
            p["num_embedding.lower"],
            p["num_embedding.upper"],
        )
    e = np.matmul(code.transpose(1, 0, 2), p["num_embedding.weight"])  # (f, n, d)
    e = np.maximum(e.transpose(1, 0, 2) + p["num_embedding.bias"], 0.0)
    return np.concatenate([e.reshape(len(x_num), -1), x_num[:, rest]], axis=1)


def _with_bias_row(w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[W; b]``: ``(k, d, h), (k, 1, h) -> (k, d + 1, h)``, so ``[a, 1] @ [W; b] = a W + b``."""
    return np.ascontiguousarray(np.concatenate([w, b], axis=-2))


def _first_member(t):
    """Drop the leading member axis of an array, or of each array in a tuple."""
    if t is None:
        return None
    return tuple(x[0] for x in t) if isinstance(t, tuple) else t[0]


def _ones_column(shape: tuple, dtype) -> np.ndarray:
    """An uninitialised buffer ``shape`` plus one trailing column of ones."""
    buf = np.empty((*shape[:-1], shape[-1] + 1), dtype=dtype)
    buf[..., -1] = 1.0
    return buf


class InferenceNet:
    """The ensemble MLP of a saved model, for prediction only.

    Parameters
    ----------
    params : dict of str -> ndarray
        The torch ``state_dict`` as arrays.
    hidden_layer_sizes, activation, normalization, residual : as in the estimators.
    dtype : numpy dtype, default float32

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = {"blocks.0.linear.weight": rng.normal(size=(2, 3, 4)),
    ...      "blocks.0.linear.bias": np.zeros((2, 1, 4)),
    ...      "head.weight": rng.normal(size=(2, 4, 1)), "head.bias": np.zeros((2, 1, 1))}
    >>> InferenceNet(p, hidden_layer_sizes=(4,), activation="relu").outputs(np.ones((5, 3))).shape
    (2, 5, 1)
    """

    def __init__(
        self,
        params,
        *,
        hidden_layer_sizes,
        activation,
        normalization="none",
        residual=False,
        dtype=np.float32,
    ):
        if activation not in ACTIVATIONS or normalization not in NORMALIZATIONS:
            raise ModelFormatError(
                f"the model records activation={activation!r}, normalization="
                f"{normalization!r}, which this runtime does not know; re-save the model"
            )
        self.dtype = np.dtype(dtype)
        p = member_weights({k: np.asarray(v, dtype=self.dtype) for k, v in params.items()})
        self.numeric_embedding = {k: v for k, v in p.items() if k.startswith("num_embedding.")}
        self.activation, self.normalization = activation, normalization
        self.embeddings = [
            p[f"embeddings.{j}.weight"]
            for j in range(len([k for k in p if k.startswith("embeddings.")]))
        ]
        self.layers = []
        for l in range(len(hidden_layer_sizes)):
            w, b = p[f"blocks.{l}.linear.weight"], p[f"blocks.{l}.linear.bias"]
            layer_norm = None
            if normalization == "batch_norm":
                w, b = self._fold_batch_norm(p, l, w, b)
            elif normalization == "layer_norm":
                layer_norm = (p[f"blocks.{l}.norm.weight"], p[f"blocks.{l}.norm.bias"])
            prelu = p.get(f"blocks.{l}.act.weight")
            alpha = p.get(f"blocks.{l}.alpha") if residual else None
            self.layers.append((_with_bias_row(w, b), layer_norm, prelu, alpha))
        self.head = _with_bias_row(p["head.weight"], p["head.bias"])
        self.k = self.head.shape[0]
        if self.k == 1:  # one member: plain 2-D matmuls, no broadcast over members
            self.layers = [tuple(_first_member(t) for t in layer) for layer in self.layers]
            self.head = self.head[0]

    @staticmethod
    def _fold_batch_norm(p, l, w, b):
        k, _, d = w.shape
        get = lambda s: p[f"blocks.{l}.norm.{s}"].reshape(k, 1, d)  # noqa: E731
        scale = get("weight") / np.sqrt(get("running_var") + NORM_EPS)
        return w * scale, (b - get("running_mean")) * scale + get("bias")

    def _activate(self, u, prelu):
        if prelu is not None:
            return np.where(u > 0, u, prelu * u)
        return _ACTIVATIONS[self.activation](u).astype(self.dtype, copy=False)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Raw outputs of every member. Shape: ``x: (n, d) -> (k, n, d_out)``."""
        a = _ones_column(x.shape, self.dtype)  # (n, d + 1): the inputs, then a 1
        a[:, :-1] = x
        for w, layer_norm, prelu, alpha in self.layers:
            z = a @ w  # (n, d+1) @ ([k,] d+1, h) broadcasts over members -> ([k,] n, h)
            if layer_norm is not None:
                mu = z.mean(axis=-1, keepdims=True)
                var = z.var(axis=-1, keepdims=True)
                z = (z - mu) / np.sqrt(var + NORM_EPS) * layer_norm[0] + layer_norm[1]
            nxt = _ones_column(z.shape, self.dtype)
            if prelu is None and layer_norm is None and alpha is None and self.activation == "relu":
                np.maximum(z, 0.0, out=nxt[..., :-1])  # the common case: one pass
            else:
                h = self._activate(z, prelu)
                nxt[..., :-1] = a[..., :-1] + alpha * h if alpha is not None else h
            a = nxt
        out = a @ self.head
        return out if self.k > 1 else out[None]

    def embed(self, x_num, x_cat=None) -> np.ndarray:
        """The numeric block (through the numerical embedding, if any) and categorical
        embedding rows side by side. Shape: ``-> (n, d)``."""
        x = embed_numeric(self.numeric_embedding, np.asarray(x_num, dtype=self.dtype))
        if self.embeddings:
            x = np.concatenate(
                [x] + [e[x_cat[:, j]] for j, e in enumerate(self.embeddings)], axis=1
            )
        return x

    def outputs(
        self, x_num, x_cat=None, *, batch_size: int = CHUNK, n_threads="auto"
    ) -> np.ndarray:
        """Raw outputs for encoded inputs, in chunks. Shape: ``-> (k, n, d_out)``.

        From :data:`THREADED_ROWS` rows on, BLAS gets ``n_threads`` threads, "auto" the
        idle usable cores (:func:`dnnreg.cores.auto_threads`): OpenBLAS's threads stall
        on a core another process holds (measured: 5x slower on 2 busy cores). Smaller
        inputs run as they are (BLAS keeps small products on one thread, and counting
        the idle cores would cost more than the prediction)."""
        x = self.embed(x_num, x_cat)
        if len(x) < THREADED_ROWS:
            return self.forward(x)
        n = cores.auto_threads(max_age=1.0) if n_threads == "auto" else int(n_threads)
        with cores.blas_threads(n):
            return np.concatenate(
                [self.forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)],
                axis=1,
            )


# ---------------------------------------------------------------------- a saved model
class NumpyModel:
    """A saved model run by NumPy alone: preprocessing, the MLP and the output map.

    Created by :func:`load_numpy`; importing it needs only numpy, pandas and safetensors.
    ``predict`` returns what the estimator's ``predict`` returns: a value in the target's
    units, or a class label; ``predict_proba`` exists for classifiers.
    """

    def __init__(
        self, config: dict, preprocessor, target_scaler, net, n_threads="auto", calibration=None
    ):
        # Attribute names match the estimators', so callers treat both engines alike.
        self.config_, self.preprocessor_, self.target_scaler_, self.net_ = (
            config,
            preprocessor,
            target_scaler,
            net,
        )
        self.metadata_ = config.get("metadata", {})
        self.loss = config["params"]["loss"]
        self.n_threads = n_threads
        self.calibration_ = calibration
        classes = config.get("classes")
        if classes is not None:
            self.classes_ = np.asarray(classes)

    def _per_member(self, X):
        enc = self.preprocessor_.transform(X)
        raw = self.net_.outputs(enc.numeric, enc.categorical, n_threads=self.n_threads)
        return output_map(self.loss, raw)

    def _point(self, X):
        return point_prediction(
            self.loss,
            self._per_member(X),
            quantiles=self.config_["params"].get("quantiles", (0.5,)),
        )

    def predict_interval(self, X, coverage=0.9, *, by=None):
        """The conformal interval of the estimator's ``predict_interval``, from the
        calibration rows saved with the model. Shape: ``((n,), (n,))``."""
        coverage = check_coverage(coverage)
        calibration = self.calibration_
        if calibration is None:
            raise ValueError(
                f"model has no calibration rows for predict_interval (a "
                f"{self.config_['estimator']}, fitted without validation rows, or saved "
                "before intervals existed); calibrate it with DNNRegressor.calibrate and save"
            )
        frame = X if isinstance(X, pd.DataFrame) else None
        if by is not None and frame is None:
            raise ValueError("predict_interval(by=...) needs X as a DataFrame with that column")
        bases = base_predictions(
            self.loss,
            self._per_member(X),
            calibration.n_folds,
            self.target_scaler_,
            self.config_["params"].get("quantiles", (0.5,)),
        )
        groups = mondrian_groups(calibration, self.preprocessor_, frame, by)
        return calibration.interval(bases, coverage, groups)

    def predict_proba(self, X):
        """Class probabilities (classifiers only). Shape: ``(n, C)``."""
        if not hasattr(self, "classes_"):
            raise ValueError(
                "predict_proba needs a classifier; this model is a "
                f"{self.config_['estimator']}, use predict"
            )
        return self._point(X)

    def predict(self, X):
        """Predictions in the target's original units, or class labels. Shape: ``(n,)``."""
        if hasattr(self, "classes_"):
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        return self.target_scaler_.inverse(self._point(X))


def load_numpy(path, *, n_threads="auto") -> NumpyModel:
    """Load a saved model for torch-free inference (float32 NumPy, as the torch engine).

    Predictions equal the torch model's to about 1e-6 relative. An all-numeric model
    predicts a NumPy array without building a DataFrame (the low-latency path).
    ``n_threads``: BLAS threads for large inputs, "auto" the idle usable cores
    (:meth:`InferenceNet.outputs`); the model's ``n_threads`` attribute may be changed.
    """
    path = Path(path)
    with damaged_as_format_error(path):
        return _load_numpy(path, n_threads)


def _load_numpy(path: Path, n_threads) -> NumpyModel:
    config = read_config(path)
    pre, target = read_preprocessor(path)
    params = config["params"]
    weights = read_weights(path)
    calibration = Calibration.from_state(config.get("calibration"), weights)
    net = InferenceNet(
        {k: v for k, v in weights.items() if not k.startswith(CALIBRATION_PREFIX)},
        hidden_layer_sizes=params["hidden_layer_sizes"],
        activation=params["activation"],
        normalization=params["normalization"],
        residual=params["residual"],
    )
    return NumpyModel(config, pre, target, net, n_threads=n_threads, calibration=calibration)
