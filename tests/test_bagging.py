"""Bagging across validation folds (dnnreg.training.bagging): folds of equal size, members
that never see the rows they hold out, out-of-fold predictions that come from exactly the
members that held each row out, and the estimator's bagged fit."""

import numpy as np
import pytest
import torch

from dnnreg import DNNClassifier, DNNRegressor
from dnnreg.network.losses import make_loss
from dnnreg.network.mlp import MLP
from dnnreg.tables.splits import bagging_folds
from dnnreg.training.bagging import Bagging, n_folds
from dnnreg.training.loop import fit_model, plain_config


def test_folds_are_equal_and_stratified():
    y = np.repeat([0, 1, 2], [50, 30, 23])
    folds = bagging_folds(y, 4, np.random.RandomState(0), stratify=True)
    counts = np.bincount(folds[folds >= 0])
    assert counts.tolist() == [25, 25, 25, 25] and (folds == -1).sum() == 3
    for c in range(3):  # each class spread over the folds within one row
        per_fold = np.bincount(folds[(folds >= 0) & (y == c)], minlength=4)
        assert per_fold.max() - per_fold.min() <= 1


def test_members_hold_out_their_fold_and_train_on_the_rest():
    folds = bagging_folds(np.arange(41), 4, np.random.RandomState(1))
    bag = Bagging(folds, k=8)
    assert bag.held.shape == (8, 10) and bag.trained.shape == (8, 31)
    for i in range(8):
        held, trained = set(bag.held[i].tolist()), set(bag.trained[i].tolist())
        assert not held & trained and len(held | trained) == 41
        assert held == set(np.flatnonzero(folds == i % 4).tolist())


def test_oof_regroups_the_members_that_held_each_row_out():
    folds = bagging_folds(np.arange(20), 2, np.random.RandomState(2))
    bag = Bagging(folds, k=4)
    # each member outputs its own index, so an OOF "member" j of row r must be the j-th
    # member holding r out
    out = torch.arange(4.0).view(4, 1, 1).expand(4, 10, 1)
    oof = bag.oof(out)
    assert oof.shape == (2, 20, 1)
    for j, row in enumerate(bag.rows.tolist()):
        holders = [i for i in range(4) if folds[row] == i % 2]
        assert oof[:, j, 0].tolist() == holders


def test_a_member_is_blind_to_the_targets_of_its_fold():
    torch.manual_seed(0)
    n = 64
    x = torch.randn(n, 3)
    y = x.sum(1)
    folds = bagging_folds(np.arange(n), 2, np.random.RandomState(0))
    bag = Bagging(folds, k=2)
    config = plain_config(batch_size=16, max_iter=3, lr=1e-2)

    def train(target):
        net = MLP(
            d_numeric=3, cardinalities=[], hidden_layer_sizes=(8,), activation="relu", n_ensemble=2
        )
        net.reset_parameters(torch.Generator().manual_seed(0))
        fit_model(
            net,
            make_loss("mse"),
            (x, torch.zeros(n, 0, dtype=torch.long), target),
            config=config,
            generator=torch.Generator().manual_seed(1),
            member_rows=bag.trained,
        )
        return net.blocks[0].linear.weight.detach()

    poisoned = y.clone()
    poisoned[bag.held[0]] += 100.0  # fold of member 0 (and not of member 1)
    a, b = train(y), train(poisoned)
    assert torch.equal(a[0], b[0])  # member 0 never saw those rows
    assert not torch.equal(a[1], b[1])  # member 1 trained on them


def test_n_folds_needs_a_divisor_and_rows():
    assert [n_folds(k, 100) for k in (1, 2, 7, 8, 12, 32)] == [1, 2, 7, 8, 6, 8]
    assert n_folds(8, 15) == 1


def test_bagged_fit_keeps_out_of_fold_predictions(mixed_frame):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    model = DNNRegressor(
        hidden_layer_sizes=(16,), n_ensemble=4, max_iter=5, bagging=True, random_state=0
    ).fit(X, y)
    oof = model.oof_prediction_
    assert oof.shape == (len(y),) and np.isnan(oof).sum() == len(y) % 4
    # the recorded validation RMSE of the best epoch is the out-of-fold RMSE
    ok = ~np.isnan(oof)
    rmse = np.sqrt(np.mean((oof[ok] - y.to_numpy()[ok]) ** 2))
    best = model.history_[model.best_epoch_ - 1]
    assert best["val_rmse"] == pytest.approx(rmse, rel=1e-4)
    assert model.bagging_ is not None
    # with eval_set the given rows are the validation, no bagging
    held = DNNRegressor(
        hidden_layer_sizes=(16,), n_ensemble=4, max_iter=2, bagging=True, random_state=0
    ).fit(X[:200], y[:200], eval_set=(X[200:], y[200:]))
    assert held.bagging_ is None and not hasattr(held, "oof_prediction_")


def test_bagged_classifier_fits(mixed_frame):
    X = mixed_frame.drop(columns="y")
    y = np.where(mixed_frame["y"] > mixed_frame["y"].median(), "hi", "lo")
    clf = DNNClassifier(
        hidden_layer_sizes=(16,), n_ensemble=2, max_iter=3, bagging=True, random_state=0
    ).fit(X, y)
    assert clf.oof_prediction_.shape[0] == len(y)
    assert set(clf.predict(X)) <= {"hi", "lo"}
