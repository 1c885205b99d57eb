"""Nothing global changes behind the user's back: the matplotlib backend and pyplot's
figures, Optuna's verbosity, the dnnreg logger, and the random generators a fit does not
own are the same before and after each call that touches them."""

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from dnnreg import DNNRegressor

TINY = dict(hidden_layer_sizes=(8,), n_ensemble=1, max_iter=2, random_state=0)


def _xy(n=80):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    return X, X["a"] + 0.1 * rng.normal(size=n)


def test_plots_leave_the_backend_and_pyplot_alone(tmp_path):
    """In a fresh process whose backend is not Agg (as a notebook's inline one is not),
    every kind of figure is written and the backend and pyplot's registry are unchanged."""
    code = textwrap.dedent(
        f"""
        import matplotlib
        matplotlib.use("svg")
        import matplotlib.pyplot as plt
        from dnnreg.report import plots
        history = [{{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e}} for e in (1, 2, 3)]
        plots.history_plot(history, r"{tmp_path}/h.png")
        plots.prediction_plot([1.0, 2.0, 3.0], [1.1, 1.9, 3.2], r"{tmp_path}/p.png")
        plots.topology_plot([3, 8, 1], ["in", "hidden", "out"], r"{tmp_path}/t.png")
        print(matplotlib.get_backend(), len(plt.get_fignums()))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg", "0"]
    for name in ("h", "p", "t"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_tuning_restores_optunas_verbosity(tmp_path):
    optuna = pytest.importorskip("optuna")
    from dnnreg.studies.tune import tune

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    try:
        X, y = _xy()
        tune(
            X,
            y,
            n_trials=1,
            time_budget=None,
            fixed={"max_iter": 2, "n_ensemble": 1},
            storage=str(tmp_path / "s.journal"),
        )
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    finally:
        optuna.logging.set_verbosity(before)


def test_a_cpu_fit_seeds_no_cuda_generator_and_restores_the_cpu_stream(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a CPU fit must not seed CUDA generators")

    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", refuse)
    monkeypatch.setattr(torch.cuda, "manual_seed", refuse)
    DNNRegressor(**TINY, device="cpu").fit(*_xy())
    assert torch.equal(torch.rand(3), expected)  # the user's stream did not move


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_fit_restores_every_cuda_generator():
    states = torch.cuda.get_rng_state_all()
    DNNRegressor(**TINY, device="cuda").fit(*_xy())
    assert all(torch.equal(a, b) for a, b in zip(states, torch.cuda.get_rng_state_all()))
