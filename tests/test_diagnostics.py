"""Diagnostics record exact numbers on purpose-built networks, and their verdicts name
vanishing gradients where they occur and not where they don't."""

import math

import numpy as np
import pytest
import torch

from dnnreg import DNNRegressor
from dnnreg.network.mlp import MLP
from dnnreg.training.diagnostics import SATURATION, Diagnostics
from dnnreg.training.verdicts import verdicts


def _net(activation, widths=(6, 6)):
    net = MLP(
        d_numeric=3,
        cardinalities=[],
        hidden_layer_sizes=widths,
        activation=activation,
        n_ensemble=2,
    )
    net.reset_parameters(torch.Generator().manual_seed(0))
    return net


def _probe(n=50):
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(1))
    return x, torch.zeros(n, 0, dtype=torch.long)


def test_a_layer_with_all_negative_pre_activations_is_entirely_dead():
    net = _net("relu")
    with torch.no_grad():
        net.blocks[0].linear.weight.zero_()
        net.blocks[0].linear.bias.fill_(-1.0)  # z = -1 for every row and unit
    stats = Diagnostics(_probe(), "relu").activation_stats(net)
    assert stats[0]["dead"] == 1.0 and stats[0]["act_mean"] == 0.0 and stats[0]["act_std"] == 0.0
    assert stats[1]["dead"] < 1.0


def test_sigmoid_units_with_large_weights_are_saturated():
    net = _net("sigmoid")
    with torch.no_grad():
        net.blocks[0].linear.weight.mul_(100.0)
    x, cat = _probe()
    stats = Diagnostics((x, cat), "sigmoid").activation_stats(net)
    # the same fraction computed by hand: |x W + b| beyond 2 atanh √0.8 = 2.887
    u = torch.baddbmm(net.blocks[0].linear.bias, x.expand(2, -1, -1), net.blocks[0].linear.weight)
    expected = float((u.abs() > 2 * math.atanh(math.sqrt(0.8))).float().mean())
    assert SATURATION["sigmoid"] == pytest.approx(2.887, abs=1e-3)
    assert stats[0]["saturated"] == pytest.approx(expected) and expected > 0.9
    # at that point σ′ = σ(1 - σ) is 0.05, the definition of saturation used
    s = 1 / (1 + math.exp(-SATURATION["sigmoid"]))
    assert s * (1 - s) == pytest.approx(0.05)
    assert 1 - math.tanh(SATURATION["tanh"]) ** 2 == pytest.approx(0.05)


def test_gradient_norms_equal_a_manual_torch_computation():
    net = _net("tanh")
    x, cat = _probe()
    diag = Diagnostics((x, cat), "tanh")
    diag.on_epoch_begin(net)
    loss = net(x, cat).pow(2).mean()
    loss.backward()
    diag.on_after_backward(net, True)
    record = {}
    diag.on_epoch_end(record, net)
    layers = record["diagnostics"]["layers"]
    manual = [
        math.sqrt(sum(float(v) ** 2 for v in m.weight.grad.reshape(-1)))
        for m in [b.linear for b in net.blocks] + [net.head]
    ]
    assert [la["grad_norm"] for la in layers] == pytest.approx(manual, rel=1e-6)
    assert layers[0]["update_ratio"] == 0.0  # no optimiser step happened
    assert record["diagnostics"]["non_finite"] is False


def _california(n=3000):
    from dnnreg.tables.datasets import load_california_housing

    X, y = load_california_housing(return_X_y=True)
    return X.iloc[:n], y.iloc[:n]


def test_deep_sigmoid_net_vanishes_residual_relu_he_does_not():
    X, y = _california()
    common = dict(hidden_layer_sizes=(32,) * 20, max_iter=3, random_state=0, diagnostics=True)
    sigmoid = DNNRegressor(activation="sigmoid", **common).fit(X, y)
    kinds = [v["kind"] for v in sigmoid.diagnostics_]
    assert "vanishing_gradients" in kinds
    healthy = DNNRegressor(activation="relu", init="he_normal", residual=True, **common).fit(X, y)
    assert "vanishing_gradients" not in [v["kind"] for v in healthy.diagnostics_]
    layers = healthy.history_[-1]["diagnostics"]["layers"]
    assert len(layers) == 21 and all(np.isfinite(la["grad_norm"]) for la in layers)


def test_verdicts_from_plain_history():
    layer = {
        "grad_norm": 1.0,
        "weight_norm": 1.0,
        "update_ratio": 0.01,
        "act_mean": 0.1,
        "act_std": 0.2,
        "dead": 0.0,
        "saturated": 0.0,
    }
    history = [
        {"diagnostics": {"layers": [dict(layer, dead=0.75), layer, layer], "non_finite": False}}
    ]
    found = verdicts(history, activation="relu", loss="mse")
    assert [v["kind"] for v in found] == ["dead_units"]
    assert found[0]["message"] == "75 % dead units in layer 1"
    assert "leaky_relu" in found[0]["suggestion"]
    exploding = [
        {
            "diagnostics": {
                "layers": [dict(layer, grad_norm=500.0), layer, layer],
                "non_finite": False,
            }
        }
    ]
    assert verdicts(exploding, activation="relu", loss="mse")[0]["kind"] == "exploding_gradients"
    assert verdicts([], activation="sigmoid", loss="sigmoid_mse")[0]["kind"] == "sigmoid_mse"


def test_cli_train_diagnose_and_the_diagnose_command(tmp_path, capsys):
    from dnnreg.cli import main

    X, y = _california(600)
    X.assign(MedHouseVal=y).to_csv(tmp_path / "t.csv", index=False)
    argv = [
        "--quiet",
        "train",
        str(tmp_path / "t.csv"),
        "--target",
        "MedHouseVal",
        "--out",
        str(tmp_path / "run"),
        "--diagnose",
        "--set",
        "activation=sigmoid",
        "--set",
        "hidden_layer_sizes=" + ",".join(["16"] * 20),
        "--set",
        "max_iter=2",
    ]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["diagnose", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "vanishing gradients: layer 1's gradient norm" in out and "try activation='relu'" in out
    assert main(["diagnose", str(tmp_path)]) == 1
