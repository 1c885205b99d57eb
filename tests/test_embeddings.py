"""Numerical embeddings and shared-weight (TabM) ensembles: encodings against hand-worked
values, gradients against torch autograd and finite differences, every engine agreeing."""

import math

import numpy as np
import pytest
import torch

from dnnreg import DNNClassifier, DNNRegressor, load, load_numpy, save
from dnnreg.inference.reference import NumpyMLP, embed_numeric, member_weights
from dnnreg.inference.runtime import InferenceNet
from dnnreg.network.embeddings import NumericEmbedding, ple_tables, quantile_bins, tree_bins
from dnnreg.network.mlp import MLP


def test_piecewise_linear_codes_by_hand():
    # Bins [0, 1) and [1, 3]: the first open to the left, the last to the right.
    emb = NumericEmbedding("piecewise_linear", columns=[0], d_numeric=1, d_embedding=2, n_bins=2)
    for name, table in ple_tables([np.array([0.0, 1.0, 3.0])], 2).items():
        getattr(emb, name).copy_(torch.from_numpy(table))
    x = torch.tensor([[-1.0], [0.5], [2.0], [5.0]])
    expected = [[-1.0, 0.0], [0.5, 0.0], [1.0, 0.5], [1.0, 2.0]]
    assert emb.codes(x)[:, 0, :].tolist() == expected


def test_quantile_bins_pad_columns_with_few_values():
    x = np.column_stack([np.arange(100.0), np.repeat([0.0, 1.0], [30, 70]), np.full(100, 7.0)])
    edges = quantile_bins(x, 4)
    assert edges[0].tolist() == [0.0, 24.75, 49.5, 74.25, 99.0]  # np.quantile's interpolation
    assert edges[1].tolist() == [0.0, 1.0] and edges[2].tolist() == [7.0, 8.0]
    t = ple_tables(edges, 4)
    emb = NumericEmbedding(
        "piecewise_linear", columns=[0, 1, 2], d_numeric=3, d_embedding=2, n_bins=4
    )
    emb.set_bins(x)
    assert torch.equal(emb.left, torch.from_numpy(t["left"]).float())
    codes = emb.codes(torch.tensor([[50.0, 1.0, 7.0]]))[0]
    assert codes[1].tolist() == [1.0, 0.0, 0.0, 0.0]  # one open bin; padding gives 0
    assert codes[2].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_periodic_codes_are_cos_and_sin_of_the_frequencies():
    emb = NumericEmbedding("periodic", columns=[0], d_numeric=1, d_embedding=2, n_frequencies=2)
    with torch.no_grad():
        emb.frequencies.copy_(torch.tensor([[0.25, 1.0]]))
    codes = emb.codes(torch.tensor([[1.0]]))[0, 0]
    expected = [
        math.cos(math.pi / 2),
        math.cos(2 * math.pi),
        math.sin(math.pi / 2),
        math.sin(2 * math.pi),
    ]
    np.testing.assert_allclose(codes.detach().numpy(), expected, atol=1e-6)


def test_only_scaled_columns_are_embedded(mixed_frame):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    model = DNNRegressor(
        hidden_layer_sizes=(8,),
        n_ensemble=1,
        max_iter=1,
        random_state=0,
        numeric_embedding="periodic",
        numeric_embedding_dim=3,
    ).fit(X, y)
    names = model.preprocessor_.feature_names_out()  # a, a__missing, b, color=...
    emb = model.model_.num_embedding
    assert [names[j] for j in emb.columns] == ["a", "b"]
    assert [names[j] for j in emb.passthrough] == [n for n in names if n not in ("a", "b")]
    assert model.model_.blocks[0].linear.weight.shape[1] == 2 * 3 + len(names) - 2


def _embedded_pair(kind, ensemble_kind="mlp_k", seed=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(9, 4))
    emb = NumericEmbedding(
        kind, columns=[0, 2, 3], d_numeric=4, d_embedding=3, n_frequencies=4, sigma=0.5, n_bins=5
    )
    emb.set_bins(x)
    net = MLP(
        d_numeric=4,
        cardinalities=[],
        hidden_layer_sizes=(6, 6),
        activation="tanh",
        n_ensemble=3,
        ensemble_kind=ensemble_kind,
        numeric_embedding=emb,
    ).double()
    net.reset_parameters(torch.Generator().manual_seed(seed), init="xavier_normal")
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith((".r", ".s")):
                p.normal_(1.0, 0.3)  # away from TabM's ±1 start, so the adapters matter
    params = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    return net, params, x, rng.normal(size=9)


@pytest.mark.parametrize("kind", ["periodic", "piecewise_linear"])
def test_embedding_gradients_equal_torch_autograd(kind):
    net, params, x, y = _embedded_pair(kind)
    ref = NumpyMLP(params, hidden_layer_sizes=(6, 6), activation="tanh")
    value, grads = ref.encoded_loss_and_gradients(x, y)
    xt = torch.from_numpy(x)
    out = net(xt, torch.zeros(9, 0, dtype=torch.long))
    loss = ((out[..., 0] - torch.from_numpy(y)) ** 2).mean()
    loss.backward()
    assert value == pytest.approx(float(loss.detach()), rel=1e-12)
    for name, p in net.named_parameters():
        if name.startswith("num_embedding."):
            np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert set(n for n, _ in net.named_parameters() if n.startswith("num_embedding.")) == {
        n for n in grads if n.startswith("num_embedding.")
    }


def test_frequency_gradient_matches_finite_differences():
    _, params, x, y = _embedded_pair("periodic")
    ref = NumpyMLP(params, hidden_layer_sizes=(6, 6), activation="tanh")
    _, grads = ref.encoded_loss_and_gradients(x, y)
    c = ref.params["num_embedding.frequencies"]
    h = 1e-6
    for idx in [(0, 0), (1, 3), (2, 2)]:
        old = c[idx]
        c[idx] = old + h
        up = ref.encoded_loss_and_gradients(x, y)[0]
        c[idx] = old - h
        down = ref.encoded_loss_and_gradients(x, y)[0]
        c[idx] = old
        assert grads["num_embedding.frequencies"][idx] == pytest.approx(
            (up - down) / (2 * h), rel=1e-6, abs=1e-10
        )


@pytest.mark.parametrize("ensemble_kind", ["tabm", "tabm_mini"])
def test_shared_weights_equal_their_member_weights_and_chain_rule(ensemble_kind):
    net, params, x, y = _embedded_pair("periodic", ensemble_kind)
    ref = NumpyMLP(params, hidden_layer_sizes=(6, 6), activation="tanh")
    xt = torch.from_numpy(x)
    out = net(xt, torch.zeros(9, 0, dtype=torch.long))
    np.testing.assert_allclose(ref.outputs(x), out.detach().numpy(), rtol=1e-12)
    loss = ((out[..., 0] - torch.from_numpy(y)) ** 2).mean()
    loss.backward()
    _, grads = ref.encoded_loss_and_gradients(x, y)
    for l, block in enumerate(net.blocks):
        lin = block.linear
        g_member = grads[f"blocks.{l}.linear.weight"]  # (k, d_in, d_out): ∂L/∂W_i
        r = np.ones((3, 1, g_member.shape[1])) if lin.r is None else lin.r.detach().numpy()
        s = np.ones((3, 1, g_member.shape[2])) if lin.s is None else lin.s.detach().numpy()
        # W_i = diag(r_i) W diag(s_i), so ∂L/∂W = Σ_i diag(r_i) ∂L/∂W_i diag(s_i).
        expected = (np.swapaxes(r, 1, 2) * g_member * s).sum(axis=0)
        np.testing.assert_allclose(lin.weight.grad.numpy(), expected, rtol=1e-9, atol=1e-12)
        if lin.r is not None:  # ∂L/∂r_ij = Σ_o ∂L/∂W_i[j, o] W[j, o] s_i[o]
            w = lin.weight.detach().numpy()
            expected_r = (g_member * w * s).sum(axis=2)[:, None, :]
            np.testing.assert_allclose(lin.r.grad.numpy(), expected_r, rtol=1e-9, atol=1e-12)


def test_tabm_starts_with_random_sign_adapters_and_shares_its_weights():
    net = MLP(
        d_numeric=3,
        cardinalities=[],
        hidden_layer_sizes=(64, 64),
        activation="relu",
        n_ensemble=8,
        ensemble_kind="tabm",
    )
    net.reset_parameters(torch.Generator().manual_seed(0))
    r0 = net.blocks[0].linear.r
    assert set(r0.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(net.blocks[1].linear.r, torch.ones_like(net.blocks[1].linear.r))
    assert net.blocks[0].linear.weight.shape == (3, 64)
    mlp_k = MLP(
        d_numeric=3, cardinalities=[], hidden_layer_sizes=(64, 64), activation="relu", n_ensemble=8
    )
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(net) < count(mlp_k) / 4  # members share the hidden layers' weights


def test_member_weights_leave_independent_members_alone():
    p = {"blocks.0.linear.weight": np.ones((2, 3, 4)), "blocks.0.linear.bias": np.zeros((2, 1, 4))}
    assert member_weights(p)["blocks.0.linear.weight"] is p["blocks.0.linear.weight"]


ENGINE_CASES = [
    ("periodic", "mlp_k", "quantile"),
    ("piecewise_linear", "mlp_k", "quantile"),
    ("periodic", "tabm", "quantile"),
    ("piecewise_linear", "tabm_mini", "quantile"),
    ("none", "tabm", "quantile"),
    ("piecewise_linear", "mlp_k", "tree"),
]


@pytest.mark.parametrize("embedding,ensemble_kind,binning", ENGINE_CASES)
def test_saved_model_predicts_alike_in_every_engine(
    embedding, ensemble_kind, binning, mixed_frame, tmp_path
):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    model = DNNRegressor(
        hidden_layer_sizes=(16, 16),
        n_ensemble=3,
        max_iter=3,
        random_state=0,
        numeric_embedding=embedding,
        ensemble_kind=ensemble_kind,
        embedding_bins=8,
        embedding_binning=binning,
    ).fit(X, y)
    save(model, tmp_path / "m")
    expected = model.predict(X)
    np.testing.assert_array_equal(load(tmp_path / "m").predict(X), expected)
    np.testing.assert_allclose(
        load_numpy(tmp_path / "m").predict(X), expected, rtol=1e-5, atol=1e-5
    )
    enc = model.preprocessor_.transform(X)
    ref = NumpyMLP(
        {k: v.numpy() for k, v in model.model_.state_dict().items()},
        hidden_layer_sizes=(16, 16),
        activation="relu",
    )
    np.testing.assert_allclose(
        ref.outputs(enc.numeric), model._outputs(X).numpy(), rtol=1e-4, atol=1e-5
    )


def test_inference_net_embeds_in_float32():
    _, params, x, _ = _embedded_pair("periodic")
    net = InferenceNet(params, hidden_layer_sizes=(6, 6), activation="tanh")
    assert net.embed(x).dtype == np.float32
    np.testing.assert_allclose(net.embed(x), embed_numeric(params, x), rtol=1e-5, atol=1e-6)


def test_periodic_embedding_learns_a_wiggly_function_a_plain_mlp_does_not():
    # y = sin(6x) on x ~ U(-2, 2): many oscillations along one feature, which MLPs on raw
    # scalars fit slowly (spectral bias); a Fourier basis per feature fits it directly.
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(1500, 1))
    y = np.sin(6 * x[:, 0])
    x_test = np.linspace(-1.9, 1.9, 400)[:, None]
    common = dict(
        hidden_layer_sizes=(64, 64),
        n_ensemble=1,
        max_iter=40,
        random_state=0,
        numeric_scaling="standard",
        early_stopping=False,
    )
    rmse = {}
    for kind in ("none", "periodic"):
        model = DNNRegressor(numeric_embedding=kind, embedding_sigma=1.0, **common).fit(x, y)
        rmse[kind] = float(
            np.sqrt(np.mean((model.predict(x_test) - np.sin(6 * x_test[:, 0])) ** 2))
        )
    assert rmse["periodic"] < 0.5 * rmse["none"], rmse


def test_classifier_with_embeddings_and_tabm(mixed_frame):
    X = mixed_frame.drop(columns="y")
    y = (mixed_frame["y"] > mixed_frame["y"].median()).astype(int)
    clf = DNNClassifier(
        hidden_layer_sizes=(16,),
        n_ensemble=4,
        max_iter=30,
        random_state=0,
        numeric_embedding="piecewise_linear",
        ensemble_kind="tabm",
    ).fit(X, y)
    assert (clf.predict(X) == y).mean() > 0.8


def test_bad_embedding_settings_are_named():
    with pytest.raises(ValueError, match="numeric_embedding must be one of.*periodic"):
        DNNRegressor(numeric_embedding="fourier").fit(np.zeros((20, 2)), np.zeros(20))
    with pytest.raises(ValueError, match="ensemble_kind must be one of"):
        DNNRegressor(ensemble_kind="batch").fit(np.zeros((20, 2)), np.zeros(20))
    with pytest.raises(ValueError, match="pretrain .*ensemble_kind='mlp_k'"):
        DNNRegressor(ensemble_kind="tabm", pretrain="autoencoder").fit(
            np.zeros((20, 2)), np.zeros(20)
        )


def test_tree_bins_put_the_edges_where_the_target_steps():
    # y steps at x = 0.3 and x = 0.7 and is flat elsewhere: a tree with three leaves splits
    # exactly between the neighbouring rows there, whatever the density of x.
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 0.3, 900), rng.uniform(0.3, 1, 100)])
    y = np.digitize(x, [0.3, 0.7]).astype(float)
    (edges,) = tree_bins(x[:, None], y, 3, min_samples_leaf=1)
    assert len(edges) == 4
    assert edges[0] == x.min() and edges[-1] == x.max()
    below, above = x[x < 0.3].max(), x[x >= 0.3].min()
    assert below < edges[1] < above
    assert abs(edges[2] - 0.7) < 0.02
    # Quantile bins would spend 90 % of their edges below 0.3, where y is constant.
    (q,) = quantile_bins(x[:, None], 3)
    assert q[2] < 0.3


def test_tree_bins_follow_classes_and_cap_the_bin_count():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 2))
    labels = (x[:, 0] > 0.5).astype(int)  # only column 0 matters
    edges = tree_bins(x, labels, 8, classification=True)
    assert all(2 <= len(e) <= 9 for e in edges)
    assert np.min(np.abs(edges[0] - 0.5)) < 0.05


def test_tree_binning_needs_targets_and_a_known_name():
    emb = NumericEmbedding(
        "piecewise_linear", columns=[0], d_numeric=1, d_embedding=2, n_bins=4, binning="tree"
    )
    with pytest.raises(ValueError, match="needs the training targets"):
        emb.set_bins(np.zeros((5, 1)))
    with pytest.raises(ValueError, match="binning must be one of"):
        NumericEmbedding(
            "piecewise_linear", columns=[0], d_numeric=1, d_embedding=2, binning="kmeans"
        )


def test_classifier_fits_with_tree_bins(mixed_frame):
    X = mixed_frame.drop(columns="y")
    y = (mixed_frame["y"] > mixed_frame["y"].median()).map({True: "hi", False: "lo"})
    clf = DNNClassifier(
        hidden_layer_sizes=(8,),
        max_iter=2,
        numeric_embedding="piecewise_linear",
        embedding_binning="tree",
        embedding_bins=4,
        random_state=0,
    ).fit(X, y)
    assert set(clf.predict(X)) <= {"hi", "lo"}
    emb = clf.model_.num_embedding
    assert torch.isfinite(emb.left).all() and (emb.width > 0).all()


@pytest.mark.parametrize("k", [1, 8])
def test_piecewise_linear_lookup_equals_the_codes_times_the_maps(k):
    """The prefix-sum lookup (large batches) computes the codes' product exactly, values
    beyond the training range and padded (few-valued) columns included; so do its weight
    gradients."""
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=400), rng.exponential(size=400), rng.integers(0, 2, 400)])
    emb = NumericEmbedding(
        "piecewise_linear", columns=[0, 1, 2], d_numeric=3, d_embedding=4, n_bins=9
    )
    emb.set_bins(x)
    emb.reset_parameters(torch.Generator().manual_seed(0))
    xt = torch.tensor(np.concatenate([x, 5 * rng.normal(size=(112, 3))]), dtype=torch.float32)
    xt = xt.reshape(k, -1, 3)[..., emb.columns]
    by_codes = torch.einsum("...fc,fcd->...fd", emb.codes(xt), emb.weight)
    by_lookup = emb.piecewise_linear(xt)
    torch.testing.assert_close(by_lookup, by_codes, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(by_codes)
    (grad_codes,) = torch.autograd.grad((by_codes * g).sum(), emb.weight)
    (grad_lookup,) = torch.autograd.grad((emb.piecewise_linear(xt) * g).sum(), emb.weight)
    torch.testing.assert_close(grad_lookup, grad_codes, rtol=1e-4, atol=1e-4)


def test_piecewise_linear_lookup_gradient_by_finite_differences():
    from dnnreg.network.embeddings import piecewise_linear

    emb = NumericEmbedding("piecewise_linear", columns=[0], d_numeric=1, d_embedding=2, n_bins=4)
    emb.set_bins(np.linspace(0, 1, 50)[:, None])
    tables = [getattr(emb, n).double() for n in ("left", "width", "lower", "upper")]
    w = torch.randn(1, 4, 2, dtype=torch.float64, requires_grad=True)
    x = torch.tensor([[-0.3], [0.1], [0.4], [0.8], [1.7]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: piecewise_linear(x, *tables, w), (x, w))


@pytest.mark.parametrize("rows", [20, 600])  # below and above the lookup's size
def test_rows_located_beforehand_embed_as_the_rows_themselves(rows):
    """Training locates every row's bins once and gathers each batch's: the embedding of a
    batch given those gathered bins equals the batch's own embedding (the codes' product
    for small batches), passthrough columns included, and so do the weight gradients."""
    rng = np.random.default_rng(1)
    table = np.column_stack(
        [rng.normal(size=700), rng.integers(0, 2, 700), rng.exponential(size=700)]
    )
    emb = NumericEmbedding("piecewise_linear", columns=[0, 2], d_numeric=3, d_embedding=4, n_bins=6)
    emb.set_bins(table[:500])  # the other rows reach beyond the bins of some columns
    emb.reset_parameters(torch.Generator().manual_seed(0))
    x = torch.tensor(table, dtype=torch.float32)
    idx = torch.from_numpy(rng.integers(0, 700, size=(2, rows // 2)))  # (k, b) rows
    located = tuple(t[idx] for t in emb.locate(x))
    own, given = emb(x[idx]), emb(x[idx], located)
    torch.testing.assert_close(given, own, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(own)
    (grad_own,) = torch.autograd.grad((emb(x[idx]) * g).sum(), emb.weight)
    (grad_given,) = torch.autograd.grad((emb(x[idx], located) * g).sum(), emb.weight)
    torch.testing.assert_close(grad_given, grad_own, rtol=1e-5, atol=1e-5)
    periodic = NumericEmbedding("periodic", columns=[0], d_numeric=3, d_embedding=2)
    assert (
        periodic.locate(x) is None
        and MLP(d_numeric=3, cardinalities=[], hidden_layer_sizes=(4,), activation="relu").locate(x)
        is None
    )


def test_a_fit_with_bins_located_once_is_the_fit_that_searches_every_step(monkeypatch):
    """Every batch here is large enough for the lookup (8 members x 64 rows x 8 columns),
    so locating the bins once an epoch must give the very same model, bit for bit."""
    from dnnreg.training import loop

    rng = np.random.default_rng(2)
    X = rng.normal(size=(2048, 8))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    settings = dict(batch_size=64, max_iter=2, random_state=0, hidden_layer_sizes=(32,))
    found, locate = [], loop._located
    monkeypatch.setattr(loop, "_located", lambda *a: found.append(locate(*a)) or found[-1])
    located = DNNRegressor(**settings).fit(X, y).predict(X[:200])
    assert found and all(f is not None and f[0].shape == (2048, 8) for f in found)
    monkeypatch.setattr(loop, "LOCATE_MAX_BYTES", 0)  # too large: search every step
    found.clear()
    searched = DNNRegressor(**settings).fit(X, y).predict(X[:200])
    assert found == [None, None]
    np.testing.assert_array_equal(located, searched)
