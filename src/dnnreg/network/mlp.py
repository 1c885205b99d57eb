"""The networks: activations, initialisation schemes, normalisation layers, (residual)
blocks, and an MLP whose k ensemble members are trained as one model.

Each :class:`EnsembleLinear` holds k independent weight matrices and applies them with one
batched matrix multiply, so k members cost one kernel launch per layer instead of k (the
"MLP^k" baseline of TabM, Gorishniy et al. 2024). With ``n_ensemble=1`` it is a plain MLP.
Every layer with parameters keeps one set per member, so members never share anything.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from dnnreg.network.dropout import DropoutMasks, MaskedReLU
from dnnreg.options import ENSEMBLE_KINDS, INIT_ALIASES, INITS, LEAKY_SLOPE, NORM_EPS, resolve_init  # noqa: F401
from dnnreg.tables.preprocessing import embedding_dim

PRELU_INIT = 0.25  # He et al. (2015)'s initial slope for PReLU


class EnsemblePReLU(nn.Module):
    """PReLU (He et al. 2015): ``max(0, z) + a · min(0, z)`` with a learned slope ``a`` per
    member and unit. Shape: ``(k, n, d) -> (k, n, d)``; ``weight: (k, 1, d)``."""

    def __init__(self, k: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.full((k, 1, d), PRELU_INIT))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.where(z > 0, z, self.weight * z)


# name -> factory(k, d). Conventions at kinks follow torch's autograd: relu′(0) = 0,
# leaky_relu′(0) = prelu′(0) = the slope.
ACTIVATIONS = {
    "identity": lambda k, d: nn.Identity(),
    "relu": lambda k, d: nn.ReLU(),
    "leaky_relu": lambda k, d: nn.LeakyReLU(LEAKY_SLOPE),
    "prelu": EnsemblePReLU,
    "elu": lambda k, d: nn.ELU(alpha=1.0),
    "gelu": lambda k, d: nn.GELU(),
    "silu": lambda k, d: nn.SiLU(),
    "mish": lambda k, d: nn.Mish(),
    "tanh": lambda k, d: nn.Tanh(),
    "sigmoid": lambda k, d: nn.Sigmoid(),
    "softplus": lambda k, d: nn.Softplus(beta=1.0, threshold=20.0),
}

# Initialisation. Each scheme draws W with a variance set by the fan-in/fan-out and a gain
# matched to the activation that follows the layer; biases start at zero.


def he_gain2(activation: str) -> float:
    """Squared gain of He initialisation: 2 / (1 + a²) for a rectifier with negative slope
    a (He et al. 2015, eq. 10); 2 for the other rectifier-like units; 1 for the identity."""
    if activation == "identity":
        return 1.0
    slope = {"leaky_relu": LEAKY_SLOPE, "prelu": PRELU_INIT}.get(activation, 0.0)
    return 2.0 / (1.0 + slope**2)


def init_variance(scheme: str, fan_in: int, fan_out: int, activation: str) -> float:
    """Var(W_ij) that ``scheme`` aims for (orthogonal: the mean of W_ij²).

    >>> init_variance("he_normal", 512, 512, "relu") == 2 / 512
    True
    """
    if scheme.startswith("he"):
        return he_gain2(activation) / fan_in
    if scheme.startswith("xavier"):
        return 2.0 / (fan_in + fan_out)
    if scheme.startswith("lecun"):
        return 1.0 / fan_in
    if scheme == "orthogonal":
        return 1.0 / max(fan_in, fan_out)
    if scheme == "torch_default":
        return 1.0 / (3.0 * fan_in)  # U(-1/√fan_in, 1/√fan_in)
    raise ValueError(f"init must be one of {list(INITS)}, got init={scheme!r}")


class EnsembleLinear(nn.Module):
    """k independent affine maps applied at once.

    Shape: ``x: (k, n, d_in) -> (k, n, d_out)``; ``weight: (k, d_in, d_out)``,
    ``bias: (k, 1, d_out)``.
    """

    def __init__(self, k: int, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(k, d_in, d_out))
        self.bias = nn.Parameter(torch.zeros(k, 1, d_out))

    def reset_parameters(
        self,
        scheme: str = "torch_default",
        activation: str = "identity",
        generator: torch.Generator | None = None,
    ):
        """Draw each member's weights by ``scheme`` (see :func:`init_variance`)."""
        _draw(self.weight, self.bias, scheme, activation, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)  # (k, n, d_out)


def _draw(
    w: torch.Tensor,
    b: torch.Tensor,
    scheme: str,
    activation: str,
    generator: torch.Generator | None,
) -> None:
    """Initialise ``w`` ((k,) d_in, d_out: one matrix or one per member) by ``scheme`` and
    zero ``b`` (torch_default draws it as nn.Linear does)."""
    fan_in, fan_out = w.shape[-2:]
    var = init_variance(scheme, fan_in, fan_out, activation)
    with torch.no_grad():
        b.zero_()
        if scheme.endswith("_normal"):
            w.normal_(0.0, math.sqrt(var), generator=generator)
        elif scheme == "orthogonal":  # Saxe et al. (2014): per member, W Wᵀ = I or Wᵀ W = I
            for member in w.reshape(-1, fan_in, fan_out):
                nn.init.orthogonal_(member, generator=generator)
        else:  # uniform on ±√(3 var) has variance var
            bound = math.sqrt(3.0 * var)
            w.uniform_(-bound, bound, generator=generator)
            if scheme == "torch_default":  # nn.Linear also draws its bias this way
                b.uniform_(-bound, bound, generator=generator)


class SharedLinear(nn.Module):
    """One weight matrix shared by k members, each with its own rank-one adapters and bias:
    member i computes ``((x ⊙ r_i) W) ⊙ s_i + b_i`` (BatchEnsemble, Wen et al. 2020; used
    for tabular MLPs by TabM, Gorishniy et al. 2024). Equivalently member i's weight is
    ``diag(r_i) W diag(s_i)`` (:func:`dnnreg.inference.runtime.member_weights` expands it for the
    NumPy engines and ONNX): k members for the parameters of about one, and the k members'
    rows go through a single (k·n, d_in) @ (d_in, d_out) matrix multiply.

    ``adapters`` names which of r, s exist; ``random_signs`` draws r as ±1 (TabM's
    initialisation of the first layer, which is what makes the members differ at the
    start); otherwise adapters start at 1.

    Shape: ``x: (k, n, d_in) -> (k, n, d_out)``; ``weight: (d_in, d_out)``,
    ``r: (k, 1, d_in)``, ``s: (k, 1, d_out)``, ``bias: (k, 1, d_out)``.
    """

    def __init__(
        self, k: int, d_in: int, d_out: int, *, adapters: str = "rs", random_signs: bool = False
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_in, d_out))
        self.bias = nn.Parameter(torch.zeros(k, 1, d_out))
        self.r = nn.Parameter(torch.ones(k, 1, d_in)) if "r" in adapters else None
        self.s = nn.Parameter(torch.ones(k, 1, d_out)) if "s" in adapters else None
        self.random_signs = random_signs

    def reset_parameters(
        self,
        scheme: str = "torch_default",
        activation: str = "identity",
        generator: torch.Generator | None = None,
    ):
        """The shared matrix by ``scheme`` (see :func:`init_variance`): each member's
        effective weight has the scheme's variance, since the adapters start at ±1."""
        _draw(self.weight, self.bias, scheme, activation, generator)
        with torch.no_grad():
            for adapter in (self.r, self.s):
                if adapter is not None:
                    adapter.fill_(1.0)
            if self.r is not None and self.random_signs:
                signs = torch.randint(0, 2, self.r.shape, generator=generator)
                self.r.copy_(2.0 * signs - 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, n, d_in = x.shape
        if self.r is not None:
            x = x * self.r
        h = (x.reshape(k * n, d_in) @ self.weight).reshape(k, n, -1)  # one matmul for all
        if self.s is not None:
            h = h * self.s
        return h + self.bias  # (k, n, d_out)


# How the k members of an ensemble relate. mlp_k: independent networks (TabM's MLP^k);
# tabm: shared weights with r and s adapters in every hidden layer; tabm_mini: one adapter
# r before the first layer, everything else shared but the heads (Gorishniy et al. 2024).


def _layer_linear(kind: str, layer: int, k: int, d_in: int, d_out: int) -> nn.Module:
    if kind == "mlp_k":
        return EnsembleLinear(k, d_in, d_out)
    if kind == "tabm":
        return SharedLinear(k, d_in, d_out, adapters="rs", random_signs=layer == 0)
    return SharedLinear(k, d_in, d_out, adapters="r" if layer == 0 else "", random_signs=layer == 0)


class EnsembleBatchNorm(nn.BatchNorm1d):
    """Batch norm over each member's units (Ioffe & Szegedy 2015), one statistic per member
    and unit. Shape: ``(k, n, d) -> (k, n, d)``; parameters and buffers have ``k*d`` entries."""

    def __init__(self, k: int, d: int):
        super().__init__(k * d, eps=NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, n, d = x.shape
        z = super().forward(x.transpose(0, 1).reshape(n, k * d))  # (n, k*d)
        return z.reshape(n, k, d).transpose(0, 1)


class EnsembleLayerNorm(nn.Module):
    """Layer norm (Ba et al. 2016): each row normalised over its d units, then a per-member
    affine map. Independent of the batch, so it behaves the same in training and inference.
    Shape: ``(k, n, d) -> (k, n, d)``; ``weight, bias: (k, 1, d)``."""

    eps = NORM_EPS

    def __init__(self, k: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(k, 1, d))
        self.bias = nn.Parameter(torch.zeros(k, 1, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], eps=self.eps) * self.weight + self.bias


NORMALIZATIONS = {"none": None, "batch_norm": EnsembleBatchNorm, "layer_norm": EnsembleLayerNorm}


class Block(nn.Module):
    """One hidden layer: ``a = act(norm(a_in W + b))``, then dropout; with ``residual`` the
    input is added back, ``a_out = a_in + α a`` (He et al. 2016), with a learned gate α per
    member that starts at 0 (ReZero, Bachlechner et al. 2021).

    Why the gate: without it every block adds a fresh, non-negative ReLU output to the
    stream, so activations and gradients grow with depth. Measured on California housing
    with 20 blocks of 128 and He init: gradient norms of 10⁵ and a validation RMSE of 18
    without it. With α = 0 the network starts as the identity on the residual stream and
    each block opens as training finds it useful.

    NOTE[DIFF]: Gorishniy et al. (2021)'s tabular ResNet block holds two linear layers with
    the norm first. Here one block is one hidden layer, so ``hidden_layer_sizes`` keeps its
    meaning with or without skips, and the back-propagation formula stays one line:
    δ_in = δ_out + α (branch's δ) Wᵀ.

    Shape: ``(k, n, d_in) -> (k, n, d_out)``; ``alpha: (k, 1, 1)``.
    """

    def __init__(
        self,
        k: int,
        d_in: int,
        d_out: int,
        *,
        activation: str,
        normalization: str,
        dropout: float,
        residual: bool,
        ensemble_kind: str = "mlp_k",
        layer: int = 0,
    ):
        super().__init__()
        self.linear = _layer_linear(ensemble_kind, layer, k, d_in, d_out)
        norm = NORMALIZATIONS[normalization]
        self.norm = norm(k, d_out) if norm is not None else None
        self.act = ACTIVATIONS[activation](k, d_out)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.residual = residual and d_in == d_out
        if self.residual:
            self.alpha = nn.Parameter(torch.zeros(k, 1, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask``: this step's dropout mask for the block's output, drawn by the MLP with
        all the others (:class:`~dnnreg.network.dropout.DropoutMasks`); without one the
        block drops units itself, through ``nn.Dropout``."""
        h = self.linear(x)
        if self.norm is not None:
            h = self.norm(h)
        if mask is not None and isinstance(self.act, nn.ReLU):
            h = MaskedReLU.apply(h, mask)  # the two fused (see dnnreg.network.dropout)
        else:
            h = self.act(h)
            if mask is not None:
                h = h * mask
            elif self.dropout is not None:
                h = self.dropout(h)
        return x + self.alpha * h if self.residual else h


class MLP(nn.Module):
    """Feed-forward network: [embeddings] -> Block* -> Linear head.

    Parameters
    ----------
    d_numeric : int
        Width of the numeric input block.
    cardinalities : list of int
        Number of codes of each categorical column fed through an embedding.
    hidden_layer_sizes : tuple of int
    activation : str
        A key of :data:`ACTIVATIONS`.
    dropout : float
    normalization : {"none", "batch_norm", "layer_norm"}
    residual : bool
        Skip connections around every hidden layer whose input and output widths agree.
    n_ensemble : int
        Members trained together; predictions are their mean.
    ensemble_kind : {"mlp_k", "tabm", "tabm_mini"}
        Independent members, or members sharing weights through adapters
        (:class:`SharedLinear`).
    numeric_embedding : NumericEmbedding or None
        Applied to the numeric block first (:mod:`dnnreg.network.embeddings`).
    d_out : int
        Outputs per member (1 for a mean, q for q quantiles, C for C classes, ...).

    Shape: ``forward(x_num: ([k,] n, d_numeric), x_cat: ([k,] n, n_cat)) -> (k, n, d_out)``;
    a leading ``k`` gives each member its own rows (training), none shares them. The
    optional ``located`` is :meth:`locate` of the same rows, worked out beforehand.

    Examples
    --------
    >>> net = MLP(d_numeric=3, cardinalities=[], hidden_layer_sizes=(4,), activation="relu",
    ...           n_ensemble=2)
    >>> tuple(net(torch.zeros(5, 3), torch.zeros(5, 0, dtype=torch.long)).shape)
    (2, 5, 1)
    """

    def __init__(
        self,
        *,
        d_numeric: int,
        cardinalities: list[int],
        hidden_layer_sizes,
        activation: str,
        dropout: float = 0.0,
        normalization: str = "none",
        residual: bool = False,
        n_ensemble: int = 1,
        d_out: int = 1,
        ensemble_kind: str = "mlp_k",
        numeric_embedding: nn.Module | None = None,
    ):
        super().__init__()
        self.k = n_ensemble
        self.activation = activation
        self.num_embedding = numeric_embedding
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_dim(c)) for c in cardinalities)
        d = (d_numeric if numeric_embedding is None else numeric_embedding.d_out) + sum(
            embedding_dim(c) for c in cardinalities
        )
        blocks = []
        for layer, width in enumerate(hidden_layer_sizes):
            blocks.append(
                Block(
                    n_ensemble,
                    d,
                    width,
                    activation=activation,
                    normalization=normalization,
                    dropout=dropout,
                    residual=residual,
                    ensemble_kind=ensemble_kind,
                    layer=layer,
                )
            )
            d = width
        self.blocks = nn.ModuleList(blocks)
        self.head = EnsembleLinear(n_ensemble, d, d_out)
        self.dropout = dropout
        self.dropout_masks: DropoutMasks | None = None  # set by seed_dropout
        self.reset_parameters()  # never leave torch.empty's garbage in the weights

    def reset_parameters(
        self, generator: torch.Generator | None = None, init: str = "torch_default"
    ):
        """Initialise every layer by ``init`` (see :data:`INITS`); the gain of each hidden
        layer matches the activation after it, the head's matches the identity."""
        scheme = resolve_init(init, self.activation)
        for block in self.blocks:
            block.linear.reset_parameters(scheme, self.activation, generator)
        self.head.reset_parameters(scheme, "identity", generator)
        if self.num_embedding is not None:
            self.num_embedding.reset_parameters(generator)
        for emb in self.embeddings:
            with torch.no_grad():
                emb.weight.normal_(0.0, 1.0, generator=generator)

    def seed_dropout(self, seed: int) -> None:
        """Draw this network's dropout masks on the CPU from a generator seeded with
        ``seed``, all layers and members of a step at once (:mod:`dnnreg.network.dropout`);
        the training loop calls it. On other devices the blocks keep ``nn.Dropout``."""
        self.dropout_masks = DropoutMasks(self.dropout, seed) if self.dropout > 0 else None

    def _step_masks(self, x: torch.Tensor) -> list | None:
        """This training step's masks, one per block, for ``x: (k, n, d)``; ``None`` when
        the blocks drop units themselves (evaluation, no dropout, not on the CPU)."""
        if not self.training or self.dropout_masks is None or x.device.type != "cpu":
            return None
        k, n = x.shape[:2]
        shapes = [(k, n, block.linear.bias.shape[-1]) for block in self.blocks]
        dtype = x.dtype if not torch.is_autocast_enabled("cpu") else torch.bfloat16
        return self.dropout_masks.draw(shapes, dtype)

    def locate(self, x_num: torch.Tensor):
        """What the numeric embedding can work out once for rows it will see again (the
        piecewise-linear bins of every value, :meth:`NumericEmbedding.locate`), to pass
        back as ``forward``'s ``located`` with each batch's rows; ``None`` if nothing."""
        return None if self.num_embedding is None else self.num_embedding.locate(x_num)

    def inputs(self, x_num: torch.Tensor, x_cat: torch.Tensor, located=None) -> torch.Tensor:
        """The first layer's input: numeric columns and embedding rows side by side.
        Shape: ``-> ([k,] n, d)``."""
        if self.num_embedding is not None:
            x_num = self.num_embedding(x_num, located)
        parts = [x_num] + [emb(x_cat[..., i]) for i, emb in enumerate(self.embeddings)]
        return torch.cat(parts, dim=-1) if len(parts) > 1 else x_num

    def hidden_states(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> list[torch.Tensor]:
        """Each hidden block's output, first to last, without dropout's draws: what the
        layers compute, for looking inside. Shape: ``-> [(k, n, width_l), ...]``."""
        x = self.inputs(x_num, x_cat)
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.k, -1, -1)
        states = []
        for block in self.blocks:
            x = block(x)
            states.append(x)
        return states

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor, located=None) -> torch.Tensor:
        x = self.inputs(x_num, x_cat, located)  # ([k,] n, d)
        if x.dim() == 2:  # the same rows for every member
            x = x.unsqueeze(0).expand(self.k, -1, -1)
        masks = self._step_masks(x) or [None] * len(self.blocks)
        for block, mask in zip(self.blocks, masks):
            x = block(x, mask)
        return self.head(x)  # (k, n, d_out)
