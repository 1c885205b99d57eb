"""Optimisers against their update rules written out here, schedules against their
formulas (and torch's own schedulers), penalties and clipping against hand values."""

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from dnnreg.network.mlp import MLP
from dnnreg.training.optim import (
    FusedAdam,
    Schedule,
    clip_gradients,
    lr_factor,
    make_optimizer,
    penalty,
)

A = np.array([[3.0, 0.5], [0.5, 1.0]])
B = np.array([1.0, -2.0])


class Quadratic(nn.Module):
    """f(θ) = ½ θᵀAθ - bᵀθ, with θ stored as a 'head.weight' so it is a decayed weight."""

    def __init__(self):
        super().__init__()
        self.head = nn.Module()
        self.head.weight = nn.Parameter(torch.tensor([[[1.0], [1.0]]], dtype=torch.float64))

    def forward(self):
        t = self.head.weight.reshape(2)
        return 0.5 * t @ torch.from_numpy(A) @ t - torch.from_numpy(B) @ t


def _grad(theta):
    return A @ theta - B


def _by_hand(solver, steps, lr, wd=0.0, mu=0.9):
    theta, state = np.array([1.0, 1.0]), {"v": 0.0, "s": 0.0, "m": 0.0}
    for t in range(1, steps + 1):
        g = _grad(theta)
        if solver != "adamw":
            g = g + wd * theta  # L2 through the gradient
        if solver == "sgd":
            theta = theta - lr * g
        elif solver == "momentum":
            state["v"] = mu * state["v"] + g
            theta = theta - lr * state["v"]
        elif solver == "nesterov":
            state["v"] = mu * state["v"] + g
            theta = theta - lr * (g + mu * state["v"])
        elif solver == "adagrad":
            state["s"] = state["s"] + g * g
            theta = theta - lr * g / (np.sqrt(state["s"]) + 1e-10)
        elif solver == "rmsprop":
            state["s"] = 0.99 * state["s"] + 0.01 * g * g
            theta = theta - lr * g / (np.sqrt(state["s"]) + 1e-8)
        else:  # adam, adamw
            if solver == "adamw":
                theta = theta * (1 - lr * wd)  # decoupled decay first
            state["m"] = 0.9 * state["m"] + 0.1 * g
            state["s"] = 0.999 * state["s"] + 0.001 * g * g
            m_hat, s_hat = state["m"] / (1 - 0.9**t), state["s"] / (1 - 0.999**t)
            theta = theta - lr * m_hat / (np.sqrt(s_hat) + 1e-8)
    return theta


@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize(
    "solver", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
)
def test_optimiser_steps_follow_the_update_rule(solver, wd):
    model = Quadratic()
    opt = make_optimizer(model, solver=solver, lr=0.05, weight_decay=wd, momentum=0.9)
    for _ in range(5):
        opt.zero_grad()
        model().backward()
        opt.step()
    np.testing.assert_allclose(
        model.head.weight.detach().reshape(2).numpy(),
        _by_hand(solver, 5, 0.05, wd),
        rtol=1e-12,
        atol=1e-14,
    )


def test_lbfgs_solves_the_quadratic():
    model = Quadratic()
    opt = make_optimizer(model, solver="lbfgs", lr=1.0, weight_decay=0.0)

    def closure():
        opt.zero_grad()
        loss = model()
        loss.backward()
        return loss

    opt.step(closure)
    # L-BFGS stops once every gradient entry is below 1e-7 (torch's tolerance_grad), so
    # θ is within ‖A⁻¹‖·1e-7·√2 ≈ 1e-6 of the minimiser A⁻¹b.
    np.testing.assert_allclose(
        model.head.weight.detach().reshape(2).numpy(), np.linalg.solve(A, B), atol=1e-5
    )


def test_weight_decay_spares_biases():
    net = nn.Module()
    net.head = nn.Module()
    net.head.weight = nn.Parameter(torch.ones(1, 2, 1))
    net.head.bias = nn.Parameter(torch.ones(1, 1, 1))
    opt = make_optimizer(net, solver="adamw", lr=0.1, weight_decay=0.5)
    (net.head.weight.sum() * 0 + net.head.bias.sum() * 0).backward()  # zero gradients
    opt.step()
    assert torch.allclose(net.head.weight, torch.full((1, 2, 1), 1 - 0.1 * 0.5))
    assert net.head.bias.item() == 1.0


@pytest.mark.parametrize("solver", ["adam", "adamw"])
def test_fused_adam_equals_torch_optim_on_a_network(solver):
    """Our shell around torch's fused kernel against torch.optim with the same kernel, on
    an ensemble MLP, with the rate changing every step as a schedule changes it."""
    torch.manual_seed(0)
    nets = [
        MLP(
            d_numeric=3,
            cardinalities=[],
            hidden_layer_sizes=(8, 8),
            activation="relu",
            n_ensemble=2,
        )
        for _ in range(2)
    ]
    nets[1].load_state_dict(nets[0].state_dict())
    ours = make_optimizer(nets[0], solver=solver, lr=0.01, weight_decay=0.1)
    assert isinstance(ours, FusedAdam)
    cls = torch.optim.AdamW if solver == "adamw" else torch.optim.Adam
    weights = [
        p
        for n, p in nets[1].named_parameters()
        if n.endswith("weight") and "linear" in n or n == "head.weight"
    ]
    others = [p for p in nets[1].parameters() if all(p is not w for w in weights)]
    theirs = cls(
        [{"params": weights, "weight_decay": 0.1}, {"params": others, "weight_decay": 0.0}],
        lr=0.01,
        foreach=False,
    )
    x, y = torch.randn(2, 16, 3), torch.randn(2, 16, 1)
    for step in range(20):
        for net, opt in zip(nets, (ours, theirs)):
            for g in opt.param_groups:
                g["lr"] = 0.01 * (1 + step) / 20
            opt.zero_grad()
            ((net(x, torch.zeros(2, 16, 0, dtype=torch.long)) - y) ** 2).mean().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_moments_never_turn_subnormal_and_the_weights_stay_where_they_would_be():
    """Weights whose gradient goes to zero: their first moment decays by 0.9 a step. Left
    alone (the same kernel with the flush switched off) it passes through the subnormal
    range, slow on x86; ours is sent to zero before it gets there, at every step, and every
    weight ends bit for bit where the unflushed optimiser puts it."""
    torch.manual_seed(0)
    ours_w = torch.randn(4096, requires_grad=True)
    plain_w = ours_w.detach().clone().requires_grad_(True)
    ours = FusedAdam([{"params": [ours_w], "weight_decay": 0.0}], lr=1e-3, decoupled=True)
    plain = FusedAdam([{"params": [plain_w], "weight_decay": 0.0}], lr=1e-3, decoupled=True)
    plain.FLUSH_EVERY = 10**9
    tiny = torch.finfo(torch.float32).tiny
    grads = torch.randn(4096) * torch.logspace(-2, -12, 4096)  # v = g² stays normal

    def subnormal(t):
        return int(((t != 0) & (t.abs() < tiny)).sum())

    seen = 0
    for step in range(900):
        g = grads if step < 5 else torch.zeros(4096)  # then the units receive nothing
        for w, opt in ((ours_w, ours), (plain_w, plain)):
            w.grad = g.clone()
            opt.step()
        seen = max(seen, subnormal(plain.state[plain_w][0]))
        assert all(subnormal(t) == 0 for t in ours.state[ours_w][:2]), step
    assert seen > 100  # the case is real: left alone, the moments went subnormal
    torch.testing.assert_close(ours_w, plain_w, rtol=0, atol=0)


def test_without_the_private_fused_kernels_torch_optim_takes_over(monkeypatch):
    """torch._fused_adamw_ is private: when a torch release drops it, the optimiser is
    torch.optim's public AdamW (fused=True or foreach), and training still works."""
    from dnnreg.training import optim

    optim.fused_kernels_work.cache_clear()
    try:
        with monkeypatch.context() as m:  # a torch without the private kernel
            m.delattr(torch, "_fused_adamw_")
            assert not optim.fused_kernels_work()
        # the probe's answer is kept for the process: torch.optim takes over
        net = MLP(d_numeric=3, cardinalities=[], hidden_layer_sizes=(8,), activation="relu")
        opt = make_optimizer(net, solver="adamw", lr=0.01, weight_decay=0.1)
        assert isinstance(opt, torch.optim.AdamW)
        before = [p.detach().clone() for p in net.parameters()]
        x = torch.randn(1, 16, 3)
        ((net(x, torch.zeros(1, 16, 0, dtype=torch.long)) - 1.0) ** 2).mean().backward()
        opt.step()
        assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    finally:
        optim.fused_kernels_work.cache_clear()


TOTAL, PER_EPOCH = 100, 10


@pytest.mark.parametrize("step", [0, 9, 10, 35, 99])
def test_step_and_exponential_schedules(step):
    epoch = step // PER_EPOCH
    kw = {"total_steps": TOTAL, "steps_per_epoch": PER_EPOCH, "gamma": 0.5, "step_size": 3}
    assert lr_factor("step", step, **kw) == 0.5 ** (epoch // 3)
    assert lr_factor("exponential", step, **kw) == pytest.approx(0.5 ** (step / TOTAL))
    assert lr_factor("constant", step, **kw) == 1.0


def test_cosine_with_warmup():
    kw = {"total_steps": TOTAL, "steps_per_epoch": PER_EPOCH, "warmup": 0.1}
    assert lr_factor("cosine", 0, **kw) == 0.0
    assert lr_factor("cosine", 5, **kw) == 0.5  # linear warm-up over 10 steps
    assert lr_factor("cosine", 10, **kw) == 1.0
    # halfway through the 90 annealing steps, cos(π/2) = 0, so ½(1 + 0)
    assert lr_factor("cosine", 55, **kw) == pytest.approx(0.5)
    assert lr_factor("cosine", 100, **kw) == pytest.approx(0.0, abs=1e-12)


def test_onecycle_equals_torchs_onecycle_scheduler():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    ref = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.1, total_steps=TOTAL, pct_start=0.1, cycle_momentum=False
    )
    for step in range(TOTAL):
        ours = 0.1 * lr_factor(
            "onecycle", step, total_steps=TOTAL, steps_per_epoch=PER_EPOCH, warmup=0.1
        )
        assert ours == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15), step
        opt.step()
        ref.step()


def test_reduce_on_plateau_equals_torchs():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.89, 0.99, 0.99, 0.99, 0.99]
    p = nn.Parameter(torch.zeros(1))
    ours_opt, ref_opt = torch.optim.SGD([p], lr=1.0), torch.optim.SGD([p], lr=1.0)
    ours = Schedule(
        ours_opt,
        "reduce_on_plateau",
        total_steps=10,
        steps_per_epoch=1,
        warmup=0.1,
        step_size=1,
        gamma=0.5,
        patience=2,
    )
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, factor=0.5, patience=2)
    for m in metrics:
        ours.step_epoch(m)
        ref.step(m)
        assert ours_opt.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"]
    assert ours_opt.param_groups[0]["lr"] < 1.0


def test_schedule_sets_the_rate_before_each_step():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=2.0)
    sched = Schedule(
        opt,
        "step",
        total_steps=6,
        steps_per_epoch=2,
        warmup=0.1,
        step_size=1,
        gamma=0.1,
        patience=1,
    )
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        sched.step_batch()
    np.testing.assert_allclose(seen, [2.0, 2.0, 0.2, 0.2, 0.02, 0.02])


def test_penalties_equal_hand_values_and_their_gradients():
    w = torch.tensor([[[1.0, -2.0]]], requires_grad=True)
    # α/2 ‖W‖² = 0.5·0.3·5 = 0.75;  λ₁‖W‖₁ = 0.1·3 = 0.3;  over k = 2 members: /2
    total = penalty([w], alpha=0.3, l1=0.1, k=2)
    assert total.item() == pytest.approx((0.75 + 0.3) / 2)
    total.backward()
    # ∂/∂W = (αW + λ₁ sign W) / k
    assert torch.allclose(w.grad, torch.tensor([[[0.3 + 0.1, -0.6 - 0.1]]]) / 2)
    assert penalty([w], alpha=0.0, l1=0.0, k=1) is None


def test_clipping_by_norm_and_by_value():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])  # global norm 5
    clip_gradients([a, b], max_norm=1.0, max_value=None)
    assert math.isclose(float(torch.cat([a.grad, b.grad]).norm()), 1.0, rel_tol=1e-5)
    a.grad, b.grad = torch.tensor([3.0, -0.5]), torch.tensor([-4.0])
    clip_gradients([a, b], max_norm=None, max_value=1.0)
    assert a.grad.tolist() == [1.0, -0.5] and b.grad.tolist() == [-1.0]


def test_a_default_fit_never_imports_the_compiler():
    """torch.optim's first step imports torch._dynamo (about 1.5 s); the default solver's
    fused kernel must not pay for it. Fresh process: another test may have imported it."""
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from dnnreg import DNNRegressor
        X = np.random.default_rng(0).normal(size=(64, 3))
        DNNRegressor(max_iter=2, hidden_layer_sizes=(8,), random_state=0).fit(X, X[:, 0])
        assert "torch._dynamo" not in sys.modules, "torch._dynamo was imported"
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_adam_beta2_reaches_the_update_rule():
    """adam_beta2=0.95 (RealMLP's): our fused shell equals torch.optim.AdamW(betas=(0.9,
    0.95)) step by step, and differs from the default 0.999."""
    torch.manual_seed(0)
    net = MLP(d_numeric=3, cardinalities=[], hidden_layer_sizes=(8,), activation="relu")
    nets = [net, MLP(d_numeric=3, cardinalities=[], hidden_layer_sizes=(8,), activation="relu")]
    nets[1].load_state_dict(nets[0].state_dict())
    ours = make_optimizer(nets[0], solver="adamw", lr=0.01, weight_decay=0.0, beta2=0.95)
    theirs = torch.optim.AdamW(nets[1].parameters(), lr=0.01, weight_decay=0.0, betas=(0.9, 0.95))
    x, y = torch.randn(1, 16, 3), torch.randn(1, 16, 1)
    for _ in range(5):
        for model, opt in zip(nets, (ours, theirs)):
            opt.zero_grad()
            ((model(x, torch.zeros(1, 16, 0, dtype=torch.long)) - y) ** 2).mean().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    from dnnreg import DNNRegressor

    X = np.random.default_rng(0).normal(size=(64, 3))
    fit = lambda b2: DNNRegressor(  # noqa: E731
        hidden_layer_sizes=(8,), n_ensemble=1, max_iter=2, adam_beta2=b2, random_state=0
    ).fit(X, X[:, 0])
    assert not np.array_equal(fit(0.95).predict(X), fit(0.999).predict(X))
