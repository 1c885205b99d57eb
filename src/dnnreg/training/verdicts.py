"""Plain-language verdicts on a training history's gradient health (plain data, no
torch): what is wrong and what to try. The numbers come from the
:class:`~dnnreg.training.diagnostics.Diagnostics` callback; the estimator, the report and
``dnnreg diagnose`` read them here.

It sits in the training wing, below the estimators, because a fit logs its verdicts when it
ends; it imports nothing but the standard library, so the report stays torch-free.
"""

from __future__ import annotations

VANISHING, EXPLODING = 1e-3, 1e3  # ratio of the first layer's gradient norm to the last's
EXPLODING_RELATIVE = 100.0  # a layer's gradient norm against its own weight norm
DEAD_ALERT, SATURATED_ALERT = 0.5, 0.5


def verdicts(history: list[dict], *, activation: str, loss: str) -> list[dict]:
    """Findings from a training history: each ``{"kind", "message", "evidence",
    "suggestion"}``. Empty when nothing is wrong.

    >>> verdicts([], activation="relu", loss="sigmoid_mse")[0]["kind"]
    'sigmoid_mse'
    """
    found = []
    if loss == "sigmoid_mse":
        found.append(
            _finding(
                "sigmoid_mse",
                "sigmoid output with MSE loss saturates and slows learning",
                "loss='sigmoid_mse'",
                "use loss='cross_entropy'",
            )
        )
    records = [r["diagnostics"] for r in history if "diagnostics" in r]
    if not records:
        return found
    bad = [i + 1 for i, r in enumerate(records) if r["non_finite"]]
    if bad:
        found.append(
            _finding(
                "non_finite",
                f"non-finite values (NaN or inf) in gradients or weights from epoch {bad[0]}",
                f"epochs {bad[:5]}",
                "lower learning_rate_init or set clip_grad_norm=1.0",
            )
        )
    found += _gradient_flow(records)
    last = records[-1]["layers"][:-1]  # hidden layers only
    for i, layer in enumerate(last, start=1):
        if (layer.get("dead") or 0) >= DEAD_ALERT:
            found.append(
                _finding(
                    "dead_units",
                    f"{100 * layer['dead']:.0f} % dead units in layer {i}",
                    "their output is 0 on every probe row at the last epoch",
                    "lower learning_rate_init or use activation='leaky_relu' or 'prelu'",
                )
            )
        if (layer.get("saturated") or 0) >= SATURATED_ALERT:
            found.append(
                _finding(
                    "saturated_units",
                    f"{100 * layer['saturated']:.0f} % of layer "
                    f"{i}'s {activation} activations are saturated",
                    "f′ < 0.05 there, so little gradient passes",
                    "use activation='relu' with init='he_normal', or normalization='batch_norm'",
                )
            )
    return found


def _gradient_flow(records) -> list[dict]:
    """Vanishing or exploding: the first hidden layer's gradient norm against the last
    hidden layer's, as the median over epochs (one noisy batch does not decide); and
    exploding too when some layer's gradient norm is over 100 × its weight norm."""
    relative = sorted(
        max(layer["grad_norm"] / max(layer["weight_norm"], 1e-30) for layer in r["layers"])
        for r in records
        if all(
            layer["grad_norm"] is not None and layer["weight_norm"] is not None
            for layer in r["layers"]
        )
    )
    if relative and relative[len(relative) // 2] > EXPLODING_RELATIVE:
        worst = relative[len(relative) // 2]
        return [
            _finding(
                "exploding_gradients",
                f"exploding gradients: a layer's gradient norm is {worst:.0f} × its weight norm",
                f"median over {len(relative)} epochs of max over layers of |∇W| / |W|",
                "lower learning_rate_init, set clip_grad_norm=1.0, or add "
                "normalization='layer_norm'",
            )
        ]
    ratios = []
    for r in records:
        grads = [layer["grad_norm"] for layer in r["layers"][:-1]]
        if len(grads) >= 2 and None not in grads and grads[-1] > 0:
            ratios.append(grads[0] / grads[-1])
    if not ratios:
        return []
    ratio = sorted(ratios)[len(ratios) // 2]
    n = len(records[0]["layers"]) - 1
    evidence = f"median over {len(ratios)} epochs of |∇W₁| / |∇W_{n}| = {ratio:.1e}"
    if ratio < VANISHING:
        return [
            _finding(
                "vanishing_gradients",
                f"vanishing gradients: layer 1's gradient norm is {ratio:.0e} × layer {n}'s",
                evidence,
                "try activation='relu' with init='he_normal', "
                "normalization='batch_norm' or residual=True",
            )
        ]
    if ratio > EXPLODING:
        return [
            _finding(
                "exploding_gradients",
                f"exploding gradients: layer 1's gradient norm is {ratio:.0e} × layer {n}'s",
                evidence,
                "lower learning_rate_init, set clip_grad_norm=1.0, or add "
                "normalization='layer_norm'",
            )
        ]
    return []


def _finding(kind, message, evidence, suggestion) -> dict:
    return {"kind": kind, "message": message, "evidence": evidence, "suggestion": suggestion}


def format_verdict(v: dict) -> str:
    """One line: ``message (evidence); suggestion``."""
    return f"{v['message']} ({v['evidence']}); {v['suggestion']}"
