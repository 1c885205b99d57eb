"""Numerical feature embeddings: each scaled numeric column becomes a small vector before
the MLP sees it (Gorishniy, Rubachev & Babenko 2022, "On Embeddings for Numerical Features
in Tabular Deep Learning").

An MLP applied to raw scalars finds it hard to learn functions with sharp or periodic
structure along one feature (the "spectral bias" of networks, Rahaman et al. 2019). Mapping
each scalar x_j to a vector of many simple functions of x_j first gives the first layer a
rich, per-feature basis to combine. Two encodings, each followed by a per-feature linear map
and a ReLU (the paper's "-LR" suffix):

- ``periodic`` (PLR): ``v_j = [cos(2π c_j x_j), sin(2π c_j x_j)]`` with m trained
  frequencies ``c_j ~ N(0, σ²)`` per feature: a learned Fourier basis.
- ``piecewise_linear`` (PLE-LR): T bins from the training quantiles of x_j; component t is
  0 left of bin t, 1 right of it and linear inside, so ``v_j`` is a "thermometer" code that
  still varies continuously with x_j. The first bin is open to the left, the last to the
  right, so values beyond the training range extrapolate linearly.

Every ensemble member shares the embedding (as TabM does, Gorishniy et al. 2024); members
differ from the first hidden layer on. Only the scaled numeric columns are embedded; missing
indicators and one-hot columns pass through unchanged, after the embedded block.

Shapes: ``x_num: (..., d_numeric) -> (..., n_embedded * d_embedding + n_passthrough)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from dnnreg.options import BINNINGS, NUMERIC_EMBEDDINGS  # noqa: F401


def quantile_bins(values: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """Bin edges for each column of ``values`` (n, f): the distinct quantiles at
    ``n_bins + 1`` evenly spaced levels (Gorishniy et al. 2022, section 3.2). A column with
    few distinct values gets fewer bins; a constant column gets one bin of width 1.

    >>> [e.tolist() for e in quantile_bins(np.array([[0.0], [1.0], [2.0], [3.0]]), 3)]
    [[0.0, 1.0, 2.0, 3.0]]
    """
    levels = np.linspace(0.0, 1.0, n_bins + 1)
    edges = []
    for column in np.asarray(values, dtype=np.float64).T:
        e = np.unique(np.quantile(column, levels))
        edges.append(e if len(e) > 1 else np.array([e[0], e[0] + 1.0]))
    return edges


def tree_bins(
    values: np.ndarray,
    target: np.ndarray,
    n_bins: int,
    *,
    classification: bool = False,
    min_samples_leaf: int | None = None,
) -> list[np.ndarray]:
    """Target-aware bin edges (Gorishniy et al. 2022, section 3.2, "PLE-T"): for each column
    a decision tree with at most ``n_bins`` leaves is grown on that column alone against
    the target, and its split thresholds, with the column's minimum and maximum, are the
    edges. Bins then sit where the target changes along the feature, rather than where the
    rows happen to be dense.

    ``min_samples_leaf`` defaults to ``n // (2 n_bins)`` (at least 1, at most 64, the value
    in the authors' package examples), so a small table still gets several bins. ``target``
    is (n,) or (n, m); multi-output targets bin on the first output.

    >>> x = np.arange(8.0)[:, None]
    >>> [e.tolist() for e in tree_bins(x, (x[:, 0] > 4.5).astype(float), 4, min_samples_leaf=1)]
    [[0.0, 4.5, 7.0]]
    """
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    values = np.asarray(values, dtype=np.float64)
    target = np.asarray(target)
    target = target.reshape(len(target), -1)[:, 0]
    if min_samples_leaf is None:
        min_samples_leaf = int(min(64, max(1, len(values) // (2 * n_bins))))
    tree_class = DecisionTreeClassifier if classification else DecisionTreeRegressor
    edges = []
    for column in values.T:
        tree = tree_class(
            max_leaf_nodes=max(2, n_bins), min_samples_leaf=min_samples_leaf, random_state=0
        ).fit(column[:, None], target)
        # Internal nodes carry a feature index >= 0; leaves carry -2.
        splits = tree.tree_.threshold[tree.tree_.feature >= 0]
        e = np.unique(np.concatenate([[column.min(), column.max()], splits]))
        edges.append(e if len(e) > 1 else np.array([e[0], e[0] + 1.0]))
    return edges


def ple_tables(edges: list[np.ndarray], n_bins: int) -> dict[str, np.ndarray]:
    """The arrays that define the piecewise-linear encoding, padded to ``n_bins`` per
    column: ``left`` and ``width`` of each bin, and the ``lower``/``upper`` bounds its
    component is clamped to (-inf/+inf on the open ends; 0/0 on padding, which zeroes it).
    Component t of column j is ``clamp((x_j - left) / width, lower, upper)``."""
    f = len(edges)
    left, width = np.zeros((f, n_bins)), np.ones((f, n_bins))
    lower, upper = np.zeros((f, n_bins)), np.zeros((f, n_bins))
    for j, e in enumerate(edges):
        t = len(e) - 1
        left[j, :t], width[j, :t] = e[:-1], np.diff(e)
        upper[j, :t] = 1.0
        lower[j, 0], upper[j, t - 1] = -np.inf, np.inf
    return {"left": left, "width": width, "lower": lower, "upper": upper}


# Below this many (row, column) entries per call the codes' few large operations beat the
# lookup's many small ones (measured, forward + backward, 8 columns, 48 bins, 16 dims: one
# member at batch 256, 2,048 entries, codes 0.8 ms against lookup 1.5 ms; eight members,
# 16,384 entries, codes 10.4 ms against lookup 4.4 ms).
LOOKUP_MIN_ENTRIES = 4096


class NumericEmbedding(nn.Module):
    """Embed the columns ``columns`` of the numeric block; the others pass through.

    Parameters
    ----------
    kind : {"periodic", "piecewise_linear"}
    columns : list of int
        Positions of the scaled numeric columns in the network's numeric input.
    d_numeric : int
        Width of the numeric input.
    d_embedding : int
        Output width per embedded column.
    n_frequencies : int
        m, frequencies per column (periodic).
    sigma : float
        Standard deviation of the initial frequencies (periodic). Sets how wiggly the
        initial basis is relative to the scaled inputs' unit spread; the paper tunes it in
        [0.01, 100] and finds 0.01-1 best on most tables.
    n_bins : int
        T, bins per column (piecewise_linear); :meth:`set_bins` fills them from data.
    binning : {"quantile", "tree"}
        Where the bins' edges come from (piecewise_linear): the column's quantiles, or the
        splits of a per-column decision tree on the target (:func:`tree_bins`).

    Examples
    --------
    >>> emb = NumericEmbedding("periodic", columns=[0, 2], d_numeric=3, d_embedding=4)
    >>> tuple(emb(torch.zeros(5, 3)).shape), emb.d_out
    ((5, 9), 9)
    """

    def __init__(
        self,
        kind: str,
        *,
        columns: list[int],
        d_numeric: int,
        d_embedding: int,
        n_frequencies: int = 48,
        sigma: float = 0.1,
        n_bins: int = 48,
        binning: str = "quantile",
    ):
        super().__init__()
        if kind not in NUMERIC_EMBEDDINGS[1:]:
            raise ValueError(
                f"kind must be one of {list(NUMERIC_EMBEDDINGS[1:])}, got kind={kind!r}"
            )
        if binning not in BINNINGS:
            raise ValueError(f"binning must be one of {list(BINNINGS)}, got binning={binning!r}")
        self.kind, self.sigma, self.binning = kind, float(sigma), binning
        f = len(columns)
        embedded = set(columns)
        rest = [j for j in range(d_numeric) if j not in embedded]
        self.register_buffer("columns", torch.tensor(columns, dtype=torch.long))
        self.register_buffer("passthrough", torch.tensor(rest, dtype=torch.long))
        self.every_column = list(columns) == list(range(d_numeric))  # all embedded, in order
        if kind == "periodic":
            self.frequencies = nn.Parameter(torch.zeros(f, n_frequencies))
            d_code = 2 * n_frequencies
        else:
            for name in ("left", "width", "lower", "upper"):
                self.register_buffer(name, torch.zeros(f, n_bins))
            self.width.fill_(1.0)
            d_code = n_bins
        # One linear map per column: (f, d_code) -> (f, d_embedding).
        self.weight = nn.Parameter(torch.zeros(f, d_code, d_embedding))
        self.bias = nn.Parameter(torch.zeros(f, d_embedding))
        self.d_out = f * d_embedding + len(rest)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Frequencies from N(0, σ²); each column's linear map as torch's nn.Linear draws
        it, U(±1/√fan_in) (what the paper's code uses)."""
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        with torch.no_grad():
            if self.kind == "periodic":
                self.frequencies.normal_(0.0, self.sigma, generator=generator)
            self.weight.uniform_(-bound, bound, generator=generator)
            self.bias.uniform_(-bound, bound, generator=generator)

    def set_bins(
        self, x_num: np.ndarray, target: np.ndarray | None = None, *, classification: bool = False
    ) -> None:
        """Fit the piecewise-linear bins to the training rows' numeric block (n, d_numeric)
        and, for ``binning="tree"``, their targets."""
        if self.kind != "piecewise_linear":
            return
        values, n_bins = np.asarray(x_num)[:, self.columns.cpu().numpy()], self.left.shape[1]
        if self.binning == "tree":
            if target is None:
                raise ValueError("binning='tree' needs the training targets; pass target=")
            edges = tree_bins(values, target, n_bins, classification=classification)
        else:
            edges = quantile_bins(values, n_bins)
        for name, table in ple_tables(edges, n_bins).items():
            getattr(self, name).copy_(torch.from_numpy(table))

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The encoding before the linear maps. Shape: ``(..., f) -> (..., f, d_code)``."""
        x = x.unsqueeze(-1)  # (..., f, 1)
        if self.kind == "periodic":
            angle = (2.0 * math.pi) * x * self.frequencies  # (..., f, m)
            return torch.cat([torch.cos(angle), torch.sin(angle)], dim=-1)
        z = (x - self.left) / self.width  # (..., f, T)
        return torch.minimum(torch.maximum(z, self.lower), self.upper)

    def piecewise_linear(self, x: torch.Tensor) -> torch.Tensor:
        """``codes(x) @ W_j`` for every column j without forming the codes.

        The code of x in bin t is 1 on every bin left of t, ``z = (x - left_t) / width_t``
        on bin t (unclamped on the open ends) and 0 on the bins right of it, so its product
        with ``W_j`` is ``P_j[t] + z · W_j[t]``, where ``P_j[t] = Σ_{s<t} W_j[s]`` is a
        prefix sum of the map's rows: two row lookups and one multiply-add per column
        instead of T code entries and a (T x d) product. The same function, with far less
        arithmetic (measured in bench/member_cost.py); :class:`_BinLookup` computes it.
        Shape: ``(..., f) -> (..., f, d_embedding)``."""
        return piecewise_linear(x, self.left, self.width, self.lower, self.upper, self.weight)

    def locate(self, x_num: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Where each embedded value of ``x_num`` falls: its bin as a row of the flattened
        ``(f·T, d)`` map, and its position ``z`` in that bin (:func:`locate_bins`). The
        bins never change while training, so the training loop locates every training row
        once and gathers each batch's entries, instead of searching the bins every step
        (:meth:`forward`'s ``located``). ``None`` for the periodic encoding, which has
        nothing to locate. Shapes: ``(..., d_numeric) -> ((..., f) int32, (..., f))``."""
        if self.kind != "piecewise_linear":
            return None
        x = x_num if self.every_column else x_num[..., self.columns]
        return locate_bins(x, self.left, self.width, self.lower, self.upper)

    def forward(self, x_num: torch.Tensor, located=None) -> torch.Tensor:
        """``located``: :meth:`locate` of these rows, computed earlier (training)."""
        # every column embedded (no missing indicators or one-hot columns): no gather, and
        # no concatenation below, each of which copied the block once a step
        x = x_num if self.every_column else x_num[..., self.columns]  # (..., f)
        # a traced graph (TensorBoard's) keeps the codes: plain ops, no size-dependent branch
        lookup = not torch.jit.is_tracing() and x.numel() >= LOOKUP_MIN_ENTRIES
        if self.kind == "piecewise_linear" and (lookup or located is not None):
            index, z = located if located is not None else self.locate(x_num)
            e = torch.relu(bin_lookup(index, z, self.weight) + self.bias)
        else:
            v = self.codes(x)  # (..., f, d_code)
            e = torch.relu(torch.einsum("...fc,fcd->...fd", v, self.weight) + self.bias)
        if len(self.passthrough) == 0:
            return e.flatten(-2)
        parts = [e.flatten(-2), x_num[..., self.passthrough]]
        return torch.cat(parts, dim=-1)  # (..., f*d_embedding + n_passthrough)


def locate_bins(x, left, width, lower, upper) -> tuple[torch.Tensor, torch.Tensor]:
    """Each entry's bin and its position in it: the flat row ``j·T + t`` of column j's bin
    t in a ``(f·T, d)`` table, and ``z = (x - left) / width`` there (beyond 0-1 only on the
    open ends). Shapes: ``x: (..., f)``, tables ``(f, T)`` ``-> ((..., f) int32, (..., f))``."""
    f, n_bins = left.shape
    padding = (lower == 0) & (upper == 0)  # bins a column does not have
    bounds = torch.where(padding, torch.inf, left)[:, 1:].contiguous()  # (f, T-1)
    flat = x.reshape(-1, f)
    t = torch.searchsorted(bounds, flat.T.contiguous(), right=True, out_int32=True).T
    index = t + torch.arange(0, f * n_bins, n_bins, device=x.device, dtype=torch.int32)
    z = (flat - left.flatten()[index]) / width.flatten()[index]
    return index.reshape(x.shape), z.reshape(x.shape)


def bin_lookup(index, z, weight) -> torch.Tensor:
    """``P[i] + z · W[i]`` (:class:`_BinLookup`) for ``index, z: (..., f)`` from
    :func:`locate_bins`. Shape: ``-> (..., f, d)``."""
    d = weight.shape[-1]
    return _BinLookup.apply(index.flatten(), z.flatten(), weight).reshape(*index.shape, d)


def piecewise_linear(x, left, width, lower, upper, weight) -> torch.Tensor:
    """:meth:`NumericEmbedding.piecewise_linear` on explicit tables (``left, width, lower,
    upper: (f, T)``, ``weight: (f, T, d)``). Shape: ``(..., f) -> (..., f, d)``."""
    return bin_lookup(*locate_bins(x, left, width, lower, upper), weight)


class _BinLookup(torch.autograd.Function):
    """``e = P[i] + z · W[i]`` for flat bin indices ``i`` into ``W: (f, T, d)`` seen as
    ``(f·T, d)``, with ``P`` the exclusive prefix sum of each column's rows.

    The backward pass scatter-adds the incoming gradient g into the rows it came from
    (``g`` for P's row, ``z g`` for W's), then turns P's gradient into W's by the
    reverse of the prefix sum: ``∂/∂W[s] = (z g)[s] + Σ_{t>s} g[t]``. torch's generic
    ``embedding`` backward sorts its indices first and cost 6x the forward here.
    Shapes: ``index, z: (m,)``, ``weight: (f, T, d) -> (m, d)``.
    """

    @staticmethod
    def forward(ctx, index, z, weight):
        f, n_bins, d = weight.shape
        prefix = torch.cumsum(weight, dim=1) - weight
        table = torch.cat([prefix, weight], dim=-1).reshape(f * n_bins, 2 * d)
        rows = table.index_select(0, index)  # (m, 2d)
        ctx.save_for_backward(index, z, rows[:, d:])
        ctx.shape = weight.shape
        return torch.addcmul(rows[:, :d], z.unsqueeze(-1), rows[:, d:])

    @staticmethod
    def backward(ctx, g):
        index, z, w_rows = ctx.saved_tensors
        f, n_bins, d = ctx.shape
        grad_z = (g * w_rows).sum(-1) if ctx.needs_input_grad[1] else None
        grad_w = None
        if ctx.needs_input_grad[2]:
            both = torch.cat([g, z.unsqueeze(-1) * g], dim=-1)
            sums = (
                g.new_zeros(f * n_bins, 2 * d).index_add_(0, index, both).reshape(f, n_bins, 2 * d)
            )
            to_prefix, grad_w = sums[..., :d], sums[..., d:]
            # P[t] = sum of W[s] for s < t, so W[s] receives P's gradient from every t > s
            later = torch.flip(torch.cumsum(torch.flip(to_prefix, [1]), dim=1), [1]) - to_prefix
            grad_w = grad_w + later
        return None, grad_z, grad_w
