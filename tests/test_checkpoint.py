"""Checkpoints and resume: a fit stopped anywhere (a stop request at an epoch's end or
inside one, a kill -9 during training, during a checkpoint's write or during the final
save) and resumed gives the model of an uninterrupted fit, bit for bit; a checkpoint of
another fit is refused; finished fits clean up after themselves."""

import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from dnnreg import DNNClassifier, DNNRegressor
from dnnreg._files import OutputExistsError
from dnnreg.training import checkpoint as ck
from dnnreg.training.checkpoint import CheckpointMismatchError, TrainingInterrupted


# ---------------------------------------------------------------------- plain data
def test_pack_and_unpack_are_inverse_on_what_a_training_state_holds():
    state = {
        "w": torch.arange(6.0).view(2, 3),
        0: (torch.zeros(2), torch.ones(()), 3),  # an optimiser state: int keys, tuples
        "best": math.inf,
        "nan": -math.inf,
        "names": ["a", None, True],
        "__tensor__": "a key that looks like a tag",
        "arr": np.array([1, 2], dtype=np.int64),
    }
    tensors = {}
    plain = ck.pack(state, tensors)
    json.dumps(plain, allow_nan=False)  # plain JSON: no NaN, no inf, no objects
    back = ck.unpack(json.loads(json.dumps(plain)), tensors)
    assert set(back) == set(state)
    assert torch.equal(back["w"], state["w"]) and back["w"].shape == (2, 3)
    assert (
        isinstance(back[0], tuple) and back[0][2] == 3 and torch.equal(back[0][1], torch.ones(()))
    )
    assert back["best"] == math.inf and back["nan"] == -math.inf
    assert back["names"] == ["a", None, True] and back["__tensor__"] == state["__tensor__"]
    np.testing.assert_array_equal(back["arr"], state["arr"])


def test_a_checkpoint_cannot_hold_an_object():
    with pytest.raises(TypeError, match="cannot hold object"):
        ck.pack({"x": object()}, {})


def test_auto_cadence_keeps_writing_under_two_percent(monkeypatch):
    clock = {"t": 100.0}
    monkeypatch.setattr(ck.time, "perf_counter", lambda: clock["t"])
    c = ck.Checkpointer("unused", every="auto")
    clock["t"] += ck.AUTO_SECONDS - 0.1
    assert not c.due(1)
    clock["t"] += 0.2
    assert c.due(2)
    c.last_write, c.write_seconds = clock["t"], 1.0  # a write that took 1 s
    clock["t"] += 49.0
    assert not c.due(3)  # 1 s of writing per 50 s of training at most: 2 %
    clock["t"] += 1.0
    assert c.due(4)
    every3 = ck.Checkpointer("unused", every=3)
    assert [e for e in range(1, 10) if every3.due(e)] == [3, 6, 9]


# ---------------------------------------------------------------------- library resume
def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, 2 * X[:, 0] + np.sin(2 * X[:, 1]) + X[:, 2] * X[:, 3] + 0.1 * rng.normal(size=n)


# dropout and bagging on (the defaults), so every generator matters
SMALL = dict(max_iter=8, n_ensemble=2, hidden_layer_sizes=(16, 16), batch_size=32, random_state=0)


class SignalAt:
    """Raises a real signal in this process at an epoch's end or after the n-th step."""

    def __init__(self, signum, epoch=None, step=None):
        self.signum, self.epoch, self.step, self.epochs, self.steps = signum, epoch, step, 0, 0

    def on_epoch_end(self, record, model):
        self.epochs += 1
        if self.epochs == self.epoch:
            signal.raise_signal(self.signum)

    def on_after_backward(self, model, last):
        self.steps += 1
        if self.steps == self.step:
            signal.raise_signal(self.signum)


@pytest.mark.parametrize(
    "cls, params, stop",
    [
        (DNNRegressor, {}, dict(signum=signal.SIGINT, epoch=3)),
        (DNNRegressor, {}, dict(signum=signal.SIGTERM, step=30)),  # inside epoch 3
        (DNNRegressor, {}, dict(signum=signal.SIGINT, epoch=8)),  # the last epoch
        (DNNRegressor, {"solver": "sgd", "lr_schedule": "cosine"}, dict(signum=2, step=20)),
        (
            DNNRegressor,
            {"restore_best_weights": True, "n_iter_no_change": 3},
            dict(signum=2, epoch=4),
        ),
        (DNNClassifier, {}, dict(signum=signal.SIGINT, step=25)),
    ],
)
def test_a_stopped_and_resumed_fit_is_the_uninterrupted_fit(tmp_path, cls, params, stop):
    X, y = _data()
    if cls is DNNClassifier:
        y = (y > np.median(y)).astype(int)
    settings = {**SMALL, **params}
    expected = cls(**settings).fit(X, y)
    directory = tmp_path / "ck"
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as err:
        cls(**settings, checkpoint_dir=directory, checkpoint_every=2).fit(
            X, y, callbacks=[SignalAt(**stop)]
        )
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert err.value.exit_code == 128 + stop["signum"]
    assert isinstance(err.value, KeyboardInterrupt) and "resume" in str(err.value)
    assert (directory / "state.json").is_file()
    resumed = cls(**settings, checkpoint_dir=directory, checkpoint_every=2).fit(X, y, resume=True)
    out = resumed.predict_proba(X) if cls is DNNClassifier else resumed.predict(X)
    ref = expected.predict_proba(X) if cls is DNNClassifier else expected.predict(X)
    np.testing.assert_array_equal(out, ref)
    assert resumed.best_epoch_ == expected.best_epoch_
    assert [r["train_loss"] for r in resumed.history_] == [
        r["train_loss"] for r in expected.history_
    ]
    assert not directory.exists()  # a finished fit removes its checkpoint


def test_a_checkpoint_of_another_fit_is_refused(tmp_path):
    X, y = _data()
    directory = tmp_path / "ck"
    with pytest.raises(TrainingInterrupted):
        DNNRegressor(**SMALL, checkpoint_dir=directory, checkpoint_every=1).fit(
            X, y, callbacks=[SignalAt(signal.SIGINT, epoch=2)]
        )
    for change in ({"y": y[::-1]}, {"lr": 3e-3}):  # other rows, another rate
        model = DNNRegressor(
            **SMALL, checkpoint_dir=directory, learning_rate_init=change.get("lr", 1e-3)
        )
        with pytest.raises(CheckpointMismatchError, match="another fit"):
            model.fit(X, change.get("y", y), resume=True)


def test_resume_without_a_checkpoint_yet_warns_and_starts_over(tmp_path):
    X, y = _data()
    expected = DNNRegressor(**SMALL).fit(X, y).predict(X)
    model = DNNRegressor(**SMALL, checkpoint_dir=tmp_path / "ck")
    with pytest.warns(UserWarning, match="no checkpoint .* yet"):
        model.fit(X, y, resume=True)
    np.testing.assert_array_equal(model.predict(X), expected)


def test_keep_checkpoint_keeps_the_finished_fits_state(tmp_path):
    X, y = _data()
    DNNRegressor(**SMALL, checkpoint_dir=tmp_path / "ck", keep_checkpoint=True).fit(X, y)
    assert json.loads((tmp_path / "ck" / "state.json").read_text())["state"]["epoch"] >= 1


def test_checkpoint_dir_of_the_users_is_refused_before_training(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    X, y = _data()
    with pytest.raises(OutputExistsError, match="did not write"):
        DNNRegressor(**SMALL, checkpoint_dir=tmp_path / "mine").fit(X, y)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="checkpoint_dir is None"):
        DNNRegressor(**SMALL).fit(X, y, resume=True)


def test_checkpoints_do_not_change_the_fit(tmp_path):
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and say nothing
        plain = DNNRegressor(**SMALL).fit(X, y).predict(X)
        checked = DNNRegressor(**SMALL, checkpoint_dir=tmp_path / "c", checkpoint_every=1)
        np.testing.assert_array_equal(checked.fit(X, y).predict(X), plain)


# ---------------------------------------------------------------------- CLI, real kills
# The driver kills its own process with SIGKILL at a chosen moment: during the n-th write
# of a file of a given name (a checkpoint's tensors, the final model's weights), or not.
DRIVER = r"""
import os, signal, sys
from pathlib import Path
import dnnreg._files as files

name, nth = os.environ.get("KILL_FILE"), int(os.environ.get("KILL_AT", "0"))
real, seen = files.write_file, {"n": 0}

def write_file(path, data, **kw):
    if Path(path).name == name:
        seen["n"] += 1
        if seen["n"] == nth:
            Path(path).write_bytes(data[: len(data) // 2])  # half a file, then the kill
            os.kill(os.getpid(), signal.SIGKILL)
    return real(path, data, **kw)

files.write_file = write_file  # before any module imports it by name
from dnnreg.cli import main
sys.exit(main(sys.argv[1:]))
"""

CLI_SETTINGS = [
    *("--set", "max_iter=10", "--set", "n_ensemble=2", "--set", "hidden_layer_sizes=16,16"),
    *("--set", "batch_size=32", "--set", "checkpoint_every=2", "--set", "n_threads=1"),
    *("--quiet",),
]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    X, y = _data(300)
    pd.DataFrame(X, columns=list("abcd")).assign(y=y).to_csv(root / "t.csv", index=False)
    return root / "t.csv"


def _command(table, out):
    return [sys.executable, "-c", DRIVER, "train", str(table), "--target", "y", "--out", str(out)]


def _train(table, out, *extra, kill_file=None, kill_at=0, settings=CLI_SETTINGS):
    env = {**os.environ, "KILL_FILE": kill_file or "", "KILL_AT": str(kill_at)}
    return subprocess.run(
        [*_command(table, out), *settings, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def uninterrupted(table, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = _train(table, out)
    assert proc.returncode == 0, proc.stderr
    predictions = pd.read_csv(out / "predictions.csv")
    predictions.attrs["run"] = out
    return predictions


@pytest.mark.parametrize(
    "kill_file, kill_at",
    [
        ("tensors.safetensors", 3),  # during the third checkpoint (the second stays)
        ("weights.safetensors", 1),  # during the final save of the finished model
    ],
)
def test_a_kill_minus_9_then_resume_gives_the_uninterrupted_run(
    table, uninterrupted, tmp_path, kill_file, kill_at
):
    out = tmp_path / "run"
    killed = _train(table, out, kill_file=kill_file, kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = _train(table, out)
    assert again.returncode == 1 and "--resume" in again.stderr and "Traceback" not in again.stderr
    resumed = _train(table, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    pd.testing.assert_frame_equal(pd.read_csv(out / "predictions.csv"), uninterrupted)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".dnnreg.json", "config.json", "history.json", "importance.json", "metrics.json"]
        + ["model", "predictions.csv"]
    )  # the checkpoint went with the finished run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temp left behind


def test_sigint_writes_a_checkpoint_and_exits_130(table, uninterrupted, tmp_path):
    out = tmp_path / "run"
    settings = [s.replace("max_iter=10", "max_iter=150") for s in CLI_SETTINGS]
    settings += ["--set", "n_iter_no_change=1000"]
    proc = subprocess.Popen(
        [*_command(table, out), *settings], stderr=subprocess.PIPE, text=True, env=os.environ
    )
    for _ in range(600):  # wait for the first checkpoint: training is under way
        if (out / "checkpoint" / "state.json").exists():
            break
        proc.poll()
        assert proc.returncode is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err
    assert "SIGINT: training stopped at epoch" in err and "Traceback" not in err
    assert (out / "checkpoint" / "state.json").is_file()
    finished = _train(table, out, "--resume", "--keep-checkpoint", settings=settings)
    assert finished.returncode == 0, finished.stderr
    assert (out / "checkpoint" / "state.json").is_file()  # kept, as asked


def test_resume_refusals_are_one_line(table, uninterrupted, tmp_path, capsys):
    from dnnreg.cli import main

    def train(out):
        code = main(["train", str(table), "--target", "y", "--out", str(out), "--resume"])
        return code, capsys.readouterr().err

    code, err = train(tmp_path / "none")
    assert code == 1 and "holds no interrupted training" in err and not (tmp_path / "none").exists()
    code, err = train(uninterrupted.attrs["run"])  # a finished run
    assert code == 1 and "finished run, nothing to continue; pass --overwrite" in err


def test_a_training_that_fails_leaves_nothing(table, tmp_path):
    out = tmp_path / "run"
    proc = _train(table, out, "--set", "learning_rate_init=1e6", "--set", "lr_schedule=constant")
    assert proc.returncode == 1 and "diverged" in proc.stderr, proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []
