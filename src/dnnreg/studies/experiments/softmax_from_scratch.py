"""Softmax from scratch: the course derives back-propagation and implements a network in
plain Python, then classifies handwritten digits with softmax and the log-likelihood. Here
the network is dnnreg's NumPy one (:mod:`dnnreg.inference.reference`: forward pass,
softmax cross-entropy, back-propagation and SGD written out in float64 NumPy, no torch),
trained on the bundled digits (1,797 images of 8x8 pixels) beside the torch engine
(:class:`~dnnreg.DNNClassifier`) with the same architecture, optimiser, batch size and
epochs. Both see the same standardised pixels and the same split; their initial weights
and batch orders are their own, so the curves agree in shape, not to the digit.

Two networks: softmax regression (no hidden layer: ``p = softmax(x W + b)``, the course's
"softmax regression and MNIST digits"), and one ReLU hidden layer of 64 units. Before
training, the NumPy gradient is checked against central finite differences of the loss,
so the from-scratch derivation is tested, not assumed."""

from __future__ import annotations

import time
import warnings

import numpy as np

CLAIM = (
    "A network written from scratch (softmax output, log-likelihood loss, back-propagation, "
    "SGD) learns to read handwritten digits as well as a deep-learning engine does."
)

NETWORKS = {"softmax_regression": (), "one_hidden_layer": (64,)}
SGD = {"lr": 0.05, "momentum": 0.9, "batch_size": 32}


def _data(seed: int):
    from sklearn.model_selection import train_test_split

    from dnnreg.tables.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X.to_numpy(float), np.asarray(y, dtype=np.int64)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed)
    return X, y, tr, te


def initial_params(d_in: int, hidden: tuple, n_classes: int, seed: int) -> dict:
    """He-normal weights (Glorot-normal into the softmax) and zero biases, in the engine's
    named-tensor layout with one member: ``blocks.l.linear.weight`` is (1, d_in, d_out)."""
    rng = np.random.default_rng(seed)
    widths = [d_in, *hidden]
    p = {}
    for l, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        p[f"blocks.{l}.linear.weight"] = rng.normal(0, np.sqrt(2 / a), size=(1, a, b))
        p[f"blocks.{l}.linear.bias"] = np.zeros((1, 1, b))
    a = widths[-1]
    p["head.weight"] = rng.normal(0, np.sqrt(2 / (a + n_classes)), size=(1, a, n_classes))
    p["head.bias"] = np.zeros((1, 1, n_classes))
    return p


def gradient_check(net, x, y, *, n_entries: int = 20, h: float = 1e-6, seed: int = 0) -> float:
    """The largest relative difference between back-propagation's ∂L/∂θ and the central
    difference (L(θ + h) - L(θ - h)) / 2h over ``n_entries`` random weights of every
    parameter tensor."""
    from dnnreg.inference.reference import loss_and_output_error

    rng = np.random.default_rng(seed)
    loss = lambda: loss_and_output_error("cross_entropy", net.forward(x), y)[0]  # noqa: E731
    _, grads = net.loss_and_gradients(x, y, loss="cross_entropy")
    worst = 0.0
    for name, g in grads.items():
        p = net.params[name]
        for flat in rng.choice(p.size, size=min(n_entries, p.size), replace=False):
            i = np.unravel_index(flat, p.shape)
            keep = p[i]
            p[i] = keep + h
            up = loss()
            p[i] = keep - h
            down = loss()
            p[i] = keep
            numeric = (up - down) / (2 * h)
            worst = max(worst, abs(numeric - g[i]) / max(abs(numeric) + abs(g[i]), 1e-8))
    return float(worst)


def _numpy_run(hidden, X, y, tr, te, epochs, seed) -> dict:
    from dnnreg.inference.reference import NumpyMLP, train_numpy

    net = NumpyMLP(
        initial_params(X.shape[1], hidden, 10, seed), hidden_layer_sizes=hidden, activation="relu"
    )
    check = gradient_check(net, X[tr[:64]], y[tr[:64]], seed=seed)
    rng = np.random.default_rng(seed)
    bs, curve, accuracy = SGD["batch_size"], [], []
    start = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(tr)
        batches = [order[i : i + bs] for i in range(0, len(order), bs)]
        losses = train_numpy(
            net, X, y, batches, optimizer="momentum", lr=SGD["lr"],
            momentum=SGD["momentum"], loss="cross_entropy",
        )  # fmt: skip
        curve.append(float(np.mean(losses)))
        accuracy.append(float(np.mean(net.outputs(X[te])[0].argmax(1) == y[te])))
    return {
        "train_loss": curve,
        "test_accuracy": accuracy,
        "seconds": time.perf_counter() - start,
        "gradient_check": check,
    }


def _torch_run(hidden, X, y, tr, te, epochs, seed) -> dict:
    from dnnreg.estimators.classifier import DNNClassifier

    model = DNNClassifier(
        hidden_layer_sizes=hidden, activation="relu", init="he_normal", n_ensemble=1,
        solver="momentum", learning_rate_init=SGD["lr"], momentum=SGD["momentum"],
        batch_size=SGD["batch_size"], weight_decay=0.0, lr_schedule="constant",
        max_iter=epochs, early_stopping=False, bagging=False, numeric_scaling="standard",
        random_state=seed,
    )  # fmt: skip
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant-pixel columns; a fixed schedule
        model.fit(X[tr], y[tr])
    return {
        "train_loss": [h["train_loss"] for h in model.history_],
        "test_accuracy": float(np.mean(model.predict(X[te]) == y[te])),
        "seconds": time.perf_counter() - start,
    }


def measure(*, quick: bool, seeds: int) -> dict:
    epochs = 8 if quick else 30
    runs = {name: {"numpy": [], "torch": []} for name in NETWORKS}
    for seed in range(seeds):
        X, y, tr, te = _data(seed)
        mean, std = X[tr].mean(0), X[tr].std(0)
        X = (X - mean) / np.where(std > 0, std, 1.0)  # both see these (torch rescales: a no-op)
        for name, hidden in NETWORKS.items():
            runs[name]["numpy"].append(_numpy_run(hidden, X, y, tr, te, epochs, seed))
            runs[name]["torch"].append(_torch_run(hidden, X, y, tr, te, epochs, seed))
    numbers = {}
    for name, r in runs.items():
        numbers[name] = {
            "numpy_test_accuracy": float(np.mean([x["test_accuracy"][-1] for x in r["numpy"]])),
            "torch_test_accuracy": float(np.mean([x["test_accuracy"] for x in r["torch"]])),
            "numpy_final_loss": float(np.mean([x["train_loss"][-1] for x in r["numpy"]])),
            "torch_final_loss": float(np.mean([x["train_loss"][-1] for x in r["torch"]])),
            "numpy_seconds": float(np.mean([x["seconds"] for x in r["numpy"]])),
            "torch_seconds": float(np.mean([x["seconds"] for x in r["torch"]])),
            "gradient_check": float(max(x["gradient_check"] for x in r["numpy"])),
        }
    gap = max(abs(n["numpy_test_accuracy"] - n["torch_test_accuracy"]) for n in numbers.values())
    check = max(n["gradient_check"] for n in numbers.values())
    holds = gap <= 0.02 and check < 1e-5
    h = numbers["one_hidden_layer"]
    s = numbers["softmax_regression"]
    verdict = (
        f"{'Holds' if holds else 'Does not hold'}. After {epochs} epochs of SGD with momentum "
        f"the from-scratch NumPy network reads {h['numpy_test_accuracy']:.1%} of the test "
        f"digits with one hidden layer ({s['numpy_test_accuracy']:.1%} as softmax regression), "
        f"the torch engine {h['torch_test_accuracy']:.1%} ({s['torch_test_accuracy']:.1%}); "
        f"the largest accuracy gap is {gap:.1%} (the bound is 2 points). Back-propagation's "
        f"gradient matches central finite differences to a relative {check:.1e}. Training "
        f"took {h['numpy_seconds']:.1f} s in NumPy and {h['torch_seconds']:.1f} s in the torch "
        "engine's fit (its preprocessing and checks included): at 64 units the derivation, "
        "not the engine, is what matters."
    )
    return {
        "status": "holds" if holds else "does not hold",
        "verdict": verdict,
        "numbers": numbers | {"epochs": epochs, "sgd": SGD, "largest_accuracy_gap": gap},
        "curves": {
            f"{name}/{engine}": {
                "train_loss": np.mean([x["train_loss"] for x in r[engine]], axis=0).tolist(),
            }
            for name, r in runs.items()
            for engine in ("numpy", "torch")
        }
        | {
            f"{name}/numpy_accuracy": np.mean(
                [x["test_accuracy"] for x in r["numpy"]], axis=0
            ).tolist()
            for name, r in runs.items()
        },
    }


def figure(result: dict, path) -> None:
    from dnnreg.report.plots import _save, _subplots

    fig, (loss_ax, acc_ax) = _subplots(1, 2, figsize=(10, 3.8))
    for i, name in enumerate(NETWORKS):
        for engine, style in (("numpy", "o-"), ("torch", "s--")):
            curve = result["curves"][f"{name}/{engine}"]["train_loss"]
            loss_ax.plot(range(1, len(curve) + 1), curve, style, color=f"C{i}", ms=3,
                         label=f"{name.replace('_', ' ')}, {engine}")  # fmt: skip
        acc = result["curves"][f"{name}/numpy_accuracy"]
        acc_ax.plot(range(1, len(acc) + 1), acc, "o-", color=f"C{i}", ms=3,
                    label=f"{name.replace('_', ' ')}, NumPy")  # fmt: skip
        torch_acc = result["numbers"][name]["torch_test_accuracy"]
        acc_ax.axhline(torch_acc, color=f"C{i}", ls="--", lw=1, label="torch engine, final")
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training log-loss (mean over the epoch)")
    loss_ax.legend(fontsize=7)
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("test accuracy")
    acc_ax.legend(fontsize=7)
    fig.suptitle("Softmax and the log-likelihood from scratch (NumPy) beside the torch engine")
    _save(fig, path)
