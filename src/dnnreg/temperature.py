"""Temperature scaling: one number that makes a classifier's probabilities honest.

A network's logits ``z`` can be right about the order of the classes and wrong about how
sure to be: trained against smoothed labels (``label_smoothing``) it is never confident
enough, trained long on hard labels often too confident. Dividing every logit by one
temperature ``T`` keeps each member's most probable class for every row (an ensemble's average of
probabilities can still move a few rows across) and
moves every probability towards certainty (``T < 1``) or doubt (``T > 1``). ``T`` is the
value that maximises the likelihood of labels the network did not train on (Guo et al.
2017, "On calibration of modern neural networks"): here the out-of-fold rows of a bagged
fit, or the validation rows.

Because ``z / T = (W / T) h + b / T``, the temperature folds into the output layer's
weights: a model file, the NumPy runtime and ONNX export carry it without knowing it
exists.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_expit, log_softmax, logsumexp

# T is searched in [1/20, 20]: wide enough for any network seen so far (label smoothing
# 0.1 gives T ≈ 0.5-0.8), narrow enough that a degenerate validation set cannot send the
# logits to zero or infinity.
LOG_T_BOUNDS = (-np.log(20.0), np.log(20.0))


def log_probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Log of the ensemble's class probabilities at ``temperature``: the members'
    probabilities averaged, as ``predict_proba`` does. ``logits``: ``(k, n, d)`` with
    ``d = 1`` for one sigmoid output (two classes) or ``d = C`` for a softmax.
    Shape: ``(n, C)``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if z.shape[-1] == 1:  # log σ(-z), log σ(z): the two classes of a sigmoid
        per_member = np.concatenate([log_expit(-z), log_expit(z)], axis=-1)
    else:
        per_member = log_softmax(z, axis=-1)
    return logsumexp(per_member, axis=0) - np.log(len(z))


def log_loss_at(logits, labels, temperature, weights=None) -> float:
    """The (weighted) mean negative log-likelihood of ``labels`` (class indices) at
    ``temperature``."""
    logp = log_probabilities(logits, temperature)
    nll = -logp[np.arange(len(labels)), np.asarray(labels)]
    return float(np.average(nll, weights=weights))


def fit_temperature(logits, labels, weights=None, *, at_most=None) -> float:
    """The temperature that minimises the log-loss of ``labels`` given ``logits``
    (``(k, n, d)``, see :func:`log_probabilities`); 1.0 when it would not lower it (for
    example when every row is already predicted with certainty). ``at_most`` bounds it
    from above.

    One-dimensional and smooth in ``log T``, so a bounded Brent search finds it in a few
    dozen evaluations.
    """
    low, high = LOG_T_BOUNDS
    if at_most is not None:
        high = min(high, float(np.log(at_most)))
    from scipy.optimize import minimize_scalar  # imported here: only a fit needs it

    found = minimize_scalar(
        lambda log_t: log_loss_at(logits, labels, np.exp(log_t), weights),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    t = float(np.exp(found.x))
    return t if found.fun < log_loss_at(logits, labels, 1.0, weights) else 1.0
