"""Loss functions and the output each one implies, for every ensemble member at once.

A loss here maps the network's raw outputs ``out: (k, n, d_out)`` and targets ``y: (k, n)``
to the mean over members and rows, so members learn independently; with row weights
``weight`` (broadcastable to ``(k, n)``, scaled to mean 1 over the training rows by the
estimator) the mean of ``weight x`` each row's loss, so a weight of 2 counts as the row
twice in expectation and the learning rate means the same with or without weights. Its
``predict`` turns raw outputs into each member's prediction (a mean, quantiles, a rate,
class probabilities); the estimator averages those over members.

Regression targets arrive standardized (``poisson``: divided by their mean, never
centred, so a rate stays positive). Classification targets are class indices.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from dnnreg.options import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, VARIANCE_FLOOR  # noqa: F401


class Loss:
    """Base class: ``loss(out, y[, weight])`` is a scalar, the (weighted) mean of ``rows``;
    ``predict(out)`` a per-member prediction."""

    name = "loss"

    def n_outputs(self) -> int:
        return 1

    def __call__(self, out: torch.Tensor, y: torch.Tensor, weight=None) -> torch.Tensor:
        r = self.rows(out, y)
        return r.mean() if weight is None else (r * weight).mean()

    def rows(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each member's loss on each row. Shape: ``(k, n)``."""
        raise NotImplementedError

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        """Shape: ``(k, n, d_out) -> (k, n)`` (or ``(k, n, m)`` for several values)."""
        return out[..., 0]


class MSE(Loss):
    """Mean squared error, ``mean((ŷ - y)²)``; its minimiser is the conditional mean."""

    name = "mse"

    def rows(self, out, y):
        return (out[..., 0] - y).pow(2)


class MAE(Loss):
    """Mean absolute error, ``mean(|ŷ - y|)``; its minimiser is the conditional median.
    The gradient at ŷ = y is taken as 0 (torch's sign(0) = 0)."""

    name = "mae"

    def rows(self, out, y):
        return (out[..., 0] - y).abs()


class Huber(Loss):
    """Huber (1964): ``½r²`` for ``|r| ≤ δ``, ``δ(|r| - ½δ)`` beyond; quadratic near the
    target, linear in the tails, so outliers pull with a bounded force δ. ``δ`` is in
    standardized target units."""

    name = "huber"

    def __init__(self, delta: float = 1.0):
        self.delta = delta

    def rows(self, out, y):
        target = y.expand(out.shape[:-1])
        return F.huber_loss(out[..., 0], target, delta=self.delta, reduction="none")


class Quantile(Loss):
    """Pinball loss (Koenker & Bassett 1978) for quantile levels τ, one output each:
    ``ρ_τ(r) = max(τ r, (τ - 1) r)`` with ``r = y - q``; averaged over levels and rows.
    ``predict`` sorts each row's quantiles so they never cross (Chernozhukov et al. 2010)."""

    name = "quantile"

    def __init__(self, quantiles=(0.5,)):
        self.quantiles = tuple(float(q) for q in quantiles)

    def n_outputs(self):
        return len(self.quantiles)

    def rows(self, out, y):
        tau = out.new_tensor(self.quantiles)  # (q,)
        r = y.unsqueeze(-1) - out  # (k, n, q)
        return torch.maximum(tau * r, (tau - 1.0) * r).mean(-1)

    def predict(self, out):
        return out.sort(dim=-1).values  # (k, n, q)


class GaussianNLL(Loss):
    """Negative log-likelihood of y under N(μ, σ²), without the constant ½log 2π:
    ``½(log σ² + (y - μ)²/σ²)``. Two outputs: μ, and s with σ² = softplus(s) + 1e-6
    (Nix & Weigend 1994; Lakshminarayanan et al. 2017 for the ensemble). ``predict`` gives
    ``(k, n, 2)``: mean and variance."""

    name = "gaussian_nll"

    def n_outputs(self):
        return 2

    @staticmethod
    def variance(out):
        return F.softplus(out[..., 1]) + VARIANCE_FLOOR

    def rows(self, out, y):
        var = self.variance(out)
        return 0.5 * (var.log() + (y - out[..., 0]).pow(2) / var)

    def predict(self, out):
        return torch.stack([out[..., 0], self.variance(out)], dim=-1)


class Poisson(Loss):
    """Poisson deviance with a log link, up to terms free of the prediction:
    ``exp(z) - y z`` where the rate is ``λ = exp(z)``; for counts and other non-negative
    targets whose variance grows with the mean."""

    name = "poisson"

    def rows(self, out, y):
        z = out[..., 0]
        return z.exp() - y * z

    def predict(self, out):
        return out[..., 0].exp()


class CrossEntropy(Loss):
    """Log-likelihood of the labels: softmax over C outputs for C > 2 classes,
    ``-mean(z_y - log Σ_c exp z_c)``; one sigmoid output for two classes, binary
    cross-entropy ``-mean(y log p + (1 - y) log(1 - p))`` with ``p = σ(z)``. Both are
    computed from the logits (log-sum-exp), never from rounded probabilities."""

    name = "cross_entropy"

    def __init__(self, n_classes: int, smoothing: float = 0.0):
        self.n_classes = n_classes
        self.smoothing = smoothing

    def n_outputs(self):
        return 1 if self.n_classes == 2 else self.n_classes

    def smoothed(self, smoothing: float) -> CrossEntropy:
        """The same loss against smoothed labels (Szegedy et al. 2016): the target puts
        ``1 - ε + ε/C`` on the true class and ``ε/C`` on each other, so the network is
        never pushed towards infinite logits. For training only: validation and early
        stopping keep the true log-likelihood."""
        return CrossEntropy(self.n_classes, smoothing)

    def rows(self, out, y):
        y = y.expand(out.shape[:-1])  # (n,) labels are shared by every member
        eps = self.smoothing
        if self.n_classes == 2:  # the sigmoid's target: 1 - ε/2 or ε/2
            target = y.to(out.dtype) * (1.0 - eps) + 0.5 * eps
            return F.binary_cross_entropy_with_logits(out[..., 0], target, reduction="none")
        flat = F.cross_entropy(
            out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="none", label_smoothing=eps
        )
        return flat.reshape(y.shape)

    def predict(self, out):
        """Class probabilities. Shape: ``(k, n, C)``."""
        if self.n_classes == 2:
            p = torch.sigmoid(out[..., 0])
            return torch.stack([1.0 - p, p], dim=-1)
        return out.softmax(dim=-1)


class SigmoidMSE(CrossEntropy):
    """The textbook's poor pairing, kept for comparison: a sigmoid per output and the
    squared error against the one-hot label, ``mean_n Σ_c (σ(z_c) - [y = c])²``. Its
    gradient carries a factor σ′(z) = σ(1 - σ) that vanishes when a unit saturates on the
    wrong side, so learning stalls where cross-entropy pushes hardest."""

    name = "sigmoid_mse"

    def rows(self, out, y):
        p, y = torch.sigmoid(out), y.expand(out.shape[:-1])
        if self.n_classes == 2:
            return (p[..., 0] - y.to(out.dtype)).pow(2)
        target = F.one_hot(y, self.n_classes).to(out.dtype)
        return (p - target).pow(2).sum(-1)

    def predict(self, out):
        if self.n_classes == 2:
            return super().predict(out)
        p = torch.sigmoid(out)
        return p / p.sum(dim=-1, keepdim=True)


def make_loss(
    name: str, *, huber_delta: float = 1.0, quantiles=(0.5,), n_classes: int | None = None
) -> Loss:
    """The :class:`Loss` called ``name``."""
    table = {
        "mse": MSE,
        "mae": MAE,
        "huber": lambda: Huber(huber_delta),
        "quantile": lambda: Quantile(quantiles),
        "gaussian_nll": GaussianNLL,
        "poisson": Poisson,
        "cross_entropy": lambda: CrossEntropy(n_classes),
        "sigmoid_mse": lambda: SigmoidMSE(n_classes),
    }
    return table[name]()


def output_bias(loss: Loss, y: torch.Tensor, weight=None) -> torch.Tensor | None:
    """A starting bias for the output layer that already predicts the marginal: log of the
    mean rate for poisson, log class frequencies for softmax, log-odds for a sigmoid (the
    weighted mean and weighted class counts under row weights). Starting at the marginal
    removes a first phase where training only learns it. Returns ``None`` where the
    standardized target already has mean 0."""
    if isinstance(loss, Poisson):
        w = torch.ones_like(y.float()) if weight is None else weight.float()
        return torch.log(((y.float() * w).sum() / w.sum()).clamp_min(1e-8)).reshape(1)
    if isinstance(loss, CrossEntropy):
        w = None if weight is None else weight.double()
        counts = torch.bincount(y, weights=w, minlength=loss.n_classes).double()
        freq = ((counts + 1.0) / (counts.sum() + loss.n_classes)).float()  # Laplace-smoothed
        if loss.n_classes == 2:
            return torch.log(freq[1] / freq[0]).reshape(1)
        if isinstance(loss, SigmoidMSE):  # independent sigmoids: each class's log-odds
            return torch.log(freq / (1.0 - freq))
        return torch.log(freq)
    return None
