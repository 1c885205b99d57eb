"""Determinism, as the README states it: the same seed on the same machine gives the same
predictions bit for bit, in another process too, and (measured on this CPU's kernels) with
one thread or two."""

import subprocess
import sys

import numpy as np

from dnnreg import DNNRegressor

FIT = r"""
import hashlib, sys
import numpy as np
from dnnreg import DNNRegressor
rng = np.random.default_rng(0)
X = rng.normal(size=(500, 6)); y = X[:, 0] * X[:, 1] + np.sin(X[:, 2])
m = DNNRegressor(max_iter=6, n_ensemble=3, hidden_layer_sizes=(64, 64), random_state=7,
                 n_threads=int(sys.argv[1])).fit(X, y)  # dropout, bagging: the defaults
print(hashlib.sha256(m.predict(X).tobytes()).hexdigest())
"""


def _digest(threads: int) -> str:
    done = subprocess.run(
        [sys.executable, "-c", FIT, str(threads)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_same_seed_in_another_process_is_bit_identical():
    assert _digest(1) == _digest(1)


def test_one_thread_or_two_give_the_same_model():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 6))
    y = X[:, 0] * 2 + np.sin(3 * X[:, 1])
    kw = dict(max_iter=3, n_ensemble=2, hidden_layer_sizes=(256, 256), random_state=0)
    one = DNNRegressor(**kw, n_threads=1).fit(X, y).predict(X)
    two = DNNRegressor(**kw, n_threads=2).fit(X, y).predict(X)
    np.testing.assert_array_equal(one, two)
