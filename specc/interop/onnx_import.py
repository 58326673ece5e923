"""`specc import`: an ONNX model that is one chain of common operators -> a `.net` file and its checkpoint.

The chain runs from the one graph input to the one graph output, each node reading the value the
one before it wrote (weights come from initializers or Constant nodes). Operators and what they become:

    Gemm (transA=0, alpha=beta=1; transB 0 or 1), MatMul [+ Add]   Affine
    Conv                   Convolution       MaxPool, AveragePool   Pooling, AvgPooling
    BatchNormalization     BatchNorm         Dropout                Dropout
    Dropout, then Mul by 1 - ratio           Dropout(scale="test")
    Relu, LeakyRelu, Sigmoid, Tanh           the activation of the same name
    Flatten, Reshape to (N, size)            nothing before an Affine (it flattens itself), else Flatten
    Transpose to channels-last before a Flatten/Reshape and a dense layer (Keras's layout)
                           folded into that dense layer's weights (rows reordered to specc's C order)
    Softmax (last)         SoftmaxWithLoss   Identity               skipped; last, it makes MeanSquaredError
    element-wise branches that join again, and runs of element-wise operators no layer stands for
                           a layer written as an expression (specc.interop.onnx_region)

A model that ends in scores gets SoftmaxWithLoss too (its `predict` gives those scores). Anything
else is a SpecError naming the node, its operator and why specc cannot express it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from specc.errors import DataError, Diagnostic, SpecError
from specc.interop import require, write_atomically
from specc.interop.onnx_chain import Chain, Layer, batched, dims, label
from specc.interop.onnx_ops import OPS
from specc.interop.onnx_region import ELEMENTWISE, Region, describe, expression, region
from specc.network import Network
from specc.text import shape_text

_HEADS = ("Affine", "Convolution")  # a new line of the written chain starts at each


@dataclass(frozen=True)
class Imported:
    """What `specc import` wrote: the .net text, its network holding the imported weights, and the paths."""

    text: str
    net: Network
    spec_path: Path
    weights_path: Path
    nodes: int


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


def _input(ch: Chain) -> Any:
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


def _walk(ch: Chain, start: str) -> list[Any]:
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
        joins = [n for n in nodes[0].input if n and n not in ch.constants] != [value]  # x * x, or two values
        if len(nodes) > 1 or (nodes[0].op_type in ELEMENTWISE and (nodes[0].op_type not in OPS or joins)):
            found = region(ch, readers, value)  # element-wise branches that join again: an expression layer
            if found is not None:
                if chain and isinstance(chain[-1], Region):  # one layer for a run of them
                    chain[-1].then(found)
                else:
                    chain.append(found)
                value = found.end
                continue
        if len(nodes) > 1:
            names = ", ".join(label(n) for n in nodes)
            raise ch.refuse(nodes[1], f"the value '{value}' branches: it is read by {names}; specc imports one "
                            "chain, and element-wise branches that join again (as one layer written as an expression)",
                            "residual connections and other branches of layers have no .net form yet")
        node = nodes[0]
        computed = [n for n in node.input if n and n not in ch.constants]
        if computed != [value]:
            others = ", ".join(f"'{n}'" for n in computed if n != value)
            what = f"it reads {others} besides '{value}'" if others else f"it reads '{value}' {len(computed)} times"
            raise ch.refuse(node, f"it joins two branches: {what}",
                            "specc imports one chain, each node reading the one value before it")
        for extra in node.output[1:]:
            if extra and (extra in readers or extra == output):
                raise ch.refuse(node, f"its second output '{extra}' is used; specc's layers have one output")
        chain.append(node)
        value = node.output[0]
    return chain


def translate(model: Any, name: str) -> Chain:
    """The layers of a model (with their arrays and the input shape), or SpecError naming the node at fault."""
    ch = Chain(require("onnx", "import"), model, name)
    start = _input(ch).name
    ch.chain = _walk(ch, start)
    on_chain = {id(n) for item in ch.chain for n in (item.nodes if isinstance(item, Region) else [item])}
    for node in model.graph.node:
        if id(node) not in on_chain and node.op_type != "Constant":
            raise ch.refuse(node, "it is not on the chain from the input to the output")
    nodes = list(ch.chain)
    ending = "scores"
    while nodes and nodes[-1].op_type == "Identity":
        nodes.pop()
        ending = "identity"
    for i, node in enumerate(ch.chain):
        if isinstance(node, Region):
            if ch.layers:
                ch.layers[-1].open_bias = False
            _expression_layer(ch, node)
            continue
        if node.domain not in ("", "ai.onnx"):
            raise ch.refuse(node, f"the operator {node.domain}.{node.op_type} is not a standard ONNX one",
                            "supported: " + ", ".join(OPS))
        if node.op_type not in OPS:
            raise ch.refuse(node, f"specc has no layer for the operator {node.op_type}",
                            "supported: " + ", ".join(OPS))
        if node.op_type == "Softmax" and (not nodes or node is not nodes[-1]):
            raise ch.refuse(node, "a Softmax before the end of the chain; specc's softmax is its loss layer, last")
        if node.op_type != "Add" and ch.layers:
            ch.layers[-1].open_bias = False
        try:
            OPS[node.op_type](ch, node, i)
        except SpecError:
            if node.op_type not in ELEMENTWISE:
                raise
            # an Add that is no bias, a Mul that is no dropout's scale: element-wise, an expression layer
            _expression_layer(ch, Region([node], node.input[0] if node.input[0] not in ch.constants else
                                         next(v for v in node.input if v not in ch.constants), node.output[0]))
    if ch.channels_last is not None:
        raise SpecError([Diagnostic("the chain ends in a channels-last image", None, "onnx-unsupported")],
                        name=name)
    if not ch.layers or ch.layers[-1].kind != "SoftmaxWithLoss":
        if ending == "identity":
            ch.layers.append(Layer("MeanSquaredError", node="the final Identity", out_shape=ch.shape))
        else:
            ch.layers.append(Layer("SoftmaxWithLoss", node="the end of the chain", out_shape=ch.shape))
            ch.notes.append("the model outputs scores; SoftmaxWithLoss is added (predict gives the scores, "
                            "probabilities their softmax)")
    if len(ch.shape) != 1:
        raise SpecError([Diagnostic(f"the model's output is {batched(ch.shape)}; specc's loss reads (N, classes)",
                                    None, "onnx-unsupported")], name=name)
    declared = [d.dim_value if d.HasField("dim_value") else None
                for d in model.graph.output[0].type.tensor_type.shape.dim]
    if len(declared) == 2 and declared[1] is not None and declared[1] != ch.shape[0]:
        raise SpecError([Diagnostic(f"the model declares its output (N, {declared[1]}), but its layers give "
                                    f"{batched(ch.shape)}", None, "onnx-unsupported")], name=name)
    return ch


def _expression_layer(ch: Chain, r: Region) -> None:
    """An element-wise region as a layer written as an expression; the shape stays (element-wise)."""
    if ch.channels_last is not None:
        raise ch.refuse(r.nodes[0], "an element-wise branch on a channels-last image")
    name = f"Expr{sum(1 for layer in ch.layers if layer.definition) + 1}"
    text, lets, params = expression(ch, r, ch.shape)
    body = [*(f"param {k}[{', '.join(map(str, v.shape))}] = 0" for k, v in params.items()), *lets]
    definition = f"layer {name} {{ {'; '.join([*body, f'y = {text}'])} }}" if body else f"layer {name} = {text}"
    ch.layers.append(Layer(name, arrays=params, node=describe(r), out_shape=ch.shape, in_shape=ch.shape,
                           definition=definition))
    ch.notes.append(f"{name} stands for {len(r.nodes)} element-wise nodes: "
                    + ", ".join(n.op_type for n in r.nodes))


# --- writing the .net file ---------------------------------------------------------------------
def _call(layer: Layer) -> str:
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


def net_text(ch: Chain, source: str) -> str:
    """The .net file of a translated model: where it came from, the input, and the chain."""
    model = ch.model
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p) or "an unknown producer"
    head = [f"# imported by specc from {source} (written by {producer}, opset {ch.opset}): "
            f"{len(model.graph.node)} nodes -> {len(ch.layers)} layers"]
    head += [f"# note: {n}" for n in ch.notes]
    head += [layer.definition for layer in ch.layers if layer.definition]
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
    return "\n".join([*head, f"input {shape_text(ch.input_shape)}", chain, ""])


def imported(model_path: str | Path, out: str | Path, weights_out: str | Path | None = None) -> Imported:
    """Write the .net file and checkpoint of an ONNX model (weights beside the .net file by default)."""
    from specc import api  # the pipeline; this module sits after it
    from specc.training import checkpoint

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
                raise SpecError([Diagnostic(f"{layer.node}: {base} is {dims(value.shape)}, but "
                                            f"{c.layer.describe()} needs {dims(target.shape)}", None,
                                            "onnx-unsupported")], name=str(model_path))
            np.copyto(target, value, casting="same_kind")
    write_atomically(spec_path, text.encode("utf-8"))
    checkpoint.save(weights_path, net, meta={"imported_from": str(model_path)})
    return Imported(text, net, spec_path, weights_path, len(model.graph.node))
