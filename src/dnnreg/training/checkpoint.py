"""Checkpoints: everything a fit needs to go on exactly where it stopped, written
atomically while it trains, and the stop requests (Ctrl-C, SIGTERM) that end a fit with
one.

A checkpoint holds the weights, the optimiser's moments, the schedule, the early-stopping
state (best score and weights), the divergence guard's last good state, the epoch (and,
after a stop request, the position inside it with that epoch's row order), the history,
and the state of every random generator the fit draws from (the batch-order generator,
the dropout masks' bit generator, torch's CPU and CUDA generators). Resuming restores all
of it, so a resumed fit with a fixed seed gives the same model as an uninterrupted one,
bit for bit on the CPU (tests/test_checkpoint.py kills real processes to hold this).

Files: ``state.json`` (plain data) and ``tensors.safetensors`` (every tensor, named by its
place in the state): no pickle, as for model files. The directory is a dnnreg output of
kind "checkpoint" written by :func:`dnnreg.output_dir`, so a kill during a write
leaves the previous checkpoint whole, and dnnreg never writes one over a directory of
the user's.

When: ``every`` epochs, or with "auto" at the end of the first epoch after
:data:`AUTO_SECONDS` seconds of training, and afterwards no sooner than
:data:`OVERHEAD_RATIO` times as long as the last write took since that write, so writing
costs at most 1/50 = 2 % of the fit however large the network or slow the disk.

Identity: a checkpoint records a fingerprint of the fit that wrote it (parameters,
training data, initial weights, dnnreg's version); resuming a different fit from it is
refused rather than producing a model of neither.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch

from dnnreg._files import (
    OutputExistsError,
    check_output_dir,
    lock,
    marker_of,
    output_dir,
    remove_output,
    write_file,
    write_json,
)
from dnnreg.notices import warn

AUTO_SECONDS = 10.0
OVERHEAD_RATIO = 50.0
STATE, TENSORS = "state.json", "tensors.safetensors"
KIND = "checkpoint"


class CheckpointMismatchError(ValueError):
    """The checkpoint on disk was written by another fit (data, parameters or version)."""


class TrainingInterrupted(KeyboardInterrupt):
    """A stop request (SIGINT, SIGTERM) ended the fit after writing a checkpoint. A
    ``KeyboardInterrupt``, so code that already handles Ctrl-C handles this too."""

    def __init__(self, message: str, *, signum: int, directory: Path, epoch: int):
        super().__init__(message)
        self.signum, self.directory, self.epoch = signum, directory, epoch

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal's number (130 for SIGINT, 143 SIGTERM)."""
        return 128 + self.signum


# ---------------------------------------------------------------------- plain data + tensors
def pack(obj, tensors: dict, name: str = "s"):
    """``obj`` (nested dicts, lists, tuples, numbers, strings, tensors, NumPy arrays) as
    JSON-able data; its tensors move to ``tensors`` under their path in ``obj``.

    >>> t = {}; pack({"w": torch.ones(2), 3: (1.0, math.inf)}, t)
    {'__dict__': [['w', {'__tensor__': 's.w'}], [3, {'__tuple__': [1.0, {'__float__': 'inf'}]}]]}
    >>> list(t)
    ['s.w']
    """
    if isinstance(obj, torch.Tensor):
        tensors[name] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": name}
    if isinstance(obj, np.ndarray):
        tensors[name] = torch.from_numpy(np.array(obj, copy=True))
        return {"__array__": name}
    if isinstance(obj, dict):
        items = [[k, pack(v, tensors, f"{name}.{k}")] for k, v in obj.items()]
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return dict(items)
        return {"__dict__": items}  # int keys (optimiser states), or keys like our tags
    if isinstance(obj, (list, tuple)):
        items = [pack(v, tensors, f"{name}.{i}") for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return pack(obj.item(), tensors, name)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"a checkpoint cannot hold {type(obj).__name__} (at {name})")


def unpack(obj, tensors: dict):
    """The inverse of :func:`pack`."""
    if isinstance(obj, list):
        return [unpack(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__array__" in obj:
        return tensors[obj["__array__"]].numpy()
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__tuple__" in obj:
        return tuple(unpack(v, tensors) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {k: unpack(v, tensors) for k, v in obj["__dict__"]}
    return {k: unpack(v, tensors) for k, v in obj.items()}


def fingerprint(*parts) -> str:
    """A sha256 over plain data and tensors/arrays (their bytes, dtype and shape)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            part = part.detach().cpu().contiguous().numpy()
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype}{part.shape}".encode())
            h.update(np.ascontiguousarray(part).data)
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


# ---------------------------------------------------------------------- the directory
class Checkpointer:
    """Writes and reads the checkpoints of one fit in ``directory``.

    ``every``: an epoch count, or "auto" (time-based, see the module docstring).
    ``identity``: the fit's fingerprint (:func:`fingerprint`), set before training."""

    def __init__(self, directory, *, every="auto", keep: bool = False):
        self.directory, self.every, self.keep = Path(directory), every, keep
        self.identity = ""
        self.last_write, self.write_seconds = time.perf_counter(), 0.0
        self.writes, self.total_seconds = 0, 0.0  # what checkpoints cost this fit

    def check(self) -> None:
        """Refuse, before any work, a directory that is neither absent, empty nor a
        checkpoint (a user's folder, a model): it would never be written over."""
        marker = check_output_dir(self.directory, resume=True)
        if marker is not None and marker.get("dnnreg_output") != KIND:
            raise OutputExistsError(
                f"checkpoint_dir {str(self.directory)!r} holds a dnnreg "
                f"{marker.get('dnnreg_output')}, not a checkpoint; choose another folder"
            )

    def held(self):
        """The checkpoint folder locked for the whole fit: a second fit writing the same
        folder meanwhile is refused (:func:`dnnreg._files.lock`)."""
        return lock(self.directory)

    def exists(self) -> bool:
        return (self.directory / STATE).is_file()

    def due(self, epoch: int) -> bool:
        """Whether the epoch that just ended should be written."""
        if self.every != "auto":
            return epoch % int(self.every) == 0
        wait = max(AUTO_SECONDS, OVERHEAD_RATIO * self.write_seconds)
        return time.perf_counter() - self.last_write >= wait

    def save(self, state: dict) -> None:
        """Write ``state`` atomically (the previous checkpoint stays until this one is
        complete)."""
        from safetensors.torch import save

        start = time.perf_counter()
        tensors: dict = {}
        plain = {"identity": self.identity, "state": pack(state, tensors)}
        with output_dir(self.directory, kind=KIND, overwrite=True) as tmp:
            write_file(tmp / TENSORS, save(tensors))
            write_json(tmp / STATE, plain)
        self.last_write = time.perf_counter()
        self.write_seconds = self.last_write - start
        self.writes += 1
        self.total_seconds += self.write_seconds

    def load(self) -> dict | None:
        """The saved state, or ``None`` when there is none yet (a warning says the fit
        starts from the beginning). A checkpoint of another fit is refused."""
        from safetensors.torch import load

        if not self.exists():
            warn(
                f"no checkpoint in {str(self.directory)!r} yet (the fit stopped before its "
                "first one); training starts from the beginning"
            )
            return None
        try:
            plain = json.loads((self.directory / STATE).read_text())
            tensors = load((self.directory / TENSORS).read_bytes())
        except (OSError, ValueError) as err:
            raise CheckpointMismatchError(
                f"the checkpoint in {str(self.directory)!r} cannot be read ({err}); "
                "remove it and fit without resume"
            ) from None
        if plain.get("identity") != self.identity:
            raise CheckpointMismatchError(
                f"the checkpoint in {str(self.directory)!r} was written by another fit (its "
                "data, parameters or dnnreg version differ); resume with the same data and "
                "settings, or fit without resume to start again"
            )
        return unpack(plain["state"], tensors)

    def discard(self) -> None:
        """Remove the checkpoint (a finished fit's), unless asked to keep it."""
        if not self.keep and marker_of(self.directory) is not None:
            remove_output(self.directory)


# ---------------------------------------------------------------------- stop requests
class StopRequest:
    """Turns SIGINT and SIGTERM into a request the training loop answers at the next
    batch: it writes a checkpoint and raises :class:`TrainingInterrupted`. A second
    signal while the first is handled interrupts at once (``KeyboardInterrupt``).

    Handlers are installed only for the fit's duration, only from the main thread (Python
    allows no other), and the previous ones are restored."""

    def __init__(self):
        self.signum: int | None = None
        self.answered = False

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    @contextlib.contextmanager
    def installed(self):
        """The handlers, for the body only. A request the body did not answer (one that
        came after training's last check) is delivered again to the restored handler, so
        it is never swallowed."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            if self.signum is not None and not self.answered:
                signal.raise_signal(self.signum)
