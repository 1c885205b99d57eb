"""``dnnreg report RUN_DIR``: one self-contained HTML page about a training run, every
image embedded (base64 PNG), so the file can be mailed or archived alone.

It shows the metrics beside the baseline, learning curves, the network drawn, predicted
against actual with residuals, permutation importance, and, when the run was trained with
``--diagnose``, the per-layer gradient heatmap, dead and saturated units, and the verdicts.
Everything is read from the run directory's plain files.
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

import pandas as pd

from dnnreg.report import plots
from dnnreg.tables.preprocessing import embedding_dim


def _figure(make, *args, **kwargs) -> str:
    """Draw with ``make(..., path)`` into a temp file and return an <img> data URI."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "figure.png"
        make(*args, path, **kwargs)
        data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(make.__name__)}">'


def _topology(config: dict, model_config: dict) -> tuple[list[int], list[str]]:
    params, arch = config["params"], model_config["architecture"]
    d_in = arch["d_numeric"] + sum(embedding_dim(c) for c in arch["cardinalities"])
    extra = "".join(
        [
            "\n" + params["normalization"] if params["normalization"] != "none" else "",
            "\n+ skip" if params["residual"] else "",
        ]
    )
    hidden = list(params["hidden_layer_sizes"])
    labels = ["inputs"] + [f"{params['activation']}{extra}" for _ in hidden] + [params["loss"]]
    widths = [d_in] + hidden + [arch["d_out"]]
    if params["n_ensemble"] > 1:
        labels[-1] += f"\n× {params['n_ensemble']} members"
    return widths, labels


def _metrics_table(metrics: dict) -> str:
    baseline = next(k for k in metrics if k.startswith("baseline_"))
    columns = (
        ["rmse", "mae", "r2"]
        if metrics.get("task") != "classification"
        else ["accuracy", "log_loss"]
    )
    rows = []
    for split in ("train", "validation", "test"):
        if split in metrics:
            for name, m in (("dnnreg", metrics[split]), (baseline[9:], metrics[baseline][split])):
                cells = "".join(f"<td>{m[c]:.4f}</td>" for c in columns)
                rows.append(f"<tr><td>{split}</td><td>{name}</td>{cells}<td>{m['n']}</td></tr>")
    head = "".join(f"<th>{c}</th>" for c in ["split", "model", *columns, "rows"])
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def write_report(
    run_dir, out=None, *, overwrite: bool = False, flag: str = "overwrite=True"
) -> Path:
    """Write the report of ``run_dir``; returns its path.

    By default the page is ``run_dir/report.html``, which is part of the run: a report
    dnnreg wrote there before is regenerated, a file of that name it did not write is
    refused. An explicit ``out`` file is replaced only with ``overwrite=True``.
    """
    from dnnreg._files import check_output_file, write_owned, write_text
    from dnnreg.run import read_run
    from dnnreg.training.verdicts import format_verdict, verdicts

    run = Path(run_dir)
    if out is not None:
        check_output_file(out, overwrite=overwrite, flag=flag)
    parts = read_run(run)
    config, metrics, history = parts["config"], parts["metrics"], parts["history"]
    model_config = parts["model_config"]
    params, task = config["params"], metrics.get("task", "regression")
    metric = "val_accuracy" if task == "classification" else "val_rmse"
    sections = [
        (
            "Metrics",
            _metrics_table(metrics) + f"<p>fit {metrics['fit_seconds']:.1f} s, "
            f"best epoch {metrics['best_epoch']} of {metrics['n_epochs']}</p>",
        ),
        ("Learning curves", _figure(plots.history_plot, history, metric=metric)),
        ("Network", _figure(plots.topology_plot, *_topology(config, model_config))),
    ]
    predictions = pd.read_csv(run / "predictions.csv")
    test = predictions[predictions["split"] == "test"]
    if task != "classification" and len(test):
        sections.append(
            (
                "Predicted against actual",
                _figure(plots.prediction_plot, test[config["target"]], test["prediction"]),
            )
        )
    importance = parts["importance"]
    if importance:
        sections.append(
            ("Permutation feature importance", _figure(plots.importance_plot, importance))
        )
    if any("diagnostics" in r for r in history):
        sections.append(("Gradient norms", _figure(plots.gradient_heatmap, history)))
        sections.append(("Dead and saturated units", _figure(plots.unit_health_plot, history)))
    found = verdicts(history, activation=params["activation"], loss=params["loss"])
    items = "".join(f"<li>{html.escape(format_verdict(v))}</li>" for v in found)
    note = (
        ""
        if any("diagnostics" in r for r in history)
        else ("<p>Gradient diagnostics were not recorded; train with --diagnose to see them.</p>")
    )
    sections.append(
        ("Verdicts", (f"<ul>{items}</ul>" if found else "<p>No problems found.</p>") + note)
    )
    body = "".join(f"<section><h2>{title}</h2>{content}</section>" for title, content in sections)
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>dnnreg report: '
        f"{html.escape(config['target'])}</title><style>{_CSS}</style></head><body>"
        f"<h1>dnnreg report: {html.escape(config['target'])}</h1><p>data "
        f"{html.escape(str(config.get('data', '')))}, task {task}, dnnreg "
        f"{html.escape(config.get('dnnreg_version', ''))}</p>{body}</body></html>"
    )
    if out is None:
        return write_owned(run, "report.html", page.encode("utf-8"))
    return write_text(Path(out), page, overwrite=overwrite, flag=flag)


_CSS = (
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "img{max-width:100%}section{margin-bottom:2em}"
)
