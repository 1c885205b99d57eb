"""Each loss against a value worked by hand, and its gradient against finite differences."""

import math

import numpy as np
import pytest
import torch

from dnnreg.network.losses import make_loss, output_bias


def _t(values):
    return torch.tensor(values, dtype=torch.float64)


# (loss, options, n_classes, out (k=1, n, d), y, value worked by hand)
CASES = {
    # r = ŷ - y = [1, -2]: (1 + 4) / 2
    "mse": ("mse", {}, None, [[[1.0], [2.0]]], [0.0, 4.0], 2.5),
    # (|1| + |-2|) / 2
    "mae": ("mae", {}, None, [[[1.0], [2.0]]], [0.0, 4.0], 1.5),
    # δ = 1: ½·1² = 0.5 for |r| = 1; 1·(2 - ½) = 1.5 for |r| = 2; mean 1.0
    "huber": ("huber", {"huber_delta": 1.0}, None, [[[1.0], [2.0]]], [0.0, 4.0], 1.0),
    # r = y - q: row 1 r = -1: ρ.1 = max(-.1, .9) = .9, ρ.9 = max(-.9, .1) = .1;
    # row 2 r = 2: ρ.1 = .2, ρ.9 = 1.8; mean of the four = 0.75
    "quantile": (
        "quantile",
        {"quantiles": (0.1, 0.9)},
        None,
        [[[1.0, 1.0], [2.0, 2.0]]],
        [0.0, 4.0],
        0.75,
    ),
    # s = log(e - 1) gives softplus(s) = 1, so σ² = 1 + 1e-6; μ = 1, y = 0:
    # ½(log σ² + 1/σ²)
    "gaussian_nll": (
        "gaussian_nll",
        {},
        None,
        [[[1.0, math.log(math.e - 1)]]],
        [0.0],
        0.5 * (math.log(1 + 1e-6) + 1 / (1 + 1e-6)),
    ),
    # z = log 2, y = 3: e^z - y z = 2 - 3 log 2
    "poisson": ("poisson", {}, None, [[[math.log(2.0)]]], [3.0], 2 - 3 * math.log(2)),
    # z = 0, y = 1: -log σ(0) = log 2;  z = log 3 (p = .75), y = 0: -log(.25) = log 4
    "bce": (
        "cross_entropy",
        {},
        2,
        [[[0.0], [math.log(3.0)]]],
        [1, 0],
        (math.log(2) + math.log(4)) / 2,
    ),
    # softmax([0, log 2, log 3]) = [1/6, 2/6, 3/6]; y = 2: -log(1/2)
    "softmax-ce": (
        "cross_entropy",
        {},
        3,
        [[[0.0, math.log(2.0), math.log(3.0)]]],
        [2],
        math.log(2),
    ),
    # σ(0) = .5, y = 1: (.5 - 1)²
    "sigmoid-mse-2": ("sigmoid_mse", {}, 2, [[[0.0]]], [1], 0.25),
    # three sigmoids at .5 against one-hot [0, 1, 0]: .25 + .25 + .25
    "sigmoid-mse-3": ("sigmoid_mse", {}, 3, [[[0.0, 0.0, 0.0]]], [1], 0.75),
}


def _target(y, n_classes):
    return torch.tensor(y, dtype=torch.long) if n_classes else _t(y)


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_equals_the_value_worked_by_hand(case):
    name, options, n_classes, out, y, expected = CASES[case]
    loss = make_loss(name, n_classes=n_classes, **options)
    assert loss(_t(out), _target(y, n_classes)).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_gradient_matches_finite_differences(case):
    name, options, n_classes, out, y, _ = CASES[case]
    loss = make_loss(name, n_classes=n_classes, **options)
    rng = np.random.default_rng(0)
    shape = np.asarray(out).shape
    o = torch.tensor(rng.normal(size=(2, 5, shape[-1])), requires_grad=True)
    target = (
        torch.tensor(rng.integers(0, n_classes, size=5))
        if n_classes
        else _t(np.abs(rng.normal(size=5)))
    )
    assert torch.autograd.gradcheck(lambda z: loss(z, target), (o,), eps=1e-6, atol=1e-8)


def test_quantile_predictions_are_sorted_so_they_never_cross():
    loss = make_loss("quantile", quantiles=(0.1, 0.5, 0.9))
    assert loss.predict(_t([[[3.0, 1.0, 2.0]]])).tolist() == [[[1.0, 2.0, 3.0]]]


def test_gaussian_nll_predicts_mean_and_positive_variance():
    pred = make_loss("gaussian_nll").predict(_t([[[2.0, -50.0], [0.0, 0.0]]]))
    assert pred[0, 0, 0] == 2.0 and pred[0, 0, 1] >= 1e-6
    assert pred[0, 1, 1].item() == pytest.approx(math.log(2) + 1e-6)


def test_output_bias_starts_at_the_marginal():
    y = torch.tensor([0, 0, 0, 1])
    # Laplace-smoothed frequencies (3+1)/6 and (1+1)/6: log-odds log(2/6 / 4/6) = -log 2
    assert output_bias(make_loss("cross_entropy", n_classes=2), y).item() == pytest.approx(
        -math.log(2)
    )
    assert output_bias(make_loss("poisson"), _t([1.0, 3.0])).item() == pytest.approx(math.log(2))
    assert output_bias(make_loss("mse"), _t([1.0, 3.0])) is None
