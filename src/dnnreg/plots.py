"""Figures from plain data (lists of dicts), written as PNG files. Never torch objects."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def comparison_plot(summary: list[dict], metric: str, path, *, title: str = "") -> Path:
    """Horizontal bars of each model's mean ``metric`` with ± one standard deviation."""
    plt = _pyplot()
    names = [r["model"] for r in summary]
    means = [r[f"{metric}_mean"] for r in summary]
    stds = [r.get(f"{metric}_std") or 0.0 for r in summary]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    colors = ["tab:red" if n == "dnnreg" else "tab:blue" for n in names]
    ax.barh(names[::-1], means[::-1], xerr=stds[::-1], color=colors[::-1], alpha=0.8)
    ax.set_xlabel(f"test {metric} (mean ± std over splits)")
    ax.set_title(title or f"dnnreg against the baselines: {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def learning_curve_plot(curve: list[dict], metric: str, path, *, crossover=None,
                        title: str = "") -> Path:
    """Mean test ``metric`` against training rows (log scale), one line per model, with a
    band of ± one standard deviation over repeats and the crossover marked."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model in dict.fromkeys(r["model"] for r in curve):
        rows = [r for r in curve if r["model"] == model]
        sizes = sorted({r["size"] for r in rows})
        values = [[r[metric] for r in rows if r["size"] == s] for s in sizes]
        mean, std = np.array([np.mean(v) for v in values]), np.array([np.std(v) for v in values])
        style = {"color": "tab:red", "linewidth": 2.5} if model == "dnnreg" else {}
        ax.plot(sizes, mean, marker="o", label=model, **style)
        ax.fill_between(sizes, mean - std, mean + std, alpha=0.15, **({"color": "tab:red"} if model == "dnnreg" else {}))
    if crossover is not None:
        ax.axvline(crossover, color="gray", linestyle="--", label=f"crossover: {crossover} rows")
    ax.set_xscale("log")
    ax.set_xlabel("training rows")
    ax.set_ylabel(f"test {metric}")
    ax.set_title(title or "learning curves")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
