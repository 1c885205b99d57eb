"""One writer per output path: a second process writing the same path meanwhile is
refused with the first one's pid, never interleaved; a lock of a killed process is taken
over; the lock file goes with its holder."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dnnreg import DNNRegressor, save
from dnnreg._files import OutputBusyError, lock

pytestmark = pytest.mark.skipif(os.name != "posix", reason="flock locks are POSIX")

HOLDER = r"""
import sys, time
from pathlib import Path
from dnnreg._files import lock
with lock(sys.argv[1]):
    Path(sys.argv[2]).write_text("held")
    time.sleep(120)
"""


def _hold(path, tmp_path):
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(ready)])
    for _ in range(400):
        if ready.exists():
            return proc
        assert proc.poll() is None
        time.sleep(0.05)
    raise AssertionError("the holder never took the lock")


@pytest.fixture
def model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    return DNNRegressor(hidden_layer_sizes=(4,), n_ensemble=1, max_iter=1, random_state=0).fit(
        X, X.sum(1)
    )


def test_a_second_writer_is_refused_naming_the_first(tmp_path, model):
    holder = _hold(tmp_path / "m", tmp_path)
    try:
        with pytest.raises(OutputBusyError, match=rf"being written by process {holder.pid}"):
            save(model, tmp_path / "m")
        assert not (tmp_path / "m").exists()  # nothing written beside the holder
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holders_lock_is_taken_over(tmp_path, model):
    holder = _hold(tmp_path / "m", tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / ".m.dnnreg-lock").exists()  # what a kill leaves
    save(model, tmp_path / "m")  # the kernel released the flock: taken over
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "ready"]  # lock gone too


def test_the_lock_is_reentrant_and_leaves_nothing(tmp_path, model):
    with lock(tmp_path / "m"):
        with lock(tmp_path / "m"):
            save(model, tmp_path / "m")
        assert (tmp_path / ".m.dnnreg-lock").read_text().strip() == str(os.getpid())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    with lock(tmp_path / "new" / "deeper" / "x"):
        pass
    assert not (tmp_path / "new").exists()  # folders made for the lock alone are removed


def test_two_fits_cannot_share_a_checkpoint_folder(tmp_path):
    holder = _hold(tmp_path / "ck", tmp_path)
    try:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(50, 2))
        with pytest.raises(OutputBusyError, match="being written by process"):
            DNNRegressor(max_iter=1, checkpoint_dir=tmp_path / "ck").fit(X, X.sum(1))
    finally:
        holder.kill()
        holder.wait()


def test_the_cli_refuses_a_run_directory_being_trained(tmp_path, capsys):
    import pandas as pd

    from dnnreg.cli import main

    holder = _hold(tmp_path / "run", tmp_path)
    try:
        X = np.random.default_rng(0).normal(size=(40, 2))
        pd.DataFrame(X, columns=["a", "b"]).assign(y=X.sum(1)).to_csv(tmp_path / "t.csv")
        code = main(
            ["train", str(tmp_path / "t.csv"), "--target", "y", "--out", str(tmp_path / "run")]
        )
        err = capsys.readouterr().err
        assert code == 1 and f"being written by process {holder.pid}" in err
        assert "Traceback" not in err
    finally:
        holder.kill()
        holder.wait()
