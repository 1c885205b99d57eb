"""The course's claims as experiments: each quick run's numbers are checked against the
claim with bounds that can fail, and against independent computations where one exists."""

import json

import numpy as np
import pytest

import dnnreg
from dnnreg.cli import main


@pytest.fixture(scope="module")
def results():
    return {
        name: dnnreg.experiments.run(name, quick=True) for name in dnnreg.experiments.EXPERIMENTS
    }


def test_feature_engineering_measures_the_claim(results):
    r = results["feature-engineering"]
    sq, pr = r["numbers"]["square"], r["numbers"]["product"]
    assert sq["linear_r2"] < 0.05  # a line through a parabola explains nothing
    assert abs(sq["a"] - 5) < 0.05 and abs(sq["b"]) < 0.2  # recovered on z = x²
    assert sq["dnn_r2"] > 0.95 and pr["dnn_r2"] > 0.9 and pr["linear_r2"] < 0.05
    assert abs(pr["z_coefficient"] - 1) < 0.05
    assert r["status"] == "holds" and f"a = {sq['a']:.3f}" in r["verdict"]


def test_linear_two_ways_agrees_with_scikit_learn(results):
    from sklearn.linear_model import LinearRegression

    from dnnreg.tables.datasets import load_concrete

    r = results["linear-two-ways"]
    X, y = load_concrete(return_X_y=True)
    Z = (X - X.mean(axis=0)) / X.std(axis=0, ddof=0)
    ref = LinearRegression().fit(Z, y)
    c = r["coefficients"]
    np.testing.assert_allclose(c["normal_equation"], [ref.intercept_, *ref.coef_], rtol=1e-8)
    gap = np.max(np.abs(np.subtract(c["gradient_descent"], c["normal_equation"])))
    assert gap < 1e-4 and r["numbers"]["max_coefficient_gap"] == pytest.approx(gap)
    assert r["numbers"]["dnn_affine_r2"] > 0.99999  # identity layers compose to a line
    np.testing.assert_allclose(c["identity_dnn"], c["normal_equation"], rtol=0.05, atol=0.5)
    assert r["status"] == "holds"


def test_the_cli_lists_runs_and_writes_the_figure(tmp_path, capsys):
    assert main(["experiment", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in dnnreg.experiments.EXPERIMENTS)
    out = tmp_path / "exp"
    assert main(["experiment", "linear-two-ways", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "verdict (holds)" in printed
    assert json.loads((out / "result.json").read_text())["status"] == "holds"
    assert (out / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["experiment", "linear-two-ways", "--quick", "--out", str(out)]) == 1  # exists
    assert main(["experiment", "no-such"]) == 1
    assert "the experiments are" in capsys.readouterr().err


def test_loss_pairing_cross_entropy_learns_faster(results):
    r = results["loss-pairing"]
    n = r["numbers"]
    assert n["seeds"] >= 5
    for case in ("sgd", "sgd-saturated", "adam", "adam-saturated"):
        reach = n[case]["epochs_to_target"]
        faster = sum(
            ce is not None and (m is None or ce < m)
            for ce, m in zip(reach["cross_entropy"], reach["mse"])
        )
        assert faster == n[case]["cross_entropy_faster"], case
        if case.startswith("sgd"):  # the course's setting: plain gradient descent
            assert faster >= 4, case  # 4 of 5 seeds at least
    # a saturated wrong start stalls squared error under plain SGD: (p - y)·p(1 - p) ≈ 0
    assert r["curves"]["sgd-saturated/mse"][4] > 2 * r["curves"]["sgd-saturated/cross_entropy"][4]
    assert r["status"] in ("holds", "holds only when")


def test_the_output_gradients_are_the_formulas_the_verdict_cites():
    import torch

    z = torch.linspace(-6, 6, 25, requires_grad=True)
    y = (torch.arange(25) % 2).float()
    p = torch.sigmoid(z)
    (mse,) = torch.autograd.grad((0.5 * (p - y) ** 2).sum(), z)
    (ce,) = torch.autograd.grad(
        torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="sum"), z
    )
    p = p.detach()
    torch.testing.assert_close(mse, (p - y) * p * (1 - p))
    torch.testing.assert_close(ce, p - y)


def test_vanishing_gradients_measures_the_claim(results):
    r = results["vanishing-gradients"]
    n = r["numbers"]
    assert n["sigmoid_depth20_first_ratio"] < 1e-3  # the bounds
    assert n["relu_he_depth20_first_ratio"] > 1e-2
    assert n["sigmoid_batchnorm_depth20_first_ratio"] > 1e-2
    shallow = [g for g in r["grid"] if g["depth"] == 2 and g["activation"] == "sigmoid"]
    assert all(g["first_ratio"] > 1e-2 for g in shallow)  # two layers: nothing vanishes yet
    trained = n["trained_depth10_r2"]
    assert trained["relu/he_normal"] > trained["sigmoid/torch_default"] + 0.3
    assert r["status"] == "holds"


def test_exploding_gradients_measures_the_claim(results):
    r = results["exploding-gradients"]
    growth = r["numbers"]["first_gradient_vs_he"]
    assert growth["gain 3"][20] > 1e6 and growth["gain 3"][20] > 100 * growth["gain 2"][20]
    assert growth["gain 3"][2] < 1e3  # shallow: the product has few factors
    assert growth["gain 1"][20] == 1.0
    final = r["numbers"]["final_loss"]
    assert final["none"] is None or final["none"] > 1e6  # diverged as is
    assert final["batch_norm"] is not None and final["batch_norm"] < 1.0  # repaired
    assert r["status"] in ("holds", "holds only when")


def test_capacity_measures_the_claim(results):
    r = results["capacity"]
    grid = {(g["width"], g["rows"]): g for g in r["grid"]}
    assert grid[(2, 600)]["train_rmse"] > 1.5  # too small: above the noise floor of 1
    few = grid[(512, 60)]
    assert few["train_rmse"] < 0.2 < few["test_rmse"] - 1.0  # memorised 60 rows
    gap = lambda n: grid[(512, n)]["test_rmse"] - grid[(512, n)]["train_rmse"]  # noqa: E731
    assert gap(600) < 0.5 * gap(60)
    assert r["status"] == "holds"


def test_depth_vs_width_measures_the_claim(results):
    from dnnreg.studies.experiments.depth_vs_width import parameters, width_for

    r = results["depth-vs-width"]
    for rows in r["tables"].values():
        counts = [row["parameters"] for row in rows]
        assert max(counts) < 1.1 * min(counts)  # one budget, within 10 %
        for row in rows:
            assert row["width"] == width_for(row["depth"], 8, r["numbers"]["budget"])
            assert parameters(row["depth"], 8, row["width"]) == row["parameters"]
    comp = r["numbers"]["compositional"]
    assert min(comp[d] for d in comp if d > 1) < 0.9 * comp[1]  # depth wins on composition
    assert r["status"] in ("holds", "holds only when")


def test_small_data_curves_and_crossover(results):
    from dnnreg.studies.experiments.small_data import SHALLOW, crossover

    r = results["small-data"]
    for table, data in r["tables"].items():
        curve, n = data["curve"], r["numbers"][table]
        assert n["sizes"][0] == 50 and n["sizes"] == sorted(n["sizes"])
        assert {row["model"] for row in curve} == {*SHALLOW, "dnn"}
        # the crossover re-derived from the curve's own rows, independently of the verdict
        at = {(row["model"], row["rows"]): row["test_rmse"] for row in curve}
        wins = [at[("dnn", s)] < min(at[(m, s)] for m in ("linear", "tree")) for s in n["sizes"]]
        expected = None
        for s, w in zip(reversed(n["sizes"]), reversed(wins)):
            if not w:
                break
            expected = s
        assert n["crossover_simple"] == expected == crossover(curve)
        # a tree fitted on 50 rows with 5 a leaf fits them better than it predicts new ones
        tree50 = next(row for row in curve if row["model"] == "tree" and row["rows"] == 50)
        assert tree50["train_rmse"] < tree50["test_rmse"]
        assert at[("dnn", n["sizes"][-1])] < at[("dnn", 50)]  # more rows, lower error
    assert r["status"] in ("holds", "holds only when", "does not hold")


def test_softmax_from_scratch_matches_the_engine(results):
    r = results["softmax-from-scratch"]
    for name in ("softmax_regression", "one_hidden_layer"):
        n = r["numbers"][name]
        assert n["gradient_check"] < 1e-5  # back-propagation = finite differences
        assert n["numpy_test_accuracy"] > 0.9 and n["torch_test_accuracy"] > 0.9
        assert abs(n["numpy_test_accuracy"] - n["torch_test_accuracy"]) <= 0.03
        curve = r["curves"][f"{name}/numpy"]["train_loss"]
        assert curve[-1] < 0.5 * curve[0]  # it learns
    assert r["status"] == "holds"


def test_the_gradient_check_catches_a_wrong_gradient():
    from dnnreg.inference.reference import NumpyMLP
    from dnnreg.studies.experiments.softmax_from_scratch import gradient_check, initial_params

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 5)), rng.integers(0, 3, size=16)
    net = NumpyMLP(initial_params(5, (4,), 3, 0), hidden_layer_sizes=(4,), activation="tanh")
    assert gradient_check(net, x, y) < 1e-6
    wrong = net.loss_and_gradients

    def doubled(*a, **k):
        value, grads = wrong(*a, **k)
        return value, {name: 2 * g for name, g in grads.items()}

    net.loss_and_gradients = doubled
    assert gradient_check(net, x, y) > 0.3  # |2g - g| / (|g| + |2g|) = 1/3


def test_hidden_features_separate_the_circles(results):
    r = results["hidden-features"]
    c, d = r["numbers"]["circles"], r["numbers"]["digits"]
    assert c["line_on_inputs"] < 0.75  # a line cannot separate concentric circles
    assert c["line_on_layer1_16d"] > 0.95 and c["line_on_layer2_2d"] > 0.95
    assert d["test_accuracy"] > 0.9
    assert d["probe_layer2"] > d["probe_pixels"] + 0.03  # the class is easier to read above
    assert 0.1 <= d["selectivity_layer1"] <= 1.0
    assert r["status"] in ("holds", "holds only when")


def test_selectivity_by_hand():
    from dnnreg.studies.experiments.hidden_features import selectivity

    a = np.array([[3.0, 0.0, 1.0], [2.0, 0.0, 2.0], [1.0, 0.0, 3.0], [0.0, 0.0, 4.0]])
    labels = np.array([0, 0, 1, 2])
    # unit 0's top half is rows 0, 1 (both class 0); unit 1 never fires; unit 2's is rows 3, 2
    assert selectivity(a, labels, share=0.5).tolist() == [1.0, 0.5]


def test_hidden_activations_compose_to_the_outputs():
    from dnnreg import DNNClassifier

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 3)), rng.integers(0, 2, size=80)
    model = DNNClassifier(hidden_layer_sizes=(6, 4), n_ensemble=2, max_iter=2, random_state=0)
    model.fit(X, y)
    layers = model.hidden_activations(X)
    assert [a.shape for a in layers] == [(2, 80, 6), (2, 80, 4)]
    head = model.model_.head
    out = layers[-1] @ head.weight.detach().numpy() + head.bias.detach().numpy()
    np.testing.assert_allclose(out, model._outputs(X).numpy(), rtol=1e-5, atol=1e-6)


def test_dreams_are_read_as_their_class(results):
    r = results["dreams"]
    n = r["numbers"]
    assert n["judge_on_real_test"] > 0.9
    assert n["recognised"] > 0.5  # chance is 0.1
    err = n["reconstruction_error"]
    assert err["low"][1] < 0.5 * err["low"][0] and err["top"][1] < err["top"][0]
    for c, images in r["dreams"].items():
        assert np.all((np.asarray(images) >= 0) & (np.asarray(images) <= 1)), c


def test_pretraining_helps_only_the_2006_recipe(results):
    r = results["pretraining-2006"]
    e = r["numbers"]["effects"]
    few = str(min(r["numbers"]["fractions"]))
    old, new = e["2006"][few], e["today"][few]
    assert old["none"]["accuracy"] < 0.3  # sigmoid + plain SGD from random weights: stuck
    assert old["rbm"]["accuracy"] > old["none"]["accuracy"] + 0.3
    assert new["none"]["accuracy"] > 0.6  # today's recipe trains from random weights
    assert max(new["autoencoder"]["gain"], new["rbm"]["gain"]) < 0.05
    assert r["status"] == "holds only when"
