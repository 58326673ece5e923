"""`specc export`: a compiled network -> an ONNX model (opset 17) whose output is the class probabilities.

Each layer becomes the ONNX operators that compute what specc computes at inference:

    Affine             Gemm(x, W, b) with W as specc holds it, (in, out): transB=0; an image input is
                       flattened first by Flatten(axis=1), the C-order flatten of (C, H, W) that specc does
    Convolution        Conv(x, W, b): W is (filters, C, k, k) in both, both cross-correlate
    Pooling            MaxPool: ONNX's padded cells never win, as specc's (-inf) do not
    AvgPooling         AveragePool(count_include_pad=1): specc divides every window by size*size
    BatchNorm          BatchNormalization in inference mode (running statistics) with specc's eps; (N, C)
                       vectors are normalised per feature, images per channel, as ONNX does for (N, C, ...)
    Dropout            Dropout (ratio kept, training_mode false): the identity at inference, as specc's
                       inverted dropout is; Dropout(scale="test") a Mul by 1 - ratio
    ReLU, LeakyReLU, Sigmoid, Tanh, Flatten    Relu, LeakyRelu(alpha), Sigmoid, Tanh, Flatten(axis=1)
    SoftmaxWithLoss    Softmax(axis=1): the output is the probabilities
    MeanSquaredError   Identity: the output is the scores
    a layer written as an expression (`layer Swish = x * sigmoid(x)`)
                       its nodes as ONNX primitives (Mul, Sigmoid, MatMul, ...), specc.interop.onnx_expr

Node names and doc strings carry the `.net` line and column each layer came from.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from specc import __version__
from specc.check import CheckedLayer
from specc.errors import Diagnostic, SpecError
from specc.interop import IR_VERSION, OPSET, onnx_expr, require, write_atomically
from specc.layers.expression import ExpressionLayer
from specc.network import Network
from specc.source import Span


@dataclass(frozen=True)
class Exported:
    """What `specc export` wrote."""

    path: Path
    model: Any  # onnx.ModelProto
    nodes: int
    output: str  # "probabilities" or "outputs"


class Graph:
    """The nodes, initializers and shapes of the model being written, one layer at a time
    (the built-in layers here, expression layers in specc.interop.onnx_expr)."""

    def __init__(self, onnx: Any, net: Network):
        self.onnx, self.net = onnx, net
        self.file = net.source.name if net.source is not None else "<spec>"
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.value_info: list[Any] = []
        self.x = "input"
        self.shape: tuple[int, ...] = net.input_shape  # per sample
        # names taken: a parameter may be called as a value would be (PReLU's `a` of layer 1 is a1)
        self.taken: set[str] = {"input", *net.params, *net.state}

    def fresh(self, name: str) -> str:
        """A value's name, `name` unless a parameter or another value holds it (then name_2, name_3, ...)."""
        out, k = name, 1
        while out in self.taken:
            k += 1
            out = f"{name}_{k}"
        self.taken.add(out)
        return out

    def place(self, span: Span | None) -> str:
        return f"{self.file}:{span.line}:{span.col}" if span is not None else self.file

    def where(self, c: CheckedLayer) -> str:
        return self.place(c.spec.span)

    def doc(self, c: CheckedLayer, note: str = "") -> str:
        text = f"[{c.index + 1}] {c.layer.describe()} <- {self.where(c)}"
        for o in c.spec.origin:
            if o.call is not None and o.block:
                text += f"; from block {o.block} called at {self.file}:{o.call.line}:{o.call.col}"
            if o.repeat:
                text += f"; copy {o.repeat} of {o.of}"
        return text + (f"; {note}" if note else "")

    def weight(self, c: CheckedLayer, base: str, value: np.ndarray | None = None) -> str:
        """An initializer named as specc names it (W1, gamma2, running_mean2); `value` overrides the array."""
        name = c.names[base]
        if value is None:
            value = self.net.state[name] if name in self.net.state else self.net.params[name]
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def constant(self, name: str, value: np.ndarray) -> str:
        name = self.fresh(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(value, name))
        return name

    def append(self, op: str, inputs: list[str], output: str, name: str, doc: str,
               shape: tuple[int | str, ...] | None, **attrs: Any) -> None:
        """One node as given; `shape` (the full one, "N" for the batch) declares its output's value_info."""
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=name, doc_string=doc, **attrs))
        if shape is not None:
            self.value_info.append(self.onnx.helper.make_tensor_value_info(
                output, self.onnx.TensorProto.FLOAT, list(shape)))

    def node(self, c: CheckedLayer, op: str, inputs: list[str], shape: tuple[int, ...], *, part: str = "",
             note: str = "", output: str | None = None, **attrs: Any) -> None:
        """Append one node reading the current value (and `inputs`); its output becomes the current value."""
        out = output or self.fresh(f"a{c.index + 1}{part}")
        self.append(op, [self.x, *inputs], out, f"{c.spec.type}{c.index + 1}{part}@{self.where(c)}",
                    self.doc(c, note), None if output is not None else ("N", *shape), **attrs)
        self.x, self.shape = out, shape


def _affine(g: Graph, c: CheckedLayer) -> None:
    if len(g.shape) > 1:  # specc flattens an image in C order, (C, H, W) -> C*H*W, as Flatten(axis=1) does
        g.node(c, "Flatten", [], (int(np.prod(g.shape)),), part="_flatten", axis=1,
               note="Affine flattens its image input in C order")
    g.node(c, "Gemm", [g.weight(c, "W"), g.weight(c, "b")], c.out_shape, note="y = x W + b, W is (in, out)")


def _convolution(g: Graph, c: CheckedLayer) -> None:
    k, s, p = (c.layer.args[a] for a in ("kernel", "stride", "pad"))
    g.node(c, "Conv", [g.weight(c, "W"), g.weight(c, "b")], c.out_shape,
           kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])


def _pooling(op: str, **extra: Any) -> Callable[[Graph, CheckedLayer], None]:
    def emit(g: Graph, c: CheckedLayer) -> None:
        k, s, p = (c.layer.args[a] for a in ("size", "stride", "pad"))
        g.node(c, op, [], c.out_shape, kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p], **extra)
    return emit


def _batchnorm(g: Graph, c: CheckedLayer) -> None:
    a = c.layer.args
    per = "per channel" if len(g.shape) > 1 else "per feature"
    g.node(c, "BatchNormalization", [g.weight(c, b) for b in ("gamma", "beta", "running_mean", "running_var")],
           c.out_shape, epsilon=float(a["eps"]), momentum=float(a["momentum"]),
           note=f"inference: running statistics, {per}")


def _dropout(g: Graph, c: CheckedLayer) -> None:
    ratio = g.constant(f"ratio{c.index + 1}", np.array(c.layer.args["ratio"], np.float32))
    g.node(c, "Dropout", [ratio], c.out_shape, note="inverted dropout: the identity at inference")
    if c.layer.args.get("scale") == "test":  # the book's kind: times 1 - ratio at inference
        keep = g.constant(f"keep{c.index + 1}", np.array(1 - c.layer.args["ratio"], np.float32))
        g.node(c, "Mul", [keep], c.out_shape, part="_scale", note='scale="test": times 1 - ratio at inference')


def _simple(op: str, **attrs: Any) -> Callable[[Graph, CheckedLayer], None]:
    def emit(g: Graph, c: CheckedLayer) -> None:
        g.node(c, op, [], c.out_shape, **attrs)
    return emit


def _leaky(g: Graph, c: CheckedLayer) -> None:
    g.node(c, "LeakyRelu", [], c.out_shape, alpha=float(c.layer.args["alpha"]))


# specc layer -> how it is written; the loss layers are written by export itself
_LAYERS: dict[str, Callable[[Graph, CheckedLayer], None]] = {
    "Affine": _affine, "Convolution": _convolution,
    "Pooling": _pooling("MaxPool"), "AvgPooling": _pooling("AveragePool", count_include_pad=1),
    "BatchNorm": _batchnorm, "Dropout": _dropout, "Flatten": _simple("Flatten", axis=1),
    "ReLU": _simple("Relu"), "LeakyReLU": _leaky, "Sigmoid": _simple("Sigmoid"), "Tanh": _simple("Tanh"),
}
_LOSSES = {"SoftmaxWithLoss": ("Softmax", "probabilities", "the class probabilities"),
           "MeanSquaredError": ("Identity", "outputs", "the outputs (scores) of a MeanSquaredError network")}


def to_onnx(net: Network) -> Any:
    """The ONNX model (onnx.ModelProto) of a network with its current weights and BatchNorm statistics."""
    onnx = require("onnx", "export")
    g = Graph(onnx, net)
    for c in net.checked.layers:
        kind = c.spec.type
        if c.layer.is_loss:
            op, output, what = _LOSSES[kind]
            axis: dict[str, Any] = {"axis": 1} if op == "Softmax" else {}
            g.node(c, op, [], c.out_shape, output=output, note=f"the loss at inference: {what}", **axis)
        elif kind in _LAYERS:
            _LAYERS[kind](g, c)
        elif isinstance(c.layer, ExpressionLayer):
            onnx_expr.write(g, c)
        else:
            raise SpecError([Diagnostic(f"specc export has no ONNX form for the layer {kind} yet", c.spec.span,
                                        "no-onnx-form", "this layer",
                                        hint="export supports " + ", ".join(sorted([*_LAYERS, *_LOSSES]))
                                        + " and layers written as expressions")],
                            net.source)
    helper, tp = onnx.helper, onnx.TensorProto
    graph = helper.make_graph(
        g.nodes, Path(g.file).stem or "specc",
        [helper.make_tensor_value_info("input", tp.FLOAT, ["N", *net.input_shape])],
        [helper.make_tensor_value_info(g.x, tp.FLOAT, ["N", *net.checked.loss.out_shape])],
        g.initializers, doc_string=f"{g.file}, exported by specc {__version__}", value_info=g.value_info)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="specc", producer_version=__version__,
                              doc_string=f"{g.file}: {_LOSSES[net.checked.loss.spec.type][2]} of an input "
                                         f"(N, {', '.join(map(str, net.input_shape))}), float32")
    helper.set_model_props(model, {"specc.source": g.file})
    return model


def export(spec: str | Path, out: str | Path, weights: str | Path | None = None) -> Exported:
    """Write the ONNX model of a spec: with a checkpoint's weights, or the seeded initial values without one."""
    from specc import api  # the pipeline; this module sits after it

    onnx = require("onnx", "export")
    net = api.trained(spec, weights) if weights is not None else api.load(spec)
    model = to_onnx(net)
    onnx.checker.check_model(model)
    path = Path(out)
    write_atomically(path, model.SerializeToString())
    return Exported(path, model, len(model.graph.node), model.graph.output[0].name)

