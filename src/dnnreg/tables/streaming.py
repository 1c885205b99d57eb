"""Tables larger than memory: a Parquet dataset (a directory or glob of files, one large
file) or a CSV read in pieces with ``pyarrow.dataset``, never whole.

A fit on such a table needs three things that in memory come for free, each built here
from one streaming pass or re-read every epoch:

- **statistics in bounded memory** (:meth:`TableStream.scan`): the target's count, mean,
  standard deviation, minimum and maximum exactly (Chan et al.'s pairwise merge of
  per-chunk moments, in float64); every categorical column's level counts exactly, so rare
  levels are pooled as in memory; which numeric columns have gaps, exactly; and a seeded
  sample of about :data:`SAMPLE_ROWS` training rows, on which the medians, quantile knots
  and the numerical embedding's bin edges are fitted. Those three are the approximation: a
  quantile estimated from m sampled rows is off by about √(p(1-p)/m) in probability
  (±0.0005 at the median for a million rows); ``bench/streaming.py`` measures it;
- **a validation split that never overlaps training** (:meth:`TableStream.is_validation`):
  a row is held out when a hash of its position in the dataset (files in sorted order, rows
  in file order), salted with the fit's seed, falls below the validation fraction. It needs
  no memory and gives the same rows every epoch; the held-out rows (at most
  :data:`VALIDATION_ROWS`) are kept in memory for early stopping;
- **shuffled training batches** (:meth:`TableStream.blocks`): every epoch the pieces
  (Parquet row groups, CSV files) are read in a new seeded order, :data:`INTERLEAVE` of
  them at a time into a shuffle buffer, from which blocks of :data:`BLOCK_ROWS` rows are
  drawn at random, and the training loop shuffles each block again for every ensemble
  member. Rows far apart in
  the files meet in a batch only when their pieces are read together; a table sorted by
  its target should be stored in several row groups (it is, above 1M rows by pyarrow's
  default) so that no batch sees one end of it only.

Under torchrun each rank reads its own shard of the pieces in the epochs
(:func:`shard_pieces`): the pieces are dealt out once per fit, largest first to the rank
that holds the fewest training rows so far, and every rank takes the same number of rows
each epoch (the smallest shard's), so that all ranks make the same number of steps. The
statistics pass still reads every row on every rank: each derives the same counts and
sample, and no table crosses between processes.

Positions are hashed, not drawn, so the split is the same on every reading and every
torchrun rank without any state: adding files to a directory moves the positions of the
files sorted after them, and so which rows validate.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dnnreg.metrics import RunningMoments
from dnnreg.tables.preprocessing import level_strings
from dnnreg.tables.reading import CSV_SUFFIXES, PARQUET_SUFFIXES

SAMPLE_ROWS = 1_000_000
"""Training rows sampled for the quantile knots, medians and bin edges."""
VALIDATION_ROWS = 100_000
"""The most held-out rows a streamed fit keeps for early stopping: the validation fraction
shrinks to this many rows on a larger table."""
BLOCK_ROWS = 1 << 17
"""Rows per shuffled block (131,072): a few MB of encoded floats per block."""
INTERLEAVE = 4
"""Pieces read at once, their rows interleaved into each block."""
READ_ROWS = 1 << 15
"""Rows per record batch read from one piece."""
MEMORY_FRACTION = 0.25
"""``max_memory_rows="auto"``: a table is read whole when its estimated in-memory size is
at most this share of the available memory."""
BYTES_PER_CELL = 64
"""The estimated in-memory cost of one cell during an in-memory fit: the pandas value,
its encoded float32 and the tensor copies beside it (measured peak on California housing:
about 50 bytes per cell)."""

_SALT_VALIDATION, _SALT_SAMPLE, _SALT_HOLDOUT = 0x5EED_0001, 0x5EED_0002, 0x5EED_0003


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (Steele, Lea & Flood 2014): a bijection of uint64 whose every
    output bit depends on every input bit, so consecutive positions get unrelated hashes."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def position_hash(positions: np.ndarray, salt: int) -> np.ndarray:
    """A uniform number in [0, 1) for each row position, fixed by ``salt``.

    >>> h = position_hash(np.arange(100_000), salt=7)
    >>> bool(abs(h.mean() - 0.5) < 0.01), bool((h == position_hash(np.arange(100_000), 7)).all())
    (True, True)
    """
    key = _mix64(np.array([salt % 2**64], dtype=np.uint64))
    bits = _mix64(np.asarray(positions, dtype=np.uint64) ^ key)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


class Holdout:
    """A table with a hashed share of its rows set aside: ``fit(Holdout(source, 0.2,
    seed=0), "y")`` trains on the other 80 % (read whole or streamed), and
    :meth:`held` reads the 20 % back, in chunks, for testing. ``source`` is anything
    :func:`open_dataset` takes; a row is held out when the hash of its position salted
    with ``seed`` falls below ``fraction``, so the split needs no memory and is the same
    on every reading (``dnnreg train`` tests a streamed table this way)."""

    def __init__(self, source, fraction: float, *, seed: int = 0):
        if not 0 <= fraction < 1:
            raise ValueError(f"fraction must be in [0, 1), got fraction={fraction!r}")
        self.source, self.fraction, self.seed = source, float(fraction), int(seed)
        self.dataset = open_dataset(source)

    def is_held(self, positions: np.ndarray) -> np.ndarray:
        return position_hash(positions, self.seed ^ _SALT_HOLDOUT) < self.fraction

    def chunks(self, chunk_rows: int = READ_ROWS):
        """Every row, in dataset order, as ``(frame, positions, held)`` chunks (``held``:
        which of them are held out)."""
        start = 0  # positions run on through the files, as count_pieces numbers them
        for fragment in self.dataset.get_fragments():
            for frame, positions in _read_piece(Piece(fragment, start, 0), chunk_rows):
                yield frame, positions, self.is_held(positions)
                start = int(positions[-1]) + 1

    def held(self, chunk_rows: int = READ_ROWS):
        """The held-out rows, in dataset order, as ``(frame, positions)`` chunks."""
        for frame, positions, held in self.chunks(chunk_rows):
            if held.any():
                yield frame[held].reset_index(drop=True), positions[held]


def is_table_source(X) -> bool:
    """Whether ``fit``'s ``X`` names a table to read (a path, a glob, a pyarrow dataset, a
    :class:`Holdout`) rather than holding one."""
    if isinstance(X, (str, os.PathLike, Holdout)):
        return True
    return type(X).__module__.startswith("pyarrow") and hasattr(X, "get_fragments")


def open_dataset(source):
    """``source`` (a ``pyarrow.dataset.Dataset``, a directory or glob of Parquet files, or
    one Parquet or CSV file) as a ``pyarrow.dataset.Dataset`` whose files are in sorted
    order. One-line ``FileNotFoundError``/``ValueError`` for what cannot be read."""
    import pyarrow.dataset as ds

    if isinstance(source, Holdout):
        return source.dataset
    if not isinstance(source, (str, os.PathLike)):
        return source
    text = str(source)
    if any(ch in text for ch in "*?["):
        files = sorted(glob.glob(text, recursive=True))
        if not files:
            raise FileNotFoundError(f"no file matches {text!r}; check the pattern")
    elif Path(text).is_dir():
        files = sorted(
            str(p) for p in Path(text).rglob("*") if p.name.lower().endswith(PARQUET_SUFFIXES)
        )
        if not files:
            raise ValueError(
                f"directory {text!r} holds no .parquet files; pass a directory of Parquet "
                "files, or one CSV or Parquet file"
            )
    elif Path(text).is_file():
        files = [text]
    else:
        raise FileNotFoundError(f"data file {text!r} does not exist; check the path")
    names = [Path(f).name.lower() for f in files]
    if all(n.endswith(PARQUET_SUFFIXES) for n in names):
        kind = "parquet"
    elif all(n.endswith(CSV_SUFFIXES) and not n.endswith(".tsv") for n in names):
        kind = "csv"
    else:
        raise ValueError(
            f"{text!r} mixes or holds files that are neither Parquet nor CSV ({names[0]!r}); "
            "pass .parquet files, or CSV files"
        )
    try:
        return ds.dataset(files, format=kind)
    except Exception as err:  # noqa: BLE001 - pyarrow raises its own types
        raise ValueError(f"cannot read {text!r} as a {kind} dataset: {err}") from err


def memory_rows(option, n_columns: int) -> int:
    """``max_memory_rows``: the most rows a fit reads whole into memory; ``"auto"`` is
    :data:`MEMORY_FRACTION` of the available memory at :data:`BYTES_PER_CELL` per cell.

    >>> memory_rows(5000, 10)
    5000
    """
    if option != "auto":
        return int(option)
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 4 GB free
        available = 4 << 30
    return int(MEMORY_FRACTION * available / (BYTES_PER_CELL * max(1, n_columns)))


def estimated_csv_rows(path: Path) -> tuple[int, int]:
    """Rows (from the first 1 MB's line length) and columns (commas in the header) of a
    CSV file, without parsing it."""
    import gzip

    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        head = handle.read(1 << 20)
    lines = max(1, head.count(b"\n"))
    size = path.stat().st_size * (4 if opener is gzip.open else 1)  # gzip: ~4x smaller
    columns = head.split(b"\n", 1)[0].count(b",") + 1
    return int(size / max(1.0, len(head) / lines)), columns


@dataclass
class Piece:
    """One unit of reading: a Parquet row group or a whole CSV file, and the dataset
    position of its first row."""

    fragment: object
    start: int
    rows: int


@dataclass
class StreamStats:
    """What one pass over a streamed table learned (:meth:`TableStream.scan`)."""

    n_rows: int = 0
    n_train: int = 0
    target: RunningMoments = field(default_factory=RunningMoments)  # training rows only
    level_counts: dict = field(default_factory=dict)
    missing: set = field(default_factory=set)
    sample: list = field(default_factory=list)
    validation: list = field(default_factory=list)
    piece_rows: list = field(default_factory=list)  # training rows of each piece, in order
    classes: pd.Series | None = None  # classification: training rows per label

    # the training target's exact moments, under the names the estimators read
    mean = property(lambda self: self.target.mean)
    std = property(lambda self: self.target.std)
    low = property(lambda self: self.target.low)
    high = property(lambda self: self.target.high)

    def add_classes(self, y: np.ndarray) -> None:
        counts = pd.Series(y).value_counts()
        self.classes = counts if self.classes is None else self.classes.add(counts, fill_value=0)

    def add_levels(self, name: str, col: pd.Series) -> None:
        counts = level_strings(col).dropna().value_counts()
        old = self.level_counts.get(name)
        self.level_counts[name] = counts if old is None else old.add(counts, fill_value=0)


class TableStream:
    """A table read in pieces: ``dataset`` (see :func:`open_dataset`) with target column
    ``target``; ``seed`` salts the validation and sample hashes; ``categorical`` names
    columns whose levels are counted whatever their type (non-numeric ones always are)."""

    def __init__(self, dataset, target: str, *, seed: int, validation_fraction: float,
                 categorical=(), exclude=None, pieces=None, task="regression"):  # fmt: skip
        self.dataset, self.target, self.seed = dataset, target, int(seed)
        self.classify = task == "classification"  # labels as they are, counted per class
        self.exclude = exclude  # positions -> mask of rows this fit never sees (a Holdout's)
        self.categorical = set(categorical)
        names = list(dataset.schema.names)
        if target not in names:
            from dnnreg._validation import did_you_mean

            raise ValueError(
                f"target column {target!r} is not in the table"
                + did_you_mean(target, names)
                + f"; columns are {names[:20]}"
            )
        self.features = [n for n in names if n != target]
        if not self.features:
            raise ValueError(
                f"the table has no feature columns besides the target {target!r}; add features"
            )
        self.pieces = count_pieces(dataset) if pieces is None else pieces
        self.n_rows = sum(p.rows for p in self.pieces)
        if self.n_rows < 2:
            raise ValueError(f"the table must have at least 2 rows to train, got {self.n_rows}")
        self.validation_fraction = min(float(validation_fraction), VALIDATION_ROWS / self.n_rows)

    # --------------------------------------------------------------- reading
    def _frames(self, piece: Piece, batch_rows: int = READ_ROWS):
        """``(frame, positions)`` for each record batch of ``piece``, without the rows
        excluded."""
        for frame, positions in _read_piece(piece, batch_rows):
            if self.exclude is not None:
                keep = ~self.exclude(positions)
                frame, positions = frame[keep], positions[keep]
            if len(positions):
                yield frame, positions

    def is_validation(self, positions: np.ndarray) -> np.ndarray:
        """Which of these rows are held out for validation: the same on every reading."""
        if self.validation_fraction <= 0:
            return np.zeros(len(positions), dtype=bool)
        return position_hash(positions, self.seed ^ _SALT_VALIDATION) < self.validation_fraction

    def _target(self, frame: pd.DataFrame) -> np.ndarray:
        if self.classify:
            labels = frame.pop(self.target)
            if labels.isna().any():
                raise ValueError(
                    f"target column {self.target!r} holds missing labels; drop or fill those "
                    "rows before training"
                )
            return labels.to_numpy()
        y = pd.to_numeric(frame.pop(self.target), errors="coerce").to_numpy(np.float64)
        if not np.isfinite(y).all():
            raise ValueError(
                f"target column {self.target!r} holds missing, non-numeric or infinite "
                "values; drop or fill those rows before training"
            )
        return y

    # --------------------------------------------------------------- one pass
    def scan(self, *, sample_rows: int = SAMPLE_ROWS) -> StreamStats:
        """One pass over every row: the exact target moments, level counts and gaps of the
        training rows, a hashed sample of about ``sample_rows`` of them, and every
        validation row (``(frame, y)`` lists in ``sample`` and ``validation``)."""
        stats = StreamStats()
        rate = sample_rows / max(1.0, self.n_rows * (1 - self.validation_fraction))
        for piece in self.pieces:
            stats.piece_rows.append(0)
            for frame, positions in self._frames(piece):
                y = self._target(frame)
                stats.n_rows += len(y)
                held = self.is_validation(positions)
                if held.any():
                    stats.validation.append((frame[held], y[held]))
                train = ~held
                frame, y, positions = frame[train], y[train], positions[train]
                stats.piece_rows[-1] += len(y)
                stats.n_train += len(y)
                if self.classify:
                    stats.add_classes(y)
                else:
                    stats.target.add(y)
                for name in frame.columns:
                    col = frame[name]
                    if name in self.categorical or not _numeric_dtype(col):
                        stats.add_levels(name, col)
                    elif name not in stats.missing and col.isna().any():
                        stats.missing.add(name)
                taken = position_hash(positions, self.seed ^ _SALT_SAMPLE) < rate
                if taken.any():
                    stats.sample.append((frame[taken], y[taken]))
        if stats.n_train < 2:
            raise ValueError(
                f"only {stats.n_train} training rows remain after the validation split; add rows"
            )
        return stats

    # --------------------------------------------------------------- epochs
    def blocks(self, seed: int, rows: int = BLOCK_ROWS, *, pieces=None, limit=None):
        """The training rows of one epoch as ``(frame, y)`` blocks of ``rows`` rows (the
        last one shorter): pieces in an order drawn from ``seed``, :data:`INTERLEAVE` of
        them read at once into a shuffle buffer, each block drawn at random from it.
        ``pieces`` (indices into :attr:`pieces`) reads only those, a rank's shard;
        ``limit`` stops after that many rows."""
        rng = np.random.default_rng(seed)
        chosen = range(len(self.pieces)) if pieces is None else list(pieces)
        queue = [self.pieces[chosen[i]] for i in rng.permutation(len(chosen))]
        limit = np.inf if limit is None else int(limit)
        step = max(1, READ_ROWS // INTERLEAVE)
        open_ = []
        parts, held, given = [], 0, 0
        while (queue or open_) and given < limit:
            while queue and len(open_) < INTERLEAVE:
                open_.append(self._frames(queue.pop(0), step))
            for reader in list(open_):
                got = next(reader, None)
                if got is None:
                    open_.remove(reader)
                    continue
                frame, positions = got
                train = ~self.is_validation(positions)
                y = self._target(frame)
                parts.append((frame[train], y[train]))
                held += int(train.sum())
            while held >= rows and given + rows <= limit:
                yield _draw(parts, rows, rng)
                held, given = held - rows, given + rows
        last = int(min(held, limit - given))
        if last > 0:
            yield _draw(parts, last, rng)


def shard_pieces(piece_rows, size: int) -> list[list[int]]:
    """Deal pieces out to ``size`` ranks: largest first, each to the rank holding the
    fewest rows so far (ties to the lowest rank), which leaves the largest shard at most
    one piece larger than the smallest (Graham's LPT rule). Returns each rank's piece
    indices in ascending order.

    >>> shard_pieces([5, 3, 3, 2, 1], 2)
    [[0, 3], [1, 2, 4]]
    """
    loads, shards = [0] * size, [[] for _ in range(size)]
    for i in sorted(range(len(piece_rows)), key=lambda i: (-piece_rows[i], i)):
        r = min(range(size), key=lambda r: (loads[r], r))
        shards[r].append(i)
        loads[r] += piece_rows[i]
    return [sorted(s) for s in shards]


def _draw(parts: list, rows: int, rng) -> tuple:
    """A shuffle buffer's draw: ``rows`` rows taken at random from every row the
    ``(frame, y)`` list ``parts`` holds, as one ``(frame, y)``; the rest stay in ``parts``
    (in place, as one part) to mix with the rows read next."""
    frame = pd.concat([f for f, _ in parts], ignore_index=True)
    y = np.concatenate([t for _, t in parts])
    order = rng.permutation(len(y))
    taken, rest = order[:rows], order[rows:]
    parts[:] = [(frame.take(rest).reset_index(drop=True), y[rest])] if len(rest) else []
    return frame.take(taken).reset_index(drop=True), y[taken]


def _read_piece(piece: Piece, batch_rows: int):
    """``(frame, positions)`` for each record batch of ``piece``."""
    start = piece.start
    for batch in piece.fragment.to_batches(batch_size=batch_rows):
        if batch.num_rows:
            frame = batch.to_pandas()
            yield frame, np.arange(start, start + len(frame), dtype=np.int64)
            start += len(frame)


def _numeric_dtype(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype)


def count_pieces(dataset) -> list[Piece]:
    """The dataset's units of reading, in order: each Parquet row group (its row count
    from the file's footer, nothing read), each other file whole (counted by a scan: count
    once and pass the pieces on, ``TableStream(pieces=...)``)."""
    pieces, start = [], 0
    for fragment in dataset.get_fragments():
        groups = fragment.split_by_row_group() if hasattr(fragment, "row_groups") else [fragment]
        for group in groups:
            rows = (
                sum(rg.num_rows for rg in group.row_groups)
                if hasattr(group, "row_groups")
                else group.count_rows()
            )
            if rows:
                pieces.append(Piece(group, start, rows))
                start += rows
    return pieces
