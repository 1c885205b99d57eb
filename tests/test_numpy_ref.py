"""numpy_ref against torch autograd, finite differences and a network worked by hand."""

import numpy as np
import pytest
import torch

from dnnreg.models import MLP
from dnnreg.numpy_ref import ACTIVATIONS, NumpyMLP
from dnnreg.train import ensemble_mse


def _torch_and_numpy(activation, batch_norm, k=2, seed=0):
    torch.manual_seed(seed)
    net = MLP(d_numeric=4, cardinalities=[], hidden_layer_sizes=(5, 3), activation=activation,
              dropout=0.0, batch_norm=batch_norm, n_ensemble=k).double()
    net.reset_parameters(torch.Generator().manual_seed(seed))
    with torch.no_grad():  # non-trivial running statistics and affine parameters
        for name, p in net.named_buffers():
            if "running_mean" in name:
                p.normal_()
            if "running_var" in name:
                p.uniform_(0.5, 2.0)
        for name, p in net.named_parameters():
            if ".norm." in name:
                p.normal_()
    net.eval()
    params = {k_: v.detach().numpy() for k_, v in net.state_dict().items()}
    ref = NumpyMLP(params, hidden_layer_sizes=(5, 3), activation=activation,
                   batch_norm=batch_norm)
    return net, ref


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batchnorm-eval"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gradients_equal_torch_autograd_in_float64(activation, batch_norm):
    net, ref = _torch_and_numpy(activation, batch_norm)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 4)), rng.normal(size=7)
    loss_np, grads = ref.mse_and_gradients(x, y)
    xt = torch.from_numpy(x)
    loss = ensemble_mse(net(xt, torch.zeros(7, 0, dtype=torch.long)), torch.from_numpy(y))
    loss.backward()
    assert abs(loss_np - loss.item()) <= 1e-12 * abs(loss.item())
    for name, p in net.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-14,
                                   err_msg=name)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "gelu", "silu", "relu"])
def test_gradients_match_central_finite_differences_with_dropout_masks(activation):
    _, ref = _torch_and_numpy(activation, batch_norm=True)
    ref.dropout = 0.25
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 4)), rng.normal(size=6)
    masks = [(rng.random((2, 6, 5)) > 0.25).astype(float),
             (rng.random((2, 6, 3)) > 0.25).astype(float)]
    _, grads = ref.mse_and_gradients(x, y, masks=masks)
    h = 1e-6
    for name in grads:
        flat = ref.params[name].reshape(-1)
        for j in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            old = flat[j]
            flat[j] = old + h
            up = ref.mse_and_gradients(x, y, masks=masks)[0]
            flat[j] = old - h
            down = ref.mse_and_gradients(x, y, masks=masks)[0]
            flat[j] = old
            numeric = (up - down) / (2 * h)
            assert abs(grads[name].reshape(-1)[j] - numeric) < 1e-6 * max(1.0, abs(numeric)), name


def test_hand_worked_3_2_1_network():
    # x = [1, 2, 3];  W1 = [[1, 0], [0, 1], [1, -1]];  b1 = [0, 0.5]
    # z1 = x W1 + b1 = [1 + 0 + 3, 0 + 2 - 3] + [0, 0.5] = [4, -0.5];  a1 = relu(z1) = [4, 0]
    # W2 = [[0.5], [2]];  b2 = [1];  ŷ = 4(0.5) + 0(2) + 1 = 3;  y = 1;  L = (3 - 1)² = 4
    # δ2 = 2(ŷ - y) = 4;  ∂L/∂W2 = a1ᵀ δ2 = [[16], [0]];  ∂L/∂b2 = [4]
    # δ1 = (δ2 W2ᵀ) ⊙ relu′(z1) = [2, 8] ⊙ [1, 0] = [2, 0]
    # ∂L/∂W1 = xᵀ δ1 = [[2, 0], [4, 0], [6, 0]];  ∂L/∂b1 = [2, 0]
    params = {"layers.0.weight": np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]]),
              "layers.0.bias": np.array([[[0.0, 0.5]]]),
              "layers.2.weight": np.array([[[0.5], [2.0]]]),
              "layers.2.bias": np.array([[[1.0]]])}
    net = NumpyMLP(params, hidden_layer_sizes=(2,), activation="relu")
    loss, g = net.mse_and_gradients(np.array([[1.0, 2.0, 3.0]]), np.array([1.0]))
    assert loss == 4.0
    assert g["layers.2.weight"].ravel().tolist() == [16.0, 0.0]
    assert g["layers.2.bias"].ravel().tolist() == [4.0]
    assert g["layers.0.weight"][0].tolist() == [[2.0, 0.0], [4.0, 0.0], [6.0, 0.0]]
    assert g["layers.0.bias"].ravel().tolist() == [2.0, 0.0]


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives_match_finite_differences(name):
    f, df = ACTIVATIONS[name]
    z = np.array([-3.0, -0.7, -1e-3, 0.4, 2.5])
    numeric = (f(z + 1e-6) - f(z - 1e-6)) / 2e-6
    np.testing.assert_allclose(df(z), numeric, rtol=1e-6, atol=1e-9)
    assert df(np.array([0.0]))[0] == {"relu": 0.0, "leaky_relu": 0.01}.get(name, df(np.array([0.0]))[0])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_numpy_training_matches_torch_after_20_steps(optimizer):
    from dnnreg.numpy_ref import train_numpy

    net, ref = _torch_and_numpy("tanh", batch_norm=True, k=2, seed=3)
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(64, 4)), rng.normal(size=64)
    batches = [rng.choice(64, size=16, replace=False) for _ in range(20)]
    losses = train_numpy(ref, x, y, batches, optimizer=optimizer, lr=0.05)

    params = [p for _, p in net.named_parameters()]
    opt = {"sgd": lambda: torch.optim.SGD(params, lr=0.05),
           "momentum": lambda: torch.optim.SGD(params, lr=0.05, momentum=0.9),
           "adam": lambda: torch.optim.Adam(params, lr=0.05)}[optimizer]()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    no_cat = torch.zeros(16, 0, dtype=torch.long)
    for rows in batches:  # batch norm stays in eval mode: a fixed affine map, as in numpy_ref
        loss = ensemble_mse(net(xt[rows], no_cat), yt[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name, p in net.named_parameters():
        np.testing.assert_allclose(ref.params[name], p.detach().numpy(), rtol=0, atol=1e-9,
                                   err_msg=name)
    assert losses[-1] < losses[0]
