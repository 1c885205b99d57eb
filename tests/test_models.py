import torch

from dnnreg.models import MLP, EnsembleLinear


def test_ensemble_linear_equals_k_separate_affine_maps():
    torch.manual_seed(0)
    layer = EnsembleLinear(3, 4, 5)
    layer.reset_parameters()
    x = torch.randn(3, 7, 4)
    expected = torch.stack([x[i] @ layer.weight[i] + layer.bias[i] for i in range(3)])
    assert torch.allclose(layer(x), expected, atol=1e-6)


def test_default_init_bound_is_one_over_sqrt_fan_in():
    layer = EnsembleLinear(2, 400, 300)
    layer.reset_parameters(torch.Generator().manual_seed(0))
    bound = 1 / 400 ** 0.5
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.99 * bound
    # U(-b, b) has variance b^2 / 3
    assert abs(layer.weight.var().item() - bound**2 / 3) < 0.02 * bound**2


def test_members_are_independent_networks():
    net = MLP(d_numeric=3, cardinalities=[4], hidden_layer_sizes=(8, 8), activation="tanh",
              dropout=0.0, batch_norm=True, n_ensemble=3)
    net.reset_parameters(torch.Generator().manual_seed(0))
    net.eval()
    x_num, x_cat = torch.randn(6, 3), torch.randint(0, 4, (6, 1))
    out = net(x_num, x_cat)
    assert out.shape == (3, 6, 1)
    # Changing member 0's output layer changes member 0's predictions only.
    with torch.no_grad():
        net.layers[-1].weight[0] += 1.0
    out2 = net(x_num, x_cat)
    assert not torch.allclose(out2[0], out[0]) and torch.equal(out2[1:], out[1:])
