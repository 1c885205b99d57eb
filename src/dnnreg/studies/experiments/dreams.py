"""Dreams: the course says a stack of RBMs is a generative model that can "dream" inputs
from its top layer. The model here is Hinton, Osindero & Teh (2006)'s, at digit size: a
Bernoulli RBM on the bundled digits' pixels (64 -> 128 hidden units), and above it a top
RBM whose visible layer is those 128 features *and* ten label units (138 -> 256), both
trained greedily by contrastive divergence with dnnreg's own RBM engine
(:func:`dnnreg.training.pretrain.train_rbm`).

To dream a digit, the label units are clamped to one class and the top RBM runs alternating
Gibbs sampling from a random start (h2 ~ p(h2 | h1, label), h1 ~ p(h1 | h2)); its settled
features are then sent down through the first RBM's generative weights to pixels. Nothing
of a real image goes in. Whether a dream looks like its class is judged by an independent
judge: a logistic regression trained on the real training images (98 % on real test images
is typical), which reads each dream and says which digit it sees."""

from __future__ import annotations

import numpy as np

CLAIM = (
    "A stack of RBMs trained on digits can dream digits: clamp a class at the top, let the "
    "top layer settle, generate down, and the pixels show that class."
)

SIZES = {"hidden": 128, "top": 256}
RATES = {"lr": 0.05, "batch_size": 32}


def _rbm(d_v: int, d_h: int, v: "torch.Tensor", generator):  # noqa: F821
    """A Bernoulli RBM with N(0, 0.01²) weights and the visible bias at the data's log-odds
    (Hinton's practical guide, §8)."""
    import torch

    from dnnreg.training.pretrain import RBM

    p = v.mean(dim=1, keepdim=True).clamp(1e-3, 1 - 1e-3)
    return RBM(
        W=torch.randn((1, d_v, d_h), generator=generator, dtype=v.dtype) * 0.01,
        c=torch.zeros((1, 1, d_h), dtype=v.dtype),
        b=torch.log(p / (1 - p)),
        gaussian=False,
    )


def train_stack(pixels: np.ndarray, labels: np.ndarray, *, epochs: int, cd_k: int, seed: int):
    """The two RBMs and each one's reconstruction error per epoch. ``pixels`` in [0, 1]."""
    import torch

    from dnnreg.training.pretrain import train_rbm

    g = torch.Generator().manual_seed(seed)
    v = torch.from_numpy(pixels).float()[None]
    low = _rbm(v.shape[2], SIZES["hidden"], v, g)
    low_err = train_rbm(low, v, epochs=epochs, cd_k=1, generator=g, **RATES)
    with torch.no_grad():
        h1 = low.hidden_probs(v)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(labels), 10).float()[None]
    top_v = torch.cat([h1, onehot], dim=2)
    top = _rbm(top_v.shape[2], SIZES["top"], top_v, g)
    top_err = train_rbm(top, top_v, epochs=epochs, cd_k=cd_k, generator=g, **RATES)
    return low, top, {"low": low_err, "top": top_err}


@np.errstate(all="ignore")
def dream(low, top, label: int, *, n: int, steps: int, seed: int) -> np.ndarray:
    """``n`` dreamed images of class ``label``, shape ``(n, 64)``, pixel means in [0, 1]."""
    import torch

    g = torch.Generator().manual_seed(seed)
    d = SIZES["hidden"]
    clamp = torch.zeros((1, n, 10))
    clamp[..., label] = 1.0
    h1 = (torch.rand((1, n, d), generator=g) < 0.5).float()  # a random start
    with torch.no_grad():
        for step in range(steps):
            p2 = top.hidden_probs(torch.cat([h1, clamp], dim=2))
            h2 = (torch.rand(p2.shape, generator=g) < p2).float()
            p1 = top.visible_mean(h2)[..., :d]  # the label half is clamped, not resampled
            h1 = p1 if step == steps - 1 else (torch.rand(p1.shape, generator=g) < p1).float()
        return low.visible_mean(h1)[0].numpy()


def _judge(train_pixels, train_labels):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=3000, C=1.0).fit(train_pixels, train_labels)


def measure(*, quick: bool, seeds: int) -> dict:
    from sklearn.model_selection import train_test_split

    from dnnreg.tables.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X.to_numpy(float) / 16.0, np.asarray(y, dtype=np.int64)
    epochs, steps, per_class = (15, 200, 10) if quick else (60, 1000, 20)
    runs = []
    for seed in range(seeds):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
        low, top, errors = train_stack(Xtr, ytr, epochs=epochs, cd_k=1 if quick else 3, seed=seed)
        judge = _judge(Xtr, ytr)
        dreams = {
            c: dream(low, top, c, n=per_class, steps=steps, seed=seed * 10 + c) for c in range(10)
        }
        read = {c: judge.predict(dreams[c]) for c in range(10)}
        runs.append(
            {
                "judge_on_real_test": float(judge.score(Xte, yte)),
                "per_class": {c: float(np.mean(read[c] == c)) for c in range(10)},
                "errors": errors,
                "dreams": {c: dreams[c][:6].round(3).tolist() for c in range(10)},
                "read_as": {c: read[c][:6].tolist() for c in range(10)},
            }
        )
    per_class = {c: float(np.mean([r["per_class"][c] for r in runs])) for c in range(10)}
    recognised = float(np.mean(list(per_class.values())))
    judge_real = float(np.mean([r["judge_on_real_test"] for r in runs]))
    worst = min(per_class, key=per_class.get)
    good = [c for c, v in per_class.items() if v >= 0.5]
    status = (
        "holds" if recognised >= 0.7 and len(good) >= 8
        else "holds only when" if len(good) >= 3
        else "does not hold"
    )  # fmt: skip
    lead = {"holds": "Holds", "holds only when": "Holds only for some classes"}
    verdict = (
        f"{lead.get(status, 'Does not hold')}. An independent judge (logistic regression "
        f"on real pixels, {judge_real:.1%} on real test images) reads {recognised:.0%} of "
        "the dreams as the class that was "
        f"clamped (chance is 10 %); {len(good)} of 10 classes are recognised at least half "
        f"the time; the weakest is {worst} ({per_class[worst]:.0%}). The dreams come from "
        f"{steps} Gibbs steps in the top RBM after {epochs} epochs of CD per layer; the "
        "pixels are the first RBM's generative means, so the dreams are smooth and blurry "
        "where a class varies."
    )
    first = runs[0]
    return {
        "status": status,
        "verdict": verdict,
        "numbers": {
            "recognised": recognised,
            "per_class": per_class,
            "judge_on_real_test": judge_real,
            "epochs": epochs,
            "gibbs_steps": steps,
            "reconstruction_error": {k: [v[0], v[-1]] for k, v in first["errors"].items()},
        },
        "dreams": first["dreams"],
        "read_as": first["read_as"],
    }


def figure(result: dict, path) -> None:
    from dnnreg.report.plots import _save, _subplots

    dreams = {int(c): v for c, v in result["dreams"].items()}  # JSON keys are strings
    read_as = {int(c): v for c, v in result["read_as"].items()}
    cols = len(dreams[0])
    fig, axes = _subplots(cols, 10, figsize=(10, cols * 1.05 + 0.6))
    for c in range(10):
        images, read = dreams[c], read_as[c]
        for i in range(cols):
            ax = axes[i, c]
            ax.imshow(np.reshape(images[i], (8, 8)), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"read {read[i]}", fontsize=6, pad=1, color="k" if read[i] == c else "r")
        axes[0, c].set_title(
            f"class {c}\nread {read[0]}", fontsize=7, pad=1, color="k" if read[0] == c else "r"
        )
    fig.suptitle(
        f"Dreams of a stacked RBM, one column per clamped class "
        f"({result['numbers']['recognised']:.0%} read as their class by an independent judge)",
        fontsize=9,
    )
    _save(fig, path)
