"""Dropout masks drawn for a whole step at once (dnnreg.network.dropout): each unit is
dropped with probability p, independently across units, layers and members, survivors are
scaled by 1/(1-p), nothing is dropped in evaluation, and a seed reproduces the masks."""

import numpy as np
import pytest
import torch

from dnnreg import DNNRegressor
from dnnreg.network.dropout import DropoutMasks
from dnnreg.network.mlp import MLP


@pytest.mark.parametrize("p", [0.1, 0.15, 0.5])
def test_each_unit_is_dropped_with_probability_p(p):
    masks = DropoutMasks(p, seed=1)
    assert abs(masks.drop_rate - p) <= 2.0**-17
    n = 2_000_000
    (m,) = masks.draw([(n,)], torch.float32)
    rate = float((m == 0).double().mean())
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(rate - masks.drop_rate) < 5 * sigma
    values = torch.unique(m).tolist()
    assert values[0] == 0.0 and values[1] == pytest.approx(1 / (1 - p)) and len(values) == 2
    assert float(m.double().mean()) == pytest.approx(1.0, abs=6 * sigma / (1 - p))


def test_members_layers_and_steps_draw_independent_masks():
    masks = DropoutMasks(0.3, seed=7)
    a, b = masks.draw([(2, 50_000), (50_000,)], torch.float32)
    (c,) = masks.draw([(50_000,)], torch.float32)
    drops = [a[0] == 0, a[1] == 0, b == 0, c == 0]  # two members, another layer, next step
    bound = 5 / np.sqrt(50_000)
    for i in range(4):
        for j in range(i + 1, 4):
            corr = np.corrcoef(drops[i].numpy(), drops[j].numpy())[0, 1]
            assert abs(corr) < bound, (i, j, corr)


def test_a_seed_reproduces_the_masks():
    draw = lambda seed: DropoutMasks(0.2, seed).draw([(3, 4, 5)], torch.float32)[0]  # noqa: E731
    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


def test_bad_probability_is_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        DropoutMasks(1.0, seed=0)


def _net(dropout):
    torch.manual_seed(0)
    return MLP(
        d_numeric=3,
        cardinalities=[],
        hidden_layer_sizes=(64, 64),
        activation="relu",
        dropout=dropout,
        n_ensemble=2,
    )


def test_evaluation_drops_nothing_and_training_drops_units_of_every_block():
    x, c = torch.randn(400, 3), torch.zeros(400, 0, dtype=torch.long)
    net, plain = _net(0.25), _net(0.0)
    plain.load_state_dict(net.state_dict())
    net.seed_dropout(0)
    net.eval()
    assert torch.equal(net(x, c), plain(x, c))
    net.train()
    seen = []
    for block in net.blocks:
        block.register_forward_hook(lambda m, inp, out: seen.append(out.detach()))
    net(x, c)
    plain_acts = []
    for block in plain.blocks:
        block.register_forward_hook(lambda m, inp, out: plain_acts.append(out.detach()))
    plain(x, c)
    # the first block's pre-dropout activations are the plain net's: dropped = positive there
    # but zero here; kept = scaled by 1/(1-p)
    alive = plain_acts[0] > 0
    dropped = float((seen[0][alive] == 0).double().mean())
    assert abs(dropped - 0.25) < 5 * np.sqrt(0.25 * 0.75 / int(alive.sum()))
    kept = seen[0][alive] != 0
    torch.testing.assert_close(seen[0][alive][kept], plain_acts[0][alive][kept] / 0.75)


def test_fit_with_dropout_is_reproducible_and_seed_dependent(mixed_frame):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    fit = lambda seed: DNNRegressor(  # noqa: E731
        hidden_layer_sizes=(32,), n_ensemble=2, dropout=0.3, max_iter=3, random_state=seed
    ).fit(X, y)
    assert np.array_equal(fit(0).predict(X), fit(0).predict(X))
    assert not np.array_equal(fit(0).predict(X), fit(1).predict(X))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("p", [0.05, 0.15, 0.5, 0.9])
def test_masks_are_the_compare_cast_scale_of_the_same_bits(p, dtype):
    # the mask written as integer bit patterns equals torch's own (bits >= threshold)
    # cast to the dtype and scaled by 1/(1-p), bit for bit
    (m,) = DropoutMasks(p, seed=5).draw([(10_001,)], dtype)
    words = np.random.SFC64(5).random_raw((10_001 + 3) // 4)
    bits = torch.from_numpy(words.view(np.int16)[:10_001].copy())
    masks = DropoutMasks(p, seed=0)
    expected = (bits >= masks.threshold).to(dtype).mul_(masks.scale)
    assert m.dtype == dtype
    assert torch.equal(m.view(-1), expected)
    assert torch.equal(torch.signbit(m), torch.zeros_like(m, dtype=torch.bool))  # +0.0 only


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_masked_relu_is_relu_times_the_mask_forward_and_backward(dtype):
    from dnnreg.network.dropout import MaskedReLU

    gen = torch.Generator().manual_seed(0)
    z = torch.randn(3, 40, 50, generator=gen).to(dtype)
    z[0, 0, :5] = 0.0  # the kink: both give derivative 0 there
    (m,) = DropoutMasks(0.3, seed=2).draw([(3, 40, 50)], dtype)
    a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
    fused, plain = MaskedReLU.apply(a, m), torch.relu(b) * m
    assert torch.equal(fused, plain)  # -0.0 == 0.0
    g = torch.randn(3, 40, 50, generator=gen).to(dtype)
    fused.backward(g)
    plain.backward(g)
    assert torch.equal(a.grad, b.grad)
    if dtype == torch.float64:  # and against finite differences
        part = z[1:, :4, :6].clone().requires_grad_()  # away from the kink
        assert torch.autograd.gradcheck(lambda t: MaskedReLU.apply(t, m[1:, :4, :6]), (part,))
