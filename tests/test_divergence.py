"""Divergence: a non-finite or exploded epoch rolls back to the last good state and goes on
at a tenth of the learning rate; past the bound, one error names the learning rate; a
network whose members all predict one constant says so rather than passing silently."""

import math
import warnings

import numpy as np
import pytest
import torch

from dnnreg import DNNRegressor
from dnnreg.notices import ConvergenceWarning
from dnnreg.training.loop import GOOD_STATE_EVERY, LR_CUT, MAX_RETRIES, TrainingDivergedError
from dnnreg.training.optim import FusedAdam, Schedule


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=n)


def _model(**kw):
    params = dict(hidden_layer_sizes=(16,), n_ensemble=2, max_iter=12, random_state=0)
    return DNNRegressor(**{**params, **kw})


class _BlowUpOnce:
    """At the start of epoch ``at`` (the first time only) scale every weight by 1e30: the
    epoch's loss is then inf, whatever the learning rate."""

    def __init__(self, at):
        self.at, self.epochs, self.done = at, 0, False

    def on_epoch_begin(self, model):
        self.epochs += 1
        if self.epochs == self.at and not self.done:
            self.done = True
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(1e30)


def test_a_blown_up_epoch_rolls_back_and_training_goes_on():
    X, y = _data()
    at = GOOD_STATE_EVERY + 2  # rolls back to the checkpoint of epoch GOOD_STATE_EVERY
    plain = _model(early_stopping=False).fit(X, y)
    with pytest.warns(ConvergenceWarning, match=f"rolled back to epoch {GOOD_STATE_EVERY}"):
        model = _model(early_stopping=False).fit(X, y, callbacks=[_BlowUpOnce(at)])
    assert [r["epoch"] for r in model.history_] == list(range(1, 13))
    pred = model.predict(X)
    assert np.isfinite(pred).all() and np.corrcoef(pred, y)[0, 1] > 0.9
    # the epochs up to the checkpoint are the uninterrupted run's; from it on, redone at a
    # tenth of the rate
    kept = GOOD_STATE_EVERY
    for a, b in zip(plain.history_[:kept], model.history_[:kept]):
        assert a["train_loss"] == b["train_loss"] and a["lr"] == b["lr"]
    for a, b in zip(plain.history_[kept:], model.history_[kept:]):
        assert b["lr"] == pytest.approx(LR_CUT * a["lr"], rel=1e-9)


def test_a_hopeless_learning_rate_raises_one_error_naming_it():
    X, y = _data()
    with pytest.warns(UserWarning, match="rolled back"):
        with pytest.raises(TrainingDivergedError, match=r"learning_rate_init=1e\+06"):
            _model(learning_rate_init=1e6).fit(X, y)


def test_too_large_a_rate_never_predicts_one_constant_silently():
    """learning_rate_init=100 used to exit cleanly predicting one value for every row: now
    it either recovers (finite, varied predictions) or says what happened."""
    X, y = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pred = _model(learning_rate_init=100.0).fit(X, y).predict(X)
        except TrainingDivergedError as err:
            assert "learning_rate_init=100" in str(err)
            return
    said = " ".join(str(w.message) for w in caught)
    assert np.isfinite(pred).all()
    assert pred.std() > 1e-6 or "same value" in said, said


def test_the_schedule_state_round_trips_and_scales():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([p], lr=0.5)
    sched = Schedule(
        opt, "onecycle", total_steps=100, steps_per_epoch=10, warmup=0.1, step_size=5,
        gamma=0.1, patience=2,
    )  # fmt: skip
    for _ in range(7):
        sched.step_batch()
    saved, lr_at_7 = sched.state(), opt.param_groups[0]["lr"]
    for _ in range(20):
        sched.step_batch()
    sched.load_state(saved)
    assert opt.param_groups[0]["lr"] == lr_at_7
    sched.scale(0.1)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * lr_at_7)


def test_fused_adam_resumes_from_its_state_dict_exactly():
    if not FusedAdam.supported(torch.nn.Linear(2, 2)):
        pytest.skip("this torch has no fused Adam kernel")
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 2)
    opt = FusedAdam([{"params": net.parameters(), "weight_decay": 0.0}], lr=0.1, decoupled=True)
    x = torch.randn(8, 4)

    def step():
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()

    for _ in range(3):
        step()
    weights, state = {k: v.clone() for k, v in net.state_dict().items()}, opt.state_dict()
    step()
    after = {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(weights)
    opt.load_state_dict(state)
    step()
    for k in after:
        assert torch.equal(net.state_dict()[k], after[k])


def test_the_cli_reports_divergence_in_one_line(tmp_path, capsys):
    import pandas as pd

    from dnnreg.cli import main

    X, y = _data()
    pd.DataFrame(X, columns=list("abcd")).assign(y=y).to_csv(tmp_path / "t.csv", index=False)
    argv = ["train", str(tmp_path / "t.csv"), "--target", "y", "--out", str(tmp_path / "r")]
    fast = ["--set", "max_iter=3", "--set", "n_ensemble=1", "--set", "hidden_layer_sizes=8"]
    assert main([*argv, *fast, "--set", "learning_rate_init=1e6"]) == 1
    err = capsys.readouterr().err
    assert "training diverged" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
    assert math.isfinite(MAX_RETRIES)


def test_a_network_of_constant_members_is_named():
    """Dead ReLUs (or a vanished signal): every member gives one value on every held-out
    row. A warning, so that a vanishing-gradient study still gets its model."""
    model = _model(learning_rate_init=0.5)
    with pytest.warns(ConvergenceWarning, match=r"same value.*learning_rate_init \(now 0.5\)"):
        model._warn_if_dead(torch.full((2, 30, 1), 0.25))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model._warn_if_dead(torch.arange(60.0).reshape(2, 30, 1))  # varied: silent
