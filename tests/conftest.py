"""Shared fixtures. Tests that read ../shared/datasets skip, saying why, when it is absent."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def block_torch():
    """Python source that, run first in a subprocess, makes every ``import torch`` fail:
    the proof that a torch-free path stays torch-free."""
    return (
        "import sys\n"
        "class _NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked in this test')\n"
        "sys.meta_path.insert(0, _NoTorch())\n"
    )


@pytest.fixture
def shared_datasets():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (it exists on CI and developer machines only)")
    return SHARED


@pytest.fixture
def mixed_frame():
    """A small table with numeric, categorical and missing values, and a known target."""
    rng = np.random.default_rng(0)
    n = 300
    a = rng.normal(size=n)
    b = rng.uniform(-2, 2, size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    y = np.sin(2 * a) + b**2 + np.where(color == "red", 1.0, 0.0) + 0.05 * rng.normal(size=n)
    a_obs = a.copy()
    a_obs[rng.choice(n, 20, replace=False)] = np.nan
    color_obs = color.astype(object)
    color_obs[rng.choice(n, 10, replace=False)] = None
    return pd.DataFrame({"a": a_obs, "b": b, "color": color_obs, "y": y})


@pytest.fixture
def small_model():
    """A factory of fast DNNRegressors: ``small_model(max_iter=5)``."""
    from dnnreg import DNNRegressor

    def make(**kw):
        params = dict(hidden_layer_sizes=(32, 32), n_ensemble=2, max_iter=30, random_state=0)
        params.update(kw)
        return DNNRegressor(**params)

    return make
