"""Exploding gradients: the mirror image of vanishing ones. With weights drawn too large
(here He's scale times ``gain``), each layer multiplies the backward signal by more than
one, so the first layers' gradients grow geometrically with depth and one SGD step throws
the weights far away: the loss overflows. Clipping the gradient's norm bounds the step;
batch normalisation rescales every layer's output, so the product cannot grow.

Measured at initialisation (the first layer's weight-gradient norm against its size at
He's scale, ReLU, width 64, depths 2-20, gains 1, 2, 3), then by training a 10-layer ReLU
network at gain 3 with plain SGD on a generated table: as is, with the gradient norm
clipped at 1, and with batch norm."""

from __future__ import annotations

import math

import numpy as np

CLAIM = (
    "A too-large initialisation makes gradients explode with depth and training diverge; "
    "gradient clipping and normalisation are the fix."
)
WIDTH, GAINS, DEPTHS = 64, (1.0, 2.0, 3.0), (2, 5, 10, 20)


def _stack(depth, gain, d_in, batch_norm, seed):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers = []
    for i in range(depth):
        linear = nn.Linear(d_in if i == 0 else WIDTH, WIDTH)
        nn.init.normal_(linear.weight, 0.0, gain * math.sqrt(2.0 / linear.in_features))
        nn.init.zeros_(linear.bias)
        layers += [linear, *([nn.BatchNorm1d(WIDTH)] if batch_norm else []), nn.ReLU()]
    head = nn.Linear(WIDTH, 1)
    return nn.Sequential(*layers, head)


def _first_gradient(depth, gain, X, y, seed) -> float:
    """The first layer's weight-gradient norm at initialisation. (Not its ratio to the
    last layer's: ReLU is positively homogeneous, so a gain scales every layer's gradient
    alike and the ratio cannot show the explosion.)"""
    net = _stack(depth, gain, X.shape[1], False, seed)
    ((net(X).squeeze(1) - y) ** 2).mean().backward()
    return float(net[0].weight.grad.norm())


def _train(fix: str, X, y, epochs: int, seed: int) -> dict:
    import torch

    net = _stack(10, 3.0, X.shape[1], fix == "batch_norm", seed)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    order = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=order).split(64):
            loss = ((net(X[idx]).squeeze(1) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            if fix == "clip":
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
        net.eval()
        with torch.no_grad():
            full = float(((net(X).squeeze(1) - y) ** 2).mean())
        net.train()
        losses.append(full if math.isfinite(full) else None)  # JSON has no inf/NaN
        if not math.isfinite(full):
            break
    return {"losses": losses, "diverged": losses[-1] is None or losses[-1] > 1e6}


def measure(*, quick: bool, seeds: int) -> dict:
    import torch
    from sklearn.datasets import make_friedman1

    with torch.random.fork_rng(devices=[]):
        rng = np.random.default_rng(0)
        probe_X = torch.from_numpy(rng.normal(size=(256, 10)).astype(np.float32))
        probe_y = torch.from_numpy(rng.normal(size=256).astype(np.float32))
        grads = {
            f"gain {g:g}": {d: float(np.median([_first_gradient(d, g, probe_X, probe_y, s)
                                               for s in range(seeds)])) for d in DEPTHS}
            for g in GAINS
        }  # fmt: skip
        ratios = {k: {d: v[d] / grads["gain 1"][d] for d in DEPTHS} for k, v in grads.items()}
        X, y = make_friedman1(n_samples=800 if quick else 3000, noise=0.5, random_state=0)
        X = torch.from_numpy(((X - X.mean(0)) / X.std(0)).astype(np.float32))
        y = torch.from_numpy(((y - y.mean()) / y.std()).astype(np.float32))
        runs = {
            fix: _train(fix, X, y, 10 if quick else 40, 0) for fix in ("none", "clip", "batch_norm")
        }
    final = {k: r["losses"][-1] for k, r in runs.items()}
    explodes = ratios["gain 3"][20] > 1e6  # first-layer gradient vs He's scale, depth 20
    repaired = {k: v is not None and v < 1.0 for k, v in final.items()}  # beats the mean
    if explodes and not repaired["none"] and repaired["clip"] and repaired["batch_norm"]:
        status, lead = "holds", "Holds."
    elif explodes and not repaired["none"] and (repaired["clip"] or repaired["batch_norm"]):
        fixes = [k.replace("_", " ") for k in ("clip", "batch_norm") if repaired[k]]
        status = "holds only when"
        lead = (
            f"Holds only when the fix is {' and '.join(fixes)}: clipping bounds each step, "
            "but the too-large weights still blow the output up, and at this rate the "
            "clipped steps do not bring it back in the epochs run."
            if fixes == ["batch norm"]
            else f"Holds only with {' and '.join(fixes)}."
        )
    else:
        status, lead = "does not hold", "Does not hold here."
    show = lambda v: "overflowed" if v is None else f"{v:.3g}"  # noqa: E731
    verdict = (
        f"{lead} At depth 20 the first layer's gradient is {ratios['gain 2'][20]:.2g}x its "
        f"size at He's scale when the weights are twice as large and "
        f"{ratios['gain 3'][20]:.2g}x at three times (depth 2: {ratios['gain 3'][2]:.2g}x): "
        "the growth compounds layer by layer. Ten ReLU layers at three times He's scale, "
        "plain SGD: the training loss (standardised target, 1 = predicting the mean) ends "
        f"at {show(final['none'])} as is, {show(final['clip'])} with the gradient norm "
        f"clipped at 1, {show(final['batch_norm'])} with batch norm."
    )
    return {
        "status": status,
        "verdict": verdict,
        "numbers": {
            "first_gradient_vs_he": ratios,
            "final_loss": final,
            "repaired": repaired,
            "diverged": {k: r["diverged"] for k, r in runs.items()},
        },
        "losses": {k: r["losses"] for k, r in runs.items()},
    }


def figure(result: dict, path) -> None:
    from dnnreg.report.plots import _save, _subplots

    fig, (left, right) = _subplots(1, 2, figsize=(10, 4))
    for gain, by_depth in result["numbers"]["first_gradient_vs_he"].items():
        depths = sorted(by_depth, key=int)
        left.plot([int(d) for d in depths], [by_depth[d] for d in depths], "o-", label=gain)
    left.set_yscale("log")
    left.set_xlabel("depth")
    left.set_ylabel("first-layer gradient norm / at He's scale")
    left.legend(title="init scale x He")
    for fix, losses in result["losses"].items():
        shown = [v if v is not None else np.nan for v in losses]
        left_label = {"none": "as is", "clip": "clip norm 1", "batch_norm": "batch norm"}[fix]
        right.plot(range(1, len(shown) + 1), shown, "o-", label=left_label)
    right.set_yscale("log")
    right.set_xlabel("epoch")
    right.set_ylabel("training MSE (a missing point overflowed)")
    right.legend()
    fig.suptitle("Exploding gradients: 10 ReLU layers at 3x He's scale")
    _save(fig, path)
