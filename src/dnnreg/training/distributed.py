"""Data-parallel training across processes: one model trained by several ranks launched by
``torchrun``, on PyTorch's own engine (``torch.distributed`` and
``DistributedDataParallel``), never a home-made one.

How a fit runs under ``torchrun --nproc-per-node=N -m dnnreg train ...`` (or any script
calling ``fit`` in a torchrun process):

- **Joining.** torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous
  address; :func:`join` opens the process group once per process with ``gloo`` on the CPU
  and ``nccl`` on GPUs (each rank on ``cuda:LOCAL_RANK``), and a timeout
  (:data:`TIMEOUT_S`): a rank that dies makes the others fail with an error naming it within
  that time, never hang. Without torchrun (``WORLD_SIZE`` unset or 1) nothing changes.
- **One encoding.** Rank 0 fits the preprocessing and broadcasts it as JSON, so every rank
  encodes identically; every rank must be given the same table (checked: a rank whose table
  differs is an error naming it).
- **The batch.** ``batch_size`` is the *global* batch. Every rank draws the same row order
  (same seed) and takes every N-th row of each global batch, so each rank reads 1/N of the
  rows; DDP averages the gradients, and each rank's loss is weighted by its share of the
  batch, so one step equals a single process's step on the global batch (up to the order
  of floating-point sums). Hence the learning rate needs no scaling with N: the global
  batch, which the rate was tuned for, is unchanged. A streamed table is read in shards
  instead (:mod:`dnnreg.estimators.streaming`): each rank reads its own pieces and trains on
  whole local batches of ``batch_size // N`` rows, the same number on every rank. Dropout
  masks are drawn per rank from generators seeded apart.
- **One decision.** The epoch's training loss is averaged over the ranks, and rank 0's
  validation record is broadcast, so every rank rolls back, stops early and restores the
  best epoch at the same moment.
- **One writer.** Only rank 0 writes the model, checkpoints and the run directory.

Shapes do not change: the k ensemble members stay one batched model on every rank.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import timedelta

import torch

# Seconds a collective may wait for a missing rank before failing with an error.
TIMEOUT_S = float(os.environ.get("DNNREG_DDP_TIMEOUT", "60"))
# Rank r's dropout masks are seeded with seed + r * this (rank 0 keeps the plain seed).
RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of a data-parallel fit."""

    rank: int = 0
    size: int = 1

    @property
    def active(self) -> bool:
        """More than one rank: collectives and DDP are in use."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0, the one that writes."""
        return self.rank == 0


SINGLE = World()


def launched() -> bool:
    """Whether this process is one of several ranks: started by torchrun (its
    ``WORLD_SIZE``), or inside a process group someone else opened (Ray Train's
    ``TorchTrainer`` opens it before calling the training function)."""
    try:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            return True
    except ValueError:
        pass
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def process_rank() -> int:
    """This process's rank (0 outside a data-parallel launch), from the open process
    group or else torchrun's ``RANK``, before any group is joined: who writes."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def local_device(device: torch.device) -> torch.device:
    """A rank's own GPU, ``cuda:LOCAL_RANK``, when training on CUDA under torchrun."""
    if device.type == "cuda" and launched() and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def join(device: torch.device) -> World:
    """Join torchrun's process group (opened once per process), or :data:`SINGLE` when
    this process was not launched as one of several ranks."""
    if not launched():
        return SINGLE
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        expected = World(process_rank(), int(os.environ.get("WORLD_SIZE", "2")))
        with guarded(expected):  # a rank that never arrives: the same one line
            dist.init_process_group(backend, timeout=timedelta(seconds=TIMEOUT_S))
    return World(dist.get_rank(), dist.get_world_size())


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """``model`` inside ``DistributedDataParallel`` (gradients averaged over the ranks in
    buckets, overlapping the backward pass); the model itself when there is one rank."""
    if not world.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


class RankFailed(ConnectionError):
    """Another rank of a data-parallel fit failed or disappeared: its connection to this
    one broke (a ``ConnectionError``, hence one line on the CLI, like other I/O faults)."""


# What gloo and NCCL say when a peer has gone: they raise plain RuntimeErrors (DistError
# in newer torch), from a collective or from DDP's gradient hooks inside backward().
_BACKEND_WORDS = ("gloo", "nccl", "connection closed", "connection reset", "timed out")


def _from_backend(e: BaseException) -> bool:
    dist_error = getattr(torch.distributed, "DistError", ())
    return isinstance(e, dist_error) or any(w in str(e).lower() for w in _BACKEND_WORDS)


@contextlib.contextmanager
def guarded(world: World):
    """Turn a communication failure inside the body (a rank that died, crashed or timed
    out) into one :class:`RankFailed` line; anything else passes through unchanged."""
    try:
        yield
    except RankFailed:
        raise
    except RuntimeError as e:
        if not (world.active and _from_backend(e)):
            raise
        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise RankFailed(
            f"another rank of this data-parallel fit stopped or timed out ({first.strip()}); "
            f"this rank ({world.rank}) stopped too: see the other rank's own error, and rerun "
            "all ranks"
        ) from e


def _collective(world: World, fn, *args, **kwargs):
    with guarded(world):
        return fn(*args, **kwargs)


def broadcast_json(value, world: World):
    """Rank 0's JSON-serialisable ``value`` on every rank (sent as UTF-8 bytes: no pickle
    crosses between processes)."""
    if not world.active:
        return value
    import torch.distributed as dist

    data = json.dumps(value).encode() if world.is_main else b""
    size = torch.tensor([len(data)], dtype=torch.int64)
    _collective(world, dist.broadcast, size, src=0)
    buffer = torch.empty(int(size), dtype=torch.uint8)
    if world.is_main:
        buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    _collective(world, dist.broadcast, buffer, src=0)
    return json.loads(bytes(buffer.numpy()).decode())


def all_sum(values: list[float], world: World) -> list[float]:
    """Element-wise sums over the ranks (float64)."""
    if not world.active:
        return list(values)
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    _collective(world, dist.all_reduce, t)
    return t.tolist()


def check_same(digest: str, what: str, world: World) -> None:
    """Every rank must hold the same ``digest`` of ``what``; the ranks that differ from
    rank 0 are named."""
    if not world.active:
        return
    import torch.distributed as dist

    mine = torch.tensor([int(digest[:15], 16)], dtype=torch.int64)  # 60 bits of a hex digest
    gathered = [torch.empty_like(mine) for _ in range(world.size)]
    _collective(world, dist.all_gather, gathered, mine)
    differ = [r for r, d in enumerate(gathered) if int(d) != int(gathered[0])]
    if differ:
        raise ValueError(
            f"every rank must be given the same {what} under torchrun; rank(s) {differ} "
            "differ from rank 0's (each rank trains on its share of every batch of it)"
        )


def leave(world: World) -> None:
    """Wait for every rank at the end of a fit, so none exits while another still
    needs it."""
    if world.active:
        import torch.distributed as dist

        _collective(world, dist.barrier)
