"""The torch building blocks: activations, initialisation, norms, residual blocks, the MLP."""

import math

import numpy as np
import pytest
import torch

from dnnreg.inference.reference import ACTIVATIONS as NP_ACTIVATIONS
from dnnreg.network.mlp import (
    ACTIVATIONS,
    INITS,
    MLP,
    EnsembleLayerNorm,
    EnsembleLinear,
    init_variance,
    resolve_init,
)

# Hand-picked points, including the kink at 0 and both saturated tails.
POINTS = [-25.0, -3.0, -0.5, 0.0, 0.5, 3.0, 25.0]


def _phi(z):
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _Phi(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def _sig(z):
    return 1 / (1 + math.exp(-z))


def _sp(z):
    return z if z > 20 else math.log1p(math.exp(z))  # torch's threshold at 20


# name -> (f(z), f'(z)) written from the textbook definitions, independent of the code.
# Conventions at z = 0 where f is not differentiable: relu 0, leaky_relu 0.01, prelu a.
EXPECTED = {
    "identity": (lambda z: z, lambda z: 1.0),
    "relu": (lambda z: max(z, 0.0), lambda z: 1.0 if z > 0 else 0.0),
    "leaky_relu": (lambda z: z if z > 0 else 0.01 * z, lambda z: 1.0 if z > 0 else 0.01),
    "prelu": (lambda z: z if z > 0 else 0.25 * z, lambda z: 1.0 if z > 0 else 0.25),
    "elu": (lambda z: z if z > 0 else math.exp(z) - 1, lambda z: 1.0 if z > 0 else math.exp(z)),
    "gelu": (lambda z: z * _Phi(z), lambda z: _Phi(z) + z * _phi(z)),
    "silu": (lambda z: z * _sig(z), lambda z: _sig(z) * (1 + z * (1 - _sig(z)))),
    "mish": (
        lambda z: z * math.tanh(math.log1p(math.exp(z))),
        lambda z: (
            math.tanh(math.log1p(math.exp(z)))
            + z * _sig(z) / math.cosh(math.log1p(math.exp(z))) ** 2
        ),
    ),
    "tanh": (math.tanh, lambda z: 1 / math.cosh(z) ** 2),
    "sigmoid": (_sig, lambda z: _sig(z) * (1 - _sig(z))),
    "softplus": (_sp, lambda z: 1.0 if z > 20 else _sig(z)),
}


def test_every_activation_has_an_expected_formula():
    assert set(EXPECTED) == set(ACTIVATIONS) == set(NP_ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_activation_value_and_derivative_equal_the_formula(name):
    f, df = EXPECTED[name]
    z = torch.tensor(POINTS, dtype=torch.float64, requires_grad=True)
    act = ACTIVATIONS[name](1, len(POINTS)).double()
    out = act(z.reshape(1, 1, -1)).reshape(-1)
    out.sum().backward()  # ∂(Σ f(z_i))/∂z_i = f'(z_i)
    np.testing.assert_allclose(out.detach().numpy(), [f(v) for v in POINTS], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(z.grad.numpy(), [df(v) for v in POINTS], rtol=1e-9, atol=1e-15)
    # The from-scratch engine agrees, kinks included.
    np_f, np_df = NP_ACTIVATIONS[name]
    zz = np.array(POINTS)
    extra = (np.full_like(zz, 0.25),) if name == "prelu" else ()
    np.testing.assert_allclose(np_f(zz, *extra), [f(v) for v in POINTS], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np_df(zz, *extra), [df(v) for v in POINTS], rtol=1e-9, atol=1e-15)


def test_prelu_slope_is_learned_per_member_and_unit():
    act = ACTIVATIONS["prelu"](2, 3)
    z = -torch.ones(2, 4, 3)
    act(z).sum().backward()
    # ∂/∂a Σ a·z over the 4 rows where z = -1 is -4, for each member and unit.
    assert act.weight.shape == (2, 1, 3)
    assert torch.equal(act.weight.grad, torch.full((2, 1, 3), -4.0))


def _sampling_bound(values, var, kurtosis_minus_one):
    """5 standard errors of the sample mean of w² (Var(w²) = (E w⁴/var² - 1) var²)."""
    return 5 * var * math.sqrt(kurtosis_minus_one / values.size)


@pytest.mark.parametrize("scheme", [s for s in INITS if s != "auto"])
def test_init_variance_of_a_512x512_layer_matches_the_formula(scheme):
    layer = EnsembleLinear(1, 512, 512)
    layer.reset_parameters(scheme, "relu", torch.Generator().manual_seed(0))
    w = layer.weight.detach().double().numpy()
    # Independent formulas: He 2/fan_in, Xavier 2/(fan_in + fan_out), LeCun 1/fan_in,
    # torch's nn.Linear U(±1/√fan_in) → 1/(3 fan_in), orthogonal 1/n.
    expected = {
        "he": 2 / 512,
        "xavier": 2 / 1024,
        "lecun": 1 / 512,
        "orthogonal": 1 / 512,
        "torch": 1 / (3 * 512),
    }[scheme.split("_")[0]]
    assert init_variance(scheme, 512, 512, "relu") == pytest.approx(expected)
    mean_square = float(np.mean(w**2))
    if scheme == "orthogonal":
        np.testing.assert_allclose(w[0].T @ w[0], np.eye(512), atol=1e-5)
        assert mean_square == pytest.approx(expected, rel=1e-5)
        return
    # E w⁴ = 3 var² (normal) or 9/5 var² (uniform)
    k = 2.0 if scheme.endswith("normal") else 0.8
    assert abs(mean_square - expected) < _sampling_bound(w, expected, k)
    assert abs(float(w.mean())) < 5 * math.sqrt(expected / w.size)
    if scheme != "torch_default":
        assert not layer.bias.detach().any()


def test_he_gain_accounts_for_the_negative_slope_and_auto_matches_the_activation():
    # He et al. (2015): Var = 2 / ((1 + a²) fan_in)
    assert init_variance("he_normal", 100, 7, "leaky_relu") == pytest.approx(2 / (1.0001 * 100))
    assert init_variance("he_normal", 100, 7, "prelu") == pytest.approx(2 / (1.0625 * 100))
    assert resolve_init("auto", "relu") == "he_normal"
    assert resolve_init("auto", "tanh") == resolve_init("auto", "sigmoid") == "xavier_uniform"
    assert resolve_init("kaiming_uniform", "tanh") == "he_uniform"


def test_ensemble_linear_equals_k_separate_affine_maps():
    torch.manual_seed(0)
    layer = EnsembleLinear(3, 4, 5)
    layer.reset_parameters()
    x = torch.randn(3, 7, 4)
    expected = torch.stack([x[i] @ layer.weight[i] + layer.bias[i] for i in range(3)])
    assert torch.allclose(layer(x), expected, atol=1e-6)


def test_layer_norm_equals_torch_layer_norm_per_member():
    norm = EnsembleLayerNorm(2, 6)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(2, 5, 6)
    for i in range(2):
        ref = torch.nn.LayerNorm(6)
        with torch.no_grad():
            ref.weight.copy_(norm.weight[i, 0])
            ref.bias.copy_(norm.bias[i, 0])
        assert torch.allclose(norm(x)[i], ref(x[i]), atol=1e-6)


def test_residual_blocks_add_their_input_where_widths_agree():
    net = MLP(
        d_numeric=3,
        cardinalities=[],
        hidden_layer_sizes=(4, 4, 2),
        activation="relu",
        residual=True,
    )
    assert [b.residual for b in net.blocks] == [False, True, False]
    x = torch.randn(1, 6, 4, generator=torch.Generator().manual_seed(0))
    block = net.blocks[1]
    assert torch.equal(block(x), x)  # the gate α starts at 0: the identity at first
    with torch.no_grad():
        block.alpha.fill_(0.5)
    assert torch.allclose(block(x), x + 0.5 * torch.relu(block.linear(x)))


def test_members_are_independent_networks():
    net = MLP(
        d_numeric=3,
        cardinalities=[4],
        hidden_layer_sizes=(8, 8),
        activation="tanh",
        normalization="batch_norm",
        n_ensemble=3,
    )
    net.reset_parameters(torch.Generator().manual_seed(0))
    net.eval()
    x_num, x_cat = torch.randn(6, 3), torch.randint(0, 4, (6, 1))
    out = net(x_num, x_cat)
    assert out.shape == (3, 6, 1)
    # Changing member 0's output layer changes member 0's predictions only.
    with torch.no_grad():
        net.head.weight[0] += 1.0
    out2 = net(x_num, x_cat)
    assert not torch.allclose(out2[0], out[0]) and torch.equal(out2[1:], out[1:])
