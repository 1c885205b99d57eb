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

A test holds it equal to :class:`dnnreg.inference.reference.NumpyMLP` and to the torch engine.
"""

from __future__ import annotations

import math

import numpy as np

from dnnreg.inference.reference import _LEAKY_SLOPE, _NORM_EPS, ACTIVATIONS, embed_numeric, member_weights

CHUNK = 512  # rows per chunk; measured best of 256-4096 for 3x256 on this 2-core machine


def _erf(z):
    from scipy.special import erf  # scipy ships with scikit-learn, a core dependency

    return erf(z)


def _relu(z):
    return np.maximum(z, 0.0, out=z)


def _leaky_relu(z):
    return np.maximum(z, _LEAKY_SLOPE * z, out=z)  # slope < 1: max(z, az) is leaky ReLU


# In-place or float32-preserving forms of the activations the reference defines.
_FAST = {
    "identity": lambda z: z,
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "gelu": lambda z: 0.5 * z * (1.0 + _erf(z * np.float32(1.0 / math.sqrt(2.0)))),
    "tanh": lambda z: np.tanh(z, out=z),
}


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

    def __init__(self, params, *, hidden_layer_sizes, activation, normalization="none",
                 residual=False, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        p = member_weights({k: np.asarray(v, dtype=self.dtype) for k, v in params.items()})
        self.numeric_embedding = {k: v for k, v in p.items() if k.startswith("num_embedding.")}
        self.activation, self.normalization = activation, normalization
        self.embeddings = [p[f"embeddings.{j}.weight"] for j in range(
            len([k for k in p if k.startswith("embeddings.")]))]
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
        scale = get("weight") / np.sqrt(get("running_var") + _NORM_EPS)
        return w * scale, (b - get("running_mean")) * scale + get("bias")

    def _activate(self, u, prelu):
        if prelu is not None:
            return np.where(u > 0, u, prelu * u)
        fast = _FAST.get(self.activation)
        if fast is not None:
            return fast(u)
        return ACTIVATIONS[self.activation][0](u).astype(self.dtype, copy=False)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Raw outputs of every member. Shape: ``x: (n, d) -> (k, n, d_out)``."""
        a = _ones_column(x.shape, self.dtype)  # (n, d + 1): the inputs, then a 1
        a[:, :-1] = x
        for w, layer_norm, prelu, alpha in self.layers:
            z = a @ w  # (n, d+1) @ ([k,] d+1, h) broadcasts over members -> ([k,] n, h)
            if layer_norm is not None:
                mu = z.mean(axis=-1, keepdims=True)
                var = z.var(axis=-1, keepdims=True)
                z = (z - mu) / np.sqrt(var + _NORM_EPS) * layer_norm[0] + layer_norm[1]
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
            x = np.concatenate([x] + [e[x_cat[:, j]] for j, e in enumerate(self.embeddings)],
                               axis=1)
        return x

    def outputs(self, x_num, x_cat=None, *, batch_size: int = CHUNK) -> np.ndarray:
        """Raw outputs for encoded inputs, in chunks. Shape: ``-> (k, n, d_out)``."""
        x = self.embed(x_num, x_cat)
        if len(x) <= batch_size:
            return self.forward(x)
        return np.concatenate([self.forward(x[i:i + batch_size])
                               for i in range(0, len(x), batch_size)], axis=1)
