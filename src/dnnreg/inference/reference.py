"""Forward and backward propagation from scratch in NumPy (float64): the gradient oracle
that checks the torch engine, and the reference that the lean torch-free runtime behind
:func:`load_numpy` (:mod:`dnnreg.inference.runtime`) is checked against. The engines never
import it (an oracle that shared code with what it checks would stop being one); the tests
do, and so does the ``softmax-from-scratch`` experiment, which trains it on digits.

Notation, for hidden layers l = 1..L-1 and the output layer L, each ensemble member alone
(rows are samples, W^l is d_{l-1} x d_l):

    z^l = a^{l-1} W^l + b^l             (a^0 = x, the encoded inputs)
    u^l = norm(z^l)                     (identity, batch norm in eval mode, or layer norm)
    a^l = f(u^l) ⊙ m^l / (1 - p)        (dropout mask m^l; no mask at inference)
    a^l ← a^{l-1} + α^l a^l             (residual blocks, when widths agree; α^l learned)
    o   = a^{L-1} W^L + b^L             (raw outputs; the loss decides what they mean)

Back-propagation is the chain rule taken layer by layer from the output down. The output
error δᴸ = ∂L/∂o depends on the loss and its output map (sigmoid, softmax, exp, ...); the
pairs below are why each loss is paired with its output (k members, N rows, the mean
over both):

    mse            L = mean (o - y)²                       δᴸ = 2 (o - y) / kN
    mae            L = mean |o - y|                        δᴸ = sign(o - y) / kN
    huber          L = mean ½r² or δ(|r| - ½δ)             δᴸ = clip(o - y, -δ, δ) / kN
    quantile τ     L = mean max(τr, (τ - 1)r), r = y - o   δᴸ = -(τ - [r < 0]) / kNQ
    gaussian_nll   L = mean ½(log v + (y - μ)²/v)          δμ = -(y - μ)/v / kN
                   v = softplus(s) + ε                     δs = ½(1/v - (y-μ)²/v²) σ(s) / kN
    poisson        L = mean e^o - y o                      δᴸ = (e^o - y) / kN
    softmax + CE   L = mean log Σ_c e^{o_c} - o_y           δᴸ = (softmax(o) - onehot(y)) / kN
    sigmoid + BCE  L = mean softplus(o) - y o              δᴸ = (σ(o) - y) / kN
    sigmoid + MSE  L = mean Σ_c (σ(o_c) - t_c)²            δᴸ = 2 (σ - t) σ (1 - σ) / kN

The cross-entropy pairs cancel the output non-linearity's derivative; sigmoid + MSE keeps
the factor σ(1 - σ), which vanishes when a unit saturates: the reason it learns slowly.

Then, for each hidden layer from the top, with g = ∂L/∂a^l:

    δˡ = (g ⊙ m / (1 - p)) ⊙ f′(uˡ) ⊙ ∂u/∂z                (for a plain net g = δˡ⁺¹ Wˡ⁺¹ᵀ,
                                                          i.e. δˡ = (Wˡ⁺¹ᵀ δˡ⁺¹) ⊙ f′(zˡ))
    ∂L/∂Wˡ = aˡ⁻¹ᵀ δˡ,   ∂L/∂bˡ = Σ_rows δˡ              (per row: ∂L/∂Wˡ = δˡ aˡ⁻¹ᵀ)
    ∂L/∂aˡ⁻¹ = δˡ Wˡᵀ  (+ g itself through a residual skip, where the branch's g is α g
                        and ∂L/∂α = Σ g ⊙ aˡ)

Batch norm in eval mode is a fixed affine map (∂u/∂z = γ/√(σ² + ε)); layer norm
normalises each row by its own mean and deviation, so its ∂u/∂z mixes the row's units
(see :meth:`NumpyMLP._layer_norm_backward`). The pre-activations are cached on the way
forward because f′ needs them on the way back.
"""

from __future__ import annotations

import math

import numpy as np

from dnnreg.options import LEAKY_SLOPE, NORM_EPS, SOFTPLUS_THRESHOLD, VARIANCE_FLOOR

_erf = np.vectorize(math.erf, otypes=[np.float64])
# The oracle shares the engines' constants (numbers, not code).
_NORM_EPS, _LEAKY_SLOPE = NORM_EPS, LEAKY_SLOPE
_SOFTPLUS_THRESHOLD, _VARIANCE_FLOOR = SOFTPLUS_THRESHOLD, VARIANCE_FLOOR


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(z):
    return np.where(
        z > _SOFTPLUS_THRESHOLD, z, np.log1p(np.exp(np.minimum(z, _SOFTPLUS_THRESHOLD)))
    )


def _softplus_grad(z):
    return np.where(z > _SOFTPLUS_THRESHOLD, 1.0, _sigmoid(z))


def _gelu_grad(z):
    cdf = 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))
    return cdf + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _mish_grad(z):
    t = np.tanh(np.log1p(np.exp(z)))  # torch's mish uses softplus without a threshold
    return t + z * _sigmoid(z) * (1.0 - t * t)


# name -> (f, f′). At kinks f′ follows torch's autograd: relu′(0) = 0, leaky_relu′(0) =
# 0.01, prelu′(0) = its slope, elu′(0) = 1. prelu's slope a (shape (k, 1, d)) is passed in.
ACTIVATIONS = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "leaky_relu": (
        lambda z: np.where(z > 0, z, _LEAKY_SLOPE * z),
        lambda z: np.where(z > 0, 1.0, _LEAKY_SLOPE),
    ),
    "prelu": (lambda z, a: np.where(z > 0, z, a * z), lambda z, a: np.where(z > 0, 1.0, a)),
    "elu": (
        lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
        lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0))),
    ),
    "gelu": (lambda z: 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0))), _gelu_grad),
    "silu": (lambda z: z * _sigmoid(z), lambda z: _sigmoid(z) * (1.0 + z * (1.0 - _sigmoid(z)))),
    "mish": (lambda z: z * np.tanh(np.log1p(np.exp(z))), _mish_grad),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "softplus": (_softplus, _softplus_grad),
}


# ---------------------------------------------------------------------- losses
def loss_and_output_error(name, out, y, *, huber_delta=1.0, quantiles=(0.5,)):
    """``(L, δᴸ = ∂L/∂out)`` for the loss ``name`` (formulas in the module docstring).

    ``out``: (k, n, d_out); ``y``: (n,) — floats for regression, class indices for
    ``cross_entropy`` / ``sigmoid_mse``.
    """
    k, n, d = out.shape
    m = k * n
    if name in ("cross_entropy", "sigmoid_mse"):
        return _classification_loss(name, out, np.asarray(y, dtype=np.int64), m)
    y = np.asarray(y, dtype=np.float64)[None, :]  # (1, n): broadcast over members
    o = out[..., 0]
    grad = np.zeros_like(out)
    if name == "mse":
        r = o - y
        loss, grad[..., 0] = np.mean(r * r), 2.0 * r / m
    elif name == "mae":
        r = o - y
        loss, grad[..., 0] = np.mean(np.abs(r)), np.sign(r) / m
    elif name == "huber":
        r, dl = o - y, huber_delta
        small = np.abs(r) <= dl
        loss = np.mean(np.where(small, 0.5 * r * r, dl * (np.abs(r) - 0.5 * dl)))
        grad[..., 0] = np.clip(r, -dl, dl) / m
    elif name == "quantile":
        tau = np.asarray(quantiles, dtype=np.float64)
        r = y[..., None] - out  # (k, n, q)
        loss = np.mean(np.maximum(tau * r, (tau - 1.0) * r))
        # At r = 0 torch's maximum splits the gradient between its two (equal) arguments.
        slope = np.where(r > 0, tau, np.where(r < 0, tau - 1.0, tau - 0.5))
        grad = -slope / (m * len(tau))
    elif name == "gaussian_nll":
        s = out[..., 1]
        v = _softplus(s) + _VARIANCE_FLOOR
        r = y - o
        loss = np.mean(0.5 * (np.log(v) + r * r / v))
        grad[..., 0] = -r / v / m
        grad[..., 1] = 0.5 * (1.0 / v - r * r / (v * v)) * _softplus_grad(s) / m
    elif name == "poisson":
        loss, grad[..., 0] = np.mean(np.exp(o) - y * o), (np.exp(o) - y) / m
    else:
        raise ValueError(f"loss must be one of {LOSSES}, got loss={name!r}")
    return float(loss), grad


def _classification_loss(name, out, y, m):
    k, n, d = out.shape
    if d == 1:  # two classes: one sigmoid output
        z, t = out[..., 0], y[None, :].astype(np.float64)
        p = _sigmoid(z)
        if name == "cross_entropy":
            loss = np.mean(_softplus_exact(z) - t * z)
            return float(loss), ((p - t) / m)[..., None]
        loss = np.mean((p - t) ** 2)
        return float(loss), (2.0 * (p - t) * p * (1.0 - p) / m)[..., None]
    t = np.zeros((n, d))
    t[np.arange(n), y] = 1.0
    if name == "cross_entropy":
        shifted = out - out.max(axis=-1, keepdims=True)
        log_z = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        log_p = shifted - log_z
        loss = -np.mean((log_p * t).sum(axis=-1))
        return float(loss), (np.exp(log_p) - t) / m
    p = _sigmoid(out)
    loss = np.mean(((p - t) ** 2).sum(axis=-1))
    return float(loss), 2.0 * (p - t) * p * (1.0 - p) / m


def _softplus_exact(z):
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


LOSSES = (
    "mse",
    "mae",
    "huber",
    "quantile",
    "gaussian_nll",
    "poisson",
    "cross_entropy",
    "sigmoid_mse",
)


def output_map(name, out, *, n_classes=None):
    """Each member's prediction from raw outputs, as :meth:`dnnreg.network.losses.Loss.predict`:
    the value (k, n); sorted quantiles (k, n, q); mean and variance (k, n, 2); the rate
    (k, n); or class probabilities (k, n, C)."""
    if name == "quantile":
        return np.sort(out, axis=-1)
    if name == "gaussian_nll":
        return np.stack([out[..., 0], _softplus(out[..., 1]) + _VARIANCE_FLOOR], axis=-1)
    if name == "poisson":
        return np.exp(out[..., 0])
    if name in ("cross_entropy", "sigmoid_mse"):
        if out.shape[-1] == 1:
            p = _sigmoid(out[..., 0])
            return np.stack([1.0 - p, p], axis=-1)
        if name == "sigmoid_mse":
            p = _sigmoid(out)
            return p / p.sum(axis=-1, keepdims=True)
        e = np.exp(out - out.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return out[..., 0]


def point_prediction(name, per_member, *, quantiles=(0.5,)):
    """The ensemble's point prediction from each member's (``output_map``): the mean over
    members of the value, of the level nearest 0.5 (quantile), of the mean (gaussian_nll),
    or of the probabilities (classification, (n, C)); the engines use
    :func:`dnnreg.predictions.point_prediction`, which the tests hold equal to this."""
    mean = per_member.mean(axis=0)
    if name == "quantile":
        levels = sorted(float(q) for q in quantiles)
        return mean[:, int(np.argmin([abs(q - 0.5) for q in levels]))]
    if name == "gaussian_nll":
        return mean[:, 0]
    return mean


# ---------------------------------------------------------------------- the network
# ---------------------------------------------------------------------- shared weights
def member_weights(params: dict) -> dict:
    """Each member's own weight matrix where members share one through adapters (TabM's
    :class:`dnnreg.network.mlp.SharedLinear`): ``W_i = diag(r_i) W diag(s_i)``, so that
    ``((x ⊙ r_i) W) ⊙ s_i = x W_i``. Returns the parameters in the independent-member
    layout ``(k, d_in, d_out)``, without ``r`` and ``s``; other entries are unchanged.

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
        w = np.broadcast_to(w, (k, *np.shape(w)))
        r, s = out.pop(prefix + "r", None), out.pop(prefix + "s", None)
        if r is not None:
            w = np.swapaxes(r, 1, 2) * w  # scales row j of member i's W by r_ij
        if s is not None:
            w = w * s  # scales column j by s_ij
        out[name] = np.ascontiguousarray(w)
    return out


# ---------------------------------------------------------------------- numerical embeddings
def embedding_codes(p: dict, x: np.ndarray) -> np.ndarray:
    """The periodic or piecewise-linear code of each embedded column
    (:mod:`dnnreg.network.embeddings`). Shape: ``x: (n, f) -> (n, f, d_code)``."""
    x = x[:, :, None]
    if "num_embedding.frequencies" in p:
        angle = (2.0 * math.pi) * x * p["num_embedding.frequencies"]
        return np.concatenate([np.cos(angle), np.sin(angle)], axis=-1)
    z = (x - p["num_embedding.left"]) / p["num_embedding.width"]
    return np.minimum(np.maximum(z, p["num_embedding.lower"]), p["num_embedding.upper"])


def embed_numeric(p: dict, x_num: np.ndarray, cache: dict | None = None) -> np.ndarray:
    """``[ReLU(code_j(x_j) W_j + b_j) for each embedded j, then the other columns]``.
    Shape: ``(n, d_numeric) -> (n, f * d_embedding + n_passthrough)``; without an embedding
    in ``p``, ``x_num`` itself. ``cache`` collects what :func:`embedding_gradients` needs."""
    if "num_embedding.weight" not in p:
        return x_num
    cols = p["num_embedding.columns"].astype(np.int64)
    rest = p["num_embedding.passthrough"].astype(np.int64)
    v = embedding_codes(p, x_num[:, cols])  # (n, f, c)
    pre = np.einsum("nfc,fcd->nfd", v, p["num_embedding.weight"]) + p["num_embedding.bias"]
    if cache is not None:
        cache.update(x=x_num[:, cols], v=v, pre=pre)
    e = np.maximum(pre, 0.0)
    return np.concatenate([e.reshape(len(x_num), -1), x_num[:, rest]], axis=1)


def embedding_gradients(p: dict, cache: dict, g_embedded: np.ndarray) -> dict:
    """∂L/∂θ of the numerical embedding from ∂L/∂(its output) (n, f·d + rest).

    With e = ReLU(pre), pre = v W_j + b_j: δ = g ⊙ [pre > 0]; ∂W_j = vᵀ δ; ∂b_j = Σ δ.
    Periodic codes v = [cos θ, sin θ], θ = 2π c x, add ∂c = Σ_rows 2π x (-∂v_cos sin θ +
    ∂v_sin cos θ); piecewise-linear bins are fixed by the data, not trained."""
    n, f, _ = cache["pre"].shape
    delta = g_embedded[:, : f * cache["pre"].shape[2]].reshape(cache["pre"].shape)
    delta = delta * (cache["pre"] > 0)
    grads = {
        "num_embedding.weight": np.einsum("nfc,nfd->fcd", cache["v"], delta),
        "num_embedding.bias": delta.sum(axis=0),
    }
    if "num_embedding.frequencies" in p:
        g_v = np.einsum("nfd,fcd->nfc", delta, p["num_embedding.weight"])
        m = g_v.shape[2] // 2
        theta = (2.0 * math.pi) * cache["x"][:, :, None] * p["num_embedding.frequencies"]
        g_theta = -g_v[..., :m] * np.sin(theta) + g_v[..., m:] * np.cos(theta)
        grads["num_embedding.frequencies"] = (
            g_theta * (2.0 * math.pi) * cache["x"][:, :, None]
        ).sum(axis=0)
    return grads


class NumpyMLP:
    """The dnnreg MLP in NumPy, built from the same named tensors as the torch model.

    Parameters
    ----------
    params : dict of str -> ndarray
        The torch ``state_dict`` as arrays (``blocks.0.linear.weight`` is (k, d_in, d_out)).
    hidden_layer_sizes, activation, normalization, residual, dropout : as in the estimators.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = {"blocks.0.linear.weight": rng.normal(size=(1, 2, 3)),
    ...      "blocks.0.linear.bias": np.zeros((1, 1, 3)),
    ...      "head.weight": rng.normal(size=(1, 3, 1)), "head.bias": np.zeros((1, 1, 1))}
    >>> net = NumpyMLP(p, hidden_layer_sizes=(3,), activation="relu")
    >>> net.forward(np.ones((4, 2))).shape
    (1, 4, 1)
    """

    def __init__(
        self,
        params,
        *,
        hidden_layer_sizes,
        activation,
        normalization="none",
        residual=False,
        dropout=0.0,
    ):
        self.params = member_weights(
            {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        )
        self.activation, self.normalization, self.dropout = activation, normalization, dropout
        self.f, self.df = ACTIVATIONS[activation]
        self.n_blocks = len(hidden_layer_sizes)
        widths = [
            self.params["blocks.0.linear.weight"].shape[1] if self.n_blocks else 0,
            *hidden_layer_sizes,
        ]
        self.residual = [
            bool(residual) and widths[i] == widths[i + 1] for i in range(self.n_blocks)
        ]
        self.n_embeddings = len(
            [k for k in self.params if k.startswith("embeddings.") and k.endswith(".weight")]
        )

    # -------------------------------------------------------------- inputs
    def embed(self, x_num, x_cat=None, cache=None):
        """The first layer's input: the numeric block (through the numerical embedding,
        if any) and the categorical embedding rows. Shape: ``-> (n, d)``."""
        x = embed_numeric(self.params, np.asarray(x_num, dtype=np.float64), cache)
        if self.n_embeddings:
            parts = [x] + [
                self.params[f"embeddings.{j}.weight"][x_cat[:, j]] for j in range(self.n_embeddings)
            ]
            x = np.concatenate(parts, axis=1)
        return x

    # -------------------------------------------------------------- pieces
    def _act(self, l, u):
        if self.activation == "prelu":
            a = self.params[f"blocks.{l}.act.weight"]
            return self.f(u, a), self.df(u, a)
        return self.f(u), self.df(u)

    def _norm(self, l, z):
        """``(u, state)``: the normalised output and what the backward pass needs."""
        if self.normalization == "none":
            return z, None
        p = lambda s: self.params[f"blocks.{l}.norm.{s}"]  # noqa: E731
        k, _, d = z.shape
        if self.normalization == "batch_norm":  # eval mode: running statistics, fixed
            inv_std = 1.0 / np.sqrt(p("running_var").reshape(k, 1, d) + _NORM_EPS)
            x_hat = (z - p("running_mean").reshape(k, 1, d)) * inv_std
            gamma, beta = p("weight").reshape(k, 1, d), p("bias").reshape(k, 1, d)
        else:  # layer norm: each row by its own mean and (biased) variance
            mu, var = z.mean(axis=-1, keepdims=True), z.var(axis=-1, keepdims=True)
            inv_std = 1.0 / np.sqrt(var + _NORM_EPS)
            x_hat = (z - mu) * inv_std
            gamma, beta = p("weight"), p("bias")
        return x_hat * gamma + beta, (x_hat, inv_std, gamma)

    # -------------------------------------------------------------- forward
    def forward(self, x, masks=None, cache=None):
        """Raw outputs of every member. Shape: ``x: (n, d) -> (k, n, d_out)``.

        ``masks[l]`` (0/1, shape (k, n, width)) replaces dropout's random draw in hidden
        layer l (training-mode dropout, scaled by 1/(1-p)); without masks dropout is off,
        as at inference. ``cache`` (a list) collects what backward needs.
        """
        a = np.broadcast_to(x, (self.params["head.weight"].shape[0],) + x.shape)
        for l in range(self.n_blocks):
            z = (
                a @ self.params[f"blocks.{l}.linear.weight"]
                + self.params[f"blocks.{l}.linear.bias"]
            )
            u, norm_state = self._norm(l, z)
            h, fprime = self._act(l, u)
            mask = None
            if masks is not None and masks[l] is not None:
                mask = masks[l] / (1.0 - self.dropout)
                h = h * mask
            if cache is not None:
                cache.append(
                    {"a_in": a, "u": u, "fprime": fprime, "norm": norm_state, "mask": mask, "h": h}
                )
            a = a + self.params[f"blocks.{l}.alpha"] * h if self.residual[l] else h
        if cache is not None:
            cache.append({"a_in": a})
        return a @ self.params["head.weight"] + self.params["head.bias"]

    # -------------------------------------------------------------- backward
    def loss_and_gradients(self, x, y, *, loss="mse", masks=None, **loss_options):
        """The loss and ∂L/∂θ for every parameter, by back-propagation.

        Returns ``(loss, grads)`` with ``grads`` keyed like ``params``.
        """
        cache: list[dict] = []
        out = self.forward(x, masks=masks, cache=cache)
        value, delta = loss_and_output_error(loss, out, y, **loss_options)
        return value, self.backward(cache, delta)

    def encoded_loss_and_gradients(self, x_num, y, x_cat=None, **options):
        """:meth:`loss_and_gradients` from the encoded table rather than the first layer's
        input, so the numerical embedding's parameters get their gradients too."""
        cache: dict = {}
        value, grads = self.loss_and_gradients(self.embed(x_num, x_cat, cache), y, **options)
        if cache:
            grads.update(embedding_gradients(self.params, cache, self.input_grad_))
        return value, grads

    def mse_and_gradients(self, x, y, masks=None):
        """Shorthand for ``loss_and_gradients(x, y, loss="mse")``."""
        return self.loss_and_gradients(x, y, loss="mse", masks=masks)

    def backward(self, cache, delta):
        """Every parameter's gradient from the output error ``delta`` = ∂L/∂o."""
        grads = self._affine_grads("head", cache[-1]["a_in"], delta)
        g = delta @ np.swapaxes(self.params["head.weight"], 1, 2)  # ∂L/∂a^{L-1}
        for l in range(self.n_blocks - 1, -1, -1):
            c = cache[l]
            skip = g if self.residual[l] else None
            if skip is not None:  # a = a_in + α h: ∂L/∂α = Σ g ⊙ h, and h receives α g
                alpha = self.params[f"blocks.{l}.alpha"]
                grads[f"blocks.{l}.alpha"] = (g * c["h"]).sum(axis=(1, 2), keepdims=True)
                g = g * alpha
            if c["mask"] is not None:
                g = g * c["mask"]
            if self.activation == "prelu":  # ∂a/∂slope = min(u, 0)
                grads[f"blocks.{l}.act.weight"] = (g * np.minimum(c["u"], 0.0)).sum(
                    axis=1, keepdims=True
                )
            g = g * c["fprime"]  # ∂L/∂u = ∂L/∂a ⊙ f′(u)
            if self.normalization != "none":
                g = self._norm_backward(l, g, c["norm"], grads)
            grads.update(self._affine_grads(f"blocks.{l}.linear", c["a_in"], g))
            g = g @ np.swapaxes(self.params[f"blocks.{l}.linear.weight"], 1, 2)
            if skip is not None:
                g = g + skip  # the identity path carries the gradient undiminished
        self.input_grad_ = g.sum(axis=0)  # ∂L/∂x: x feeds every member
        return grads

    def _norm_backward(self, l, g, state, grads):
        x_hat, inv_std, gamma = state
        k, _, d = g.shape
        name = f"blocks.{l}.norm"
        if self.normalization == "batch_norm":
            grads[f"{name}.weight"] = (g * x_hat).sum(axis=1).reshape(-1)
            grads[f"{name}.bias"] = g.sum(axis=1).reshape(-1)
            return g * gamma * inv_std
        grads[f"{name}.weight"] = (g * x_hat).sum(axis=1, keepdims=True)
        grads[f"{name}.bias"] = g.sum(axis=1, keepdims=True)
        return self._layer_norm_backward(g * gamma, x_hat, inv_std)

    @staticmethod
    def _layer_norm_backward(g_hat, x_hat, inv_std):
        """∂L/∂z from ∂L/∂x̂ for x̂ = (z - mean z)/√(var z + ε) over a row's d units:
        ∂L/∂z = (g - mean(g) - x̂ · mean(g ⊙ x̂)) / √(var + ε) (Ba et al. 2016)."""
        return inv_std * (
            g_hat
            - g_hat.mean(axis=-1, keepdims=True)
            - x_hat * (g_hat * x_hat).mean(axis=-1, keepdims=True)
        )

    @staticmethod
    def _affine_grads(name, a_in, delta):
        # ∂L/∂W = a^{l-1 ᵀ} δ^l per member; ∂L/∂b = Σ over rows of δ^l.
        return {
            f"{name}.weight": np.swapaxes(a_in, 1, 2) @ delta,
            f"{name}.bias": delta.sum(axis=1, keepdims=True),
        }

    # -------------------------------------------------------------- inference
    def outputs(self, x_num, x_cat=None, *, batch_size=1024):
        """Raw outputs for encoded inputs, in chunks. Shape: ``-> (k, n, d_out)``.

        Chunks of ~1k rows keep each layer's activations in cache: measured 2.3x faster
        than chunks of 65k rows on a 3x256, 4-member net."""
        x = self.embed(x_num, x_cat)
        k, d_out = self.params["head.weight"].shape[0], self.params["head.weight"].shape[2]
        chunks = [self.forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(chunks, axis=1) if chunks else np.zeros((k, 0, d_out))

    def predict(self, x_num, x_cat=None, *, batch_size=1024):
        """Ensemble-mean of the first output (standardized units). Shape: ``-> (n,)``."""
        return self.outputs(x_num, x_cat, batch_size=batch_size).mean(axis=0)[:, 0]


def train_numpy(
    net: NumpyMLP,
    x,
    y,
    batches,
    *,
    optimizer="sgd",
    lr=0.01,
    momentum=0.9,
    betas=(0.9, 0.999),
    eps=1e-8,
    masks=None,
    loss="mse",
):
    """Train ``net`` in place by back-propagation alone (no autograd); returns the losses.

    ``batches`` is a sequence of row-index arrays, one per step, so a test can feed torch
    the very same batches. The update rules are the textbook ones, written as torch does:

    - ``sgd``:      θ ← θ - η g
    - ``momentum``: v ← μ v + g;  θ ← θ - η v          (heavy ball, Polyak 1964)
    - ``adam``:     m ← β₁m + (1-β₁)g;  s ← β₂s + (1-β₂)g²;
                    θ ← θ - η m̂ / (√ŝ + ε), with m̂ = m/(1-β₁ᵗ), ŝ = s/(1-β₂ᵗ)
                    (Kingma & Ba 2015)
    """
    if optimizer not in ("sgd", "momentum", "adam"):
        raise ValueError(
            f"optimizer must be one of ['sgd', 'momentum', 'adam'], got optimizer={optimizer!r}"
        )
    state: dict[str, dict] = {}
    losses = []
    for t, rows in enumerate(batches, start=1):
        step_masks = None if masks is None else masks[t - 1]
        value, grads = net.loss_and_gradients(x[rows], y[rows], loss=loss, masks=step_masks)
        losses.append(value)
        for name, g in grads.items():
            p, st = net.params[name], state.setdefault(name, {})
            if optimizer == "sgd":
                p -= lr * g
            elif optimizer == "momentum":
                st["v"] = momentum * st.get("v", 0.0) + g
                p -= lr * st["v"]
            else:
                st["m"] = betas[0] * st.get("m", 0.0) + (1 - betas[0]) * g
                st["s"] = betas[1] * st.get("s", 0.0) + (1 - betas[1]) * g * g
                m_hat = st["m"] / (1 - betas[0] ** t)
                s_hat = st["s"] / (1 - betas[1] ** t)
                p -= lr * m_hat / (np.sqrt(s_hat) + eps)
    return losses
