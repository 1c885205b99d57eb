"""Figures from plain data (lists of dicts), written as PNG files. Never torch objects."""

from __future__ import annotations

from pathlib import Path


def _subplots(*grid, figsize):
    """``(figure, axes)`` outside pyplot (matplotlib's object API): the figure draws to a
    file with the Agg canvas and never touches the process's backend or pyplot's figure
    registry, so a notebook's inline plots keep working after a call and nothing needs
    closing."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid)


def comparison_plot(summary: list[dict], metric: str, path, *, title: str = "") -> Path:
    """Horizontal bars of each model's mean ``metric`` with ± one standard deviation."""
    names = [r["model"] for r in summary]
    means = [r[f"{metric}_mean"] for r in summary]
    stds = [r.get(f"{metric}_std") or 0.0 for r in summary]
    fig, ax = _subplots(figsize=(7, 0.45 * len(names) + 1.2))
    colors = ["tab:red" if n == "dnnreg" else "tab:blue" for n in names]
    ax.barh(names[::-1], means[::-1], xerr=stds[::-1], color=colors[::-1], alpha=0.8)
    ax.set_xlabel(f"test {metric} (mean ± std over splits)")
    ax.set_title(title or f"dnnreg against the baselines: {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(path)


def learning_curve_plot(
    curve: list[dict], metric: str, path, *, crossover=None, title: str = ""
) -> Path:
    """Mean test ``metric`` against training rows (log scale), one line per model, with a
    band of ± one standard deviation over repeats and the crossover marked."""
    import numpy as np

    fig, ax = _subplots(figsize=(7, 4.5))
    for model in dict.fromkeys(r["model"] for r in curve):
        rows = [r for r in curve if r["model"] == model]
        sizes = sorted({r["size"] for r in rows})
        values = [[r[metric] for r in rows if r["size"] == s] for s in sizes]
        mean, std = np.array([np.mean(v) for v in values]), np.array([np.std(v) for v in values])
        style = {"color": "tab:red", "linewidth": 2.5} if model == "dnnreg" else {}
        ax.plot(sizes, mean, marker="o", label=model, **style)
        ax.fill_between(
            sizes,
            mean - std,
            mean + std,
            alpha=0.15,
            **({"color": "tab:red"} if model == "dnnreg" else {}),
        )
    if crossover is not None:
        ax.axvline(crossover, color="gray", linestyle="--", label=f"crossover: {crossover} rows")
    ax.set_xscale("log")
    ax.set_xlabel("training rows")
    ax.set_ylabel(f"test {metric}")
    ax.set_title(title or "learning curves")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(path)


def pretrain_study_plot(summary: list[dict], path, *, title: str = "") -> Path:
    """Mean test metric against labelled rows (log scale), one line per pretraining mode,
    with error bars of ± one standard deviation over seeds."""
    fig, ax = _subplots(figsize=(7, 4.5))
    for mode in dict.fromkeys(e["mode"] for e in summary):
        rows = sorted((e for e in summary if e["mode"] == mode), key=lambda e: e["labelled"])
        style = {"color": "black", "linewidth": 2.5} if mode == "none" else {}
        ax.errorbar(
            [e["labelled"] for e in rows],
            [e["mean"] for e in rows],
            yerr=[e["std"] for e in rows],
            marker="o",
            capsize=3,
            label=mode,
            **style,
        )
    ax.set_xscale("log")
    ax.set_xlabel("labelled training rows")
    ax.set_ylabel(f"test {summary[0]['metric']}")
    ax.set_title(title or "pretraining study")
    ax.legend(title="pretrain")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(path)


def history_plot(history: list[dict], path, *, metric: str | None = None) -> Path:
    """Training and validation loss per epoch (and the validation metric on a second axis)."""
    epochs = [r["epoch"] for r in history]
    fig, ax = _subplots(figsize=(7, 4))
    ax.plot(epochs, [r["train_loss"] for r in history], label="train loss")
    if history and "val_loss" in history[0]:
        ax.plot(epochs, [r["val_loss"] for r in history], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(loc="upper left")
    if metric and history and metric in history[0]:
        twin = ax.twinx()
        twin.plot(
            epochs, [r[metric] for r in history], color="tab:red", linestyle="--", label=metric
        )
        twin.set_ylabel(metric)
        twin.legend(loc="upper right")
    ax.set_title("learning curves")
    return _save(fig, path)


def gradient_heatmap(history: list[dict], path) -> Path:
    """log10 of each layer's gradient norm (rows) over epochs (columns)."""
    import numpy as np

    records = [r["diagnostics"]["layers"] for r in history if "diagnostics" in r]
    grid = np.array(
        [
            [np.nan if la["grad_norm"] in (None, 0) else np.log10(la["grad_norm"]) for la in layers]
            for layers in records
        ]
    ).T
    fig, ax = _subplots(figsize=(7, 0.3 * grid.shape[0] + 1.5))
    image = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(
        range(grid.shape[0]), [f"layer {i + 1}" for i in range(grid.shape[0] - 1)] + ["output"]
    )
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v) + 1}"))  # column 0 = epoch 1
    ax.set_xlabel("epoch")
    fig.colorbar(image, label="log10 gradient norm")
    ax.set_title("gradient norm per layer")
    return _save(fig, path)


def unit_health_plot(history: list[dict], path) -> Path:
    """Dead and saturated fractions per hidden layer at the last recorded epoch."""
    last = [r for r in history if "diagnostics" in r][-1]["diagnostics"]["layers"][:-1]
    layers = range(1, len(last) + 1)
    fig, ax = _subplots(figsize=(7, 3.5))
    width = 0.4
    ax.bar(
        [i - width / 2 for i in layers],
        [la.get("dead") or 0 for la in last],
        width,
        label="dead units",
    )
    ax.bar(
        [i + width / 2 for i in layers],
        [la.get("saturated") or 0 for la in last],
        width,
        label="saturated activations",
    )
    ax.set_ylim(0, 1)
    ax.set_xlabel("hidden layer")
    ax.set_ylabel("fraction")
    ax.legend()
    ax.set_title("unit health at the last epoch")
    return _save(fig, path)


def prediction_plot(actual, predicted, path) -> Path:
    """Predicted against actual (with the diagonal), and residuals against predicted."""
    import numpy as np

    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    fig, (left, right) = _subplots(1, 2, figsize=(10, 4))
    left.scatter(actual, predicted, s=4, alpha=0.4)
    lo, hi = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    left.plot([lo, hi], [lo, hi], color="black", linewidth=1)
    left.set_xlabel("actual")
    left.set_ylabel("predicted")
    left.set_title("predicted against actual (test rows)")
    right.scatter(predicted, actual - predicted, s=4, alpha=0.4)
    right.axhline(0, color="black", linewidth=1)
    right.set_xlabel("predicted")
    right.set_ylabel("residual (actual - predicted)")
    right.set_title("residuals")
    return _save(fig, path)


def topology_plot(widths: list[int], labels: list[str], path) -> Path:
    """The network drawn as boxes: one per layer, its height growing with its width, with
    the layer's width and what follows it written inside."""
    import math

    from matplotlib.patches import Rectangle

    fig, ax = _subplots(figsize=(max(6, 1.6 * len(widths)), 3.5))
    top = max(math.log2(w + 1) for w in widths)
    for i, (w, label) in enumerate(zip(widths, labels)):
        h = 0.25 + 0.75 * math.log2(w + 1) / top
        ax.add_patch(
            Rectangle(
                (i * 1.5, -h / 2),
                1.0,
                h,
                facecolor="tab:blue",
                alpha=0.25 + 0.5 * (0 < i < len(widths) - 1),
                edgecolor="black",
            )
        )
        ax.text(i * 1.5 + 0.5, 0, f"{w}\n{label}", ha="center", va="center", fontsize=8)
        if i:
            ax.annotate(
                "", xy=(i * 1.5, 0), xytext=(i * 1.5 - 0.5, 0), arrowprops={"arrowstyle": "->"}
            )
    ax.set_xlim(-0.2, 1.5 * len(widths) - 0.3)
    ax.set_ylim(-0.65, 0.65)
    ax.axis("off")
    ax.set_title("network topology (width, then what follows each layer)")
    return _save(fig, path)


def importance_plot(records: list[dict], path, *, top: int = 20) -> Path:
    """Permutation importance: the held-out score's drop when a column is shuffled."""
    records = records[:top][::-1]
    fig, ax = _subplots(figsize=(7, 0.35 * len(records) + 1.2))
    ax.barh(
        [r["feature"] for r in records],
        [r["mean"] for r in records],
        xerr=[r["std"] for r in records],
        color="tab:green",
        alpha=0.8,
    )
    ax.set_xlabel("drop in held-out score when shuffled")
    ax.set_title("permutation feature importance")
    return _save(fig, path)


def _save(fig, path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)
