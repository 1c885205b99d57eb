"""Storage faults (no such folder, a full disk) while writing an output: one line naming
the output path, never a temp file, and the model that was there before is intact."""

import errno
import os
import sys

import numpy as np
import pytest

from dnnreg import DNNRegressor, _files, load, save
from dnnreg._files import StorageError, write_text


@pytest.fixture
def model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    return DNNRegressor(hidden_layer_sizes=(8,), n_ensemble=1, max_iter=2, random_state=0).fit(
        X, X.sum(1)
    ), X


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc (Linux)")
def test_an_unwritable_place_is_one_line_naming_the_path(model, tmp_path):
    with pytest.raises(StorageError, match=r"cannot write '/proc/dnnreg-nope/m': .*folder"):
        save(model[0], "/proc/dnnreg-nope/m")
    with pytest.raises(StorageError) as err:
        write_text("/proc/dnnreg-nope.csv", "a\n")
    assert "dnnreg-tmp" not in str(err.value) and "'/proc/dnnreg-nope.csv'" in str(err.value)


def test_a_full_disk_keeps_the_old_model(model, tmp_path, monkeypatch):
    fitted, X = model
    save(fitted, tmp_path / "m")
    before = load(tmp_path / "m").predict(X)

    real_fdopen = os.fdopen

    class FullDisk:  # a file whose writes fail as they do on a full disk (errno, no name)
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_files.os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    with pytest.raises(StorageError, match=r"No space left on device; free space"):
        save(fitted, tmp_path / "m", overwrite=True)
    monkeypatch.undo()
    np.testing.assert_array_equal(load(tmp_path / "m").predict(X), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp left behind


def test_the_cli_says_it_in_one_line(tmp_path, capsys):
    import pandas as pd

    from dnnreg.cli import main

    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    pd.DataFrame(X, columns=["a", "b"]).assign(y=X.sum(1)).to_csv(tmp_path / "t.csv", index=False)
    fast = ["--set", "max_iter=1", "--set", "n_ensemble=1", "--set", "hidden_layer_sizes=4"]
    code = main(["train", str(tmp_path / "t.csv"), "--target", "y", "--out", "/proc/nope/r", *fast])
    err = capsys.readouterr().err
    assert code == 1 and "cannot write '/proc/nope/r'" in err and "Traceback" not in err


@pytest.fixture
def small_fs(tmp_path):
    """A real 2 MiB tmpfs mounted for the test (needs root, as in CI)."""
    import subprocess

    point = tmp_path / "fs"
    point.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(point)])
    if done.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_really_full_disk_keeps_the_old_model(model, small_fs):
    fitted, X = model
    save(fitted, small_fs / "m")
    before = load(small_fs / "m").predict(X)
    with open(small_fs / "filler", "wb") as f:  # fill the disk to its last byte
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    with pytest.raises(StorageError, match=r"cannot write '.*m': No space left on device"):
        save(fitted, small_fs / "m", overwrite=True)
    np.testing.assert_array_equal(load(small_fs / "m").predict(X), before)
    assert sorted(p.name for p in small_fs.iterdir()) == ["filler", "m"]  # no temp left


def test_a_read_only_disk_keeps_the_old_model(model, small_fs):
    import subprocess

    fitted, X = model
    save(fitted, small_fs / "m")
    before = load(small_fs / "m").predict(X)
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    with pytest.raises(StorageError, match=r"Read-only file system; .*choose a writable path"):
        save(fitted, small_fs / "m", overwrite=True)
    np.testing.assert_array_equal(load(small_fs / "m").predict(X), before)
