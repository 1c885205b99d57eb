"""Forward and backward propagation from scratch in NumPy (float64): the gradient oracle
that checks the torch engine, and the torch-free runtime behind :func:`load_numpy`.

Notation, for hidden layers l = 1..L-1 and the output layer L, each ensemble member alone:

    z^l = a^{l-1} W^l + b^l          (a^0 = x; rows are samples, W^l is d_{l-1} x d_l)
    a^l = f(z^l)                      (hidden layers; the output layer is linear: ŷ = z^L)

The loss here is the mean squared error over members and samples, for N samples and k
members  L = (1 / kN) Σ (ŷ - y)². Back-propagation is the chain rule, layer by layer:

    δ^L = ∂L/∂z^L = 2 (ŷ - y) / (kN)                  (output error; f is the identity)
    δ^l = (δ^{l+1} W^{l+1 ᵀ}) ⊙ f′(z^l)               (each row: δˡ = (Wˡ⁺¹ᵀ δˡ⁺¹) ⊙ f′(zˡ))
    ∂L/∂W^l = a^{l-1 ᵀ} δ^l,   ∂L/∂b^l = Σ_rows δ^l   (each row: ∂L/∂Wˡ = δˡ aˡ⁻¹ᵀ)

Batch norm in eval mode is a fixed affine map, u = (z - μ)/√(σ² + ε) · γ + β, so it
multiplies the error by γ/√(σ² + ε); dropout with a given mask m multiplies it by m/(1-p).
The pre-activations z are cached on the way forward because f′ needs them on the way back.
"""

from __future__ import annotations

import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])
_BN_EPS = 1e-5  # torch.nn.BatchNorm1d's default
_LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU's default


def _sigmoid(z):
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))),
                    np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


def _gelu_grad(z):
    cdf = 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))
    return cdf + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


# name -> (f, f′). At the kink of relu and leaky_relu f′(0) is taken as 0 (resp. the slope),
# the convention torch's autograd uses.
ACTIVATIONS = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "leaky_relu": (lambda z: np.where(z > 0, z, _LEAKY_SLOPE * z),
                   lambda z: np.where(z > 0, 1.0, _LEAKY_SLOPE)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "gelu": (lambda z: 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0))), _gelu_grad),
    "silu": (lambda z: z * _sigmoid(z),
             lambda z: _sigmoid(z) * (1.0 + z * (1.0 - _sigmoid(z)))),
}


class NumpyMLP:
    """The dnnreg MLP in NumPy, built from the same named tensors as the torch model.

    Parameters
    ----------
    params : dict of str -> ndarray
        The torch ``state_dict`` as arrays (``layers.0.weight`` is (k, d_in, d_out)).
    hidden_layer_sizes, activation, batch_norm, dropout : as in ``DNNRegressor``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = {"layers.0.weight": rng.normal(size=(1, 2, 3)), "layers.0.bias": np.zeros((1, 1, 3)),
    ...      "layers.2.weight": rng.normal(size=(1, 3, 1)), "layers.2.bias": np.zeros((1, 1, 1))}
    >>> net = NumpyMLP(p, hidden_layer_sizes=(3,), activation="relu")
    >>> net.forward(np.ones((4, 2))).shape
    (1, 4, 1)
    """

    def __init__(self, params, *, hidden_layer_sizes, activation, batch_norm=False,
                 dropout=0.0):
        self.params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        self.activation = activation
        self.f, self.df = ACTIVATIONS[activation]
        # Index of each module in torch's nn.Sequential, to read the same parameter names.
        self.hidden, i = [], 0
        for _ in hidden_layer_sizes:
            bn = i + 1 if batch_norm else None
            self.hidden.append((i, bn))
            i += 1 + (1 if batch_norm else 0) + 1 + (1 if dropout > 0 else 0)
        self.output_index = i
        self.dropout = dropout
        self.n_embeddings = len([k for k in self.params if k.startswith("embeddings.")])

    # -------------------------------------------------------------- inputs
    def embed(self, x_num, x_cat=None):
        """Concatenate numeric inputs and embedding rows. Shape: ``-> (n, d)``."""
        x = np.asarray(x_num, dtype=np.float64)
        if self.n_embeddings:
            parts = [x] + [self.params[f"embeddings.{j}.weight"][x_cat[:, j]]
                           for j in range(self.n_embeddings)]
            x = np.concatenate(parts, axis=1)
        return x

    def _bn(self, j, z):
        """Eval-mode batch norm over the flattened (member, unit) axis.

        Returns ``(u, scale, x_hat)``: the output, ∂u/∂z = γ/√(σ² + ε), and the normalised
        input that ∂L/∂γ needs."""
        k, _, d = z.shape
        p = lambda s: self.params[f"layers.{j}.norm.{s}"].reshape(k, 1, d)  # noqa: E731
        inv_std = 1.0 / np.sqrt(p("running_var") + _BN_EPS)
        x_hat = (z - p("running_mean")) * inv_std
        return x_hat * p("weight") + p("bias"), p("weight") * inv_std, x_hat

    # -------------------------------------------------------------- forward
    def forward(self, x, masks=None, cache=None):
        """Outputs of every member. Shape: ``x: (n, d) -> (k, n, 1)``.

        ``masks[l]`` (0/1, shape (k, n, width)) replaces dropout's random draw in hidden
        layer l (training-mode dropout, scaled by 1/(1-p)); without masks dropout is off,
        as at inference. ``cache`` (a list) collects what backward needs.
        """
        a = np.broadcast_to(x, (self.params["layers.0.weight"].shape[0],) + x.shape)
        for l, (i, bn) in enumerate(self.hidden):
            z = a @ self.params[f"layers.{i}.weight"] + self.params[f"layers.{i}.bias"]
            u, bn_scale, x_hat = self._bn(bn, z) if bn is not None else (z, None, None)
            h = self.f(u)
            mask = None
            if masks is not None and masks[l] is not None:
                mask = masks[l] / (1.0 - self.dropout)
                h = h * mask
            if cache is not None:
                cache.append({"a_in": a, "u": u, "bn_scale": bn_scale, "x_hat": x_hat,
                              "mask": mask})
            a = h
        o = self.output_index
        out = a @ self.params[f"layers.{o}.weight"] + self.params[f"layers.{o}.bias"]
        if cache is not None:
            cache.append({"a_in": a})
        return out

    # -------------------------------------------------------------- backward
    def mse_and_gradients(self, x, y, masks=None):
        """The ensemble MSE and ∂L/∂θ for every parameter, by back-propagation.

        Returns ``(loss, grads)`` with ``grads`` keyed like ``params``.
        """
        cache: list[dict] = []
        out = self.forward(x, masks=masks, cache=cache)
        k, n = out.shape[0], out.shape[1]
        resid = out[..., 0] - np.asarray(y, dtype=np.float64)  # (k, n)
        loss = float(np.mean(resid**2))
        delta = (2.0 * resid / (k * n))[..., None]  # δ^L: (k, n, 1)
        grads = {}
        o = self.output_index
        grads.update(self._affine_grads(o, cache[-1]["a_in"], delta))
        W_next = self.params[f"layers.{o}.weight"]
        for l in range(len(self.hidden) - 1, -1, -1):
            i, bn = self.hidden[l]
            c = cache[l]
            delta = delta @ np.swapaxes(W_next, 1, 2)  # back through the next layer's W
            if c["mask"] is not None:
                delta = delta * c["mask"]
            delta = delta * self.df(c["u"])  # ⊙ f′(u)
            if bn is not None:
                grads[f"layers.{bn}.norm.weight"] = (delta * c["x_hat"]).sum(axis=1).reshape(-1)
                grads[f"layers.{bn}.norm.bias"] = delta.sum(axis=1).reshape(-1)
                delta = delta * c["bn_scale"]
            grads.update(self._affine_grads(i, c["a_in"], delta))
            W_next = self.params[f"layers.{i}.weight"]
        return loss, grads

    @staticmethod
    def _affine_grads(i, a_in, delta):
        # ∂L/∂W = a^{l-1 ᵀ} δ^l per member; ∂L/∂b = Σ over rows of δ^l.
        return {f"layers.{i}.weight": np.swapaxes(a_in, 1, 2) @ delta,
                f"layers.{i}.bias": delta.sum(axis=1, keepdims=True)}

    # -------------------------------------------------------------- inference
    def predict(self, x_num, x_cat=None, *, batch_size=65536):
        """Ensemble-mean output (standardized units). Shape: ``-> (n,)``."""
        x = self.embed(x_num, x_cat)
        return np.concatenate([self.forward(x[i:i + batch_size]).mean(axis=0)[:, 0]
                               for i in range(0, len(x), batch_size)] or [np.zeros(0)])


def train_numpy(net: NumpyMLP, x, y, batches, *, optimizer="sgd", lr=0.01, momentum=0.9,
                betas=(0.9, 0.999), eps=1e-8, masks=None):
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
        raise ValueError(f"optimizer must be one of ['sgd', 'momentum', 'adam'], got "
                         f"optimizer={optimizer!r}")
    state: dict[str, dict] = {}
    losses = []
    for t, rows in enumerate(batches, start=1):
        step_masks = None if masks is None else masks[t - 1]
        loss, grads = net.mse_and_gradients(x[rows], y[rows], masks=step_masks)
        losses.append(loss)
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
