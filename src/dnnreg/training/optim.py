"""Optimisers, learning-rate schedules, weight penalties and gradient clipping.

Each option is torch's own implementation where torch has one (its kernels are fused or
foreach); the schedules are written out as formulas so the docs, the tests and the code
say the same thing.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from dnnreg.options import SCHEDULES, SOLVERS  # noqa: F401


def decayed_parameters(model: nn.Module) -> tuple[list, list]:
    """``(weights, others)``: the (k, d_in, d_out) weight matrices, which penalties and
    decay shrink, and everything else (biases, norms, PReLU slopes, embeddings), which
    they leave alone: shrinking a bias or a norm's scale does not simplify the function."""
    weights, others = [], []
    for name, p in model.named_parameters():
        (weights if name.endswith("linear.weight") or name == "head.weight" else others).append(p)
    return weights, others


def make_optimizer(
    model: nn.Module,
    *,
    solver: str,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    beta2: float = 0.999,
):
    """The optimiser called ``solver``, with ``weight_decay`` on weight matrices only.

    - ``sgd``: θ ← θ - η g
    - ``momentum``: v ← μ v + g; θ ← θ - η v (Polyak 1964)
    - ``nesterov``: v ← μ v + g; θ ← θ - η (g + μ v) (Nesterov 1983, Sutskever et al. 2013)
    - ``adagrad``: s ← s + g²; θ ← θ - η g / (√s + ε) (Duchi et al. 2011)
    - ``rmsprop``: s ← ρ s + (1 - ρ) g²; θ ← θ - η g / (√s + ε) (Tieleman & Hinton 2012)
    - ``adam``: bias-corrected first and second moments (Kingma & Ba 2015); weight decay
      is L2 added to the gradient
    - ``adamw``: Adam with decoupled decay θ ← θ(1 - η λ) (Loshchilov & Hutter 2019);
      ``beta2`` is the second moment's decay for both (RealMLP trains with 0.95: the
      step adapts faster when the gradient's scale changes)
    - ``lbfgs``: full-batch quasi-Newton with a strong-Wolfe line search (Liu & Nocedal
      1989); the line search picks the step, so ``lr`` is ignored, and weight decay enters
      the objective as ½λ‖W‖² since torch's L-BFGS has no decay of its own.
    """
    weights, others = decayed_parameters(model)
    if solver == "lbfgs":
        return torch.optim.LBFGS(
            weights + others, lr=1.0, max_iter=20, history_size=10, line_search_fn="strong_wolfe"
        )
    groups = [
        {"params": weights, "weight_decay": weight_decay},
        {"params": others, "weight_decay": 0.0},
    ]
    if solver in ("sgd", "momentum", "nesterov"):
        kwargs = {
            "momentum": 0.0 if solver == "sgd" else momentum,
            "nesterov": solver == "nesterov",
        }
        cls = torch.optim.SGD
    else:
        cls = {
            "adagrad": torch.optim.Adagrad,
            "rmsprop": torch.optim.RMSprop,
            "adam": torch.optim.Adam,
            "adamw": torch.optim.AdamW,
        }[solver]
        kwargs = {"betas": (0.9, beta2)} if solver in ("adam", "adamw") else {}
    if solver in ("adam", "adamw") and FusedAdam.supported(model):
        return FusedAdam(groups, lr=lr, decoupled=solver == "adamw", beta2=beta2)
    on_cuda = any(p.is_cuda for p in model.parameters())
    if solver == "adagrad" and on_cuda:  # torch's fused Adagrad is CPU-only; it fails at step
        return cls(groups, lr=lr, foreach=True, **kwargs)
    try:
        return cls(groups, lr=lr, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this optimiser/device
        return cls(groups, lr=lr, foreach=True, **kwargs)


@functools.cache
def fused_kernels_work() -> bool:
    """Whether ``torch._fused_adam_`` and ``torch._fused_adamw_`` exist and run: they are
    private, so a torch release may rename or drop them. Probed once per process on a
    one-element tensor."""
    kernels = [getattr(torch, name, None) for name in ("_fused_adam_", "_fused_adamw_")]
    if any(k is None for k in kernels):
        return False
    try:
        for kernel in kernels:
            p, g, m, v = (torch.zeros(1) for _ in range(4))
            kernel([p], [g], [m], [v], [], [torch.ones(())], lr=1e-3, beta1=0.9, beta2=0.999,
                   weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)  # fmt: skip
    except (RuntimeError, TypeError):
        return False
    return True


class FusedAdam:
    """Adam or AdamW through torch's own fused kernel (``torch._fused_adam_`` /
    ``torch._fused_adamw_``, the kernel behind ``torch.optim.Adam(fused=True)``), without the
    ``torch.optim.Optimizer`` shell around it.

    Why: the shell imports ``torch._dynamo`` on its first ``step`` so that it can tell
    the compiler where to break graphs. That import costs about 1.5 s here, three times the
    whole fit on a 442-row table. The update itself is torch's kernel, unchanged; a test holds
    it equal to ``torch.optim.Adam``/``AdamW`` step by step.

    Exposes what :class:`Schedule` and the training loop use: ``param_groups`` (each with
    ``lr`` and ``weight_decay``), ``step()``, ``zero_grad()``, ``state_dict()`` and
    ``load_state_dict()``.
    """

    eps = 1e-8  # torch's default
    # Every FLUSH_EVERY steps the moments are rounded to multiples of 2^-113 below
    # FLUSH_SCALE, which sends values under ~5e-35 to zero before they turn subnormal
    # (see _flush).
    FLUSH_EVERY = 32
    FLUSH_SCALE = 2.0**-90

    def __init__(self, groups: list[dict], *, lr: float, decoupled: bool, beta2: float = 0.999):
        self.betas = (0.9, beta2)  # torch's default beta1
        self.param_groups = [{**g, "params": list(g["params"]), "lr": lr} for g in groups]
        self.kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
        self.state: dict[torch.Tensor, tuple] = {}
        self.steps_taken = 0

    @staticmethod
    def supported(model: nn.Module) -> bool:
        """The fused kernel exists for float parameters on CPU and CUDA, and this torch
        still has it (:func:`fused_kernels_work`; otherwise :func:`make_optimizer` falls
        back to ``torch.optim``'s public ``fused=True``)."""
        return fused_kernels_work() and all(
            p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in model.parameters()
        )

    def _moments(self, p: torch.Tensor) -> tuple:
        if p not in self.state:  # (m, v, step): zeros, as torch.optim starts them
            self.state[p] = (
                torch.zeros_like(p),
                torch.zeros_like(p),
                torch.zeros((), dtype=torch.float32, device=p.device),
            )
        return self.state[p]

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            m, v, steps = zip(*(self._moments(p) for p in params))
            torch._foreach_add_(list(steps), 1.0)
            self.kernel(
                params,
                [p.grad for p in params],
                list(m),
                list(v),
                [],
                list(steps),
                lr=group["lr"],
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=group["weight_decay"],
                eps=self.eps,
                amsgrad=False,
                maximize=False,
            )
        self.steps_taken += 1
        if self.steps_taken % self.FLUSH_EVERY == 0:
            self._flush()

    def _flush(self) -> None:
        """Send the moments' smallest values to zero before they become subnormal.

        Why: a weight whose gradient stays zero (a unit that no longer fires, an input bin
        no row falls in) keeps a first moment that shrinks by β₁ = 0.9 a step on its way
        to zero, through the subnormal range below 1.2e-38, where x86 CPUs compute through
        a microcode assist about a hundred times slower. Measured on concrete (8 members,
        batch 16): after 1,000 steps 15 % of the first moments were subnormal and the
        update took 2.2 ms a step instead of 0.5. Adding and subtracting c = 2^-90 rounds
        every value to a multiple of c's last bit (2^-113), so values under ~5e-35 become
        exactly zero, while the rest change by at most that much (moments above ~1e-20,
        all that matter, not at all); run every 32 steps, a moment decaying at 0.9 a step
        cannot cross the 3,000-fold gap from 5e-35 to the subnormals in between (it needs
        about 80). Two in-place passes (0.4 ms for the default network), no allocation
        and no work on subnormals, unlike a masked fill (3 ms). Measured: the update
        2.2 -> 0.8 ms a step, the whole fit 1.4x faster. No weight changes measurably:
        the update such a moment would make, lr · m / (√v + ε), is under 1e-29. Done here
        rather than by the CPU's flush-to-zero mode, which is per-thread process state a
        library must not change. GPUs compute on subnormals at full speed: CPU only."""
        moments = [t for m, v, _ in self.state.values() for t in (m, v)]
        moments = [t for t in moments if t.device.type == "cpu" and t.dtype == torch.float32]
        if moments:
            torch._foreach_add_(moments, self.FLUSH_SCALE)
            torch._foreach_sub_(moments, self.FLUSH_SCALE)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def _params(self) -> list:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict:
        """The moments by parameter position, as ``torch.optim``'s state dicts key them
        (a training rollback keeps and restores it)."""
        return {
            i: tuple(t.clone() for t in self.state[p])
            for i, p in enumerate(self._params())
            if p in self.state
        }

    def load_state_dict(self, state: dict) -> None:
        self.state = {
            p: tuple(t.to(p.device) for t in state[i])  # a checkpoint's are on the CPU
            for i, p in enumerate(self._params())
            if i in state
        }
        # the steps taken so far, so that a resumed fit flushes on the same steps
        self.steps_taken = max((int(step) for _, _, step in self.state.values()), default=0)


def lr_factor(
    schedule: str,
    step: int,
    *,
    total_steps: int,
    steps_per_epoch: int,
    warmup: float = 0.1,
    step_size: int = 20,
    gamma: float = 0.1,
) -> float:
    """The learning rate at optimiser step ``step`` (0-based), as a multiple of the peak.

    With T = ``total_steps``, W = ⌈``warmup`` · T⌉ warm-up steps and e = ⌊step /
    steps_per_epoch⌋ the epoch:

    - ``constant``: 1
    - ``step``: γ^⌊e / step_size⌋ (the classic staircase)
    - ``exponential``: γ^(step / T), a smooth fall to γ at the end of training
    - ``cosine``: step / W during warm-up (Goyal et al. 2017), then
      ½(1 + cos(π (step - W) / (T - W))) (Loshchilov & Hutter 2017)
    - ``onecycle``: from 1/25 up to 1 along a half cosine until step ``warmup`` · T - 1,
      then down to 1/(25·10⁴) at step T - 1 along a half cosine (Smith & Topin 2019; the
      same steps as torch's OneCycleLR, without its momentum cycling)
    - ``reduce_on_plateau``: 1 here; :class:`Schedule` multiplies by γ when the monitored
      metric stalls

    >>> lr_factor("step", 45, total_steps=100, steps_per_epoch=1, step_size=20, gamma=0.5)
    0.25
    """
    epoch = step // steps_per_epoch
    w = max(1, math.ceil(warmup * total_steps))
    if schedule == "step":
        return gamma ** (epoch // step_size)
    if schedule == "exponential":
        return gamma ** (step / total_steps)
    if schedule == "cosine":
        if step < w:
            return step / w
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - w) / max(1, total_steps - w))))
    if schedule == "onecycle":  # peak at step warmup·T - 1 and end at T - 1, as torch
        low, end = 1.0 / 25.0, 1.0 / 25.0 / 1e4
        peak = max(1.0, warmup * total_steps - 1.0)
        if step <= peak:
            return _cos_between(low, 1.0, step / peak)
        return _cos_between(1.0, end, min(1.0, (step - peak) / max(1.0, total_steps - 1 - peak)))
    return 1.0


def _cos_between(start: float, end: float, t: float) -> float:
    """Half-cosine interpolation: ``start`` at t = 0, ``end`` at t = 1."""
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * t))


class Schedule:
    """Sets each parameter group's learning rate before every step.

    ``step_batch()`` after each optimiser step; ``step_epoch(metric)`` after each epoch
    (only ``reduce_on_plateau`` listens: after ``patience`` epochs without the metric
    improving by a relative 1e-4, the rate falls by ``gamma``, as torch's ReduceLROnPlateau).
    """

    def __init__(
        self,
        optimizer,
        schedule: str,
        *,
        total_steps: int,
        steps_per_epoch: int,
        warmup: float,
        step_size: int,
        gamma: float,
        patience: int,
    ):
        self.optimizer, self.schedule = optimizer, schedule
        self.base = [g["lr"] for g in optimizer.param_groups]
        self.kwargs = {
            "total_steps": max(1, total_steps),
            "steps_per_epoch": steps_per_epoch,
            "warmup": warmup,
            "step_size": step_size,
            "gamma": gamma,
        }
        self.gamma, self.patience = gamma, patience
        self.t, self.plateau_factor, self.best, self.bad_epochs = 0, 1.0, math.inf, 0
        self._apply()

    def _apply(self):
        f = lr_factor(self.schedule, self.t, **self.kwargs) * self.plateau_factor
        for g, base in zip(self.optimizer.param_groups, self.base):
            g["lr"] = base * f

    def step_batch(self):
        self.t += 1
        self._apply()

    def state(self) -> dict:
        """What :meth:`load_state` needs to resume this schedule exactly."""
        return {
            "t": self.t,
            "plateau_factor": self.plateau_factor,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "base": list(self.base),
        }

    def load_state(self, state: dict) -> None:
        self.t, self.plateau_factor = state["t"], state["plateau_factor"]
        self.best, self.bad_epochs, self.base = state["best"], state["bad_epochs"], state["base"]
        self._apply()

    def scale(self, factor: float) -> None:
        """Multiply every base learning rate by ``factor`` (a divergence's rollback)."""
        self.base = [b * factor for b in self.base]
        self._apply()

    def step_epoch(self, metric: float):
        if self.schedule != "reduce_on_plateau":
            return
        if self.best == math.inf or metric < self.best - 1e-4 * abs(self.best):
            self.best, self.bad_epochs = metric, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.plateau_factor *= self.gamma
            self.bad_epochs = 0
            self._apply()


def penalty(weights: list[torch.Tensor], *, alpha: float, l1: float, k: int) -> torch.Tensor | None:
    """``(α/2) Σ‖W‖² + λ₁ Σ|W|`` over the weight matrices, divided by the k members so
    that each member's objective is its own loss plus its own penalty. ``None`` if both
    coefficients are 0 (nothing is computed)."""
    if alpha == 0 and l1 == 0:
        return None
    total = weights[0].new_zeros(())
    for w in weights:
        if alpha:
            total = total + 0.5 * alpha * w.pow(2).sum()
        if l1:
            total = total + l1 * w.abs().sum()
    return total / k


def clip_gradients(params, *, max_norm: float | None, max_value: float | None) -> None:
    """Clip by value (each entry to [-v, v]), then by the global norm over all members
    (Pascanu et al. 2013). No host synchronisation: torch keeps the norm on the device."""
    if max_value is not None:
        nn.utils.clip_grad_value_(params, max_value, foreach=True)
    if max_norm is not None:
        nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
