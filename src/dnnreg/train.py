"""One readable training loop: mini-batches sliced from in-memory tensors, AdamW, a
learning-rate schedule, and early stopping that restores the best weights.

The loop never builds batches sample by sample (no DataLoader) and never synchronises
with ``.item()`` inside an epoch, so an epoch costs close to its matrix multiplications.
Events go to callbacks (``on_epoch_end(record)``) so diagnostics can plug in from outside.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

logger = logging.getLogger("dnnreg")

SCHEDULES = ("onecycle", "cosine", "constant")


@dataclass
class TrainResult:
    """What training leaves behind: per-epoch history (plain data) and the best epoch."""

    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0


def make_optimizer(model: nn.Module, *, lr: float, weight_decay: float):
    """AdamW (Loshchilov & Hutter 2019) with decay on weight matrices only; biases,
    norms and embeddings are not shrunk. Uses the fused kernel where torch has one."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if name.endswith("weight") and p.dim() == 3 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError):  # older torch or an unsupported device
        return torch.optim.AdamW(groups, lr=lr, foreach=True)


def make_schedule(optimizer, *, schedule: str, total_steps: int):
    """Per-step learning-rate schedule. ``onecycle``: warm up for 10 % of the steps, then
    cosine-anneal (Smith & Topin 2019); ``cosine``: anneal from the start (Loshchilov &
    Hutter 2017); ``constant``: none."""
    if schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
            total_steps=max(total_steps, 2), pct_start=0.1)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    return None


def ensemble_mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over members of each member's MSE: members learn independently.
    Shape: ``out: (k, n, 1), y: (n,) or (k, n) -> ()``."""
    return (out.squeeze(-1) - y).pow(2).mean()


@torch.no_grad()
def predict_standardized(model: nn.Module, x_num, x_cat, *, batch_size: int = 65536):
    """Ensemble-mean predictions in standardized target units. Shape: ``-> (n,)``."""
    model.eval()
    outs = [model(x_num[i:i + batch_size], x_cat[i:i + batch_size]).mean(0).squeeze(-1)
            for i in range(0, x_num.shape[0], batch_size)]
    return torch.cat(outs) if outs else x_num.new_zeros(0)


def fit_model(model: nn.Module, train, val, *, batch_size: int, max_iter: int, lr: float,
              weight_decay: float, schedule: str, n_iter_no_change: int,
              max_time: float | None, generator: torch.Generator, target_std: float = 1.0,
              callbacks=(), log_every: int = 1) -> TrainResult:
    """Train ``model`` in place on ``train = (x_num, x_cat, y)``; early-stop on ``val``.

    ``val`` may be ``None`` (then the last epoch is kept). ``target_std`` converts the
    standardized validation RMSE back to the target's units for the history.
    """
    x_num, x_cat, y = train
    n = x_num.shape[0]
    k = getattr(model, "k", 1)
    steps_per_epoch = math.ceil(n / batch_size)
    optimizer = make_optimizer(model, lr=lr, weight_decay=weight_decay)
    scheduler = make_schedule(optimizer, schedule=schedule, total_steps=max_iter * steps_per_epoch)
    result, best_loss, best_state = TrainResult(), math.inf, None
    start = time.perf_counter()
    for epoch in range(1, max_iter + 1):
        model.train()
        # Each member sees its own shuffle, as if trained alone: members decorrelate.
        order = torch.stack([torch.randperm(n, generator=generator) for _ in range(k)])
        total = torch.zeros((), dtype=torch.float64)
        # Drop a last batch of one row: batch norm cannot normalise a single sample.
        for i in range(0, n - (1 if n % batch_size == 1 and n > 1 else 0), batch_size):
            idx = order[:, i:i + batch_size]  # (k, b)
            loss = ensemble_mse(model(x_num[idx], x_cat[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += loss.detach() * idx.shape[1]  # no .item(): no sync per batch
        record = {"epoch": epoch, "train_loss": float(total) / n,
                  "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - start}
        if val is not None:
            val_mse = float((predict_standardized(model, val[0], val[1]) - val[2]).pow(2).mean())
            record.update(val_loss=val_mse, val_rmse=math.sqrt(val_mse) * target_std)
            if val_mse < best_loss:
                best_loss, result.best_epoch = val_mse, epoch
                best_state = copy.deepcopy(model.state_dict())
        else:
            result.best_epoch = epoch
        result.history.append(record)
        for cb in callbacks:
            cb.on_epoch_end(record)
        if log_every and (epoch % log_every == 0 or epoch == max_iter):
            logger.info(_progress_line(record, max_iter))
        if not math.isfinite(record["train_loss"]):
            logger.warning("training loss became %s at epoch %d; stopping (lower the "
                           "learning rate)", record["train_loss"], epoch)
            result.stopped_early = True
            break
        if val is not None and epoch - result.best_epoch >= n_iter_no_change:
            result.stopped_early = True
            break
        if max_time is not None and record["seconds"] >= max_time:
            result.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - start
    return result


def _progress_line(record: dict, max_iter: int) -> str:
    line = (f"epoch {record['epoch']:>4}/{max_iter}  train_loss {record['train_loss']:.4f}  "
            f"lr {record['lr']:.2e}")
    if "val_rmse" in record:
        line += f"  val_rmse {record['val_rmse']:.4f}"
    return line + f"  {record['seconds']:.1f}s"
