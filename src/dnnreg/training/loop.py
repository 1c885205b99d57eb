"""One readable training loop: mini-batches sliced from in-memory tensors, any optimiser
and schedule of :mod:`dnnreg.training.optim`, any loss of :mod:`dnnreg.network.losses`,
and early stopping on any validation metric that restores the best weights.

The loop never builds batches sample by sample (no DataLoader) and never synchronises
with ``.item()`` inside an epoch, so an epoch costs close to its matrix multiplications.
Events go to callbacks so diagnostics can plug in from outside. A callback may define
``on_epoch_begin(model)``, ``on_after_backward(model, last_in_epoch)`` (gradients are
fresh; called each step, so it must be cheap unless ``last_in_epoch``) and
``on_epoch_end(record, model)`` and ``on_train_end(model)``; the record is the epoch's
plain-data history entry, which the callback may extend.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch
from torch import nn

from dnnreg.network.losses import Loss
from dnnreg.notices import warn_convergence
from dnnreg.training.checkpoint import (
    Checkpointer,
    StopRequest,
    TrainingInterrupted,
    fingerprint,
)
from dnnreg.training.devices import autocast
from dnnreg.training.distributed import (
    RANK_SEED_STRIDE,
    SINGLE,
    World,
    all_sum,
    broadcast_json,
    wrap,
)
from dnnreg.training.optim import (
    Schedule,
    clip_gradients,
    decayed_parameters,
    make_optimizer,
    penalty,
)

logger = logging.getLogger("dnnreg")


@dataclass
class TrainConfig:
    """Everything the loop needs besides the model and the data; the estimator fills it
    from its parameters (the defaults live there, not here)."""

    batch_size: int
    max_iter: int
    solver: str
    lr: float
    momentum: float
    weight_decay: float
    beta2: float
    alpha: float
    l1: float
    clip_grad_norm: float | None
    clip_grad_value: float | None
    lr_schedule: str
    lr_warmup: float
    lr_step_size: int
    lr_gamma: float
    lr_patience: int
    n_iter_no_change: int
    restore_best: bool
    max_time: float | None
    precision: str = "fp32"
    compile: bool = False


def plain_config(**changes) -> TrainConfig:
    """A :class:`TrainConfig` for experiments and tests that drive the loop directly:
    constant-rate Adam at 1e-3, batch 256, 10 epochs, no decay, penalty, clipping or early
    stopping, updated by ``changes``. (The estimators build theirs from their parameters.)

    >>> plain_config(solver="sgd", lr=0.05).lr
    0.05
    """
    values = dict(
        batch_size=256,
        max_iter=10,
        solver="adam",
        lr=1e-3,
        momentum=0.9,
        weight_decay=0.0,
        beta2=0.999,
        alpha=0.0,
        l1=0.0,
        clip_grad_norm=None,
        clip_grad_value=None,
        lr_schedule="constant",
        lr_warmup=0.1,
        lr_step_size=10,
        lr_gamma=0.1,
        lr_patience=5,
        n_iter_no_change=10**9,
        restore_best=False,
        max_time=None,
    )
    return TrainConfig(**{**values, **changes})


@dataclass
class TrainResult:
    """What training leaves behind: per-epoch history (plain data) and the best epoch."""

    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0


@torch.no_grad()
def forward_in_chunks(model: nn.Module, x_num, x_cat, *, batch_size: int = 2048):
    """Raw outputs of every member in eval mode. Shape: ``([k,] n, ·) -> (k, n, d_out)``;
    with a leading k each member gets its own rows (bagging's held-out folds).

    Chunks of ~2k rows keep each layer's activations in cache: on a 3x256, 4-member net
    measured 3x faster than chunks of 65k rows. Chunks move to the model's device, so a
    table in host memory can be predicted on a GPU."""
    model.eval()
    device = next(model.parameters()).device
    outs = [
        model(
            x_num[..., i : i + batch_size, :].to(device),
            x_cat[..., i : i + batch_size, :].to(device),
        )
        for i in range(0, x_num.shape[-2], batch_size)
    ]
    if not outs:
        return model(x_num.to(device), x_cat.to(device))
    return torch.cat(outs, dim=1)


def fit_model(
    model: nn.Module,
    loss_fn: Loss,
    train,
    *,
    config: TrainConfig,
    generator: torch.Generator,
    evaluate: Callable[[nn.Module], dict] | None = None,
    monitor: str = "val_loss",
    maximize: bool = False,
    callbacks=(),
    log_every: int = 1,
    log_keys: tuple = (),
    member_rows: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    checkpoint: Checkpointer | None = None,
    stop: StopRequest | None = None,
    resume: bool = False,
    world: World = SINGLE,
) -> TrainResult:
    """Train ``model`` in place on ``train = (x_num, x_cat, y)``, each row's loss times
    ``weight`` (``(n,)``, mean 1) when given.

    ``evaluate(model)`` returns the validation metrics of the current weights (a dict such
    as ``{"val_loss": ..., "val_rmse": ...}``); the epoch whose ``monitor`` entry is best
    (largest if ``maximize``) is kept, and training stops after ``n_iter_no_change``
    epochs without improvement. Without ``evaluate`` every epoch runs and the last is kept.
    Every ``log_every`` epochs one progress line goes to the "dnnreg" logger, showing the
    validation loss, ``monitor`` and the entries named in ``log_keys``. ``member_rows``
    (``(k, r)`` row indices) restricts member i to the rows ``member_rows[i]`` (bagging,
    :mod:`dnnreg.training.bagging`); by default every member draws from every row.

    ``checkpoint`` (:mod:`dnnreg.training.checkpoint`) writes the whole training state
    when it is due, and ``resume`` first restores the last one, so the fit goes on as if
    never stopped. ``stop`` is a stop request (SIGINT/SIGTERM): the loop answers it after
    the current batch with a checkpoint and :class:`TrainingInterrupted`.

    ``world`` (:mod:`dnnreg.training.distributed`) makes this one rank of a data-parallel
    fit: it trains on its share of every batch through DDP, and every decision (rollback,
    early stopping, the best epoch) is taken on values that all ranks share.
    """
    streamed = hasattr(train, "blocks")  # a table read in blocks, never whole
    assert not streamed or (member_rows is None and weight is None and config.solver != "lbfgs")
    x_num, x_cat, y = train.probe if streamed else train
    k = getattr(model, "k", 1)
    n = (
        train.n_rows
        if streamed
        else x_num.shape[0]
        if member_rows is None
        else member_rows.shape[1]
    )
    steps_per_epoch = 1 if config.solver == "lbfgs" else math.ceil(n / config.batch_size)
    optimizer = make_optimizer(
        model,
        solver=config.solver,
        lr=config.lr,
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        beta2=config.beta2,
    )
    schedule = Schedule(
        optimizer,
        config.lr_schedule,
        total_steps=config.max_iter * steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
        warmup=config.lr_warmup,
        step_size=config.lr_step_size,
        gamma=config.lr_gamma,
        patience=config.lr_patience,
    )
    if getattr(model, "dropout", 0) > 0 and hasattr(model, "seed_dropout"):
        # the masks' own generator, seeded from the fit's: reproducible, and independent
        # of the batch order drawn below
        seed = int(torch.randint(2**62, (1,), generator=generator))
        model.seed_dropout(seed + world.rank * RANK_SEED_STRIDE)  # each rank its own masks
    weights, _ = decayed_parameters(model)
    alpha = config.alpha + (config.weight_decay if config.solver == "lbfgs" else 0.0)

    def objective(out, target, w=None):
        loss = loss_fn(out, target, w)
        extra = penalty(weights, alpha=alpha, l1=config.l1, k=k)
        return loss, (loss if extra is None else loss + extra)

    # The compiled module shares its parameters with ``model``; evaluation and callbacks
    # keep using the eager model (evaluation batches have other shapes, hooks stay eager).
    step_model = _compile(model) if config.compile and config.solver != "lbfgs" else model
    step_model = wrap(step_model, world, next(model.parameters()).device)
    result = TrainResult()
    reference = _initial_loss(model, objective, (x_num, x_cat, y), member_rows, weight)
    at = _LoopState(good=_GoodState(model, optimizer, schedule, epoch=0))
    start = time.perf_counter()
    snapshot = lambda partial=None: at.snapshot(  # noqa: E731
        model, optimizer, schedule, generator, result, time.perf_counter() - start, partial
    )
    if checkpoint is not None:
        checkpoint.identity = fingerprint(
            checkpoint.identity, vars(config), monitor, maximize,
            *((train.identity,) if streamed else train), member_rows, weight,
            *model.state_dict().values(),  # the initial weights: the seed and architecture
        )  # fmt: skip
        saved = checkpoint.load() if resume else None
        if saved is not None:
            at.restore(saved, model, optimizer, schedule, generator, result)
            start -= saved["seconds"]
    epoch = at.epoch
    while epoch < config.max_iter and not at.finished:
        epoch += 1
        model.train()
        notify(callbacks, "on_epoch_begin", model)
        if config.solver == "lbfgs":
            train_loss = _lbfgs_epoch(
                model, optimizer, objective, x_num, x_cat, y, config, callbacks, weight
            )
        elif streamed:
            # A stream cannot resume inside an epoch (the block order is not replayable from
            # the middle), so a stop request is answered after the current block with a
            # checkpoint of the epoch's start: resuming reruns this epoch, nothing is lost.
            begin = None
            if stop is not None and checkpoint is not None:
                at.epoch = epoch - 1
                begin = copy.deepcopy(snapshot())  # the live tensors move on: copy them
            try:
                train_loss = _streamed_epoch(
                    step_model, model, optimizer, schedule, objective, train, config,
                    generator, callbacks, world, stop=stop if begin is not None else None,
                )  # fmt: skip
            except _EpochInterrupted:
                checkpoint.save(begin)
                raise _interrupted(checkpoint, stop, epoch - 1, None) from None
        else:
            try:
                train_loss = _minibatch_epoch(
                    step_model,
                    model,
                    optimizer,
                    schedule,
                    objective,
                    train,
                    config,
                    generator,
                    callbacks,
                    member_rows,
                    weight,
                    stop=stop,
                    resume=at.partial,
                    world=world,
                )
            except _EpochInterrupted as inside:
                at.epoch = epoch - 1
                checkpoint.save(snapshot(inside.position))
                raise _interrupted(checkpoint, stop, epoch, inside.position) from None
            at.partial = None
        if _diverged(train_loss, reference):
            retries = at.retries
            if retries == MAX_RETRIES:
                raise TrainingDivergedError(
                    f"training diverged (loss {train_loss:.3g}) even at learning rate "
                    f"{config.lr * LR_CUT**retries:.3g}, after {retries} rollbacks from "
                    f"learning_rate_init={config.lr:g}; lower learning_rate_init further, "
                    "clip gradients (clip_grad_norm=1.0), or check the target's scale"
                )
            retries = at.retries = retries + 1  # the loop state carries it into checkpoints
            good = at.good
            good.restore(model, optimizer, schedule)
            schedule.scale(LR_CUT)
            del result.history[good.epoch :]
            warn_convergence(
                f"training loss became {train_loss:.3g} at epoch {epoch}; rolled back to "
                f"epoch {good.epoch} and cut the learning rate {1 / LR_CUT:g}x, to "
                f"{config.lr * LR_CUT**retries:.3g} (rollback {retries} of {MAX_RETRIES}); "
                "a lower learning_rate_init avoids this"
            )
            epoch = good.epoch
            continue
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - start,
        }
        if evaluate is not None:
            record.update(evaluate(model))
        if world.active:  # rank 0's clock and metrics: every rank stops at the same epoch
            record = broadcast_json(record, world)
        score = record[monitor] if evaluate is not None else record["train_loss"]
        score = -score if maximize else score
        schedule.step_epoch(score)
        if evaluate is None:
            result.best_epoch = epoch
        elif score < at.best_score:
            at.best_score, result.best_epoch = score, epoch
            if config.restore_best:
                at.best_state = copy.deepcopy(model.state_dict())
        notify(callbacks, "on_epoch_end", record, model)
        result.history.append(record)
        if log_every and (epoch % log_every == 0 or epoch == config.max_iter):
            keys = ("train_loss", "val_loss", monitor, *log_keys)
            progress = {
                "epoch": epoch,
                "max_iter": config.max_iter,
                "seconds": record["seconds"],
                "values": {k: record[k] for k in dict.fromkeys(keys) if k in record},
            }
            logger.info(
                _progress_line(record, config.max_iter, (monitor, *log_keys)),
                extra={"progress": progress},
            )
        if epoch % GOOD_STATE_EVERY == 0:
            at.good = _GoodState(model, optimizer, schedule, epoch=epoch)
        if evaluate is not None and epoch - result.best_epoch >= config.n_iter_no_change:
            result.stopped_early = True
            break
        if config.max_time is not None and record["seconds"] >= config.max_time:
            result.stopped_early = True
            break
        stopping = stop is not None and stop.requested
        if checkpoint is not None and (stopping or checkpoint.due(epoch)):
            at.epoch = epoch
            checkpoint.save(snapshot())
            if stopping:
                raise _interrupted(checkpoint, stop, epoch, None)
    if stop is not None and stop.requested and not at.finished:
        # the request came during the last epoch: training is over, the checkpoint says so
        at.epoch, at.finished, at.stopped_early = epoch, True, result.stopped_early
        checkpoint.save(snapshot())
        raise _interrupted(checkpoint, stop, epoch, None)
    result.stopped_early = result.stopped_early or at.stopped_early
    if checkpoint is not None and checkpoint.keep and not at.finished:
        # a kept checkpoint holds the finished training: resuming it skips to the end
        at.epoch, at.finished, at.stopped_early = epoch, True, result.stopped_early
        checkpoint.save(snapshot())
    if at.best_state is not None:
        model.load_state_dict(at.best_state)
    notify(callbacks, "on_train_end", model)
    result.seconds = time.perf_counter() - start
    return result


# Divergence: an epoch whose mean loss is not finite, or above EXPLODED times the initial
# model's, rolls back to the last good state (kept every GOOD_STATE_EVERY epochs, and the
# initial weights) and continues at LR_CUT times the learning rate, at most MAX_RETRIES
# times. Checked once an epoch: a check per step would cost a device sync per batch.
EXPLODED = 1e3
LR_CUT = 0.1
MAX_RETRIES = 4
GOOD_STATE_EVERY = 5


class TrainingDivergedError(ValueError):
    """Training diverged at every learning rate the rollbacks tried."""


def _diverged(loss: float, reference: float) -> bool:
    return not math.isfinite(loss) or loss > EXPLODED * max(reference, 1e-3)


def _initial_loss(model, objective, train, member_rows, weight) -> float:
    """The untrained model's loss on (up to) the first 1,024 training rows: what an
    exploded loss is measured against (the target is standardised, so about 1 for mse)."""
    x_num, x_cat, y = train
    k = getattr(model, "k", 1)
    rows = torch.arange(min(1024, x_num.shape[0]), device=x_num.device)
    idx = rows.expand(k, -1) if member_rows is None else member_rows[:, : len(rows)]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # no dropout draw, no batch-norm update: training's random stream unmoved
    try:
        with torch.no_grad():
            out = model(x_num[idx].to(device), x_cat[idx].to(device)).float()
            w = None if weight is None else weight[idx].to(device)
            loss, _ = objective(out, y[idx].to(device), w)
    finally:
        model.train(was_training)
    return float(loss)


class _GoodState:
    """The weights, optimiser state and schedule of a finite epoch, to roll back to."""

    def __init__(self, model, optimizer, schedule, *, epoch: int):
        self.epoch = epoch
        self.model = copy.deepcopy(model.state_dict())
        self.optimizer = copy.deepcopy(optimizer.state_dict())
        self.schedule = schedule.state()

    def restore(self, model, optimizer, schedule) -> None:
        """Back to this state, keeping the schedule's current base rates (so successive
        cuts compound)."""
        model.load_state_dict(self.model)
        optimizer.load_state_dict(copy.deepcopy(self.optimizer))
        schedule.load_state({**self.schedule, "base": list(schedule.base)})


@dataclass
class _LoopState:
    """What the loop carries from epoch to epoch besides the model, optimiser and
    schedule: epochs done, the early-stopping best, the divergence guard's good state and
    rollbacks, and (after a stop request) the position inside the unfinished epoch."""

    good: _GoodState
    epoch: int = 0
    best_score: float = math.inf
    best_state: dict | None = None
    retries: int = 0
    partial: dict | None = None
    finished: bool = False
    stopped_early: bool = False

    def snapshot(self, model, optimizer, schedule, generator, result, seconds, partial):
        """Everything a checkpoint holds, as plain data and tensors."""
        masks = getattr(model, "dropout_masks", None)
        device = next(model.parameters()).device
        return {
            "epoch": self.epoch,
            "seconds": seconds,
            "partial": partial,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state(),
            "best": {"score": self.best_score, "state": self.best_state},
            "good": vars(self.good),
            "retries": self.retries,
            "finished": self.finished,
            "stopped_early": self.stopped_early,
            "history": result.history,
            "best_epoch": result.best_epoch,
            "random": {
                "batches": generator.get_state(),
                "torch_cpu": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                # SFC64's words are uint64: kept as JSON integers, which have no width
                "dropout": None if masks is None else _int_lists(masks.bits.state),
            },
        }

    def restore(self, saved, model, optimizer, schedule, generator, result) -> None:
        """Back to a :meth:`snapshot` (the inverse, in place)."""
        self.epoch, self.retries, self.partial = saved["epoch"], saved["retries"], saved["partial"]
        self.best_score, self.best_state = saved["best"]["score"], saved["best"]["state"]
        self.finished, self.stopped_early = saved["finished"], saved["stopped_early"]
        self.good = _GoodState.__new__(_GoodState)
        vars(self.good).update(saved["good"])
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state(saved["schedule"])
        result.history[:], result.best_epoch = saved["history"], saved["best_epoch"]
        rng = saved["random"]
        generator.set_state(rng["batches"])
        torch.set_rng_state(rng["torch_cpu"])
        if rng["cuda"] is not None:
            torch.cuda.set_rng_state(rng["cuda"], next(model.parameters()).device)
        if rng["dropout"] is not None:
            state = dict(rng["dropout"])
            state["state"] = {k: np.array(v, dtype=np.uint64) for k, v in state["state"].items()}
            model.dropout_masks.bits.state = state


def _int_lists(state: dict) -> dict:
    """A NumPy bit generator's state with its arrays as lists of Python ints."""
    return {
        k: (_int_lists(v) if isinstance(v, dict) else v.tolist() if hasattr(v, "tolist") else v)
        for k, v in state.items()
    }


class _EpochInterrupted(Exception):
    """A stop request inside an epoch; ``position`` is what resuming the epoch needs."""

    def __init__(self, position: dict):
        self.position = position


def _interrupted(checkpoint, stop, epoch: int, position) -> TrainingInterrupted:
    import signal

    stop.answered = True
    name = signal.Signals(stop.signum).name
    where = f"epoch {epoch}" if position is None else f"epoch {epoch} (inside it)"
    return TrainingInterrupted(
        f"{name}: training stopped at {where}; the checkpoint in "
        f"{str(checkpoint.directory)!r} continues it with resume (the CLI's --resume)",
        signum=stop.signum,
        directory=checkpoint.directory,
        epoch=epoch,
    )


def notify(callbacks, event: str, *args) -> None:
    """Call ``event`` on every callback that defines it."""
    for cb in callbacks:
        method = getattr(cb, event, None)
        if method is not None:
            method(*args)


def _compile(model: nn.Module):
    """``torch.compile`` for the training steps: inductor fuses each layer's bias, activation
    and their backward into the matmul's neighbours. Static shapes, so the last, shorter
    batch of an epoch compiles once more rather than every kernel turning dynamic."""
    return torch.compile(model, dynamic=False)


def _minibatch_epoch(
    step_model,
    model,
    optimizer,
    schedule,
    objective,
    train,
    config,
    generator,
    callbacks=(),
    member_rows=None,
    weight=None,
    stop=None,
    resume=None,
    world: World = SINGLE,
) -> float:
    """One pass over the rows in mini-batches. ``step_model`` runs the forward pass (the
    model itself, or its compiled form); batches move to the model's device if the table
    lives elsewhere (a table too large for the GPU stays in host memory). With
    ``member_rows`` each member shuffles only its own rows.

    After each batch a pending ``stop`` request raises :class:`_EpochInterrupted` with
    what continuing needs (the epoch's row order, the next batch, the running loss);
    ``resume`` takes that back and goes on from the next batch.

    Under a data-parallel ``world`` every rank draws the same order and takes every
    ``world.size``-th row of each batch; its loss is weighted by its share of the batch so
    that DDP's average of the ranks' gradients is the whole batch's gradient. Returns the
    epoch's mean training loss over all ranks' rows."""
    x_num, x_cat, y = train
    k = getattr(model, "k", 1)
    n = x_num.shape[0] if member_rows is None else member_rows.shape[1]
    device = next(model.parameters()).device
    copy_batches = x_num.device != device
    located = None if copy_batches else _located(model, x_num)
    if resume is None:
        # Each member sees its own shuffle, as if trained alone: members decorrelate.
        order = torch.stack([torch.randperm(n, generator=generator) for _ in range(k)])
        if member_rows is not None:
            order = torch.gather(member_rows, 1, order)
        total, first = torch.zeros((), dtype=torch.float64), 0
    else:
        order, first, total = resume["order"], resume["next"], resume["total"]
    order, total = order.to(x_num.device), total.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    # Drop a last batch of one row (batch norm cannot normalise a single sample), or of
    # fewer rows than ranks (each rank needs one).
    short = n % config.batch_size
    end = n - (short if 0 < short < max(2, world.size) and n > short else 0)
    for i in range(first, end, config.batch_size):
        idx = order[:, i : i + config.batch_size]  # (k, b)
        share = 1.0
        if world.active:
            b = idx.shape[1]
            idx = idx[:, world.rank :: world.size]  # (k, b / size): this rank's rows
            share = idx.shape[1] * world.size / b
        xb_num, xb_cat, yb = x_num[idx], x_cat[idx], y[idx]
        wb = None if weight is None else weight[idx]  # (k, b)
        if copy_batches:
            xb_num, xb_cat, yb = (t.to(device, non_blocking=True) for t in (xb_num, xb_cat, yb))
            wb = None if wb is None else wb.to(device, non_blocking=True)
        # the batch's rows of what the model located once (piecewise-linear bins)
        extra = {} if located is None else {"located": tuple(t[idx] for t in located)}
        with autocast(config.precision, device):
            out = step_model(xb_num, xb_cat, **extra)
        if config.precision != "fp32":
            out = out.float()  # the loss in fp32: bf16 cannot resolve small residuals
        loss, full = objective(out, yb, wb)
        if share != 1.0:  # DDP averages over ranks: weigh this rank's mean by its rows
            full = full + (share - 1.0) * loss
        optimizer.zero_grad(set_to_none=True)
        full.backward()
        if callbacks:
            notify(callbacks, "on_after_backward", model, i + config.batch_size >= end)
        if config.clip_grad_norm is not None or config.clip_grad_value is not None:
            clip_gradients(params, max_norm=config.clip_grad_norm, max_value=config.clip_grad_value)
        optimizer.step()
        schedule.step_batch()
        total += loss.detach() * idx.shape[1]  # no .item(): no sync per batch
        if stop is not None and stop.requested and i + config.batch_size < end:
            raise _EpochInterrupted({"order": order, "next": i + config.batch_size, "total": total})
    # every row of the epoch went to one rank: the sum over ranks is the whole epoch's, and
    # every rank takes its rollback decision on the same number
    return all_sum([float(total)], world)[0] / end


# Locating every training row's bins once an epoch pays while it costs little memory: (n, f) int32
# indices and float32 positions, 8 bytes per embedded value, at most this many bytes.
LOCATE_MAX_BYTES = 256 * 2**20


def _located(model: nn.Module, x_num: torch.Tensor):
    """``model.locate(x_num)`` (:meth:`dnnreg.network.mlp.MLP.locate`) for the whole
    training table, when the model offers it and the result is small; else ``None``."""
    locate = getattr(model, "locate", None)
    f = getattr(getattr(model, "num_embedding", None), "columns", ())
    if locate is None or 8 * x_num.shape[0] * len(f) > LOCATE_MAX_BYTES:
        return None
    with torch.no_grad():
        return locate(x_num)


def _streamed_epoch(step_model, model, optimizer, schedule, objective, train, config,
                    generator, callbacks, world, stop=None) -> float:  # fmt: skip
    """One pass over a streamed table: each block it reads (``train.blocks``, rows a
    whole number of batches but the last) is an in-memory epoch of its own for
    :func:`_minibatch_epoch`, which shuffles it again for each member. A pending ``stop``
    request raises :class:`_EpochInterrupted` after the current block (the caller goes
    back to the epoch's start: the block order cannot be replayed from the middle).
    Returns the epoch's mean training loss over all ranks' rows.

    A sharded table (``train.sharded``) gives this rank its own rows: each batch is taken
    whole, ``train.local_batch`` rows, and DDP averages the ranks' equal batches into the
    global batch's gradient; every rank reads the same number of rows, so all make the
    same steps. Otherwise every rank reads every block and takes its share of each batch."""
    sharded = getattr(train, "sharded", False)
    local = replace(config, batch_size=train.local_batch) if sharded else config
    total = rows = 0.0
    for block in train.blocks(generator):
        n = block[0].shape[0]
        total += n * _minibatch_epoch(
            step_model, model, optimizer, schedule, objective, block, local, generator,
            callbacks, world=SINGLE if sharded else world,
        )  # fmt: skip
        rows += n
        if stop is not None and stop.requested:
            raise _EpochInterrupted(None)
    if sharded:  # each rank's own rows: the epoch's mean over all of them
        total, rows = all_sum([total, rows], world)
    return total / rows


def _lbfgs_epoch(
    model, optimizer, objective, x_num, x_cat, y, config, callbacks=(), weight=None
) -> float:
    """One L-BFGS step on the full batch (up to 20 function evaluations)."""
    k = getattr(model, "k", 1)
    target = y.unsqueeze(0).expand(k, *y.shape)  # every member sees every row

    def closure():
        optimizer.zero_grad(set_to_none=True)
        _, full = objective(model(x_num, x_cat), target, weight)
        full.backward()
        notify(callbacks, "on_after_backward", model, True)
        if config.clip_grad_norm is not None or config.clip_grad_value is not None:
            clip_gradients(
                [p for p in model.parameters() if p.grad is not None],
                max_norm=config.clip_grad_norm,
                max_value=config.clip_grad_value,
            )
        return full

    optimizer.step(closure)
    with torch.no_grad():
        loss, _ = objective(model(x_num, x_cat), target, weight)
    return float(loss)


def _progress_line(record: dict, max_iter: int, keys: tuple) -> str:
    line = (
        f"epoch {record['epoch']:>4}/{max_iter}  train_loss {record['train_loss']:.4f}  "
        f"lr {record['lr']:.2e}"
    )
    shown = [key for key in ("val_loss", *keys) if key in record]
    for key in dict.fromkeys(shown):
        value = record[key]
        line += f"  {key} {value}" if isinstance(value, int) else f"  {key} {value:.4f}"
    return line + f"  {record['seconds']:.1f}s"
