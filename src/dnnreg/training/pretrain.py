"""Greedy layer-wise pretraining without labels (Hinton & Salakhutdinov 2006; Bengio et al.
2007), and wake-sleep tuning of the stack as a deep belief network (Hinton et al. 1995,
2006), before supervised fine-tuning by back-propagation.

Greedy: hidden layer l is trained alone, on the codes that layers 1..l-1 (already trained,
now frozen) give for every pretraining row; its codes then feed layer l+1. Each layer is
trained as one of:

- ``autoencoder``: encoder = the layer itself, ``h = f(norm(a W + b))``; a linear decoder
  (its own weights, dropped afterwards) reconstructs the input ``a`` from ``h``; loss
  ``mean ‖a - (h V + c)‖²``. The layer must find a code of ``width`` numbers that keeps what
  matters about its input: limited capacity.
- ``denoising`` (Vincent et al. 2008): the same, but the encoder sees a corrupted input
  (masking noise: each entry zeroed with probability ν — zero is the training median after
  scaling — or Gaussian noise of standard deviation ν) and must reconstruct the clean one.
- ``sparse`` (Ng 2011): the autoencoder loss plus ``β Σ_j KL(ρ ‖ ρ̂_j)``, where ρ̂_j is unit j's
  mean activity over the batch and ρ a small target, so each unit fires for few rows. The
  activity is the activation itself for sigmoid, ``(h + 1)/2`` for tanh, and
  ``1 - exp(-max(h, 0))`` for the ReLU family (0 when silent, towards 1 when strongly on).
- ``rbm`` (Hinton 2002, 2006): the layer is a restricted Boltzmann machine, Gaussian-Bernoulli
  for the first (unit-variance visible units, as the scaled inputs are) and Bernoulli above,
  trained by contrastive divergence CD-k (:func:`cd_gradients`). Its hidden units are
  sigmoid; the weights move into the network as they are whatever its activation, and the
  pretrain study says whether that helps.

Wake-sleep (``rbm`` only, at least two hidden layers): the lower layers get untied
recognition (up, R) and generative (down, G) weights, starting from the RBMs' W and Wᵀ;
the top two layers stay an undirected RBM. Each step (the up-down algorithm):

- wake: sample the layers upwards with R from the data; the generative weights learn to
  predict each layer from the one above, ``G_l += ε s_{l+1}ᵀ (s_l - gen(s_{l+1}))``; the top
  RBM takes one CD-k step from the wake state;
- sleep: from the top RBM's fantasy, generate downwards with G; the recognition weights
  learn to recover each layer from the one below, ``R_l += ε d_lᵀ (d_{l+1} - rec(d_l))``.

The reconstruction error (data up through R, back down through G) is recorded before and
after. Fine-tuning starts from the recognition weights.

Every member of the ensemble is pretrained at once, each with its own weights (batched
over the leading member axis ``k``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from dnnreg.options import NOISE_KINDS, PRETRAIN_MODES  # noqa: F401

# Adam's rate for autoencoders; CD's (with momentum) for RBMs: on California housing 0.01
# needed ~10 epochs to leave the start, 0.05 reached a 4.5x lower reconstruction error in
# 10 epochs, 0.2 diverged in the Gaussian first layer.
DEFAULT_LR = {"autoencoder": 1e-3, "denoising": 1e-3, "sparse": 1e-3, "rbm": 0.05}
GAUSSIAN_LR_FACTOR = 0.2
RBM_MOMENTUM = 0.9  # after 5 epochs at 0.5 (Hinton 2010, "A practical guide to training RBMs")
_EPS = 1e-6


@dataclass
class PretrainConfig:
    """Per-layer settings; each tuple has one entry per hidden layer."""

    mode: str
    epochs: tuple
    lr: tuple
    noise: tuple
    noise_kind: str
    sparsity: tuple
    sparsity_weight: tuple
    cd_k: int
    wake_sleep_epochs: int
    batch_size: int


def per_layer(value, n_layers: int, name: str) -> tuple:
    """A scalar repeated for every layer, or a sequence with exactly one entry per layer.

    >>> per_layer(0.1, 3, "pretrain_noise"), per_layer((5, 10), 2, "pretrain_epochs")
    ((0.1, 0.1, 0.1), (5, 10))
    """
    if isinstance(value, (list, tuple)):
        if len(value) != n_layers:
            raise ValueError(
                f"{name} needs one value per hidden layer ({n_layers}), got "
                f"{name}={tuple(value)!r}; pass a single value or {n_layers}"
            )
        return tuple(value)
    return (value,) * n_layers


# ---------------------------------------------------------------------- helpers
def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def _per_member(a: torch.Tensor, k: int) -> torch.Tensor:
    """``(k, n, d)``: ``a`` itself, or ``(n, d)`` rows shared by every member (a view)."""
    return a if a.dim() == 3 else a.unsqueeze(0).expand(k, -1, -1)


def _bmm(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``(k, n, d) @ (k, d, h)``, or ``(n, d)`` shared by every member."""
    return torch.bmm(_per_member(a, w.shape[0]), w)


def _activity(h: torch.Tensor, activation: str) -> torch.Tensor:
    """A unit's output as a firing level in [0, 1] (see the module docstring)."""
    if activation == "sigmoid":
        return h
    if activation == "tanh":
        return (h + 1) / 2
    return 1 - torch.exp(-torch.relu(h))


def kl_sparsity(h: torch.Tensor, rho: float, activation: str) -> torch.Tensor:
    """``Σ_j KL(ρ ‖ ρ̂_j)`` per member, averaged over members; ρ̂_j is unit j's mean activity
    over the rows. ``KL(ρ‖ρ̂) = ρ log(ρ/ρ̂) + (1-ρ) log((1-ρ)/(1-ρ̂))``."""
    rho_hat = _activity(h, activation).mean(dim=-2).clamp(_EPS, 1 - _EPS)  # (k, d)
    kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    return kl.sum(dim=-1).mean()


def corrupt(a: torch.Tensor, kind: str, level: float, generator: torch.Generator) -> torch.Tensor:
    """Masking noise (each entry set to 0 with probability ``level``) or additive Gaussian
    noise of standard deviation ``level``."""
    if level == 0:
        return a
    if kind == "mask":
        keep = torch.rand(a.shape, generator=generator) >= level
        return a * keep.to(a.device, a.dtype)
    return a + level * torch.randn(a.shape, generator=generator).to(a.device, a.dtype)


# ---------------------------------------------------------------------- autoencoders
def _encoder(block):
    def encode(a):
        h = block.linear(_per_member(a, block.linear.weight.shape[0]))
        if block.norm is not None:
            h = block.norm(h)
        return block.act(h)

    return encode


def _reconstruction_mse(encode, decoder, a, batch_size) -> float:
    total, n = 0.0, a.shape[-2]
    with torch.no_grad():
        for i in range(0, n, batch_size):
            chunk = a[..., i : i + batch_size, :]
            recon = decoder(encode(chunk))
            total += float(((recon - chunk) ** 2).mean(dim=(0, 2)).sum())
    return total / n


def pretrain_autoencoder_layer(
    block,
    a: torch.Tensor,
    *,
    config: PretrainConfig,
    layer: int,
    activation: str,
    generator: torch.Generator,
) -> dict:
    """Train ``block`` as the encoder of an (optionally denoising or sparse) autoencoder of
    its input ``a`` ((n, d) or (k, n, d)); returns the reconstruction error per epoch
    (entry 0: before training)."""
    from dnnreg.network.mlp import EnsembleLinear

    k, d_in, d_out = block.linear.weight.shape
    decoder = EnsembleLinear(k, d_out, d_in)
    decoder.reset_parameters("xavier_uniform", "identity", generator)  # on the CPU, then move
    decoder.to(a.device)
    encode = _encoder(block)
    params = [p for p in block.parameters() if p.requires_grad] + list(decoder.parameters())
    opt = torch.optim.Adam(params, lr=config.lr[layer])
    block.train()
    errors = [_reconstruction_mse(encode, decoder, a, 4096)]
    for _ in range(config.epochs[layer]):
        for idx in _batches(a.shape[-2], config.batch_size, generator):
            clean = a[..., idx.to(a.device), :]
            noisy = (
                corrupt(clean, config.noise_kind, config.noise[layer], generator)
                if config.mode == "denoising"
                else clean
            )
            h = encode(noisy)
            target = clean if clean.dim() == 3 else clean.unsqueeze(0)
            loss = ((decoder(h) - target) ** 2).mean(dim=(1, 2)).sum()  # each member its own
            if config.mode == "sparse":
                loss = loss + config.sparsity_weight[layer] * k * kl_sparsity(
                    h, config.sparsity[layer], activation
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        errors.append(_reconstruction_mse(encode, decoder, a, 4096))
    return {"layer": layer + 1, "mode": config.mode, "reconstruction_error": errors}


# ---------------------------------------------------------------------- RBMs
@dataclass
class RBM:
    """``W: (k, d_v, d_h)``, hidden bias ``c: (k, 1, d_h)``, visible bias ``b: (k, 1, d_v)``;
    ``gaussian``: unit-variance Gaussian visible units, else Bernoulli."""

    W: torch.Tensor
    c: torch.Tensor
    b: torch.Tensor
    gaussian: bool

    def hidden_probs(self, v):
        return torch.sigmoid(_bmm(v, self.W) + self.c)

    def visible_mean(self, h):
        mean = torch.bmm(h, self.W.transpose(1, 2)) + self.b
        return mean if self.gaussian else torch.sigmoid(mean)

    def reconstruction_error(self, v) -> float:
        """Mean squared error of ``E[v | h = p(h | v)]`` against ``v``, per row."""
        v3 = _per_member(v, self.W.shape[0])
        return float(
            ((self.visible_mean(self.hidden_probs(v3)) - v3) ** 2).mean(dim=(0, 2)).sum()
            / v3.shape[1]
        )


def cd_gradients(
    rbm: RBM, v0: torch.Tensor, uniforms: list[torch.Tensor], *, return_chain: bool = False
):
    """The CD-k estimate of the log-likelihood gradient, averaged over rows:
    ``(ΔW, Δc, Δb) = (⟨v hᵀ⟩_data - ⟨v hᵀ⟩_k, ⟨h⟩_data - ⟨h⟩_k, ⟨v⟩_data - ⟨v⟩_k)``.

    The chain: p₀ = p(h | v₀); h ~ Bernoulli(p) by ``uniforms[i] < p`` (the k draws passed
    in, so a test can fix them); v_{i+1} = E[v | h] (reconstructions use means, Hinton's
    practical guide §3.2); the last hidden step keeps probabilities. Shapes: ``v0: (k, n,
    d_v)``; each uniform ``(k, n, d_h)``. With ``return_chain`` the chain's last visible
    mean v_k comes fourth.
    """
    p0 = rbm.hidden_probs(v0)
    v, p = v0, p0
    for u in uniforms:
        h = (u < p).to(p.dtype)
        v = rbm.visible_mean(h)
        p = rbm.hidden_probs(v)
    n = v0.shape[1]
    dW = (torch.bmm(v0.transpose(1, 2), p0) - torch.bmm(v.transpose(1, 2), p)) / n
    dc = (p0 - p).mean(dim=1, keepdim=True)
    db = (v0 - v).mean(dim=1, keepdim=True)
    return (dW, dc, db, v) if return_chain else (dW, dc, db)


def pretrain_rbm_layer(
    block, a: torch.Tensor, *, config: PretrainConfig, layer: int, generator: torch.Generator
) -> tuple[dict, RBM]:
    """Train ``block.linear`` as the (W, c) of an RBM on ``a`` by CD-k with momentum; returns
    the reconstruction error per epoch (entry 0: before) and the RBM (its visible bias is
    kept for wake-sleep)."""
    W, c = block.linear.weight, block.linear.bias
    k, d_v, _ = W.shape
    with torch.no_grad():  # small weights, as Hinton's guide recommends: N(0, 0.01²)
        W.copy_(torch.randn(W.shape, generator=generator).mul_(0.01))
        c.zero_()
    a3 = _per_member(a, k)
    b = (
        a3.mean(dim=1, keepdim=True).clone()
        if layer == 0
        else torch.zeros(k, 1, d_v, device=W.device)
    )
    rbm = RBM(W.data, c.data, b, gaussian=layer == 0)
    # Gaussian visible units take a fifth of the rate (their free energy is quadratic in v:
    # measured on California housing, 0.05 diverged on the full training split, 0.01 did not).
    lr = config.lr[layer] * (GAUSSIAN_LR_FACTOR if rbm.gaussian else 1.0)
    errors = train_rbm(
        rbm, a3, epochs=config.epochs[layer], lr=lr, batch_size=config.batch_size,
        cd_k=config.cd_k, generator=generator,
    )  # fmt: skip
    return {"layer": layer + 1, "mode": "rbm", "reconstruction_error": errors}, rbm


def train_rbm(
    rbm: RBM,
    v: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    cd_k: int,
    generator: torch.Generator,
) -> list[float]:
    """Train ``rbm`` in place on ``v: (k, n, d_v)`` by CD-k with momentum (0.5 for five
    epochs, then ``RBM_MOMENTUM``); returns the reconstruction error per epoch (entry 0:
    before training)."""
    k = rbm.W.shape[0]
    velocity = [torch.zeros_like(t) for t in (rbm.W, rbm.c, rbm.b)]
    errors = [rbm.reconstruction_error(v)]
    for epoch in range(epochs):
        momentum = 0.5 if epoch < 5 else RBM_MOMENTUM
        for idx in _batches(v.shape[1], batch_size, generator):
            v0 = v[:, idx.to(v.device), :]
            shape = (k, v0.shape[1], rbm.W.shape[2])
            uniforms = [torch.rand(shape, generator=generator).to(v0.device) for _ in range(cd_k)]
            with torch.no_grad():
                for t, vel, g in zip(
                    (rbm.W, rbm.c, rbm.b), velocity, cd_gradients(rbm, v0, uniforms)
                ):
                    vel.mul_(momentum).add_(g, alpha=lr)
                    t.add_(vel)
        errors.append(rbm.reconstruction_error(v))
    return errors


# ---------------------------------------------------------------------- wake-sleep
class DeepBeliefNet:
    """A stack of RBMs turned into a deep belief network: directed layers below (untied
    recognition R, r and generative G, g), the top RBM undirected."""

    def __init__(self, rbms: list[RBM]):
        self.lower = [
            {
                "R": r.W.clone(),
                "r": r.c.clone(),
                "G": r.W.transpose(1, 2).clone(),
                "g": r.b.clone(),
                "gaussian": r.gaussian,
            }
            for r in rbms[:-1]
        ]
        self.top = rbms[-1]

    def _recognize(self, layer, s):
        return torch.sigmoid(_bmm(s, layer["R"]) + layer["r"])

    def _generate(self, layer, s):
        mean = torch.bmm(s, layer["G"]) + layer["g"]
        return mean if layer["gaussian"] else torch.sigmoid(mean)

    def reconstruction_error(self, v: torch.Tensor) -> float:
        """Data up through the recognition weights (probabilities), back down through the
        generative weights (means); mean squared error per row."""
        k = self.top.W.shape[0]
        v3 = _per_member(v, k)
        s = v3
        for layer in self.lower:
            s = self._recognize(layer, s)
        for layer in reversed(self.lower):
            s = self._generate(layer, s)
        return float(((s - v3) ** 2).mean(dim=(0, 2)).sum() / v3.shape[1])

    @torch.no_grad()
    def up_down_step(self, v: torch.Tensor, lr: float, cd_k: int, generator: torch.Generator):
        """One wake-sleep step on a batch ``v: (k, n, d)`` (see the module docstring)."""
        draw = lambda p: (torch.rand(p.shape, generator=generator).to(p.device) < p).to(p.dtype)  # noqa: E731
        n = v.shape[1]
        wake = [v]  # wake: sample upwards with recognition weights
        for layer in self.lower:
            wake.append(draw(self._recognize(layer, wake[-1])))
        top_v = wake[-1]
        uniforms = [
            torch.rand((*top_v.shape[:2], self.top.W.shape[2]), generator=generator).to(v.device)
            for _ in range(cd_k)
        ]
        # the top RBM learns by CD-k from the wake state; its chain's end is the fantasy
        dW, dc, db, chain_end = cd_gradients(self.top, top_v, uniforms, return_chain=True)
        fantasy = draw(chain_end)
        for t, g in zip((self.top.W, self.top.c, self.top.b), (dW, dc, db)):
            t.add_(g, alpha=lr)
        # generative weights learn from the wake states
        for l, layer in enumerate(self.lower):
            err = wake[l] - self._generate(layer, wake[l + 1])
            layer["G"] += lr * torch.bmm(wake[l + 1].transpose(1, 2), err) / n
            layer["g"] += lr * err.mean(dim=1, keepdim=True)
        # sleep: generate downwards from the fantasy, recognition weights learn from it
        sleep = [fantasy]
        for layer in reversed(self.lower):
            mean = self._generate(layer, sleep[0])
            sleep.insert(0, mean if layer["gaussian"] else draw(mean))
        for l, layer in enumerate(self.lower):
            err = sleep[l + 1] - self._recognize(layer, sleep[l])
            layer["R"] += lr * torch.bmm(sleep[l].transpose(1, 2), err) / n
            layer["r"] += lr * err.mean(dim=1, keepdim=True)


def wake_sleep(
    rbms: list[RBM], blocks, a0: torch.Tensor, *, config: PretrainConfig, generator: torch.Generator
) -> dict:
    """Tune the RBM stack as a DBN by the up-down algorithm, then load the recognition
    weights into ``blocks``. Returns the reconstruction error before and after."""
    dbn = DeepBeliefNet(rbms)
    k = rbms[0].W.shape[0]
    v = _per_member(a0, k)
    before = dbn.reconstruction_error(v)
    lr = config.lr[0]  # measured: a tenth of it moved the error 1 % in 20 epochs, this 18 %
    for _ in range(config.wake_sleep_epochs):
        for idx in _batches(v.shape[1], config.batch_size, generator):
            dbn.up_down_step(v[:, idx.to(v.device), :], lr, config.cd_k, generator)
    after = dbn.reconstruction_error(v)
    with torch.no_grad():
        for layer, block in zip(dbn.lower, blocks):
            block.linear.weight.copy_(layer["R"])
            block.linear.bias.copy_(layer["r"])
        blocks[len(dbn.lower)].linear.weight.copy_(dbn.top.W)
        blocks[len(dbn.lower)].linear.bias.copy_(dbn.top.c)
    return {
        "reconstruction_error_before": before,
        "reconstruction_error_after": after,
        "epochs": config.wake_sleep_epochs,
    }


# ---------------------------------------------------------------------- the stack
def pretrain_stack(
    model: nn.Module,
    x_num: torch.Tensor,
    x_cat: torch.Tensor,
    *,
    config: PretrainConfig,
    activation: str,
    generator: torch.Generator,
) -> list[dict]:
    """Pretrain every hidden layer of ``model`` greedily, bottom-up, on the rows of
    ``(x_num, x_cat)`` (labels are never seen), then optionally wake-sleep. Returns one
    history entry per layer (and one for wake-sleep)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        a0 = model.inputs(x_num.to(device), x_cat.to(device))  # (n, d): embeddings as drawn
    a, history, rbms = a0, [], []
    for l, block in enumerate(model.blocks):
        if config.epochs[l] == 0:  # this layer keeps its random start
            with torch.no_grad():
                a = _encoder(block)(a)
            continue
        if config.mode == "rbm":
            record, rbm = pretrain_rbm_layer(block, a, config=config, layer=l, generator=generator)
            rbms.append(rbm)
            with torch.no_grad():
                a = rbm.hidden_probs(a)
        else:
            record = pretrain_autoencoder_layer(
                block, a, config=config, layer=l, activation=activation, generator=generator
            )
            block.eval()
            with torch.no_grad():
                a = _encoder(block)(a)
        if not all(math.isfinite(e) for e in record["reconstruction_error"]):
            raise ValueError(
                f"pretraining diverged in hidden layer {l + 1} (reconstruction "
                f"error {record['reconstruction_error'][-1]}); lower pretrain_lr "
                f"(now {config.lr[l]})"
            )
        history.append(record)
    # Wake-sleep needs an RBM for every layer (a layer left at 0 epochs has none).
    if (
        config.mode == "rbm"
        and config.wake_sleep_epochs > 0
        and len(rbms) == len(model.blocks) >= 2
    ):
        history.append(
            {
                "wake_sleep": wake_sleep(
                    rbms, list(model.blocks), a0, config=config, generator=generator
                )
            }
        )
    return history
