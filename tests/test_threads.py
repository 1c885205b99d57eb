"""The thread policy (dnnreg.training.threads): never more threads than idle usable cores,
an explicit n_threads obeyed, and torch's own setting restored after fit and predict."""

import numpy as np
import pytest
import torch

from dnnreg import DNNRegressor
from dnnreg.training import threads


def test_auto_threads_leave_busy_cores_alone():
    assert threads.auto_threads(cores=4, others=0) == 4
    assert threads.auto_threads(cores=4, others=3) == 1
    assert threads.auto_threads(cores=4, others=9) == 1  # at least one
    assert threads.auto_threads(cores=1, others=0) == 1


def test_usable_cores_respect_the_cgroup_quota(monkeypatch):
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 1.5)
    assert threads.usable_cores() == 1
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)
    assert threads.usable_cores() >= 1


def test_fit_uses_the_chosen_threads_and_restores_torchs(mixed_frame, monkeypatch):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    before = torch.get_num_threads()
    model = DNNRegressor(hidden_layer_sizes=(8,), n_ensemble=1, max_iter=2, n_threads=1)
    model.fit(X, y)
    assert [r["threads"] for r in model.history_] == [1, 1]
    assert torch.get_num_threads() == before
    # "auto" follows the machine's load between epochs
    loads = iter([0, 5, 5, 5, 5, 5])
    monkeypatch.setattr(threads, "runnable_others", lambda: next(loads, 5))
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    auto = DNNRegressor(hidden_layer_sizes=(8,), n_ensemble=1, max_iter=2).fit(X, y)
    assert [r["threads"] for r in auto.history_] == [1, 1]
    assert torch.get_num_threads() == before
    auto.predict(X)
    assert torch.get_num_threads() == before


def test_bad_n_threads_is_refused(mixed_frame):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    with pytest.raises(ValueError, match="n_threads"):
        DNNRegressor(n_threads=0).fit(X, y)


def test_the_thread_count_does_not_change_the_result(mixed_frame):
    """'auto' may pick another count on a busy machine; a seed must still fix the model."""
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    fit = lambda n: DNNRegressor(  # noqa: E731
        hidden_layer_sizes=(64, 64), n_ensemble=2, max_iter=3, n_threads=n, random_state=0
    ).fit(X, y)
    assert np.array_equal(fit(1).predict(X), fit(2).predict(X))
