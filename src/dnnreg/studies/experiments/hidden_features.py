"""Hidden features: the course says hidden layers learn features of their own, simple ones
first (lines, strokes) and more composite ones above, and that a hidden layer can raise or
lower the dimension of the data until a line separates what the input could not.

Two measurements, each read off a trained :class:`~dnnreg.DNNClassifier` through
:meth:`hidden_activations`:

- **digits** (bundled, 8x8 pixels), two ReLU layers of 64 and 32 units. The first layer's
  weight vectors are images (what each unit looks for in the pixels); a second-layer unit
  is shown by the mean of the test images that excite it most. The hierarchy is measured
  by *class selectivity*: for each unit, the share of its top-activating 5 % of test images
  that belong to its most common class (1/10 for a unit blind to the class, 1 for a unit
  that fires for one digit only). Composite features sit closer to the classes, so the
  claim predicts a higher selectivity in the second layer.
- **concentric circles** (generated, 2-D, two classes): 2 -> 16 tanh units (dimension
  raised) -> 2 tanh units (lowered) -> output. A logistic regression (a straight line) is
  fitted on the raw inputs and on each layer's code, and scored on held-out rows."""

from __future__ import annotations

import warnings

import numpy as np

CLAIM = (
    "Hidden layers learn their own features, simple in the first layer and more composite "
    "above; a hidden layer can raise the dimension until the classes separate by a line, "
    "and a narrow layer above can lower it again."
)

TOP_SHARE = 0.05  # a unit's top-activating share of test images, for its selectivity


def _classifier(hidden, activation, epochs, seed):
    from dnnreg.estimators.classifier import DNNClassifier

    return DNNClassifier(
        hidden_layer_sizes=hidden, activation=activation, n_ensemble=1, max_iter=epochs,
        early_stopping=False, bagging=False, lr_schedule="constant", learning_rate_init=3e-3,
        numeric_scaling="standard", random_state=seed,
    )  # fmt: skip


def selectivity(activations: np.ndarray, labels: np.ndarray, share: float = TOP_SHARE):
    """Per unit, the share of its top-activating rows that carry its most common label;
    units that never fire (dead ReLUs) are left out. ``activations``: (n, units).

    >>> a = np.array([[1.0, 0.0], [0.9, 1.0], [0.0, 0.8], [0.1, 0.7]])
    >>> selectivity(a, np.array([0, 0, 1, 1]), share=0.5).tolist()
    [1.0, 0.5]
    """
    n_top = max(1, int(round(share * len(labels))))
    out = []
    for unit in activations.T:
        if not np.any(unit > 0):
            continue
        top = labels[np.argsort(-unit, kind="stable")[:n_top]]
        out.append(np.bincount(top).max() / n_top)
    return np.array(out)


def _digits(quick: bool, seed: int) -> dict:
    from sklearn.model_selection import train_test_split

    from dnnreg.tables.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X.to_numpy(float), np.asarray(y, dtype=np.int64)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    model = _classifier((64, 32), "relu", 30 if quick else 80, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant (always-blank) pixels
        model.fit(Xtr, ytr)
    first, second = (a[0] for a in model.hidden_activations(Xte))
    s1, s2 = selectivity(first, yte), selectivity(second, yte)
    few = 100  # labelled images for the probes; the other test images score them
    probe = [_line_accuracy(a[:few], yte[:few], a[few:], yte[few:]) for a in (Xte, first, second)]
    # First-layer weight images, on the standardised pixels the layer sees. Pixels that are
    # (almost) always blank are blanked: a weight there meets a constant, not a stroke, and
    # dividing by their tiny spread would make them dominate the picture.
    w = model.model_.blocks[0].linear.weight.detach().numpy()[0]  # (64 pixels, 64 units)
    w = np.where(Xtr.std(0)[:, None] >= 1.0, w, 0.0)
    strongest = np.argsort(-np.linalg.norm(w, axis=0))[:16]
    active = np.argsort(-second.mean(0))[:16]
    n_top = max(1, int(round(TOP_SHARE * len(yte))))
    top_images = [Xte[np.argsort(-second[:, u])[:n_top]].mean(0) for u in active]
    return {
        "test_accuracy": float(np.mean(model.predict(Xte) == yte)),
        "probe_pixels": probe[0],
        "probe_layer1": probe[1],
        "probe_layer2": probe[2],
        "selectivity_pixels": float(selectivity(Xte, yte).mean()),
        "selectivity_layer1": float(s1.mean()),
        "selectivity_layer2": float(s2.mean()),
        "live_units": [int(len(s1)), int(len(s2))],
        "weight_images": [w[:, u].tolist() for u in strongest],
        "second_layer_images": [img.tolist() for img in top_images],
        "second_layer_classes": [
            int(np.bincount(yte[np.argsort(-second[:, u])[:n_top]]).argmax()) for u in active
        ],
    }


def _line_accuracy(train_codes, ytr, test_codes, yte) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    line = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(line.fit(train_codes, ytr).score(test_codes, yte))


def _circles(quick: bool, seed: int) -> dict:
    from sklearn.datasets import make_circles

    X, y = make_circles(n_samples=1200, noise=0.08, factor=0.5, random_state=seed)
    Xtr, Xte, ytr, yte = X[:800], X[800:], y[:800], y[800:]
    model = _classifier((16, 2), "tanh", 60 if quick else 150, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fixed number of epochs is the design here
        model.fit(Xtr, ytr)
    codes_tr = [a[0] for a in model.hidden_activations(Xtr)]
    codes_te = [a[0] for a in model.hidden_activations(Xte)]
    return {
        "network_accuracy": float(np.mean(model.predict(Xte) == yte)),
        "line_on_inputs": _line_accuracy(Xtr, ytr, Xte, yte),
        "line_on_layer1_16d": _line_accuracy(codes_tr[0], ytr, codes_te[0], yte),
        "line_on_layer2_2d": _line_accuracy(codes_tr[1], ytr, codes_te[1], yte),
        "points": {"x": Xte.tolist(), "code": codes_te[1].tolist(), "y": yte.tolist()},
    }


def measure(*, quick: bool, seeds: int) -> dict:
    digits = [_digits(quick, s) for s in range(seeds)]
    circles = [_circles(quick, s) for s in range(seeds)]
    mean = lambda runs, key: float(np.mean([r[key] for r in runs]))  # noqa: E731
    d = {k: mean(digits, k) for k in digits[0] if isinstance(digits[0][k], float)}
    c = {k: mean(circles, k) for k in circles[0] if k != "points"}
    layered = d["probe_layer2"] > d["probe_layer1"] > d["probe_pixels"]
    per_unit = d["selectivity_layer2"] > d["selectivity_layer1"] + 0.05
    separable = (
        c["line_on_inputs"] < 0.75 and min(c["line_on_layer1_16d"], c["line_on_layer2_2d"]) > 0.95
    )
    status = (
        "holds" if layered and per_unit and separable
        else "holds only when" if separable or layered
        else "does not hold"
    )  # fmt: skip
    lead = {
        "holds": "Holds.",
        "holds only when": "Holds only when the features are read a whole layer at a time."
        if separable and layered
        else "Holds in part.",
        "does not hold": "Does not hold.",
    }[status]
    verdict = (
        f"{lead} On concentric circles a straight line on the raw 2-D inputs classifies "
        f"{c['line_on_inputs']:.0%} of held-out points (chance is 50 %); on the 16-unit "
        f"hidden layer's code {c['line_on_layer1_16d']:.0%}, and on the 2-unit layer above "
        f"it, back in two dimensions, {c['line_on_layer2_2d']:.0%}: the first layer raised "
        "the dimension until the classes separated, the second lowered it and kept them "
        f"apart. On digits ({d['test_accuracy']:.1%} test accuracy) a linear probe given "
        f"100 labels reads the class from the pixels {d['probe_pixels']:.1%} of the time, "
        f"from the first layer {d['probe_layer1']:.1%}, from the second "
        f"{d['probe_layer2']:.1%}: each layer makes the class easier to read. Single units "
        + (
            "grow more selective too"
            if per_unit
            else "do not: the top 5 % of images of a first-layer unit share one class "
            f"{d['selectivity_layer1']:.0%} of the time, a second-layer unit's "
            f"{d['selectivity_layer2']:.0%} (pixels {d['selectivity_pixels']:.0%}, 10 % is "
            "blind to the class), so the second layer's units are not 'one digit each' but "
            "share the work"
        )
        + ". The first layer's weight images are distributed patterns of positive and "
        "negative pixels, not clean lines (8x8 images leave little room for lines)."
    )
    return {
        "status": status,
        "verdict": verdict,
        "numbers": {"digits": d, "circles": c, "live_units_digits": digits[0]["live_units"]},
        "images": {
            k: digits[0][k]
            for k in ("weight_images", "second_layer_images", "second_layer_classes")
        },
        "points": circles[0]["points"],
    }


def figure(result: dict, path) -> None:
    from dnnreg.report.plots import _save, _subplots

    fig, axes = _subplots(4, 12, figsize=(15, 5.6))
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    imgs = result["images"]
    for i in range(16):
        w = np.reshape(imgs["weight_images"][i], (8, 8))
        lim = np.abs(w).max() or 1.0
        axes[i // 4, i % 4].imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax = axes[i // 4, 4 + i % 4]
        ax.imshow(np.reshape(imgs["second_layer_images"][i], (8, 8)), cmap="gray_r")
        ax.set_title(f"mostly {imgs['second_layer_classes'][i]}", fontsize=6, pad=1)
    pts = result["points"]
    x, code, y = (np.asarray(pts[k]) for k in ("x", "code", "y"))
    for ax in axes[:, 8:].ravel():
        ax.remove()
    gs = axes[0, 0].get_gridspec()
    raw = fig.add_subplot(gs[:, 8:10])
    low = fig.add_subplot(gs[:, 10:12])
    n = result["numbers"]["circles"]
    for target, data, title in (
        (raw, x, f"inputs (2-D): a line gets {n['line_on_inputs']:.0%}"),
        (low, code, f"layer 2 code (2-D): a line gets {n['line_on_layer2_2d']:.0%}"),
    ):
        target.scatter(data[:, 0], data[:, 1], c=y, cmap="coolwarm", s=5)
        target.set_title(title, fontsize=8)
        target.set_aspect("equal", adjustable="datalim")
    fig.suptitle(
        "Digits: first-layer weight images (left, red +, blue -) and second-layer units' mean "
        "top-activating images (middle). Circles (right): raised to 16 dimensions "
        f"({n['line_on_layer1_16d']:.0%} by a line), lowered to 2",
        fontsize=9,
    )
    _save(fig, path)
