"""`specc import`: an ONNX model that is one chain of common operators -> a `.net` file and its checkpoint.

The chain runs from the one graph input to the one graph output, each node reading the value the
one before it wrote (weights come from initializers or Constant nodes). Operators and what they become:

    Gemm (transA=0, alpha=beta=1; transB 0 or 1), MatMul [+ Add]   Affine
    Conv                   Convolution       MaxPool, AveragePool   Pooling, AvgPooling
    BatchNormalization     BatchNorm         Dropout                Dropout
    Relu, LeakyRelu, Sigmoid, Tanh           the activation of the same name
    Flatten, Reshape to (N, size)            nothing before an Affine (it flattens itself), else Flatten
    Transpose to channels-last before a Flatten/Reshape and a dense layer (Keras's layout)
                           folded into that dense layer's weights (rows reordered to specc's C order)
    Softmax (last)         SoftmaxWithLoss   Identity               skipped; last, it makes MeanSquaredError

A model that ends in scores gets SoftmaxWithLoss too (its `predict` gives those scores). Anything
else is a SpecError naming the node, its operator and why specc cannot express it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from specc import layers as registry
from specc.errors import DataError, Diagnostic, SpecError
from specc.interop import require, write_atomically
from specc.layers.base import Shape, ShapeError, size
from specc.network import Network

_HEADS = ("Affine", "Convolution")  # a new line of the written chain starts at each


@dataclass
class _Layer:
    """One layer to write: its type, the arguments a person would write, and its arrays by base name."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    node: str = ""  # the node it came from, for messages
    out_shape: Shape = ()
    in_shape: Shape = ()
    open_bias: bool = False  # a MatMul's Affine: an Add right after it is its bias


@dataclass(frozen=True)
class Imported:
    """What `specc import` wrote: the .net text, its network holding the imported weights, and the paths."""

    text: str
    net: Network
    spec_path: Path
    weights_path: Path
    nodes: int


class _Chain:
    """Translation state: the per-sample shape of the current value and the layers so far."""

    def __init__(self, onnx: Any, model: Any, name: str):
        self.onnx, self.model, self.name = onnx, model, name
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.constants: dict[str, np.ndarray] = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self.constants[node.output[0]] = self._constant_value(node)
        self.layers: list[_Layer] = []
        self.notes: list[str] = []
        self.chain: list[Any] = []  # the nodes from the input to the output, in order
        self.shape: Shape = ()
        self.input_shape: Shape = ()
        self.channels_last: Shape | None = None  # (C, H, W) of an image a Transpose made (H, W, C)

    # --- messages ------------------------------------------------------------------------
    def refuse(self, node: Any, why: str, hint: str | None = None) -> SpecError:
        return SpecError([Diagnostic(f"{_label(node)}: {why}", None, "onnx-unsupported", hint=hint)],
                         name=self.name)

    def _constant_value(self, node: Any) -> np.ndarray:
        for a in node.attribute:
            if a.name == "value":
                return self.onnx.numpy_helper.to_array(a.t)
            if a.name in ("value_float", "value_int"):
                return np.array(self.onnx.helper.get_attribute_value(a))
            if a.name in ("value_floats", "value_ints"):
                return np.array(list(self.onnx.helper.get_attribute_value(a)))
        raise self.refuse(node, "a Constant of a kind specc does not read (sparse or string)")

    # --- node parts ----------------------------------------------------------------------
    def attrs(self, node: Any) -> dict[str, Any]:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def const(self, node: Any, position: int, what: str, required: bool = True) -> np.ndarray | None:
        """The constant at input `position` of a node (an initializer or a Constant's output)."""
        if position >= len(node.input) or not node.input[position]:
            if required:
                raise self.refuse(node, f"it has no {what}")
            return None
        name = node.input[position]
        if name not in self.constants:
            raise self.refuse(node, f"its {what} '{name}' is computed, not a constant (an initializer)",
                              "specc imports weights stored in the model; a branch that computes them is not a chain")
        return self.constants[name]

    def weights(self, node: Any, position: int, what: str, shape: Shape | None = None) -> np.ndarray:
        value = self.const(node, position, what)
        assert value is not None
        if value.dtype.kind != "f":
            raise self.refuse(node, f"its {what} holds {value.dtype} values, not floating-point numbers")
        if shape is not None and value.shape != shape:
            raise self.refuse(node, f"its {what} is {_dims(value.shape)}, where {_dims(shape)} was expected")
        return value.astype(np.float32)

    def add(self, node: Any, kind: str, args: dict[str, Any] | None = None,
            arrays: dict[str, np.ndarray] | None = None) -> _Layer:
        """A layer after the current value; its output shape by specc's own shape rule."""
        cls = registry.lookup(kind)
        assert cls is not None
        args = dict(args or {})
        full = {a.name: args[a.name] if a.name in args else a.default_for(args) for a in cls.signature}
        try:
            out = cls(full, self.shape).out_shape
        except ShapeError as e:
            raise self.refuse(node, f"as specc's {kind}: {e.message}", e.hint) from None
        layer = _Layer(kind, args, dict(arrays or {}), _label(node), out, self.shape)
        self.layers.append(layer)
        self.shape = out
        return layer

    def image(self, node: Any) -> tuple[int, int, int]:
        if len(self.shape) != 3:
            raise self.refuse(node, f"it reads a value of shape {_batched(self.shape)}; specc's image layers "
                                    "read (N, C, H, W)")
        c, h, w = self.shape
        return c, h, w

    def window(self, node: Any, a: dict[str, Any], kernel: tuple[int, ...], what: str) -> tuple[int, int, int]:
        """(k, stride, pad) of a square window with the same stride and pad on every side, or refused."""
        c, h, w = self.image(node)
        if len(kernel) != 2 or kernel[0] != kernel[1]:
            raise self.refuse(node, f"its {what} is {_dims(kernel)}; specc's windows are square (k x k)")
        k = int(kernel[0])
        strides = [int(s) for s in a.get("strides", [1, 1])]
        if len(set(strides)) != 1:
            raise self.refuse(node, f"its strides are {strides}; specc's stride is the same on both axes")
        if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
            raise self.refuse(node, f"its dilations are {list(a['dilations'])}; specc has no dilated windows")
        s = strides[0]
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            totals = {(-(-n // s) - 1) * s + k - n for n in (h, w)}
            if len(totals) != 1 or min(totals) % 2:
                raise self.refuse(node, f"auto_pad={auto} pads unevenly here; specc pads every side alike")
            pads = [max(0, min(totals)) // 2] * 4
        elif auto == "VALID":
            pads = [0, 0, 0, 0]
        else:
            pads = [int(p) for p in a.get("pads", [0, 0, 0, 0])]
        if len(set(pads)) != 1:
            raise self.refuse(node, f"its pads are {pads} (top, left, bottom, right); specc pads every side alike",
                              "asymmetric padding has no specc form")
        return k, s, pads[0]


def _label(node: Any) -> str:
    return f"node '{node.name}' ({node.op_type})" if node.name else f"a {node.op_type} node"


def _dims(shape: Shape) -> str:
    return "x".join(map(str, shape)) or "a scalar"


def _batched(shape: Shape) -> str:
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"


# --- one function per operator: (chain, node, position in the chain) ------------------------------
def _gemm(ch: _Chain, node: Any, i: int) -> None:
    a = ch.attrs(node)
    if a.get("transA", 0):
        raise ch.refuse(node, "transA=1 transposes the input batch; specc's Affine reads (N, in)")
    if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        raise ch.refuse(node, f"alpha={a.get('alpha', 1.0):g}, beta={a.get('beta', 1.0):g}; specc's Affine is "
                              "x W + b (alpha = beta = 1)")
    w = ch.weights(node, 1, "weight B")
    if w.ndim != 2:
        raise ch.refuse(node, f"its weight B is {_dims(w.shape)}, not a matrix")
    _dense(ch, node, w.T if a.get("transB", 0) else w, ch.const(node, 2, "bias C", required=False))


def _matmul(ch: _Chain, node: Any, i: int) -> None:
    w = ch.weights(node, 1, "weight (the second input)")
    if w.ndim != 2:
        raise ch.refuse(node, f"its weight is {_dims(w.shape)}, not a matrix")
    _dense(ch, node, w, None)
    ch.layers[-1].open_bias = True


def _add(ch: _Chain, node: Any, i: int) -> None:
    last = ch.layers[-1] if ch.layers else None
    if last is None or not last.open_bias:
        raise ch.refuse(node, "specc reads an Add only as the bias right after a MatMul",
                        "a residual or other Add joins values: that is not a chain of layers")
    out = last.arrays["W"].shape[1]
    bias = ch.const(node, 1, "bias (the second input)")
    assert bias is not None
    last.open_bias = False
    try:
        last.arrays["b"] = np.broadcast_to(bias, (1, out)).reshape(out).astype(np.float32)
    except ValueError:
        raise ch.refuse(node, f"its bias is {_dims(bias.shape)}; the MatMul before it has {out} outputs") from None


def _dense(ch: _Chain, node: Any, w: np.ndarray, bias: np.ndarray | None) -> None:
    """An Affine layer from a (in, out) weight; a channels-last flatten before it is folded into its rows."""
    if len(ch.shape) != 1:
        raise ch.refuse(node, f"it reads a value of shape {_batched(ch.shape)}; flatten it first (Flatten)")
    n_in, out = w.shape
    if n_in != ch.shape[0]:
        raise ch.refuse(node, f"its weight is {_dims(w.shape)} (in x out), but {ch.shape[0]} values reach it")
    if ch.channels_last is not None:
        c, h, wd = ch.channels_last
        # the rows are in (H, W, C) order; specc flattens (C, H, W): reorder them
        w = w.reshape(h, wd, c, out).transpose(2, 0, 1, 3).reshape(n_in, out)
        ch.notes.append(f"{_label(node)} read a channels-last (H, W, C) flatten; its weight rows are reordered "
                        "to specc's (C, H, W) order")
        ch.shape, ch.channels_last = (c, h, wd), None
    b = np.zeros(out, np.float32) if bias is None else bias
    try:
        b = np.broadcast_to(b, (1, out)).reshape(out).astype(np.float32)
    except ValueError:
        raise ch.refuse(node, f"its bias is {_dims(b.shape)}; it has {out} outputs") from None
    if ch.layers and ch.layers[-1].kind == "Flatten":  # Affine flattens an image itself, in the same order
        ch.shape = ch.layers.pop().in_shape
    ch.add(node, "Affine", {"out": int(out)}, {"W": w.astype(np.float32), "b": b})


def _conv(ch: _Chain, node: Any, i: int) -> None:
    a = ch.attrs(node)
    c = ch.image(node)[0]
    if a.get("group", 1) != 1:
        raise ch.refuse(node, f"group={a['group']}; specc's Convolution connects every input channel (group=1)")
    w = ch.weights(node, 1, "weight W")
    if w.ndim != 4:
        raise ch.refuse(node, f"its weight is {_dims(w.shape)}; a 2-D convolution's is (filters, C, kH, kW)")
    k, s, p = ch.window(node, a, tuple(a.get("kernel_shape", w.shape[2:])), "kernel")
    if w.shape[1] != c:
        raise ch.refuse(node, f"its weight is {_dims(w.shape)} for {w.shape[1]} channels, but {c} reach it")
    bias = ch.const(node, 2, "bias B", required=False)
    b = np.zeros(w.shape[0], np.float32) if bias is None else bias.reshape(-1).astype(np.float32)
    ch.add(node, "Convolution", {"filters": int(w.shape[0]), "kernel": k, "stride": s, "pad": p},
           {"W": w, "b": b})


def _pool(kind: str) -> Callable[[_Chain, Any, int], None]:
    def translate(ch: _Chain, node: Any, i: int) -> None:
        a = ch.attrs(node)
        if len(node.output) > 1 and node.output[1]:
            raise ch.refuse(node, "its Indices output is used; specc's Pooling has one output")
        k, s, p = ch.window(node, a, tuple(a.get("kernel_shape", ())), "kernel_shape")
        if kind == "AvgPooling" and p and not a.get("count_include_pad", 0):
            raise ch.refuse(node, "count_include_pad=0 divides edge windows by their cells inside the image; "
                                  "specc's AvgPooling counts padded cells as zeros (count_include_pad=1)")
        ch.add(node, kind, {"size": k, "stride": s, "pad": p})
    return translate


def _batchnorm(ch: _Chain, node: Any, i: int) -> None:
    a = ch.attrs(node)
    if a.get("training_mode", 0):
        raise ch.refuse(node, "training_mode=1 normalises with the batch's statistics; specc exports and imports "
                              "the inference form (running statistics)")
    if not a.get("spatial", 1):
        raise ch.refuse(node, "spatial=0 normalises every pixel apart; specc normalises per channel")
    if len(ch.shape) not in (1, 3):
        raise ch.refuse(node, f"it reads {_batched(ch.shape)}; specc normalises (N, C) or (N, C, H, W)")
    features = (ch.shape[0],)
    arrays = {base: ch.weights(node, n, what, features).reshape(-1) for n, (base, what) in enumerate(
        (("gamma", "scale"), ("beta", "bias B"), ("running_mean", "mean"), ("running_var", "var")), 1)}
    args: dict[str, Any] = {}
    eps, momentum = _f32(a.get("epsilon", 1e-5)), _f32(a.get("momentum", 0.9))
    if eps != 1e-6:
        args["eps"] = eps
    if momentum != 0.9:
        args["momentum"] = momentum
    ch.add(node, "BatchNorm", args, arrays)


def _dropout(ch: _Chain, node: Any, i: int) -> None:
    a = ch.attrs(node)
    ratio = a.get("ratio", 0.5)
    if ch.opset >= 12:
        given = ch.const(node, 1, "ratio", required=False)
        ratio = 0.5 if given is None else float(given)
        mode = ch.const(node, 2, "training_mode", required=False)
        if mode is not None and bool(mode):
            raise ch.refuse(node, "training_mode is true: it drops values at inference; specc's is the identity")
    ch.add(node, "Dropout", {"ratio": _f32(ratio)})


def _flatten(ch: _Chain, node: Any, i: int) -> None:
    axis = ch.attrs(node).get("axis", 1)
    if axis not in (1, -len(ch.shape)):
        raise ch.refuse(node, f"axis={axis} flattens across the batch; specc keeps one row per sample (axis=1)")
    _to_vector(ch, node, i)


def _reshape(ch: _Chain, node: Any, i: int) -> None:
    target = ch.const(node, 1, "shape")
    assert target is not None
    n = size(ch.channels_last or ch.shape)
    t = [int(v) for v in np.asarray(target).reshape(-1)]
    if len(t) != 2 or t[0] not in (0, -1) or t[1] not in (-1, n) or t == [-1, -1]:
        raise ch.refuse(node, f"it reshapes {_batched(ch.shape)} to {t}; specc reshapes only to (N, {n}) "
                              "(a flatten, written [-1, size] or [0, -1])",
                        "a reshape that sets the batch size, or makes images out of vectors, has no specc form")
    _to_vector(ch, node, i)


def _to_vector(ch: _Chain, node: Any, i: int) -> None:
    if ch.channels_last is not None:  # (H, W, C) flattened: the dense layer next reorders its rows
        if _next_op(ch, i) not in ("Gemm", "MatMul"):
            raise ch.refuse(node, "it flattens a channels-last (Transpose) image, and no Gemm or MatMul follows; "
                                  "specc flattens in (C, H, W) order",
                            "specc can take a Keras-style flatten only into a dense layer")
        ch.shape = (size(ch.channels_last),)
        return
    if len(ch.shape) == 1:
        return  # (N, size) already
    ch.add(node, "Flatten")


def _transpose(ch: _Chain, node: Any, i: int) -> None:
    perm = list(ch.attrs(node).get("perm", []))
    if perm == [0, 2, 3, 1] and len(ch.shape) == 3 and _next_op(ch, i) in ("Flatten", "Reshape"):
        ch.channels_last = ch.shape
        return
    raise ch.refuse(node, f"perm={perm} on {_batched(ch.shape)}; specc keeps images channels-first",
                    "specc reads a Transpose only as perm=[0, 2, 3, 1] right before a Flatten or Reshape into a "
                    "dense layer (the Keras layout), where it is folded into the weights")


def _simple(kind: str) -> Callable[[_Chain, Any, int], None]:
    def translate(ch: _Chain, node: Any, i: int) -> None:
        ch.add(node, kind)
    return translate


def _leaky(ch: _Chain, node: Any, i: int) -> None:
    alpha = _f32(ch.attrs(node).get("alpha", 0.01))
    if not 0 <= alpha <= 1:
        raise ch.refuse(node, f"alpha={alpha:g}; specc's LeakyReLU takes 0 <= alpha <= 1")
    ch.add(node, "LeakyReLU", {} if alpha == 0.01 else {"alpha": alpha})


def _softmax(ch: _Chain, node: Any, i: int) -> None:
    axis = ch.attrs(node).get("axis", 1 if ch.opset < 13 else -1)
    if len(ch.shape) != 1 or axis not in (1, -1):
        raise ch.refuse(node, f"softmax over axis {axis} of {_batched(ch.shape)}; specc's is over the classes "
                              "of (N, classes)")
    ch.add(node, "SoftmaxWithLoss")


def _identity(ch: _Chain, node: Any, i: int) -> None:
    pass


_OPS: dict[str, Callable[[_Chain, Any, int], None]] = {
    "Gemm": _gemm, "MatMul": _matmul, "Add": _add, "Conv": _conv,
    "MaxPool": _pool("Pooling"), "AveragePool": _pool("AvgPooling"),
    "BatchNormalization": _batchnorm, "Dropout": _dropout, "Flatten": _flatten, "Reshape": _reshape,
    "Transpose": _transpose, "Relu": _simple("ReLU"), "LeakyRelu": _leaky, "Sigmoid": _simple("Sigmoid"),
    "Tanh": _simple("Tanh"), "Softmax": _softmax, "Identity": _identity,
}


def _next_op(ch: _Chain, i: int) -> str | None:
    return ch.chain[i + 1].op_type if i + 1 < len(ch.chain) else None


def _f32(value: Any) -> float:
    """A float32 attribute as the decimal a person writes: 1e-05, not 9.999999747378752e-06."""
    return float(str(np.float32(value)))


# --- the model as a whole ------------------------------------------------------------------------
def read_model(path: str | Path) -> Any:
    """The ONNX model of a file, checked by onnx's own checker; DataError if it is not one."""
    onnx = require("onnx", "import")
    name = str(path)
    if not Path(path).is_file():
        raise DataError([Diagnostic("no such ONNX model file", None, "no-file")], name=name)
    try:
        model = onnx.load(name)
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 -- protobuf and the checker raise many kinds; none is a specc bug
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError([Diagnostic(f"not a valid ONNX model ({first})", None, "bad-onnx",
                                    hint="give a .onnx file that onnx.checker.check_model accepts")],
                        name=name) from None
    return model


def _input(ch: _Chain) -> Any:
    """The one graph input (not an initializer), with its per-sample shape set on the chain."""
    graph = ch.model.graph
    inputs = [v for v in graph.input if v.name not in ch.constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise SpecError([Diagnostic(
            f"the model has {len(inputs)} input(s) and {len(graph.output)} output(s); a specc network has one "
            "of each", None, "onnx-unsupported")], name=ch.name)
    v = inputs[0]
    tensor = v.type.tensor_type
    if not v.type.HasField("tensor_type") or tensor.elem_type not in (1, 10, 11):  # float, float16, double
        raise SpecError([Diagnostic(f"the input '{v.name}' is not a floating-point tensor", None,
                                    "onnx-unsupported")], name=ch.name)
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim]
    shown = "(" + ", ".join(map(str, dims)) + ")"
    if len(dims) not in (2, 4):
        raise SpecError([Diagnostic(
            f"the input '{v.name}' is {shown}; specc networks read (N, features) or (N, C, H, W)", None,
            "onnx-unsupported")], name=ch.name)
    if not all(isinstance(d, int) and d > 0 for d in dims[1:]):
        raise SpecError([Diagnostic(
            f"the input '{v.name}' is {shown}: only the batch dimension may be dynamic", None, "dynamic-shape",
            hint="export the model with fixed channel, height and width (or feature) sizes")], name=ch.name)
    ch.shape = ch.input_shape = tuple(int(d) for d in dims[1:])
    return v


def _walk(ch: _Chain, start: str) -> list[Any]:
    """The nodes from the input to the output, each reading the value the one before wrote, or refused."""
    graph = ch.model.graph
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in dict.fromkeys(node.input):
            if name and name not in ch.constants:
                readers.setdefault(name, []).append(node)
    output = graph.output[0].name
    chain: list[Any] = []
    value = start
    while value != output:
        nodes = readers.get(value, [])
        if not nodes:
            raise SpecError([Diagnostic(f"the value '{value}' is read by no node and is not the model's output "
                                        f"'{output}'", None, "onnx-unsupported")], name=ch.name)
        if len(nodes) > 1:
            names = ", ".join(_label(n) for n in nodes)
            raise ch.refuse(nodes[1], f"the value '{value}' branches: it is read by {names}; specc imports one chain",
                            "residual connections and other branches have no .net form yet")
        node = nodes[0]
        computed = [n for n in node.input if n and n not in ch.constants]
        if computed != [value]:
            others = ", ".join(f"'{n}'" for n in computed if n != value)
            raise ch.refuse(node, f"it joins two branches: it reads {others} besides '{value}'",
                            "specc imports one chain, each node reading the one value before it")
        for extra in node.output[1:]:
            if extra and (extra in readers or extra == output):
                raise ch.refuse(node, f"its second output '{extra}' is used; specc's layers have one output")
        chain.append(node)
        value = node.output[0]
    return chain


def translate(model: Any, name: str) -> _Chain:
    """The layers of a model (with their arrays and the input shape), or SpecError naming the node at fault."""
    ch = _Chain(require("onnx", "import"), model, name)
    start = _input(ch).name
    ch.chain = _walk(ch, start)
    on_chain = {id(n) for n in ch.chain}
    for node in model.graph.node:
        if id(node) not in on_chain and node.op_type != "Constant":
            raise ch.refuse(node, "it is not on the chain from the input to the output")
    nodes = list(ch.chain)
    ending = "scores"
    while nodes and nodes[-1].op_type == "Identity":
        nodes.pop()
        ending = "identity"
    for i, node in enumerate(ch.chain):
        if node.domain not in ("", "ai.onnx"):
            raise ch.refuse(node, f"the operator {node.domain}.{node.op_type} is not a standard ONNX one",
                            "supported: " + ", ".join(_OPS))
        if node.op_type not in _OPS:
            raise ch.refuse(node, f"specc has no layer for the operator {node.op_type}",
                            "supported: " + ", ".join(_OPS))
        if node.op_type == "Softmax" and (not nodes or node is not nodes[-1]):
            raise ch.refuse(node, "a Softmax before the end of the chain; specc's softmax is its loss layer, last")
        if node.op_type != "Add" and ch.layers:
            ch.layers[-1].open_bias = False
        _OPS[node.op_type](ch, node, i)
    if ch.channels_last is not None:
        raise SpecError([Diagnostic("the chain ends in a channels-last image", None, "onnx-unsupported")],
                        name=name)
    if not ch.layers or ch.layers[-1].kind != "SoftmaxWithLoss":
        if ending == "identity":
            ch.layers.append(_Layer("MeanSquaredError", node="the final Identity", out_shape=ch.shape))
        else:
            ch.layers.append(_Layer("SoftmaxWithLoss", node="the end of the chain", out_shape=ch.shape))
            ch.notes.append("the model outputs scores; SoftmaxWithLoss is added (predict gives the scores, "
                            "probabilities their softmax)")
    if len(ch.shape) != 1:
        raise SpecError([Diagnostic(f"the model's output is {_batched(ch.shape)}; specc's loss reads (N, classes)",
                                    None, "onnx-unsupported")], name=name)
    declared = [d.dim_value if d.HasField("dim_value") else None
                for d in model.graph.output[0].type.tensor_type.shape.dim]
    if len(declared) == 2 and declared[1] is not None and declared[1] != ch.shape[0]:
        raise SpecError([Diagnostic(f"the model declares its output (N, {declared[1]}), but its layers give "
                                    f"{_batched(ch.shape)}", None, "onnx-unsupported")], name=name)
    return ch


# --- writing the .net file ---------------------------------------------------------------------
def _call(layer: _Layer) -> str:
    """A layer as a person writes it: the first argument by position, the others by name, defaults left out."""
    a = layer.args
    positional: dict[str, str] = {"Affine": "out", "Convolution": "filters", "Pooling": "size",
                                  "AvgPooling": "size", "Dropout": "ratio", "LeakyReLU": "alpha"}
    defaults = {"stride": a.get("size", 1), "pad": 0}
    first = positional.get(layer.kind)
    shown = [_value(a[first])] if first in a else []
    shown += [f"{k}={_value(v)}" for k, v in a.items() if k != first and v != defaults.get(k, object())]
    return f"{layer.kind}({', '.join(shown)})" if shown else layer.kind


def _value(v: Any) -> str:
    return str(v) if not isinstance(v, float) else repr(v)


def net_text(ch: _Chain, source: str) -> str:
    """The .net file of a translated model: where it came from, the input, and the chain."""
    model = ch.model
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p) or "an unknown producer"
    head = [f"# imported by specc from {source} (written by {producer}, opset {ch.opset}): "
            f"{len(model.graph.node)} nodes -> {len(ch.layers)} layers"]
    head += [f"# note: {n}" for n in ch.notes]
    groups: list[list[str]] = []
    for layer in ch.layers:
        if not groups or layer.kind in _HEADS:
            groups.append([])
        groups[-1].append(_call(layer))
    lines: list[str] = []
    i = 0
    while i < len(groups):  # equal groups in a row are written once, repeated: (A -> B) * 3
        n = 1
        while i + n < len(groups) and groups[i + n] == groups[i]:
            n += 1
        text = " -> ".join(groups[i])
        if n > 1:
            text = f"({text}) * {n}" if len(groups[i]) > 1 else f"{text} * {n}"
        lines.append(text)
        i += n
    chain = "\n  -> ".join(lines)
    return "\n".join([*head, f"input {'x'.join(map(str, ch.input_shape))}", chain, ""])


def imported(model_path: str | Path, out: str | Path, weights_out: str | Path | None = None) -> Imported:
    """Write the .net file and checkpoint of an ONNX model (weights beside the .net file by default)."""
    from specc import api, checkpoint  # the pipeline; this module sits after it

    model = read_model(model_path)
    ch = translate(model, str(model_path))
    spec_path = Path(out)
    weights_path = Path(weights_out) if weights_out is not None else spec_path.with_suffix(".npz")
    text = net_text(ch, Path(model_path).name)
    net = api.compile(text, name=str(spec_path))
    if len(net.checked.layers) != len(ch.layers):  # (a repetition expands to the same layers, in order)
        raise SpecError([Diagnostic("the written network does not match the model's layers", None,
                                    "onnx-unsupported")], name=str(model_path))
    for c, layer in zip(net.checked.layers, ch.layers):
        for base, value in layer.arrays.items():
            name = c.names[base]
            target = net.state[name] if name in net.state else net.params[name]
            if target.shape != value.shape:
                raise SpecError([Diagnostic(f"{layer.node}: {base} is {_dims(value.shape)}, but "
                                            f"{c.layer.describe()} needs {_dims(target.shape)}", None,
                                            "onnx-unsupported")], name=str(model_path))
            np.copyto(target, value, casting="same_kind")
    write_atomically(spec_path, text.encode("utf-8"))
    checkpoint.save(weights_path, net, meta={"imported_from": str(model_path)})
    return Imported(text, net, spec_path, weights_path, len(model.graph.node))
