"""Gradient health, dead and saturated units, recorded each epoch by a training callback.

:class:`Diagnostics` is a training callback (see :mod:`dnnreg.training.loop`): once per epoch it
records, for every hidden layer (and the output layer's gradient), the gradient norm on
the epoch's last batch, the weight norm, the update/weight ratio over the epoch, and, on
a fixed probe batch in eval mode, the activations' mean and standard deviation, the
fraction of dead units and the fraction of saturated activations. It costs one extra
forward pass over at most 1,024 rows per epoch. Everything lands in the epoch's history
record under ``"diagnostics"`` as plain numbers, which :mod:`dnnreg.training.verdicts`
reads without torch.
"""

from __future__ import annotations

import math

import torch

# |u| beyond which f′(u) < 0.05. σ′ = σ(1-σ) < 0.05 ⇔ |2σ-1| > √0.8 ⇔ |u| > 2 atanh √0.8
# = 2.887; tanh′ = 1 - tanh² < 0.05 ⇔ |tanh u| > √0.95 ⇔ |u| > atanh √0.95 = 2.178.
SATURATION = {"sigmoid": 2.0 * math.atanh(math.sqrt(0.8)), "tanh": math.atanh(math.sqrt(0.95))}


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
            self._grads = [
                float(m.weight.grad.norm()) if m.weight.grad is not None else math.nan
                for m in _linears(model)
            ]

    @torch.no_grad()
    def on_epoch_end(self, record: dict, model):
        stats = self.activation_stats(model)
        layers = []
        for i, m in enumerate(_linears(model)):
            w = m.weight.detach()
            w_norm = float(w.norm())
            entry = {
                "grad_norm": self._grads[i] if self._grads else math.nan,
                "weight_norm": w_norm,
                "update_ratio": float((w - self._start[i]).norm()) / max(w_norm, 1e-30),
            }
            if i < len(stats):
                entry.update(stats[i])
            layers.append(entry)
        finite = all(math.isfinite(v) for layer in layers for v in layer.values())
        # JSON has no NaN: a missing or non-finite number is stored as None.
        layers = [
            {k: (v if math.isfinite(v) else None) for k, v in layer.items()} for layer in layers
        ]
        record["diagnostics"] = {"layers": layers, "non_finite": not finite}

    @torch.no_grad()
    def activation_stats(self, model) -> list[dict]:
        """Mean, std, dead and saturated fractions of each hidden layer on the probe rows.

        Dead: a unit (of one member) whose output is exactly 0 on every probe row, so no
        gradient flows through it. Saturated: the share of (row, unit) activations whose
        pre-activation lies where f′ < 0.05 (sigmoid and tanh only; 0 otherwise)."""
        captured = []
        hooks = [
            b.act.register_forward_hook(
                lambda mod, inp, out: captured.append((inp[0].detach(), out.detach()))
            )
            for b in model.blocks
        ]
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
            stats.append(
                {
                    "act_mean": float(a.mean()),
                    "act_std": float(a.std()),
                    "dead": float((a == 0).all(dim=1).float().mean()),
                    "saturated": float((u.abs() > limit).float().mean()) if limit else 0.0,
                }
            )
        return stats
