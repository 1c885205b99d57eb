"""``fit`` on a table named by its path (or given as a ``pyarrow.dataset.Dataset``): read
whole when it fits the memory budget (``max_memory_rows``), streamed when it does not.

A streamed fit (:mod:`dnnreg.tables.streaming`) makes one pass for its statistics (exact
target moments, level counts and gaps; a hashed sample of :data:`SAMPLE_ROWS` rows for the
quantile knots, medians and bin edges, pretraining and the callbacks' probes), holds the
validation rows out by a hash of their position, and reads the training rows again every
epoch in shuffled blocks. Everything after that is the in-memory fit's own code: the same
network, loop, early stopping, decisions and model file. What differs, by design:

- validation is the hashed hold-out even when ``bagging=True`` (bagging needs every
  member's out-of-fold rows at hand), capped at :data:`VALIDATION_ROWS` rows;
- the preprocessing's quantiles and the embedding's bin edges come from the sample;
- a stop request (Ctrl-C, SIGTERM) with ``checkpoint_dir`` is answered after the current
  block, with a checkpoint of the epoch's start (the stream cannot be replayed from its
  middle): resuming trains that epoch again.

- a classifier's validation rows are the same hashed hold-out, not stratified by class
  (each class keeps about its share at any size where that matters);
  its classes are the labels of the training rows, counted in the statistics pass.

``eval_set`` (a table in memory) validates instead of the hashed hold-out, and then every
row of the stream trains. ``sample_weight``, weights in ``eval_set``, ``X_unlabeled`` and
``class_weight`` with a streamed table are refused with a message (not built yet); a table
within the budget takes every option the in-memory fit takes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import is_classifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from dnnreg.tables.preprocessing import as_frame, pandas_frame
from dnnreg.tables.reading import PARQUET_SUFFIXES, read_table, split_xy
from dnnreg.tables.streaming import (
    BLOCK_ROWS,
    SAMPLE_ROWS,
    VALIDATION_ROWS,
    Holdout,
    TableStream,
    count_pieces,
    estimated_csv_rows,
    memory_rows,
    open_dataset,
    shard_pieces,
)
from dnnreg.training.distributed import broadcast_json

__all__ = ["SAMPLE_ROWS", "VALIDATION_ROWS", "read_or_stream", "fit_stream"]


def read_or_stream(estimator, source, target, *, refused: dict):
    """``(X, y, None)`` for a table within ``estimator.max_memory_rows`` (read whole,
    exactly as the CLI reads it), else ``(None, None, dataset)`` to stream. ``refused``
    names the fit's arguments a streamed fit cannot take, with their values."""
    if not isinstance(target, str):
        raise ValueError(
            f"fit(X, y) with X a table to read ({_shown(source)}) needs y to be the name of "
            f"its target column, got y of type {type(target).__name__}"
        )
    dataset = open_dataset(source)
    budget = memory_rows(estimator.max_memory_rows, len(dataset.schema.names))
    path = source.source if isinstance(source, Holdout) else source
    pieces = None if _surely_fits(path, budget) else count_pieces(dataset)
    if pieces is None or sum(p.rows for p in pieces) <= budget:
        if isinstance(path, (str, Path)) and Path(path).is_file():
            frame = read_table(path)
        else:
            frame = dataset.to_table().to_pandas()
        if isinstance(source, Holdout):  # the rows it does not hold out, in order
            frame = frame[~source.is_held(np.arange(len(frame)))].reset_index(drop=True)
        task = "classification" if is_classifier(estimator) else "regression"
        X, y = split_xy(frame, target, task=task)
        return X, y.to_numpy(), None
    given = [name for name, value in refused.items() if value is not None]
    if given:
        raise ValueError(
            f"{', '.join(given)} cannot be used with a streamed table ({_shown(source)} has "
            f"more rows than max_memory_rows={estimator.max_memory_rows!r}); read the table "
            "into a DataFrame, or raise max_memory_rows if it fits in memory"
        )
    if getattr(estimator, "class_weight", None) is not None:
        raise ValueError(
            f"class_weight cannot be used with a streamed table ({_shown(source)} has more "
            "rows than max_memory_rows); leave class_weight=None, or read the table into "
            "a DataFrame"
        )
    return None, None, Streamed(source, pieces)


@dataclass(frozen=True)
class Streamed:
    """A table to stream: its ``source`` as given, and its ``pieces`` counted once
    (a CSV file is counted by reading it)."""

    source: object
    pieces: list


def _surely_fits(path, budget: int) -> bool:
    """A CSV file whose estimated row count is under half the budget is read whole
    without counting it first (a count reads the whole file)."""
    if not isinstance(path, (str, Path)) or not Path(path).is_file():
        return False
    if Path(path).name.lower().endswith(PARQUET_SUFFIXES):
        return False  # counted from the footer, for free
    try:
        return estimated_csv_rows(path)[0] <= budget // 2
    except OSError:
        return False  # read whole below, which reports what is wrong


def _shown(source) -> str:
    source = source.source if isinstance(source, Holdout) else source
    return repr(str(source)) if isinstance(source, (str, Path)) else "a pyarrow dataset"


MAX_SHARD_DROP = 0.05
"""Under torchrun each rank reads only its own shard of the pieces when the shards are
even enough that trimming every rank to the smallest one drops at most this share of an
epoch's rows; otherwise (few, uneven pieces) every rank reads every block and trains on
its share of each batch, as in memory."""


class StreamBlocks:
    """A streamed table's training rows as the training loop takes them
    (:func:`dnnreg.training.loop.fit_model`): ``blocks(generator)`` yields each epoch's
    shuffled blocks as tensors, ``n_rows`` says how many rows an epoch has, ``probe`` is
    the sample's tensors and ``identity`` names the table for checkpoints.

    Under a data-parallel ``world`` with enough pieces, ``sharded`` is true: this rank
    reads only its shard (:func:`~dnnreg.tables.streaming.shard_pieces`) and yields its
    own rows, ``local_batch`` (the global batch over the ranks) at a time, and every rank
    yields the same ``quota`` of rows an epoch, the smallest shard's."""

    def __init__(self, stream: TableStream, encode, *, n_rows: int, probe, batch_size: int,
                 piece_rows=None, world=None):  # fmt: skip
        self.stream, self.encode, self.n_rows, self.probe = stream, encode, n_rows, probe
        self.rows = batch_size * max(1, BLOCK_ROWS // batch_size)  # whole batches per block
        fragments = [str(getattr(p.fragment, "path", "")) for p in stream.pieces]
        self.identity = repr((fragments, stream.n_rows, stream.seed))
        self.sharded, self.pieces, self.quota, self.rank = False, None, None, 0
        if world is None or not world.active or piece_rows is None:
            return
        self.local_batch = max(1, batch_size // world.size)
        shards = shard_pieces(piece_rows, world.size)
        quota = min(sum(piece_rows[i] for i in shard) for shard in shards)
        if quota < self.local_batch or quota * world.size < (1 - MAX_SHARD_DROP) * n_rows:
            return  # too few or too uneven pieces: every rank reads every block
        self.sharded, self.quota, self.rank = True, quota, world.rank
        self.pieces = shards[world.rank]
        self.n_rows = quota * world.size  # what the ranks train on together each epoch
        self.rows = self.local_batch * max(1, BLOCK_ROWS // world.size // self.local_batch)

    def blocks(self, generator: torch.Generator):
        # the same draw on every rank (their generators agree); a sharded rank salts it
        # with its rank, since it orders its own pieces
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator)) + self.rank
        for frame, y in self.stream.blocks(seed, self.rows, pieces=self.pieces, limit=self.quota):
            yield self.encode(frame, y)


def fit_stream(estimator, streamed: Streamed, target: str, callbacks, *, eval_set=None) -> None:
    """Fit ``estimator`` on the table ``source`` (a path, a dataset or a
    :class:`~dnnreg.tables.streaming.Holdout`, whose held-out rows it never reads) without
    holding it in memory (see the module's docstring); the steps mirror the in-memory
    ``_fit``."""
    est, source = estimator, streamed.source
    dataset = open_dataset(source)
    exclude = source.is_held if isinstance(source, Holdout) else None
    start = time.perf_counter()
    est._world = world = est._join()
    rng = check_random_state(est.random_state)
    if world.active and est.random_state is None:  # one unseeded draw, shared by all
        rng = np.random.RandomState(broadcast_json(int(rng.randint(2**31 - 1)), world))
    seed = int(rng.randint(np.iinfo(np.int32).max))
    stream = TableStream(
        dataset,
        target,
        seed=seed,
        # an eval_set validates instead of a hashed hold-out: every row trains
        validation_fraction=est.validation_fraction
        if est.early_stopping and eval_set is None
        else 0.0,
        categorical=est._categorical_names(
            pd.Index([n for n in dataset.schema.names if n != target])
        ),
        exclude=exclude,
        pieces=streamed.pieces,
        task="classification" if is_classifier(est) else "regression",
    )
    stats = stream.scan()
    frame, y = _concat(stats.sample)
    est._fit_target_stats(stats, y)
    validate_data(est, frame, reset=True, skip_check_array=True)
    est.bagging_ = None
    est._prepare(
        frame,
        y,
        n_train=stats.n_train,
        level_counts=stats.level_counts,
        missing=stats.missing,
        streamed=True,
    )
    est.resolved_["streamed"] = {
        "rows": stats.n_rows,
        "training_rows": stats.n_train,
        "validation_rows": stats.n_rows - stats.n_train,
        "sample_rows": len(y),
    }
    val_frame, y_val = _concat(stats.validation) if stats.validation else (None, None)
    if eval_set is not None:  # in memory, checked and encoded as the in-memory fit does
        val_frame = as_frame(pandas_frame(eval_set[0]), columns=frame.columns)
        y_val = est._check_y(eval_set[1])
    probe = est._tensors(frame, y, device=est.device_)
    val = None if val_frame is None else est._tensors(val_frame, y_val, device=est.device_)
    blocks = StreamBlocks(
        stream,
        lambda f, t: est._tensors(f, t, device=est.device_),
        n_rows=stats.n_train,
        probe=probe,
        batch_size=est.batch_size_,
        piece_rows=stats.piece_rows,
        world=world,
    )
    if world.active:
        est.resolved_["streamed"]["sharded"] = blocks.sharded
    from dnnreg.estimators.base import _FitWeights

    weights = _FitWeights.of(None, None, est.device_)
    est._run_training(blocks, probe, (frame, y), (val, val_frame, y_val), weights, seed, callbacks)
    est.fit_seconds_ = time.perf_counter() - start


def _concat(parts: list):
    """``(frame, y)`` from a list of ``(frame, y)`` chunks."""
    frames, ys = zip(*parts)
    return pd.concat(frames, ignore_index=True), np.concatenate(ys)
