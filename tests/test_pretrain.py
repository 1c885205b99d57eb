"""Greedy layer-wise pretraining: reconstruction falls layer by layer, CD-1 equals an update
worked by hand, fine-tuning starts from the pretrained weights, wake-sleep lowers a deep
belief network's reconstruction error, and pretrain="none" changes nothing."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from dnnreg import DNNClassifier, DNNRegressor
from dnnreg.cli import main
from dnnreg.studies.pretrain_study import labelled_subset, pretrain_study
from dnnreg.training.pretrain import RBM, corrupt, kl_sparsity

MODES = ["autoencoder", "denoising", "sparse", "rbm"]


def _manifold(n=600, seed=0):
    """8 features driven by 2 latent factors (so a narrow code can reconstruct them),
    and a target that depends on the factors."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    X = np.tanh(z @ rng.normal(size=(2, 8))) + 0.05 * rng.normal(size=(n, 8))
    return X, z[:, 0] ** 2 + z[:, 1]


def _model(**kw):
    params = dict(
        hidden_layer_sizes=(16, 8), n_ensemble=2, max_iter=5, random_state=0, pretrain_epochs=15
    )
    return DNNRegressor(**{**params, **kw})


@pytest.mark.parametrize("mode", MODES)
def test_each_layers_reconstruction_error_falls_during_its_pretraining(mode):
    X, y = _manifold()
    model = _model(pretrain=mode).fit(X, y)
    layers = [h for h in model.pretrain_history_ if "layer" in h]
    assert [h["layer"] for h in layers] == [1, 2]
    for h in layers:
        errors = h["reconstruction_error"]
        assert len(errors) == 16  # before, then after each of 15 epochs
        assert errors[-1] < 0.9 * errors[0], (mode, h["layer"], errors)


def test_cd1_update_equals_a_hand_computation():
    """A 2-visible, 2-hidden Bernoulli RBM, one row v₀ = (1, 0), the hidden draw fixed by
    uniforms (0.3, 0.9). Worked by hand with σ(x) = 1/(1 + e⁻ˣ)."""
    s = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    W = [[0.5, -0.3], [0.2, 0.1]]
    c, b, v0 = [0.1, -0.2], [0.0, 0.3], [1.0, 0.0]
    p0 = [s(c[0] + 1.0 * W[0][0]), s(c[1] + 1.0 * W[0][1])]  # σ(0.6), σ(-0.5)
    h0 = [1.0 if 0.3 < p0[0] else 0.0, 1.0 if 0.9 < p0[1] else 0.0]  # (1, 0)
    v1 = [s(b[0] + W[0][0] * h0[0] + W[0][1] * h0[1]), s(b[1] + W[1][0] * h0[0] + W[1][1] * h0[1])]
    p1 = [s(c[0] + v1[0] * W[0][0] + v1[1] * W[1][0]), s(c[1] + v1[0] * W[0][1] + v1[1] * W[1][1])]
    dW = [[v0[i] * p0[j] - v1[i] * p1[j] for j in range(2)] for i in range(2)]
    dc = [p0[j] - p1[j] for j in range(2)]
    db = [v0[i] - v1[i] for i in range(2)]

    t = lambda x, shape: torch.tensor(x, dtype=torch.float64).reshape(shape)  # noqa: E731
    rbm = RBM(t(W, (1, 2, 2)), t(c, (1, 1, 2)), t(b, (1, 1, 2)), gaussian=False)
    from dnnreg.training.pretrain import cd_gradients

    got = cd_gradients(rbm, t(v0, (1, 1, 2)), [t([0.3, 0.9], (1, 1, 2))])
    for g, want in zip(got, (dW, dc, db)):
        np.testing.assert_allclose(g.reshape(-1).numpy(), np.ravel(want), rtol=1e-12)


def test_gaussian_visible_units_reconstruct_with_the_linear_mean():
    """Gaussian-Bernoulli: E[v | h] = b + W h, no squashing."""
    W = torch.tensor([[[2.0], [-1.0]]])
    rbm = RBM(W, torch.zeros(1, 1, 1), torch.tensor([[[0.5, 0.5]]]), gaussian=True)
    mean = rbm.visible_mean(torch.ones(1, 1, 1))
    assert mean.reshape(-1).tolist() == [2.5, -0.5]


def test_fine_tuning_starts_from_exactly_the_pretrained_weights():
    X, y = _manifold()
    snapshots = {}

    class Spy:
        def on_pretrain_end(self, model):
            snapshots["pretrained"] = {k: v.clone() for k, v in model.state_dict().items()}

        def on_epoch_begin(self, model):
            snapshots.setdefault(
                "first_epoch", {k: v.clone() for k, v in model.state_dict().items()}
            )

    _model(pretrain="autoencoder").fit(X, y, callbacks=[Spy()])
    fresh = _model(max_iter=1, pretrain="none").fit(X, y).model_  # same seed, no pretraining
    blocks = [k for k in snapshots["pretrained"] if k.startswith("blocks.")]
    assert blocks
    for k in blocks:
        assert torch.equal(snapshots["pretrained"][k], snapshots["first_epoch"][k]), k
    moved = [
        k
        for k in blocks
        if k.endswith("weight")
        and not torch.equal(snapshots["pretrained"][k].cpu(), fresh.state_dict()[k].cpu())
    ]
    assert moved  # pretraining changed the weights it handed over


def test_wake_sleep_lowers_the_reconstruction_error_of_a_deep_belief_net():
    X, y = _manifold(800)
    # Batches of 45 rows leave the greedy stack part-trained (error 0.58), which is where
    # up-down fine-tuning has work to do (measured 0.58 -> 0.50). With the regressor's
    # default 16-row batches here the greedy stack alone reaches 0.233, and 20 wake-sleep
    # epochs leave it at 0.245: nothing left for them to lower.
    model = _model(
        pretrain="rbm",
        hidden_layer_sizes=(16, 8, 4),
        wake_sleep_epochs=20,
        pretrain_epochs=10,
        batch_size=45,
        bagging=False,  # the 720 rows of the holdout split, the regime measured above
    ).fit(X, y)
    ws = model.pretrain_history_[-1]["wake_sleep"]
    assert ws["epochs"] == 20
    assert ws["reconstruction_error_after"] < 0.9 * ws["reconstruction_error_before"], ws


def test_pretrain_none_changes_nothing(monkeypatch):
    X, y = _manifold()
    base = _model().fit(X, y).predict(X)
    with_unlabeled = _model().fit(X, y, X_unlabeled=X[:100] + 1).predict(X)
    monkeypatch.setattr(DNNRegressor, "_pretrain", lambda self, *a: None)  # the feature cut out
    without_feature = _model().fit(X, y).predict(X)
    assert np.array_equal(base, with_unlabeled)
    assert np.array_equal(base, without_feature)


def test_pretraining_uses_labelled_and_unlabelled_rows(monkeypatch):
    import dnnreg.estimators.base as est

    seen = []
    original = est.pretrain_stack

    def spy(model, x_num, x_cat, **kw):
        seen.append(x_num.shape[0])
        return original(model, x_num, x_cat, **kw)

    monkeypatch.setattr(est, "pretrain_stack", spy)
    X, y = _manifold(300)
    model = _model(pretrain="autoencoder", early_stopping=False).fit(
        X[:100], y[:100], X_unlabeled=X[100:]
    )
    assert seen == [300]
    assert model.n_features_in_ == 8


def test_masking_noise_and_the_sparsity_penalty_match_their_definitions():
    g = torch.Generator().manual_seed(0)
    a = torch.ones(200, 500)
    dropped = float((corrupt(a, "mask", 0.3, g) == 0).double().mean())
    assert abs(dropped - 0.3) < 5 * math.sqrt(0.3 * 0.7 / a.numel())
    h = torch.tensor([[[0.1, 0.5], [0.3, 0.5]]])  # sigmoid units: activity = h
    rho, r1, r2 = 0.05, 0.2, 0.5
    kl = lambda r: rho * math.log(rho / r) + (1 - rho) * math.log((1 - rho) / (1 - r))  # noqa: E731
    assert float(kl_sparsity(h, rho, "sigmoid")) == pytest.approx(kl(r1) + kl(r2), rel=1e-6)


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"pretrain": "autoencoder", "residual": True, "hidden_layer_sizes": (8, 8)},
            "residual=False",
        ),
        ({"wake_sleep_epochs": 3, "pretrain": "autoencoder"}, "pretrain='rbm'"),
        ({"pretrain": "rbm", "pretrain_epochs": (1, 2, 3)}, "one value per hidden layer"),
        ({"pretrain": "stacked"}, "pretrain must be one of"),
    ],
)
def test_bad_pretraining_settings_are_named(params, message):
    X, y = _manifold(60)
    with pytest.raises(ValueError, match=message):
        _model(**params).fit(X, y)


def test_classifier_pretrains_too():
    X, y = _manifold()
    clf = DNNClassifier(
        hidden_layer_sizes=(16, 8),
        max_iter=5,
        pretrain="denoising",
        random_state=0,
        pretrain_epochs=3,
    ).fit(X, y > np.median(y))
    assert len(clf.pretrain_history_) == 2 and clf.score(X, y > np.median(y)) > 0.6


def test_labelled_subset_keeps_the_rest_as_unlabelled():
    rows = np.arange(100, 200)
    lab, unl = labelled_subset(rows, 0.05, seed=0)
    assert len(lab) == 10 and len(unl) == 90  # at least 10 labelled rows
    assert sorted(np.concatenate([lab, unl]).tolist()) == rows.tolist()


def test_study_pairs_every_mode_with_none_on_the_same_rows():
    X, y = _manifold(200)
    study = pretrain_study(
        pd.DataFrame(X),
        y,
        label_fractions=(0.2, 1.0),
        seeds=2,
        modes=("none", "autoencoder"),
        log=None,
        params=dict(hidden_layer_sizes=(8,), n_ensemble=1, max_iter=3, pretrain_epochs=2),
    )
    assert len(study) == 2 * 2 * 2
    assert set(study.groupby(["seed", "fraction"])["labelled"].nunique()) == {1}
    entries = [e for e in study.attrs["summary"] if e["mode"] == "autoencoder"]
    for e in entries:  # the paired log-ratio of RMSE, recomputed here
        sub = study[study.fraction == e["fraction"]].pivot(
            index="seed", columns="mode", values="rmse"
        )
        assert e["vs_none"]["mean"] == pytest.approx(
            float(np.mean(np.log(sub["autoencoder"] / sub["none"])))
        )
    assert "20 % labelled" in study.attrs["verdict"]


def test_cli_pretrain_study_and_unlabeled_training(tmp_path, capsys):
    X, y = _manifold(150)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).assign(y=y)
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.drop(columns="y").to_csv(tmp_path / "u.csv", index=False)
    fast = [
        "--set",
        "hidden_layer_sizes=8",
        "--set",
        "n_ensemble=1",
        "--set",
        "max_iter=3",
        "--set",
        "pretrain_epochs=2",
    ]
    assert (
        main(
            [
                "--quiet",
                "pretrain-study",
                str(tmp_path / "t.csv"),
                "--target",
                "y",
                "--label-fractions",
                "0.5,1.0",
                "--seeds",
                "2",
                "--modes",
                "autoencoder,rbm",
                "--out",
                str(tmp_path / "study"),
            ]
            + fast
        )
        == 0
    )
    assert (tmp_path / "study" / "pretrain_study.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "50 % labelled" in out and "rbm" in out
    assert (
        main(
            [
                "--quiet",
                "train",
                str(tmp_path / "t.csv"),
                "--target",
                "y",
                "--out",
                str(tmp_path / "run"),
                "--unlabeled",
                str(tmp_path / "u.csv"),
                "--set",
                "pretrain=sparse",
            ]
            + fast
        )
        == 0
    )
    assert (
        main(
            [
                "--quiet",
                "train",
                str(tmp_path / "t.csv"),
                "--target",
                "y",
                "--out",
                str(tmp_path / "run2"),
                "--unlabeled",
                str(tmp_path / "u.csv"),
            ]
            + fast
        )
        == 2
    )
    assert "--set pretrain=" in capsys.readouterr().err
