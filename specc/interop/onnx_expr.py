"""Expression layers in ONNX: each node of a layer's derivation (specc.expr.derive) as one ONNX primitive.

The derivation already holds what export needs: the nodes in forward order with constants folded
(`sqrt(2 / 3.14159)` is one number), each value's per-sample shape and whether it carries the batch
axis. A node becomes the operator of the same meaning; NumPy's broadcasting is ONNX's multidirectional
broadcasting (both align shapes from the right), so an unbatched parameter meets the (N, ...) value as
it does in specc:

    + - * /   neg           Add, Sub, Mul, Div, Neg
    ** p      (p constant)  Pow(a, p)
    @         x @ W         MatMul: (N, in) @ (in, out) -> (N, out)
    .T        (parameters)  Transpose (no perm: the axes reversed, as NumPy's .T)
    exp log sqrt sigmoid tanh relu    Exp, Log, Sqrt, Sigmoid, Tanh, Relu
    max(a, c) min(a, c)     Max, Min with the constant c as a second input
    identity                Identity

Parameters are initializers named as specc names them (W1, a2); a constant is a float32 scalar
initializer (`GELU3_c1`). Each node is named after its layer, its operator and the use site
(`Swish2.mul2@models/swish_net.net:6:14 (def 3:16)`), and its doc string holds both places and the
expression it computes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from specc.check import CheckedLayer
from specc.errors import Diagnostic, SpecError
from specc.expr import derive as dv
from specc.layers.expression import ExpressionLayer
from specc.source import Span

if TYPE_CHECKING:
    from specc.interop.onnx_export import Graph

# the derivation's primitive -> the ONNX operator that computes the same thing
ONNX_OPS: dict[str, str] = {
    "add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "neg": "Neg", "pow": "Pow", "matmul": "MatMul",
    "transpose": "Transpose", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "sigmoid": "Sigmoid",
    "tanh": "Tanh", "relu": "Relu", "max": "Max", "min": "Min", "identity": "Identity",
}
# a primitive's constant attribute, which ONNX takes as a second input
_CONSTANT_INPUT = {"pow": "p", "max": "c", "min": "c"}


def write(g: Graph, c: CheckedLayer) -> None:
    """The nodes of one use of an expression layer; its output becomes the graph's current value."""
    layer = c.layer
    assert isinstance(layer, ExpressionLayer)
    d = layer.derivation
    tag = f"{c.spec.type}{c.index + 1}"
    names: dict[str, str] = {dv.INPUT: g.x, **{p.name: g.weight(c, p.name) for p in d.params}}
    constants: dict[float, str] = {}

    def constant(value: float) -> str:
        if value not in constants:
            constants[value] = g.constant(f"{tag}_c{len(constants) + 1}", np.array(value, np.float32))
        return constants[value]

    definition = Span.from_json(layer.expression["definition"]) if layer.expression.get("definition") else None
    for j, n in enumerate(d.nodes, 1):
        if n.op not in ONNX_OPS:
            raise SpecError([Diagnostic(f"specc export has no ONNX form for `{n.op}` (in layer {c.spec.type}) yet",
                                        n.span, "no-onnx-form", "this operation",
                                        hint="export writes " + ", ".join(sorted(ONNX_OPS)))], g.net.source)
        inputs = [constant(v.constant) if (v := d.values[o]).constant is not None else names[o]
                  for o in n.operands]
        if n.op in _CONSTANT_INPUT:
            inputs.append(constant(float(n.attrs[_CONSTANT_INPUT[n.op]])))
        v = d.values[n.id]
        out = g.fresh(f"a{c.index + 1}" if n.id == d.output else f"a{c.index + 1}_{n.op}{j}")
        name = f"{tag}.{n.op}{j}@{g.where(c)}" + (f" (def {n.span.line}:{n.span.col})" if n.span else "")
        note = f"{n.op} `{_text(g, n.span)}` at {g.place(n.span)}, in layer {layer.name} defined at " \
               f"{g.place(definition)}"
        g.append(ONNX_OPS[n.op], inputs, out, name, g.doc(c, note), (("N",) if v.batched else ()) + v.shape)
        names[n.id] = out
    g.x, g.shape = names[d.output], d.out_shape


def _text(g: Graph, span: Span | None, limit: int = 60) -> str:
    """The source text of a span, on one line and shortened."""
    source = g.net.source
    if span is None or source is None:
        return "?"
    lines = [source.line(k) for k in range(span.line, span.end_line + 1)]
    lines[-1] = lines[-1][:span.end_col - 1]
    lines[0] = lines[0][span.col - 1:]
    text = " ".join(s.strip() for s in lines)
    return text if len(text) <= limit else text[:limit - 3] + "..."
