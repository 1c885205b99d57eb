"""From each ensemble member's outputs to the model's prediction, in NumPy: the one place
both engines (the torch estimators and the torch-free runtime) turn outputs into answers.

The from-scratch reference (:mod:`dnnreg.inference.reference`) has its own versions; the
tests hold the two equal, so neither checks itself.
"""

from __future__ import annotations

import numpy as np

from dnnreg.options import SOFTPLUS_THRESHOLD, VARIANCE_FLOOR


def sigmoid(z):
    """The logistic function, overflow-free (also the runtime's activation)."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def softplus(z):
    """log(1 + e^z), returning z itself beyond torch's threshold, as torch does."""
    return np.where(z > SOFTPLUS_THRESHOLD, z, np.log1p(np.exp(np.minimum(z, SOFTPLUS_THRESHOLD))))


def output_map(loss: str, out: np.ndarray) -> np.ndarray:
    """Each member's prediction from its raw outputs, as the torch loss heads map them:
    the value ``(k, n)``; sorted quantiles ``(k, n, q)``; mean and variance ``(k, n, 2)``;
    the rate ``(k, n)``; or class probabilities ``(k, n, C)``.

    >>> output_map("poisson", np.zeros((1, 2, 1))).tolist()
    [[1.0, 1.0]]
    """
    if loss == "quantile":
        return np.sort(out, axis=-1)
    if loss == "gaussian_nll":
        return np.stack([out[..., 0], softplus(out[..., 1]) + VARIANCE_FLOOR], axis=-1)
    if loss == "poisson":
        return np.exp(out[..., 0])
    if loss in ("cross_entropy", "sigmoid_mse"):
        if out.shape[-1] == 1:
            p = sigmoid(out[..., 0])
            return np.stack([1.0 - p, p], axis=-1)
        if loss == "sigmoid_mse":
            p = sigmoid(out)
            return p / p.sum(axis=-1, keepdims=True)
        e = np.exp(out - out.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return out[..., 0]


def point_prediction(loss: str, per_member: np.ndarray, *, quantiles=(0.5,)) -> np.ndarray:
    """The ensemble's point prediction from each member's (:func:`output_map`): the mean
    over members of the value, of the level nearest 0.5 (quantile), of the mean
    (gaussian_nll), or of the probabilities (classification, ``(n, C)``).

    >>> point_prediction("quantile", np.array([[[1.0, 2.0, 3.0]], [[3.0, 4.0, 5.0]]]),
    ...                  quantiles=(0.1, 0.5, 0.9)).tolist()
    [3.0]
    """
    mean = per_member.mean(axis=0)
    if loss == "quantile":
        levels = sorted(float(q) for q in quantiles)
        return mean[:, int(np.argmin([abs(q - 0.5) for q in levels]))]
    if loss == "gaussian_nll":
        return mean[:, 0]
    return mean
