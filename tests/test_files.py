"""dnnreg._files: outputs replace only dnnreg's own outputs, atomically, fsynced, with the
umask's modes; a kill at any step leaves the old or the new output; leftovers are cleaned."""

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from dnnreg import _files
from dnnreg._files import (
    MARKER,
    OutputExistsError,
    output_dir,
    write_file,
    write_json,
)


def snapshot(root: Path) -> dict:
    """Every entry under ``root`` with its bytes (files) or None (directories)."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def user_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "houses.csv").write_text("a,price\n1,2\n")
    (path / "notes.md").write_text("my notes\n")
    return path


def write_output(path: Path, text: str, **kw) -> None:
    with output_dir(path, kind="run", **kw) as tmp:
        (tmp / "metrics.json").write_text(text)
        (tmp / "model").mkdir()
        (tmp / "model" / "weights.bin").write_bytes(b"w" * 10)


def test_a_users_directory_is_refused_and_left_byte_identical(tmp_path):
    project = user_dir(tmp_path / "project")
    before = snapshot(tmp_path)
    for overwrite in (False, True):
        with pytest.raises(
            OutputExistsError,
            match=r"'.*project' is an existing directory "
            r"that dnnreg did not write \(it holds houses.csv, notes.md\); "
            r"choose a new path",
        ):
            write_output(project, "x", overwrite=overwrite)
    assert snapshot(tmp_path) == before


def test_a_regular_file_and_a_symlink_are_refused(tmp_path):
    (tmp_path / "results.txt").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "results.txt")
    before = snapshot(tmp_path)
    with pytest.raises(OutputExistsError, match="is an existing file.*choose a new path"):
        write_output(tmp_path / "results.txt", "x", overwrite=True)
    with pytest.raises(OutputExistsError, match="symbolic link"):
        write_output(tmp_path / "link", "x", overwrite=True)
    assert snapshot(tmp_path) == before


def test_an_earlier_output_is_replaced_only_with_overwrite(tmp_path):
    out = tmp_path / "run"
    write_output(out, "old")
    with pytest.raises(
        OutputExistsError, match="holds an earlier dnnreg run; pass overwrite=True to replace it"
    ):
        write_output(out, "new")
    assert (out / "metrics.json").read_text() == "old"
    write_output(out, "new", overwrite=True)
    assert (out / "metrics.json").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["run"]  # nothing left beside it


def test_an_empty_directory_is_used(tmp_path):
    (tmp_path / "empty").mkdir()
    write_output(tmp_path / "empty", "x")
    assert (tmp_path / "empty" / "metrics.json").read_text() == "x"
    assert sorted(os.listdir(tmp_path)) == ["empty"]


def test_an_output_holding_a_users_file_is_refused_even_with_overwrite(tmp_path):
    out = tmp_path / "run"
    write_output(out, "old")
    (out / "notes.md").write_text("mine")
    (out / "metrics.json").write_text("edited by hand, longer than before")
    before = snapshot(tmp_path)
    with pytest.raises(
        OutputExistsError,
        match=r"is a dnnreg run but also holds "
        r"metrics.json, notes.md, which dnnreg did not write",
    ):
        write_output(out, "new", overwrite=True)
    assert snapshot(tmp_path) == before


def test_a_file_added_while_running_stops_the_replace_and_keeps_both(tmp_path):
    out = tmp_path / "run"
    write_output(out, "old")
    with pytest.raises(
        OutputExistsError,
        match=r"also holds notes.md.*changed while dnnreg "
        r"ran; the new output was kept at",
    ):
        with output_dir(out, kind="run", overwrite=True) as tmp:
            (tmp / "metrics.json").write_text("new")
            (out / "notes.md").write_text("written during the fit")  # after the first check
    assert (out / "metrics.json").read_text() == "old"
    assert (out / "notes.md").read_text() == "written during the fit"
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("run.new-")]
    assert len(kept) == 1 and (kept[0] / "metrics.json").read_text() == "new"


def test_removing_an_old_output_keeps_what_dnnreg_did_not_write(tmp_path):
    old = tmp_path / ".run.old"
    write_output(old, "old")
    (old / "model" / "notes.md").write_text("mine")  # appeared after the last check
    with pytest.warns(UserWarning, match="kept files dnnreg did not write"):
        _files.remove_output(old, visible_name=tmp_path / "run.replaced")
    assert snapshot(tmp_path / "run.replaced") == {
        MARKER: (tmp_path / "run.replaced" / MARKER).read_bytes(),
        "model": None,
        "model/notes.md": b"mine",
    }


def test_a_failure_inside_leaves_the_old_output_and_no_debris(tmp_path):
    out = tmp_path / "run"
    write_output(out, "old")
    before = snapshot(tmp_path)
    with pytest.raises(RuntimeError):
        with output_dir(out, kind="run", overwrite=True) as tmp:
            (tmp / "metrics.json").write_text("half")
            raise RuntimeError("disk full")
    assert snapshot(tmp_path) == before


def test_a_reader_never_sees_the_path_empty_during_replaces(tmp_path):
    out = tmp_path / "run"
    write_output(out, "0")
    seen, stop = [], threading.Event()

    def read():
        while not stop.is_set():
            seen.append((out / "metrics.json").exists())

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(100):
        write_output(out, str(i), overwrite=True)
    stop.set()
    reader.join()
    assert len(seen) > 100 and all(seen)


def test_files_and_directories_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def record(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name a file descriptor's path")
    monkeypatch.setattr(os, "fsync", record)
    out = tmp_path / "run"
    write_output(out, "x")
    final = {str(p) for p in out.rglob("*") if p.is_file()}
    # The files were fsynced under the temp name they were written at, then renamed.
    names = {Path(s).name for s in synced}
    assert {Path(f).name for f in final} <= names
    assert str(tmp_path) in synced  # the parent, after the rename
    assert any(Path(s).name == "model" for s in synced)  # a directory's entries


def test_a_single_file_is_replaced_only_with_overwrite(tmp_path):
    path = tmp_path / "preds.csv"
    write_file(path, b"one")
    with pytest.raises(OutputExistsError, match="already exists; pass overwrite=True"):
        write_file(path, b"two")
    assert path.read_bytes() == b"one"
    write_file(path, b"two", overwrite=True)
    assert path.read_bytes() == b"two" and os.listdir(tmp_path) == ["preds.csv"]
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputExistsError, match="is a directory"):
        write_file(tmp_path / "d", b"x", overwrite=True)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_dead_writers_are_removed_and_nothing_else(tmp_path):
    out, dead, alive = tmp_path / "run", _dead_pid(), os.getppid()
    tmp = tmp_path / f".run.dnnreg-tmp-{dead}-0000aaaa"  # a killed write
    tmp.mkdir()
    (tmp / MARKER).write_text(json.dumps({"dnnreg_output": "run", "state": "writing"}))
    (tmp / "half.json").write_text("{")
    old = tmp_path / f".run.dnnreg-tmp-{dead}-0000bbbb"  # exchanged out, not yet removed
    write_output(old, "old")
    busy = tmp_path / f".run.dnnreg-tmp-{alive}-0000cccc"  # a live process writing now
    busy.mkdir()
    (busy / MARKER).write_text(json.dumps({"dnnreg_output": "run", "state": "writing"}))
    unmarked = tmp_path / f".run.dnnreg-tmp-{dead}-0000dddd"  # the name, but not our marker
    user_dir(unmarked)
    stray = tmp_path / f".preds.csv.dnnreg-tmp-{dead}-0000eeee"  # a killed single-file write
    stray.write_text("partial")
    other = tmp_path / f".other.dnnreg-tmp-{dead}-0000ffff"  # another path's: not this write's
    other.mkdir()
    (other / MARKER).write_text(json.dumps({"dnnreg_output": "run", "state": "writing"}))
    write_output(out, "new")
    write_file(tmp_path / "preds.csv", b"p")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["run", "preds.csv", busy.name, unmarked.name, other.name]
    )
    assert snapshot(unmarked) == {"houses.csv": b"a,price\n1,2\n", "notes.md": b"my notes\n"}


@pytest.mark.parametrize(
    "mask, dir_mode, file_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)]
)
def test_modes_follow_the_umask(tmp_path, mask, dir_mode, file_mode):
    from dnnreg.model_file import write_model

    old = os.umask(mask)
    try:
        write_output(tmp_path / "run", "x")
        write_json(tmp_path / "one.json", {"a": 1})
        weights = {"w": np.zeros(3, np.float32)}
        write_model(tmp_path / "model", weights=weights, preprocessor={}, config={})
    finally:
        os.umask(old)
    entries = [tmp_path / "one.json"]
    for d in ("run", "model"):  # the model's weights too: safetensors writes 0600 itself
        entries += [tmp_path / d, *(tmp_path / d).rglob("*")]
    for p in entries:
        want = dir_mode if p.is_dir() else file_mode
        assert stat.S_IMODE(p.stat().st_mode) == want, p


# ---------------------------------------------------------------------- kills, real models
KILL_SCRIPT = r"""
import os, sys
from pathlib import Path
import dnnreg._files as files
from dnnreg import load, save

step, path, source = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
model = load(source)
die = lambda *a: os._exit(9)
calls = {"n": 0}

def after(fn, n=1):
    def wrapped(*a, **k):
        out = fn(*a, **k)
        calls["n"] += 1
        if calls["n"] >= n:
            die()
        return out
    return wrapped

if step == "writing":          # inside the temp directory, before the marker is complete
    files._manifest = die
elif step == "before_exchange":
    files.exchange = die
elif step == "after_exchange":
    files.exchange = after(files.exchange)
elif step == "removing_old":   # the old model half removed
    Path.unlink = after(Path.unlink, n=2)
elif step.startswith("fallback"):  # no exchange rename: two renames
    def no_exchange(a, b):
        raise NotImplementedError
    files.exchange = no_exchange
    os.rename = after(os.rename, n=1 if step == "fallback_between" else 2)
save(model, path, overwrite=True)
os._exit(0)
"""


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, mixed_frame_module):
    from dnnreg import DNNRegressor, save

    root = tmp_path_factory.mktemp("models")
    X, y = mixed_frame_module.drop(columns="y"), mixed_frame_module["y"]
    paths = []
    for seed in (0, 1):
        model = DNNRegressor(
            hidden_layer_sizes=(8,), n_ensemble=1, max_iter=2, random_state=seed
        ).fit(X, y)
        paths.append(save(model, root / f"m{seed}"))
    return paths, X


@pytest.fixture(scope="module")
def mixed_frame_module():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=120), rng.normal(size=120)
    return pd.DataFrame({"a": a, "b": b, "y": a - b})


@pytest.mark.parametrize(
    "step",
    [
        "writing",
        "before_exchange",
        "after_exchange",
        "removing_old",
        "fallback_between",
        "fallback_after",
    ],
)
def test_a_kill_at_any_step_leaves_the_old_or_the_new_model(tmp_path, two_models, step):
    import shutil

    import numpy as np

    from dnnreg import load, save

    (old_src, new_src), X = two_models
    path = tmp_path / "model"
    shutil.copytree(old_src, path)
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, step, str(path), str(new_src)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 9, proc.stderr  # killed, not finished
    if step == "fallback_between":
        # Without an exchange rename (not Linux) there is one moment with no model at the
        # path; the next write (or clean_leftovers) puts the old one back first.
        assert not path.exists()
        _files.clean_leftovers(path)
    got = load(path).predict(X)  # loadable, whatever step the kill fell on
    old, new = load(old_src).predict(X), load(new_src).predict(X)
    want_new = step in ("after_exchange", "removing_old", "fallback_after")
    assert np.array_equal(got, new if want_new else old)
    # The next write cleans what the kill left and replaces as usual.
    save(load(new_src), path, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["model"]
    assert np.array_equal(load(path).predict(X), new)


def test_the_fallback_puts_back_an_old_model_a_kill_left_aside(tmp_path, two_models):
    import shutil

    import numpy as np

    from dnnreg import load

    (old_src, new_src), X = two_models
    path = tmp_path / "model"
    shutil.copytree(old_src, path)
    aside = tmp_path / f".model.dnnreg-old-{_dead_pid()}-0000abcd"
    os.rename(path, aside)  # what a kill between the two fallback renames leaves
    _files.clean_leftovers(path)
    assert np.array_equal(load(path).predict(X), load(old_src).predict(X))
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_leftovers_of_the_previous_writer_are_recognised(tmp_path):
    """dnnreg 0.1 left ``.NAME.old-PID`` (a complete old run) and ``.NAME.tmp-XXXXXXXX``
    without a marker; its config.json names dnnreg."""
    dead = _dead_pid()

    def old_run(path):
        path.mkdir()
        (path / "config.json").write_text(json.dumps({"dnnreg_version": "0.1.0"}))
        (path / "metrics.json").write_text("{}")

    old_run(tmp_path / f".run.old-{dead}")
    old_run(tmp_path / ".run.tmp-abcd1234")
    young = tmp_path / ".run.tmp-young123"
    old_run(young)
    for p in (tmp_path / ".run.tmp-abcd1234", tmp_path / f".run.old-{dead}"):
        os.utime(p, (0, 0))  # two days old at least
    _files.clean_leftovers(tmp_path / "run")
    # A kill between 0.1's two renames left no run at the path: it is put back.
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dnnreg_version"] == "0.1.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", young.name])  # too recent
