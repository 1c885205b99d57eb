"""DNNClassifier: accuracy on real digits, labels of any type, and the course's claim that
cross-entropy learns faster than squared error on a sigmoid output."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.model_selection import train_test_split

from dnnreg import DNNClassifier, load, load_numpy, save
from dnnreg.metrics import classification_metrics
from dnnreg.studies.baselines import LogisticBaseline
from dnnreg.tables.datasets import load_digits


def _held_out(X, y):
    return train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)


def test_digits_accuracy_with_defaults():
    Xtr, Xte, ytr, yte = _held_out(*load_digits(return_X_y=True))
    clf = DNNClassifier(random_state=0).fit(Xtr, ytr)
    accuracy = float(np.mean(clf.predict(Xte) == yte))
    print(f"digits held-out accuracy {accuracy:.4f}")
    assert accuracy >= 0.95


def test_mnist_5k_accuracy_with_defaults(shared_datasets):
    frame = pd.read_csv(shared_datasets / "mnist_5k.csv.gz")
    Xtr, Xte, ytr, yte = _held_out(frame.drop(columns="label"), frame["label"])
    clf = DNNClassifier(random_state=0).fit(Xtr, ytr)
    accuracy = float(np.mean(clf.predict(Xte) == yte))
    print(f"MNIST-5k held-out accuracy {accuracy:.4f}")
    assert accuracy >= 0.93


def test_string_labels_probabilities_and_sklearn_log_loss(mixed_frame):
    X = mixed_frame.drop(columns="y")
    y = np.where(mixed_frame["y"] > mixed_frame["y"].median(), "high", "low")
    clf = DNNClassifier(hidden_layer_sizes=(32, 32), max_iter=60, random_state=0).fit(X, y)
    assert clf.classes_.tolist() == ["high", "low"]
    proba = clf.predict_proba(X)
    assert np.allclose(proba.sum(axis=1), 1.0) and (proba > 0).all()
    assert set(clf.predict(X)) <= {"high", "low"}
    # The target is non-linear (sin and a square): the network beats logistic regression.
    assert clf.score(X, y) > LogisticBaseline().fit(X, y).score(X, y) + 0.1
    index = (y == "low").astype(int)
    ours = classification_metrics(index, proba)["log_loss"]
    assert ours == pytest.approx(sk_log_loss(y, proba, labels=clf.classes_), rel=1e-9)


def test_save_load_and_the_numpy_engine_agree_on_a_classifier(tmp_path, mixed_frame):
    X = mixed_frame.drop(columns="y")
    y = pd.cut(mixed_frame["y"], 3, labels=["a", "b", "c"]).astype(str)
    clf = DNNClassifier(
        hidden_layer_sizes=(16, 16),
        normalization="layer_norm",
        residual=True,
        activation="prelu",
        max_iter=5,
        random_state=0,
    ).fit(X, y)
    save(clf, tmp_path / "m")
    again = load(tmp_path / "m")  # always onto the CPU; a GPU's float32 rounds differently
    np.testing.assert_allclose(
        again.predict_proba(X),
        clf.predict_proba(X),
        rtol=0 if clf.device_.type == "cpu" else 1e-5,
        atol=0 if clf.device_.type == "cpu" else 1e-6,
    )
    assert np.array_equal(again.classes_, clf.classes_)
    engine = load_numpy(tmp_path / "m")
    np.testing.assert_allclose(engine.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    assert np.array_equal(engine.predict(X), clf.predict(X))


def _epochs_to(losses, threshold):
    return next((i + 1 for i, v in enumerate(losses) if v <= threshold), len(losses) + 1)


def test_cross_entropy_learns_faster_than_squared_error_on_a_sigmoid_output():
    """The course's claim: with a sigmoid output, squared error carries a factor σ(1 - σ)
    in its gradient and learns slowly; cross-entropy cancels it. Same task (digits 0-4 vs
    5-9), network, seed and plain SGD; the yardstick is the training log-loss of the
    predicted probabilities. Measured: log-loss 0.3 after 5 epochs with cross-entropy, 11
    with squared error; 0.2 after 23 epochs with cross-entropy, not within 40 with squared
    error."""
    X, y = load_digits(return_X_y=True)
    y = (y >= 5).astype(int)
    curves = {}
    for loss in ("cross_entropy", "sigmoid_mse"):
        clf = DNNClassifier(
            loss=loss,
            hidden_layer_sizes=(64,),
            activation="sigmoid",
            solver="sgd",
            learning_rate_init=0.5,
            lr_schedule="constant",
            n_ensemble=1,
            max_iter=40,
            n_iter_no_change=1000,
            batch_size=64,
            weight_decay=0.0,
            dropout=0.0,
            random_state=0,
        ).fit(X, y, eval_set=(X, y))
        curves[loss] = [h["val_log_loss"] for h in clf.history_]
    ce, mse = (_epochs_to(curves[k], 0.3) for k in ("cross_entropy", "sigmoid_mse"))
    print(f"epochs to training log-loss 0.3: cross-entropy {ce}, sigmoid + MSE {mse}")
    assert ce <= 0.6 * mse
    assert min(curves["cross_entropy"]) < min(curves["sigmoid_mse"])


def test_label_smoothing_loss_matches_the_smoothed_targets_by_hand():
    from dnnreg.network.losses import CrossEntropy

    gen = torch.Generator().manual_seed(0)
    out = torch.randn(2, 5, 4, generator=gen, dtype=torch.float64)  # k=2 members, 4 classes
    y = torch.tensor([0, 3, 1, 1, 2])
    eps = 0.2
    rows = CrossEntropy(4).smoothed(eps).rows(out, y)
    logp = torch.log_softmax(out, -1)
    target = torch.full((5, 4), eps / 4, dtype=torch.float64)
    target[torch.arange(5), y] += 1 - eps
    torch.testing.assert_close(rows, -(target * logp).sum(-1))
    # two classes: one sigmoid output, target 1 - eps/2 for the positive class
    z = torch.randn(2, 5, 1, generator=gen, dtype=torch.float64)
    yb = torch.tensor([1, 0, 0, 1, 1])
    t = yb * (1 - eps) + eps / 2
    p = torch.sigmoid(z[..., 0])
    expected = -(t * torch.log(p) + (1 - t) * torch.log(1 - p))
    torch.testing.assert_close(CrossEntropy(2).smoothed(eps).rows(z, yb), expected)
    assert CrossEntropy(4).smoothing == 0.0  # the unsmoothed loss is the default


def test_label_smoothing_trains_against_soft_labels_and_validates_on_true_ones():
    # two well-separated classes: without smoothing the network grows confident; with
    # eps = 0.5 the training target of the true class is 0.75, so its predicted
    # probability settles near 0.75, while early stopping still reads the true log-loss
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = (X[:, 0] > 0).astype(int)
    X[:, 0] += np.where(y == 1, 3.0, -3.0)
    common = dict(
        hidden_layer_sizes=(32,),
        n_ensemble=1,
        max_iter=40,
        dropout=0.0,
        n_iter_no_change=1000,
        temperature_scaling=False,
        random_state=0,
    )
    plain = DNNClassifier(label_smoothing=0.0, **common).fit(X, y)
    soft = DNNClassifier(label_smoothing=0.5, **common).fit(X, y)
    p_plain = plain.predict_proba(X)[np.arange(400), y].mean()
    p_soft = soft.predict_proba(X)[np.arange(400), y].mean()
    print(f"mean probability of the true class: plain {p_plain:.3f}, eps 0.5 {p_soft:.3f}")
    assert p_plain > 0.9
    assert 0.6 < p_soft < 0.8
    assert soft.loss_.smoothing == 0.0  # validation's loss: the true labels
    assert soft._training_loss().smoothing == 0.5


@pytest.mark.parametrize("bad", [-0.1, 1.0, "x", True])
def test_label_smoothing_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="label_smoothing"):
        DNNClassifier(label_smoothing=bad, max_iter=1).fit(np.zeros((20, 2)), [0, 1] * 10)


def test_label_smoothing_with_another_loss_is_refused():
    with pytest.raises(ValueError, match="label_smoothing applies to loss='cross_entropy'"):
        DNNClassifier(label_smoothing=0.1, loss="sigmoid_mse", max_iter=1).fit(
            np.zeros((20, 2)), [0, 1] * 10
        )
