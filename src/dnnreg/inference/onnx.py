"""Export a saved model to ONNX with its preprocessing inside the graph: raw feature
columns go in, predictions in the target's units (or class probabilities and labels) come
out, so onnxruntime, or any ONNX runtime, serves the model without Python or dnnreg.

The graph is built from the model directory's files (config, preprocessor state, weights)
with NumPy alone, never torch. Graph inputs: one per training column, shape (N, 1):
``tensor(double)`` for numeric columns (NaN = missing), ``tensor(string)`` for categorical
ones (a string never seen in training, "" included, is the unknown bucket). Outputs:
``prediction`` (N,) for regression, plus ``quantiles`` (N, q) or ``variance`` (N,) for
those losses; ``probabilities`` (N, C) and ``label`` (N,) for classification.

Preprocessing runs in float64 as dnnreg's does; the network in float32 as torch's does,
so onnxruntime agrees with dnnreg to about 1e-6.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnnreg._optional import import_optional
from dnnreg.inference.runtime import member_weights

OPSET = 18  # LayerNormalization (17), Mish (18), ReduceMean with axes as an input (18)
_ML_OPSET = 2  # ai.onnx.ml LabelEncoder with string keys
_NORM_EPS = 1e-5


class _Graph:
    """A growing list of ONNX nodes and constants with fresh names."""

    def __init__(self):
        self.onnx = import_optional("onnx")
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value, hint="c", dtype=None) -> str:
        """A constant tensor; strings become ONNX STRING tensors."""
        from onnx import helper, numpy_helper

        name = self.name(hint)
        array = np.asarray(value, dtype=dtype)
        if array.dtype.kind in "OUS":
            flat = [str(v).encode() for v in array.reshape(-1)]
            self.initializers.append(
                helper.make_tensor(name, self.onnx.TensorProto.STRING, array.shape, flat)
            )
        else:
            self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, *inputs, n_out=1, domain="", **attrs):
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(
            self.onnx.helper.make_node(op_type, list(inputs), outs, domain=domain, **attrs)
        )
        return outs[0] if n_out == 1 else outs

    def take(self, x: str, index: int, axis: int) -> str:
        """``x[..., index]`` along ``axis`` without keeping the axis."""
        return self.op("Gather", x, self.const(np.int64(index)), axis=axis)

    def mean0(self, x: str) -> str:
        """Mean over the ensemble axis 0."""
        return self.op("ReduceMean", x, self.const(np.array([0], np.int64)), keepdims=0)


# ---------------------------------------------------------------------- preprocessing
def _interp(g: _Graph, x: str, knots, scores) -> str:
    """``numpy.interp(x, knots, scores)`` for x: (N, 1), knots strictly increasing."""
    knots, scores = np.asarray(knots, np.float64), np.asarray(scores, np.float64)
    if len(knots) == 1:  # a constant column: np.interp returns the one score everywhere
        return g.op("Add", g.op("Mul", x, g.const(0.0)), g.const(scores[0]))
    xc = g.op("Clip", x, g.const(knots[0]), g.const(knots[-1]))
    i = g.op("Min", _count_at_or_below(g, knots[1:], xc), g.const(np.int64(len(knots) - 2)))
    j = g.op("Add", i, g.const(np.int64(1)))
    q_lo, q_hi = (g.op("Gather", g.const(knots), k) for k in (i, j))
    s_lo, s_hi = (g.op("Gather", g.const(scores), k) for k in (i, j))
    t = g.op("Div", g.op("Sub", xc, q_lo), g.op("Sub", q_hi, q_lo))
    return g.op("Add", s_lo, g.op("Mul", t, g.op("Sub", s_hi, s_lo)))


def _count_at_or_below(g: _Graph, sorted_values, x: str, block: int = 32) -> str:
    """How many of ``sorted_values`` are <= x, for x: (N, 1) -> (N, 1) int64.

    ONNX has no searchsorted. Comparing x with all M values costs N·M; here the values are
    cut into blocks of 32: count the blocks whose last value is <= x, then compare x with
    the one block it falls in, for about 2√M comparisons per row instead of M."""
    m = len(sorted_values)
    sum_last = lambda b: g.op(
        "ReduceSum",
        g.op("Cast", b, to=7),  # noqa: E731
        g.const(np.array([-1], np.int64)),
        keepdims=0,
    )
    if m <= 2 * block:
        return g.op(
            "Unsqueeze",
            sum_last(g.op("LessOrEqual", g.const(sorted_values), x)),
            g.const(np.array([1], np.int64)),
        )
    n_blocks = -(-m // block)
    padded = np.full(n_blocks * block, np.inf)
    padded[:m] = sorted_values
    blocks = padded.reshape(n_blocks, block)
    full = sum_last(g.op("LessOrEqual", g.const(blocks[:, -1]), x))  # (N,)
    b = g.op("Min", full, g.const(np.int64(n_blocks - 1)))
    inside = g.op("Gather", g.const(blocks), b)  # (N, block)
    within = sum_last(g.op("LessOrEqual", inside, x))
    count = g.op("Add", g.op("Mul", b, g.const(np.int64(block))), within)
    count = g.op("Min", count, g.const(np.int64(m)))  # x = +inf would count the padding
    return g.op("Unsqueeze", count, g.const(np.array([1], np.int64)))


def _numeric_blocks(g: _Graph, x: str, state: dict) -> list[str]:
    missing = g.op("IsNaN", x)
    filled = g.op("Where", missing, g.const(state["median"], dtype=np.float64), x)
    if "quantiles" in state:
        scaled = _interp(g, filled, state["quantiles"], state["scores"])
    else:
        scaled = g.op(
            "Div",
            g.op("Sub", filled, g.const(state["center"], dtype=np.float64)),
            g.const(state["scale"], dtype=np.float64),
        )
        if "smooth_clip" in state:  # z / √(1 + (z/c)²)
            ratio = g.op("Div", scaled, g.const(state["smooth_clip"], dtype=np.float64))
            one = g.const(1.0, dtype=np.float64)
            scaled = g.op("Div", scaled, g.op("Sqrt", g.op("Add", one, g.op("Mul", ratio, ratio))))
    return [scaled, g.op("Cast", missing, to=11)] if state["indicator"] else [scaled]


def _codes(g: _Graph, x: str, categories: list[str]) -> str:
    """Category codes 1..C, and 0 for anything unseen (the unknown bucket). (N, 1) int64."""
    return g.op(
        "LabelEncoder",
        x,
        domain="ai.onnx.ml",
        keys_strings=list(categories),
        values_int64s=list(range(1, len(categories) + 1)),
        default_int64=0,
    )


def _encoded_inputs(g: _Graph, pre) -> tuple[str, list[str]]:
    """The numeric block (N, d) float32 and the embedding codes, as the preprocessor's."""
    blocks, codes = [], []
    for col in pre.columns:
        if col in pre.numeric:
            blocks.extend(_numeric_blocks(g, col, pre.numeric[col]))
            continue
        code = _codes(g, col, pre.categorical[col]["categories"])
        if pre.encoding(col) == "onehot":
            k = len(pre.categorical[col]["categories"]) + 1
            blocks.append(
                g.op("Cast", g.op("Equal", code, g.const(np.arange(k, dtype=np.int64))), to=11)
            )
        else:
            codes.append(code)
    numeric = g.op("Concat", *blocks, axis=1) if blocks else None
    return (None if numeric is None else g.op("Cast", numeric, to=1)), codes


# ---------------------------------------------------------------------- the network
def _numeric_embedding(g: _Graph, x: str, w: dict) -> str:
    """The numerical embedding (:mod:`dnnreg.network.embeddings`): (N, d_numeric) ->
    (N, f·d + n_passthrough), the embedded columns first."""
    f32 = lambda name: w[f"num_embedding.{name}"].astype(np.float32)  # noqa: E731
    f, _, d = w["num_embedding.weight"].shape
    cols = g.op("Gather", x, g.const(w["num_embedding.columns"].astype(np.int64)), axis=1)
    xt = g.op(
        "Unsqueeze", g.op("Transpose", cols, perm=[1, 0]), g.const(np.array([2], np.int64))
    )  # (f, N, 1): one batch of rows per column
    if "num_embedding.frequencies" in w:
        freq = (2.0 * np.pi * w["num_embedding.frequencies"]).astype(np.float32)
        angle = g.op("Mul", xt, g.const(freq[:, None, :]))  # (f, N, m)
        code = g.op("Concat", g.op("Cos", angle), g.op("Sin", angle), axis=2)
    else:
        z = g.op(
            "Div",
            g.op("Sub", xt, g.const(f32("left")[:, None, :])),
            g.const(f32("width")[:, None, :]),
        )
        code = g.op(
            "Min",
            g.op("Max", z, g.const(f32("lower")[:, None, :])),
            g.const(f32("upper")[:, None, :]),
        )  # (f, N, T)
    e = g.op(
        "Relu",
        g.op("Add", g.op("MatMul", code, g.const(f32("weight"))), g.const(f32("bias")[:, None, :])),
    )  # (f, N, d)
    flat = g.op(
        "Reshape", g.op("Transpose", e, perm=[1, 0, 2]), g.const(np.array([0, f * d], np.int64))
    )  # (N, f·d)
    rest = w["num_embedding.passthrough"].astype(np.int64)
    if len(rest) == 0:
        return flat
    return g.op("Concat", flat, g.op("Gather", x, g.const(rest), axis=1), axis=1)


def _activation(g: _Graph, name: str, z: str, slope=None) -> str:
    if name == "identity":
        return z
    if name == "relu":
        return g.op("Relu", z)
    if name == "leaky_relu":
        return g.op("LeakyRelu", z, alpha=0.01)
    if name == "prelu":
        return g.op("PRelu", z, g.const(slope.astype(np.float32)))
    if name == "elu":
        return g.op("Elu", z, alpha=1.0)
    if name == "gelu":  # exact: ½ z (1 + erf(z / √2))
        erf = g.op("Erf", g.op("Mul", z, g.const(np.float32(1 / np.sqrt(2)))))
        return g.op(
            "Mul",
            g.op("Mul", z, g.const(np.float32(0.5))),
            g.op("Add", erf, g.const(np.float32(1.0))),
        )
    if name == "silu":
        return g.op("Mul", z, g.op("Sigmoid", z))
    if name == "softplus":  # torch returns z itself beyond 20
        return g.op("Where", g.op("Greater", z, g.const(np.float32(20.0))), z, g.op("Softplus", z))
    return g.op({"mish": "Mish", "tanh": "Tanh", "sigmoid": "Sigmoid"}[name], z)


def _norm(g: _Graph, kind: str, z: str, w: dict, prefix: str, k: int, d: int) -> str:
    p = lambda s: w[f"{prefix}.norm.{s}"].astype(np.float64)  # noqa: E731
    if kind == "batch_norm":  # eval mode: one fixed affine map per member and unit
        scale = p("weight") / np.sqrt(p("running_var") + _NORM_EPS)
        shift = p("bias") - p("running_mean") * scale
        return g.op(
            "Add",
            g.op("Mul", z, g.const(scale.reshape(k, 1, d).astype(np.float32))),
            g.const(shift.reshape(k, 1, d).astype(np.float32)),
        )
    normed = g.op(
        "LayerNormalization", z, g.const(np.ones(d, np.float32)), axis=-1, epsilon=_NORM_EPS
    )
    return g.op(
        "Add",
        g.op("Mul", normed, g.const(w[f"{prefix}.norm.weight"])),
        g.const(w[f"{prefix}.norm.bias"]),
    )


def _network(g: _Graph, x: str, w: dict, params: dict) -> str:
    """Every member's raw outputs. Shape: (N, d) -> (k, N, d_out)."""
    a = x
    widths = [w["blocks.0.linear.weight"].shape[1]] if params["hidden_layer_sizes"] else []
    for l, width in enumerate(params["hidden_layer_sizes"]):
        prefix = f"blocks.{l}"
        W = w[f"{prefix}.linear.weight"]
        k = W.shape[0]
        z = g.op("Add", g.op("MatMul", a, g.const(W)), g.const(w[f"{prefix}.linear.bias"]))
        if params["normalization"] != "none":
            z = _norm(g, params["normalization"], z, w, prefix, k, width)
        h = _activation(g, params["activation"], z, w.get(f"{prefix}.act.weight"))
        residual = params["residual"] and widths[-1] == width
        a = g.op("Add", a, g.op("Mul", h, g.const(w[f"{prefix}.alpha"]))) if residual else h
        widths.append(width)
    return g.op("Add", g.op("MatMul", a, g.const(w["head.weight"])), g.const(w["head.bias"]))


# ---------------------------------------------------------------------- outputs
def _regression_outputs(g: _Graph, out: str, config: dict, target) -> list[tuple]:
    """``[(name, tensor, elem_type, shape)]`` in the target's units."""
    loss, params = config["params"]["loss"], config["params"]
    std, mean = g.const(np.float64(target.std)), g.const(np.float64(target.mean))

    def unscale(z):
        y = g.op("Add", g.op("Mul", g.op("Cast", z, to=11), std), mean)
        if not target.clip:
            return y
        return g.op("Clip", y, g.const(np.float64(target.low)), g.const(np.float64(target.high)))

    if loss == "quantile":
        q = len(params["quantiles"])
        ordered = g.op(
            "TopK", out, g.const(np.array([q], np.int64)), axis=-1, largest=0, sorted=1, n_out=2
        )[0]
        levels = sorted(params["quantiles"])
        median = int(np.argmin([abs(v - 0.5) for v in levels]))
        quantiles = unscale(g.mean0(ordered))
        return [
            ("prediction", g.take(quantiles, median, axis=1), 11, ["N"]),
            ("quantiles", quantiles, 11, ["N", q]),
        ]
    first = g.take(out, 0, axis=2)  # (k, N)
    if loss == "poisson":
        return [("prediction", unscale(g.mean0(g.op("Exp", first))), 11, ["N"])]
    if loss == "gaussian_nll":
        var = g.op("Add", g.op("Softplus", g.take(out, 1, axis=2)), g.const(np.float32(1e-6)))
        mu = g.mean0(first)
        # Law of total variance over the uniform mixture of members.
        total = g.op(
            "Sub",
            g.op("Add", g.mean0(var), g.mean0(g.op("Mul", first, first))),
            g.op("Mul", mu, mu),
        )
        variance = g.op("Mul", g.op("Cast", total, to=11), g.const(np.float64(target.std**2)))
        return [("prediction", unscale(mu), 11, ["N"]), ("variance", variance, 11, ["N"])]
    return [("prediction", unscale(g.mean0(first)), 11, ["N"])]


def _classification_outputs(g: _Graph, out: str, config: dict) -> list[tuple]:
    classes = np.asarray(config["classes"])
    loss = config["params"]["loss"]
    if len(classes) == 2:
        p = g.op("Sigmoid", out)  # (k, N, 1)
        proba = g.op("Concat", g.op("Sub", g.const(np.float32(1.0)), p), p, axis=2)
    elif loss == "sigmoid_mse":
        p = g.op("Sigmoid", out)
        proba = g.op("Div", p, g.op("ReduceSum", p, g.const(np.array([2], np.int64)), keepdims=1))
    else:
        proba = g.op("Softmax", out, axis=-1)
    mean = g.op("Cast", g.mean0(proba), to=11)  # (N, C), exact normalisation in float64
    mean = g.op("Div", mean, g.op("ReduceSum", mean, g.const(np.array([1], np.int64)), keepdims=1))
    label = g.op("Gather", g.const(classes), g.op("ArgMax", mean, axis=1, keepdims=0))
    kinds = {"U": 8, "O": 8, "S": 8, "i": 7, "u": 7, "f": 11, "b": 9}
    return [
        ("probabilities", mean, 11, ["N", len(classes)]),
        ("label", label, kinds[classes.dtype.kind], ["N"]),
    ]


# ---------------------------------------------------------------------- public API
def export_onnx(model_dir, path, *, overwrite: bool = False, flag: str = "overwrite=True") -> Path:
    """Write the model saved in ``model_dir`` as one ONNX graph, preprocessing included.

    The file is checked with ``onnx.checker`` and written atomically (a temp file renamed
    into place); an existing file is replaced only with ``overwrite=True``. Returns the
    path written.
    """
    onnx = import_optional("onnx")
    from onnx import TensorProto, helper
    from safetensors.numpy import load_file

    from dnnreg._files import check_output_file, write_file
    from dnnreg.model_file import read_config, read_preprocessor

    check_output_file(path, overwrite=overwrite, flag=flag)
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    pre, target = read_preprocessor(model_dir)
    weights = member_weights(load_file(model_dir / "weights.safetensors"))
    g = _Graph()
    numeric, codes = _encoded_inputs(g, pre)
    if numeric is not None and "num_embedding.weight" in weights:
        numeric = _numeric_embedding(g, numeric, weights)
    parts = [] if numeric is None else [numeric]
    for j, code in enumerate(codes):  # embeddings follow the numeric block, as in torch
        parts.append(
            g.op(
                "Gather",
                g.const(weights[f"embeddings.{j}.weight"]),
                g.op("Squeeze", code, g.const(np.array([1], np.int64))),
            )
        )
    x = parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=1)
    out = _network(g, x, weights, config["params"])
    outputs = (
        _classification_outputs(g, out, config)
        if config.get("classes") is not None
        else _regression_outputs(g, out, config, target)
    )

    inputs = [
        helper.make_tensor_value_info(
            c, TensorProto.DOUBLE if c in pre.numeric else TensorProto.STRING, ["N", 1]
        )
        for c in pre.columns
    ]
    graph_outputs = []
    for name, tensor, elem, shape in outputs:
        g.nodes.append(helper.make_node("Identity", [tensor], [name]))
        graph_outputs.append(helper.make_tensor_value_info(name, elem, shape))
    graph = helper.make_graph(g.nodes, "dnnreg", inputs, graph_outputs, g.initializers)
    model = helper.make_model(
        graph,
        producer_name="dnnreg",
        opset_imports=[
            helper.make_opsetid("", OPSET),
            helper.make_opsetid("ai.onnx.ml", _ML_OPSET),
        ],
    )
    model.ir_version = 9  # readable by onnxruntime >= 1.17
    onnx.checker.check_model(model)
    return write_file(Path(path), model.SerializeToString(), overwrite=overwrite, flag=flag)


def onnx_feeds(frame, model) -> dict:
    """The graph's inputs for the rows of ``frame``: numeric columns as float64 (N, 1),
    categorical columns as strings (N, 1), a missing category as "" (the unknown bucket).

    ``model`` is the model directory, or its ``TablePreprocessor`` (read it once with
    :func:`dnnreg.model_file.read_preprocessor` when calling this in a loop)."""
    from dnnreg.model_file import read_preprocessor
    from dnnreg.tables.preprocessing import level_strings

    pre = read_preprocessor(Path(model))[0] if isinstance(model, (str, Path)) else model
    frame = pre.select_columns(frame)
    feeds = {}
    for c in pre.columns:
        col = frame[c]
        if c in pre.numeric:
            feeds[c] = col.to_numpy(dtype=np.float64).reshape(-1, 1)
        else:
            text = level_strings(col).where(col.notna(), "")  # the levels' own spelling
            feeds[c] = text.to_numpy(dtype=object).reshape(-1, 1)
    return feeds
