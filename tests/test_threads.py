"""The thread policy (dnnreg.training.threads): never more threads than idle usable cores,
an explicit n_threads obeyed, and torch's own setting restored after fit and predict."""

import numpy as np
import pandas as pd
import pytest
import torch

from dnnreg import DNNRegressor, cores


def test_auto_threads_leave_busy_cores_alone():
    assert cores.auto_threads(cores=4, others=0) == 4
    assert cores.auto_threads(cores=4, others=3) == 1
    assert cores.auto_threads(cores=4, others=9) == 1  # at least one
    assert cores.auto_threads(cores=1, others=0) == 1


def test_usable_cores_respect_the_cgroup_quota(monkeypatch):
    monkeypatch.setattr(cores, "_cgroup_quota", lambda: 1.5)
    assert cores.usable_cores() == 1
    monkeypatch.setattr(cores, "_cgroup_quota", lambda: None)
    assert cores.usable_cores() >= 1


def test_fit_uses_the_chosen_threads_and_restores_torchs(mixed_frame, monkeypatch):
    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    before = torch.get_num_threads()
    model = DNNRegressor(hidden_layer_sizes=(8,), n_ensemble=1, max_iter=2, n_threads=1)
    model.fit(X, y)
    assert [r["threads"] for r in model.history_] == [1, 1]
    assert torch.get_num_threads() == before
    # "auto" follows the machine's load between epochs
    loads = iter([0, 5, 5, 5, 5, 5])
    monkeypatch.setattr(cores, "runnable_others", lambda: next(loads, 5))
    monkeypatch.setattr(cores, "usable_cores", lambda: 2)
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


def test_numpy_runtime_limits_blas_to_the_idle_cores_and_restores_it(
    mixed_frame, tmp_path, monkeypatch
):
    """The torch-free runtime follows the same rule through threadpoolctl: a large input
    runs with the chosen BLAS thread count, a small one is left alone, the process's own
    setting survives, and the count does not change the predictions."""
    from threadpoolctl import threadpool_info

    from dnnreg import load_numpy, save
    from dnnreg.inference import runtime

    X, y = mixed_frame.drop(columns="y"), mixed_frame["y"]
    save(DNNRegressor(hidden_layer_sizes=(16,), n_ensemble=2, max_iter=2).fit(X, y), tmp_path / "m")
    engine = load_numpy(tmp_path / "m")
    big = pd.concat([X] * 3, ignore_index=True)  # 900 rows, past THREADED_ROWS
    assert len(big) >= runtime.THREADED_ROWS > len(X.head(5))
    seen = []
    real = cores.blas_threads

    def spy(n):
        seen.append(n)
        return real(n)

    monkeypatch.setattr(cores, "blas_threads", spy)
    before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    monkeypatch.setattr(cores, "auto_threads", lambda **kw: 1)
    one = engine.predict(big)
    engine.predict(X.head(5))
    assert seen == [1]
    monkeypatch.setattr(cores, "auto_threads", lambda **kw: 2)
    two = engine.predict(big)
    assert seen == [1, 2]
    assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == before
    np.testing.assert_allclose(one, two, rtol=1e-6)


def test_a_recent_reading_of_the_machine_is_reused_only_when_asked(monkeypatch):
    reads = []
    monkeypatch.setattr(cores, "runnable_others", lambda: reads.append(1) or 0)
    monkeypatch.setattr(cores, "_LAST_READ", [-float("inf"), 1])
    cores.auto_threads(max_age=1.0)
    cores.auto_threads(max_age=1.0)  # within a second: reused
    assert len(reads) == 1
    cores.auto_threads()  # training reads afresh
    assert len(reads) == 2
    monkeypatch.setattr(cores, "_LAST_READ", [cores.time.monotonic() - 5.0, 1])
    cores.auto_threads(max_age=1.0)  # too old
    assert len(reads) == 3
