"""numpy_ref against torch autograd, finite differences and a network worked by hand."""

import numpy as np
import pytest
import torch

from dnnreg.inference.reference import ACTIVATIONS, NumpyMLP, loss_and_output_error
from dnnreg.inference.runtime import InferenceNet
from dnnreg.network.losses import make_loss
from dnnreg.network.mlp import MLP

LAYOUTS = {
    "plain": {},
    "residual": {"residual": True},
    "batchnorm-eval": {"normalization": "batch_norm"},
    "layernorm-residual": {"normalization": "layer_norm", "residual": True},
}
# name -> (loss, options, number of classes or None)
LOSS_CASES = {
    "mse": ("mse", {}, None),
    "mae": ("mae", {}, None),
    "huber": ("huber", {"huber_delta": 0.5}, None),
    "quantile": ("quantile", {"quantiles": (0.1, 0.5, 0.9)}, None),
    "gaussian_nll": ("gaussian_nll", {}, None),
    "poisson": ("poisson", {}, None),
    "bce": ("cross_entropy", {}, 2),
    "softmax-ce": ("cross_entropy", {}, 3),
    "sigmoid-mse-2": ("sigmoid_mse", {}, 2),
    "sigmoid-mse-3": ("sigmoid_mse", {}, 3),
}
HIDDEN = (5, 5)


def _torch_and_numpy(activation, layout, *, d_out=1, k=2, seed=0):
    torch.manual_seed(seed)
    net = MLP(
        d_numeric=4,
        cardinalities=[],
        hidden_layer_sizes=HIDDEN,
        activation=activation,
        n_ensemble=k,
        d_out=d_out,
        **LAYOUTS[layout],
    ).double()
    net.reset_parameters(torch.Generator().manual_seed(seed), init="xavier_normal")
    with torch.no_grad():  # non-trivial running statistics, norms, slopes and biases
        for name, p in net.named_buffers():
            if "running_mean" in name:
                p.normal_()
            if "running_var" in name:
                p.uniform_(0.5, 2.0)
        for name, p in net.named_parameters():
            if ".norm." in name or ".act." in name or name.endswith(("bias", "alpha")):
                p.normal_(0.0, 0.5)
    net.eval()
    params = {k_: v.detach().numpy().copy() for k_, v in net.state_dict().items()}
    ref = NumpyMLP(params, hidden_layer_sizes=HIDDEN, activation=activation, **LAYOUTS[layout])
    return net, ref


def _data(loss, n_classes, n=7, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    if n_classes:
        return x, rng.integers(0, n_classes, size=n)
    y = rng.normal(size=n)
    return x, (np.abs(y) if loss == "poisson" else y)


def _d_out(loss, options, n_classes):
    return make_loss(loss, n_classes=n_classes, **options).n_outputs()


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gradients_equal_torch_autograd_in_float64(activation, layout, case):
    loss_name, options, n_classes = LOSS_CASES[case]
    net, ref = _torch_and_numpy(activation, layout, d_out=_d_out(loss_name, options, n_classes))
    x, y = _data(loss_name, n_classes)
    loss_np, grads = ref.loss_and_gradients(x, y, loss=loss_name, **options)
    loss_fn = make_loss(loss_name, n_classes=n_classes, **options)
    out = net(torch.from_numpy(x), torch.zeros(len(x), 0, dtype=torch.long))
    loss = loss_fn(out, torch.from_numpy(y).expand(out.shape[0], -1))
    loss.backward()
    assert abs(loss_np - loss.item()) <= 1e-12 * max(1.0, abs(loss.item()))
    assert set(grads) == {name for name, _ in net.named_parameters()}
    for name, p in net.named_parameters():
        np.testing.assert_allclose(
            grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name
        )


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_output_errors_match_central_finite_differences(case):
    loss_name, options, n_classes = LOSS_CASES[case]
    rng = np.random.default_rng(3)
    d = _d_out(loss_name, options, n_classes)
    out = rng.normal(size=(2, 5, d))
    _, y = _data(loss_name, n_classes, n=5)
    _, grad = loss_and_output_error(loss_name, out, y, **options)
    h = 1e-6
    for j in range(out.size):
        up, down = out.copy().reshape(-1), out.copy().reshape(-1)
        up[j] += h
        down[j] -= h
        numeric = (
            loss_and_output_error(loss_name, up.reshape(out.shape), y, **options)[0]
            - loss_and_output_error(loss_name, down.reshape(out.shape), y, **options)[0]
        ) / (2 * h)
        assert abs(grad.reshape(-1)[j] - numeric) < 1e-7, (case, j)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "gelu", "prelu", "mish", "elu"])
def test_gradients_match_central_finite_differences_with_dropout_masks(activation, layout):
    _, ref = _torch_and_numpy(activation, layout)
    ref.dropout = 0.25
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 4)), rng.normal(size=6)
    masks = [(rng.random((2, 6, w)) > 0.25).astype(float) for w in HIDDEN]
    _, grads = ref.loss_and_gradients(x, y, loss="huber", masks=masks)
    h = 1e-6
    for name in grads:
        flat = ref.params[name].reshape(-1)
        for j in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            old = flat[j]
            flat[j] = old + h
            up = ref.loss_and_gradients(x, y, loss="huber", masks=masks)[0]
            flat[j] = old - h
            down = ref.loss_and_gradients(x, y, loss="huber", masks=masks)[0]
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
    params = {
        "blocks.0.linear.weight": np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]]),
        "blocks.0.linear.bias": np.array([[[0.0, 0.5]]]),
        "head.weight": np.array([[[0.5], [2.0]]]),
        "head.bias": np.array([[[1.0]]]),
    }
    net = NumpyMLP(params, hidden_layer_sizes=(2,), activation="relu")
    loss, g = net.mse_and_gradients(np.array([[1.0, 2.0, 3.0]]), np.array([1.0]))
    assert loss == 4.0
    assert g["head.weight"].ravel().tolist() == [16.0, 0.0]
    assert g["head.bias"].ravel().tolist() == [4.0]
    assert g["blocks.0.linear.weight"][0].tolist() == [[2.0, 0.0], [4.0, 0.0], [6.0, 0.0]]
    assert g["blocks.0.linear.bias"].ravel().tolist() == [2.0, 0.0]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_numpy_training_matches_torch_after_20_steps(optimizer):
    from dnnreg.inference.reference import train_numpy

    net, ref = _torch_and_numpy("tanh", "batchnorm-eval", k=2, seed=3)
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(64, 4)), rng.normal(size=64)
    batches = [rng.choice(64, size=16, replace=False) for _ in range(20)]
    losses = train_numpy(ref, x, y, batches, optimizer=optimizer, lr=0.05)

    params = [p for _, p in net.named_parameters()]
    opt = {
        "sgd": lambda: torch.optim.SGD(params, lr=0.05),
        "momentum": lambda: torch.optim.SGD(params, lr=0.05, momentum=0.9),
        "adam": lambda: torch.optim.Adam(params, lr=0.05),
    }[optimizer]()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    no_cat = torch.zeros(16, 0, dtype=torch.long)
    mse = make_loss("mse")
    for rows in batches:  # batch norm stays in eval mode: a fixed affine map, as in numpy_ref
        loss = mse(net(xt[rows], no_cat), yt[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name, p in net.named_parameters():
        np.testing.assert_allclose(
            ref.params[name], p.detach().numpy(), rtol=0, atol=1e-9, err_msg=name
        )
    assert losses[-1] < losses[0]


def test_numpy_sgd_matches_dnnregs_training_loop_after_20_steps():
    """The engine itself (dnnreg.training.loop.fit_model: its batching, loss and optimiser), not
    just torch.optim: same initial weights, same batches, 20 SGD steps, float64."""
    from dnnreg.inference.reference import train_numpy
    from dnnreg.training.loop import fit_model, plain_config

    net, ref = _torch_and_numpy("tanh", "layernorm-residual", k=1, seed=5)
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(64, 4)), rng.normal(size=64)
    # fit_model draws one permutation per epoch from its generator; replay them.
    replay = torch.Generator().manual_seed(11)
    batches = [
        perm[i : i + 16].numpy()
        for perm in (torch.randperm(64, generator=replay) for _ in range(5))
        for i in range(0, 64, 16)
    ]
    train_numpy(ref, x, y, batches, optimizer="sgd", lr=0.05, loss="huber")
    config = plain_config(
        batch_size=16,
        max_iter=5,
        solver="sgd",
        lr=0.05,
        momentum=0.0,
        lr_step_size=1,
        lr_patience=1,
        n_iter_no_change=5,
    )
    data = (torch.from_numpy(x), torch.zeros(64, 0, dtype=torch.long), torch.from_numpy(y))
    fit_model(
        net,
        make_loss("huber"),
        data,
        config=config,
        generator=torch.Generator().manual_seed(11),
        log_every=0,
    )
    for name, p in net.named_parameters():
        np.testing.assert_allclose(
            ref.params[name], p.detach().numpy(), rtol=0, atol=1e-9, err_msg=name
        )


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("k", [1, 3])
def test_inference_net_equals_the_reference_and_torch(activation, layout, k):
    net, ref = _torch_and_numpy(activation, layout, d_out=2, k=k)
    x = np.random.default_rng(2).normal(size=(1100, 4))  # more than one chunk
    expected = ref.forward(x)
    params = {k: v for k, v in ref.params.items()}
    exact = InferenceNet(
        params,
        hidden_layer_sizes=HIDDEN,
        activation=activation,
        dtype=np.float64,
        **LAYOUTS[layout],
    )
    # gelu: scipy's erf against math.erf, equal to ~1e-8
    np.testing.assert_allclose(
        exact.outputs(x), expected, rtol=1e-12, atol=1e-7 if activation == "gelu" else 1e-12
    )
    fast = InferenceNet(params, hidden_layer_sizes=HIDDEN, activation=activation, **LAYOUTS[layout])
    got = fast.outputs(x)
    assert got.dtype == np.float32
    with torch.no_grad():
        torch_out = net.float()(
            torch.from_numpy(x).float(), torch.zeros(len(x), 0, dtype=torch.long)
        )
    np.testing.assert_allclose(got, torch_out.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast.outputs(x[:1]), expected[:, :1], rtol=1e-4, atol=1e-5)
