"""Gradient health, dead and saturated units, and plain-language verdicts.

:class:`Diagnostics` is a training callback (see :mod:`dnnreg.training.loop`): once per epoch it
records, for every hidden layer (and the output layer's gradient), the gradient norm on
the epoch's last batch, the weight norm, the update/weight ratio over the epoch, and, on
a fixed probe batch in eval mode, the activations' mean and standard deviation, the
fraction of dead units and the fraction of saturated activations. It costs one extra
forward pass over at most 1,024 rows per epoch. Everything lands in the epoch's history
record under ``"diagnostics"`` as plain numbers.

:func:`verdicts` reads that history (plain data, no torch needed) and says what is wrong
and what to try.
"""

from __future__ import annotations

import math

import torch

# |u| beyond which f′(u) < 0.05. σ′ = σ(1-σ) < 0.05 ⇔ |2σ-1| > √0.8 ⇔ |u| > 2 atanh √0.8
# = 2.887; tanh′ = 1 - tanh² < 0.05 ⇔ |tanh u| > √0.95 ⇔ |u| > atanh √0.95 = 2.178.
SATURATION = {"sigmoid": 2.0 * math.atanh(math.sqrt(0.8)), "tanh": math.atanh(math.sqrt(0.95))}
VANISHING, EXPLODING = 1e-3, 1e3  # ratio of the first layer's gradient norm to the last's
EXPLODING_RELATIVE = 100.0  # a layer's gradient norm against its own weight norm
DEAD_ALERT, SATURATED_ALERT = 0.5, 0.5


def _linears(model):
    return [b.linear for b in model.blocks] + [model.head]


class Diagnostics:
    """Per-layer statistics each epoch. ``probe = (x_num, x_cat)``: the rows whose
    activations are inspected (the validation rows, or a sample of the training rows)."""

    def __init__(self, probe, activation: str):
        self.probe, self.activation = probe, activation
        self._start, self._grads = None, None

    def on_epoch_begin(self, model):
        self._start = [m.weight.detach().clone() for m in _linears(model)]

    def on_after_backward(self, model, last_in_epoch: bool):
        if last_in_epoch:
            self._grads = [float(m.weight.grad.norm()) if m.weight.grad is not None else math.nan
                           for m in _linears(model)]

    @torch.no_grad()
    def on_epoch_end(self, record: dict, model):
        stats = self.activation_stats(model)
        layers = []
        for i, m in enumerate(_linears(model)):
            w = m.weight.detach()
            w_norm = float(w.norm())
            entry = {"grad_norm": self._grads[i] if self._grads else math.nan,
                     "weight_norm": w_norm,
                     "update_ratio": float((w - self._start[i]).norm()) / max(w_norm, 1e-30)}
            if i < len(stats):
                entry.update(stats[i])
            layers.append(entry)
        finite = all(math.isfinite(v) for layer in layers for v in layer.values())
        # JSON has no NaN: a missing or non-finite number is stored as None.
        layers = [{k: (v if math.isfinite(v) else None) for k, v in layer.items()}
                  for layer in layers]
        record["diagnostics"] = {"layers": layers, "non_finite": not finite}

    @torch.no_grad()
    def activation_stats(self, model) -> list[dict]:
        """Mean, std, dead and saturated fractions of each hidden layer on the probe rows.

        Dead: a unit (of one member) whose output is exactly 0 on every probe row, so no
        gradient flows through it. Saturated: the share of (row, unit) activations whose
        pre-activation lies where f′ < 0.05 (sigmoid and tanh only; 0 otherwise)."""
        captured = []
        hooks = [b.act.register_forward_hook(
            lambda mod, inp, out: captured.append((inp[0].detach(), out.detach())))
            for b in model.blocks]
        was_training = model.training
        model.eval()
        try:
            model(*self.probe)
        finally:
            for h in hooks:
                h.remove()
            model.train(was_training)
        limit = SATURATION.get(self.activation)
        stats = []
        for u, a in captured:  # (k, n, d) each
            stats.append({
                "act_mean": float(a.mean()), "act_std": float(a.std()),
                "dead": float((a == 0).all(dim=1).float().mean()),
                "saturated": float((u.abs() > limit).float().mean()) if limit else 0.0})
        return stats


# ---------------------------------------------------------------------- verdicts
def verdicts(history: list[dict], *, activation: str, loss: str) -> list[dict]:
    """Findings from a training history: each ``{"kind", "message", "evidence",
    "suggestion"}``. Empty when nothing is wrong.

    >>> verdicts([], activation="relu", loss="sigmoid_mse")[0]["kind"]
    'sigmoid_mse'
    """
    found = []
    if loss == "sigmoid_mse":
        found.append(_finding("sigmoid_mse", "sigmoid output with MSE loss saturates and slows "
                              "learning", "loss='sigmoid_mse'", "use loss='cross_entropy'"))
    records = [r["diagnostics"] for r in history if "diagnostics" in r]
    if not records:
        return found
    bad = [i + 1 for i, r in enumerate(records) if r["non_finite"]]
    if bad:
        found.append(_finding("non_finite", f"non-finite values (NaN or inf) in gradients or "
                              f"weights from epoch {bad[0]}", f"epochs {bad[:5]}",
                              "lower learning_rate_init or set clip_grad_norm=1.0"))
    found += _gradient_flow(records)
    last = records[-1]["layers"][:-1]  # hidden layers only
    for i, layer in enumerate(last, start=1):
        if (layer.get("dead") or 0) >= DEAD_ALERT:
            found.append(_finding("dead_units", f"{100 * layer['dead']:.0f} % dead units in "
                                  f"layer {i}", "their output is 0 on every probe row at the "
                                  "last epoch", "lower learning_rate_init or use "
                                  "activation='leaky_relu' or 'prelu'"))
        if (layer.get("saturated") or 0) >= SATURATED_ALERT:
            found.append(_finding("saturated_units", f"{100 * layer['saturated']:.0f} % of layer "
                                  f"{i}'s {activation} activations are saturated",
                                  "f′ < 0.05 there, so little gradient passes",
                                  "use activation='relu' with init='he_normal', or "
                                  "normalization='batch_norm'"))
    return found


def _gradient_flow(records) -> list[dict]:
    """Vanishing or exploding: the first hidden layer's gradient norm against the last
    hidden layer's, as the median over epochs (one noisy batch does not decide); and
    exploding too when some layer's gradient norm is over 100 × its weight norm."""
    relative = sorted(max(layer["grad_norm"] / max(layer["weight_norm"], 1e-30)
                          for layer in r["layers"]) for r in records
                      if all(layer["grad_norm"] is not None and layer["weight_norm"] is not None
                             for layer in r["layers"]))
    if relative and relative[len(relative) // 2] > EXPLODING_RELATIVE:
        worst = relative[len(relative) // 2]
        return [_finding("exploding_gradients", f"exploding gradients: a layer's gradient norm "
                         f"is {worst:.0f} × its weight norm", f"median over {len(relative)} "
                         "epochs of max over layers of |∇W| / |W|",
                         "lower learning_rate_init, set clip_grad_norm=1.0, or add "
                         "normalization='layer_norm'")]
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
        return [_finding("vanishing_gradients", f"vanishing gradients: layer 1's gradient norm "
                         f"is {ratio:.0e} × layer {n}'s", evidence,
                         "try activation='relu' with init='he_normal', "
                         "normalization='batch_norm' or residual=True")]
    if ratio > EXPLODING:
        return [_finding("exploding_gradients", f"exploding gradients: layer 1's gradient norm "
                         f"is {ratio:.0e} × layer {n}'s", evidence,
                         "lower learning_rate_init, set clip_grad_norm=1.0, or add "
                         "normalization='layer_norm'")]
    return []


def _finding(kind, message, evidence, suggestion) -> dict:
    return {"kind": kind, "message": message, "evidence": evidence, "suggestion": suggestion}


def format_verdict(v: dict) -> str:
    """One line: ``message (evidence); suggestion``."""
    return f"{v['message']} ({v['evidence']}); {v['suggestion']}"
