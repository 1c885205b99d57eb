"""Cross-entropy against squared error on a sigmoid output.

With p = σ(z), squared error's gradient at the output is ∂/∂z ½(p - y)² = (p - y)·σ'(z) =
(p - y)·p(1 - p): when the unit saturates on the wrong answer (p ≈ 0 for y = 1), p(1 - p)
≈ 0 and learning stalls. Cross-entropy's is ∂/∂z [-y log p - (1 - y) log(1 - p)] = p - y:
the larger the error, the larger the step. Measured here on a generated two-class table
(a small tanh network, its sigmoid output unit), from the usual initialisation and from an
output that starts saturated on the wrong side, with plain SGD and with Adam."""

from __future__ import annotations

import numpy as np

CLAIM = (
    "A sigmoid output trained with cross-entropy learns faster than with squared error, "
    "because squared error's gradient carries the factor σ'(z), which vanishes when the "
    "unit saturates."
)
TARGET = 0.3  # the training log-loss whose first epoch is compared


def _data(seed: int, n: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    logit = 3.0 * (2.5 * X[:, 0] - 2.0 * X[:, 1] * X[:, 2] + X[:, 3])  # Bayes log-loss ≈ 0.1
    y = (logit + rng.logistic(size=n) > 0).astype(np.float32)
    return X.astype(np.float32), y


def _curve(X, y, *, loss: str, solver: str, saturated: bool, seed: int, epochs: int):
    import torch

    gen = torch.Generator().manual_seed(seed)
    torch_x, torch_y = torch.from_numpy(X), torch.from_numpy(y)
    hidden = torch.nn.Linear(X.shape[1], 16)
    out = torch.nn.Linear(16, 1)
    with torch.no_grad():
        for layer in (hidden, out):
            layer.weight.normal_(0, 1 / np.sqrt(layer.in_features), generator=gen)
            layer.bias.zero_()
        if saturated:  # start confidently wrong: p ≈ 0.0025 for every row
            out.bias.fill_(-6.0)
    params = [*hidden.parameters(), *out.parameters()]
    opt = torch.optim.SGD(params, lr=0.5) if solver == "sgd" else torch.optim.Adam(params, lr=0.01)
    curve = []
    order_gen = torch.Generator().manual_seed(seed + 1)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=order_gen).split(32):
            z = out(torch.tanh(hidden(torch_x[idx]))).squeeze(1)
            p = torch.sigmoid(z)
            if loss == "mse":
                objective = 0.5 * ((p - torch_y[idx]) ** 2).mean()
            else:
                objective = torch.nn.functional.binary_cross_entropy_with_logits(z, torch_y[idx])
            opt.zero_grad()
            objective.backward()
            opt.step()
        with torch.no_grad():
            z = out(torch.tanh(hidden(torch_x))).squeeze(1)
            log_loss = torch.nn.functional.binary_cross_entropy_with_logits(z, torch_y)
        curve.append(float(log_loss))
    return curve


def _first_below(curve, target=TARGET):
    hits = [i + 1 for i, v in enumerate(curve) if v <= target]
    return hits[0] if hits else None


def measure(*, quick: bool, seeds: int) -> dict:
    import torch

    seeds = max(seeds, 5)  # the claim is judged over at least 5 seeds
    epochs = 40 if quick else 60
    n = 600 if quick else 2000
    cases, curves = {}, {}
    with torch.random.fork_rng(devices=[]):
        for solver in ("sgd", "adam"):
            for saturated in (False, True):
                key = f"{solver}{'-saturated' if saturated else ''}"
                reach = {"mse": [], "cross_entropy": []}
                for seed in range(seeds):
                    X, y = _data(seed, n)
                    for loss in reach:
                        c = _curve(X, y, loss=loss, solver=solver, saturated=saturated,
                                   seed=seed, epochs=epochs)  # fmt: skip
                        reach[loss].append(_first_below(c))
                        if seed == 0:
                            curves[f"{key}/{loss}"] = c
                faster = sum(
                    ce is not None and (m is None or ce < m)
                    for ce, m in zip(reach["cross_entropy"], reach["mse"])
                )
                cases[key] = {"epochs_to_target": reach, "cross_entropy_faster": faster}
    wins = {k: v["cross_entropy_faster"] for k, v in cases.items()}
    held = [k for k, w in wins.items() if w >= seeds - 1]  # at least 4 of 5 seeds
    if len(held) == len(wins):
        status, lead = "holds", "Holds."
    elif held:
        status = "holds only when"
        lead = f"Holds only when training with {' and '.join(held)}."
        if all(k.startswith("sgd") for k in held):
            lead += (
                " Adam divides each step by the gradient's running scale, so the small "
                "factor p(1 - p) costs it little: the losses then learn about as fast."
            )
    else:
        status, lead = "does not hold", "Does not hold here."
    shown = "; ".join(
        f"{k}: cross-entropy first in {w} of {seeds} seeds (median epochs to log-loss "
        f"{TARGET}: CE {_median(cases[k]['epochs_to_target']['cross_entropy'])}, "
        f"MSE {_median(cases[k]['epochs_to_target']['mse'])})"
        for k, w in wins.items()
    )
    verdict = (
        f"{lead} {shown}. The reason is the gradient at the output: (p - y)·p(1 - p) for "
        "squared error, p - y for cross-entropy; a saturated p makes the first nearly zero. "
        "'never' means the target was not reached in the epochs run."
    )
    return {
        "status": status,
        "verdict": verdict,
        "numbers": {"seeds": seeds, "epochs": epochs, "target_log_loss": TARGET, **cases},
        "curves": curves,
    }


def _median(values):
    reached = [v for v in values if v is not None]
    if len(reached) < len(values) / 2:
        return "never"
    padded = sorted(v if v is not None else 10**9 for v in values)
    return int(np.median(padded))


def figure(result: dict, path) -> None:
    from dnnreg.report.plots import _save, _subplots

    fig, axes = _subplots(2, 2, figsize=(10, 7))
    for ax, key in zip(axes.ravel(), ("sgd", "sgd-saturated", "adam", "adam-saturated")):
        for loss, style in (("cross_entropy", "-"), ("mse", "--")):
            curve = result["curves"][f"{key}/{loss}"]
            ax.plot(range(1, len(curve) + 1), curve, style, label=loss.replace("_", "-"))
        ax.axhline(TARGET, color="0.6", lw=0.8)
        ax.set_title(key.replace("-", ", output starting "), fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training log-loss")
        ax.legend(fontsize=8)
    fig.suptitle("Sigmoid output: cross-entropy against squared error (seed 0)")
    _save(fig, path)
