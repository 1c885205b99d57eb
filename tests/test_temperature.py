"""Temperature scaling: the fitted temperature against the process that drew the labels,
against a brute-force search with scikit-learn's log-loss, and folded into a classifier
whose probabilities then match the untempered network's logits divided by it."""

import numpy as np
import pytest
import torch
from scipy.special import expit, softmax
from sklearn.metrics import log_loss as sk_log_loss

from dnnreg import DNNClassifier, load, load_numpy, save
from dnnreg.tables.datasets import load_digits
from dnnreg.temperature import fit_temperature, log_loss_at, log_probabilities


def _draw(rng, n, c, true_t):
    """Logits, and labels drawn from softmax(logits / true_t): the temperature that makes
    the logits calibrated is true_t by construction."""
    z = rng.normal(scale=3.0, size=(n, c))
    p = softmax(z / true_t, axis=1)
    labels = (rng.random((n, 1)) > p.cumsum(axis=1)).sum(axis=1)
    return z[None], labels


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_recovers_the_temperature_that_drew_the_labels(true_t):
    z, labels = _draw(np.random.default_rng(1), 20_000, 4, true_t)
    t = fit_temperature(z, labels)
    print(f"drawn at T={true_t}, fitted {t:.3f}")
    assert t == pytest.approx(true_t, rel=0.05)


def test_at_most_bounds_the_temperature_from_above():
    z, labels = _draw(np.random.default_rng(1), 5_000, 4, 2.5)
    assert fit_temperature(z, labels, at_most=1.0) == pytest.approx(1.0, abs=1e-3)
    assert fit_temperature(z, labels, at_most=2.0) == pytest.approx(2.0, rel=1e-3)


def test_minimum_agrees_with_a_grid_search_on_sklearn_log_loss():
    rng = np.random.default_rng(2)
    z = rng.normal(scale=4.0, size=(2, 300, 3))  # two members, averaged probabilities
    labels = rng.integers(0, 3, 300)
    weights = rng.uniform(0.5, 2.0, 300)

    def sk(t):
        p = softmax(z / t, axis=2).mean(axis=0)
        return sk_log_loss(labels, p, sample_weight=weights, labels=[0, 1, 2])

    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 4001))
    best = grid[np.argmin([sk(t) for t in grid])]
    t = fit_temperature(z, labels, weights)
    assert t == pytest.approx(best, rel=0.01)
    assert log_loss_at(z, labels, t, weights) == pytest.approx(sk(t), rel=1e-9)
    assert sk(t) <= min(sk(best), sk(1.0)) + 1e-9


def test_one_sigmoid_output_is_two_classes():
    rng = np.random.default_rng(3)
    z = rng.normal(scale=2.0, size=(3, 50, 1))
    t = 1.7
    p1 = expit(z[..., 0] / t).mean(axis=0)  # the members' probabilities, averaged
    np.testing.assert_allclose(
        np.exp(log_probabilities(z, t)), np.stack([1 - p1, p1], axis=1), rtol=1e-12
    )


@pytest.fixture(scope="module")
def smoothed_pair():
    """The same fit twice, without and with temperature scaling: label smoothing 0.2
    leaves the probabilities under-confident, which the temperature should undo."""
    X, y = load_digits(return_X_y=True)
    X, y = X.iloc[:600], y[:600]
    common = dict(
        hidden_layer_sizes=(64,),
        n_ensemble=4,
        max_iter=15,
        label_smoothing=0.2,
        random_state=0,
    )
    plain = DNNClassifier(temperature_scaling=False, **common).fit(X, y)
    tempered = DNNClassifier(temperature_scaling=True, **common).fit(X, y)
    return X, y, plain, tempered


def test_classifier_folds_the_temperature_into_its_output_layer(smoothed_pair):
    X, y, plain, tempered = smoothed_pair
    t = tempered.temperature_
    print(f"temperature after label smoothing 0.2: {t:.3f}")
    assert plain.temperature_ == 1.0
    assert t < 0.9  # smoothed labels: the held-out rows want sharper probabilities
    # the training is the same; only the output layer is divided by T
    with torch.no_grad():
        logits = plain._outputs(X).double().numpy()
    expected = softmax(logits / t, axis=2).mean(axis=0)
    np.testing.assert_allclose(tempered.predict_proba(X), expected, atol=2e-3)
    np.testing.assert_array_equal(tempered.predict(X), plain.predict(X))


def test_out_of_fold_log_loss_falls_and_is_reported_tempered(smoothed_pair):
    X, y, plain, tempered = smoothed_pair
    rows = ~np.isnan(plain.oof_prediction_[:, 0])
    before = sk_log_loss(y[rows], plain.oof_prediction_[rows], labels=plain.classes_)
    after = sk_log_loss(y[rows], tempered.oof_prediction_[rows], labels=plain.classes_)
    print(f"out-of-fold log-loss {before:.4f} -> {after:.4f}")
    assert after < before


def test_saved_tempered_model_predicts_the_same_everywhere(smoothed_pair, tmp_path):
    X, _, _, tempered = smoothed_pair
    save(tempered, tmp_path / "m")
    again = load(tmp_path / "m")
    assert again.temperature_ == tempered.temperature_
    np.testing.assert_allclose(again.predict_proba(X), tempered.predict_proba(X), atol=1e-6)
    runtime = load_numpy(tmp_path / "m")
    np.testing.assert_allclose(runtime.predict_proba(X), tempered.predict_proba(X), atol=1e-4)


def test_temperature_scaling_must_be_auto_or_a_bool():
    with pytest.raises(ValueError, match="temperature_scaling must be 'auto', True or False"):
        DNNClassifier(temperature_scaling="yes", max_iter=1).fit(np.zeros((20, 2)), [0, 1] * 10)
    with pytest.raises(ValueError, match="temperature_scaling applies to loss='cross_entropy'"):
        DNNClassifier(temperature_scaling=True, loss="sigmoid_mse", max_iter=1).fit(
            np.zeros((20, 2)), [0, 1] * 10
        )


@pytest.mark.parametrize(
    "loss, eps, scaled", [("cross_entropy", 0.05, True), ("sigmoid_mse", 0.0, False)]
)
def test_auto_resolves_by_loss_and_is_recorded(loss, eps, scaled, tmp_path):
    X, y = load_digits(return_X_y=True)
    clf = DNNClassifier(loss=loss, hidden_layer_sizes=(16,), n_ensemble=2, max_iter=2)
    clf.fit(X.iloc[:200], y[:200])
    assert clf.resolved_["label_smoothing"] == eps
    assert clf.resolved_["temperature_scaling"] is scaled
    assert clf._training_loss().smoothing == eps
    save(clf, tmp_path / "m")
    assert load(tmp_path / "m").resolved_["label_smoothing"] == eps
