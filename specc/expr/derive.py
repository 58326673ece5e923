"""The derivation of an expression layer: per-sample shapes, which values carry the batch axis, and the
backward pass by reverse mode over the expression's nodes (each primitive's programs are in
specc.expr.primitives); then its reference reading, evaluated with NumPy. The compiled reading, NumPy
lines with preallocated buffers, is specc.expr.emit's.

Broadcasting is undone by summing over the axes it added or stretched: an unbatched parameter added to
a batched value (the bias of `x @ W + b`) receives the sum over the batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from specc.errors import Label
from specc.expr.emit import emit as emit  # the compiled reading, re-exported: specc.layers.expression
from specc.expr.emit import layout as layout  # reads it here, beside the derivation
from specc.expr.primitives import FORWARD, INPUT, VJP, Instr, execute
from specc.graph.ir import Node
from specc.graph.ops import OPS, GraphShapeError, fmt
from specc.layers.base import Shape, ShapeError
from specc.source import Span


@dataclass(frozen=True)
class Param:
    name: str
    shape: Shape
    init: Any  # "he", "xavier", "auto" or a number
    span: Span | None = None


@dataclass(frozen=True)
class Value:
    """One value of the expression: the input, a parameter, a constant or a node's result."""

    id: str
    shape: Shape  # per sample
    batched: bool  # carries the batch axis (depends on x)
    constant: float | None = None  # a constant, or a node of constants only (folded)

    def full(self) -> tuple[int | str, ...]:
        return (("N",) if self.batched else ()) + self.shape


@dataclass(frozen=True)
class Send:
    """What a node sends back to one operand: the program of g times the local derivative, then the
    sum over the axes that broadcasting added or stretched (keepdims when some were stretched)."""

    node: str
    operand: str
    program: tuple[Instr, ...]
    axes: tuple[int, ...]
    keep: bool


@dataclass(frozen=True)
class Derivation:
    nodes: tuple[Node, ...]  # in forward order, constants folded away
    values: Mapping[str, Value]
    params: tuple[Param, ...]
    output: str
    sends: tuple[Send, ...]  # in backward order
    grad_input: bool

    @property
    def out_shape(self) -> Shape:
        return self.values[self.output].shape

    def flops(self) -> int:
        """Per sample: one per element and NumPy call of a batched node; 2·in·out for a matrix product."""
        total = 0
        for n in self.nodes:
            v = self.values[n.id]
            if not v.batched or n.op == "identity":
                continue
            if n.op == "matmul":
                total += 2 * math.prod(self.values[n.operands[1]].shape)
            else:
                total += len(FORWARD[n.op](n.attrs)) * math.prod(v.shape)
        return total


def _span(d: Mapping | None) -> Span | None:
    return Span.from_json(d) if d else None


def nodes_of(expression: Mapping[str, Any]) -> tuple[Node, ...]:
    return tuple(Node(n["id"], n["op"], tuple(n["operands"]), dict(n.get("attrs", {})), n.get("value"),
                      _span(n.get("span")), _span(n.get("name_span")),
                      tuple(_span(sp) for sp in n.get("operand_spans", ())))
                 for n in expression["nodes"])


def params_of(expression: Mapping[str, Any], in_shape: Shape) -> tuple[Param, ...]:
    """The parameters with `in` resolved: the input's feature size, its first dimension per sample."""
    return tuple(Param(p["name"], tuple(in_shape[0] if d == "in" else int(d) for d in p["shape"]), p["init"],
                       _span(p.get("span"))) for p in expression["params"])


def derive(expression: Mapping[str, Any], in_shape: Shape, grad_input: bool = True) -> Derivation:
    """Shapes and the backward pass of an expression at an input shape; ShapeError at the node at fault."""
    params = params_of(expression, in_shape)
    values: dict[str, Value] = {INPUT: Value(INPUT, tuple(in_shape), True)}
    values.update({p.name: Value(p.name, p.shape, False) for p in params})
    kept: list[Node] = []
    for n in nodes_of(expression):
        if n.op == "const":
            values[n.id] = Value(n.id, (), False, float(n.value or 0.0))
            continue
        ops = [values[o] for o in n.operands]
        if all(o.constant is not None for o in ops):  # folded: `sqrt(2 / 3.14159)` is a number
            y, _ = OPS[n.op].run(tuple(np.asarray(o.constant, dtype=np.float64) for o in ops), n.attrs)
            values[n.id] = Value(n.id, (), False, float(y))
            continue
        values[n.id] = Value(n.id, _shape(n, ops), any(o.batched for o in ops))
        kept.append(n)
    output = expression["output"]
    if output not in {n.id for n in kept} or not values[output].batched:
        raise ShapeError("the layer's output does not depend on its input", hint="use x in the expression of y")
    depends = {INPUT} if grad_input else set()
    depends |= {p.name for p in params}
    for n in kept:
        if any(o in depends for o in n.operands):
            depends.add(n.id)
    sends = []
    for n in reversed(kept):
        if n.id not in depends:
            continue
        programs = VJP[n.op](n.attrs)
        for operand, program in zip(n.operands, programs):
            if operand not in depends:
                continue
            axes: tuple[int, ...] = ()
            keep = False
            if n.op not in ("matmul", "transpose"):
                axes, keep = _unbroadcast(values[n.id], values[operand])
            sends.append(Send(n.id, operand, tuple(program), axes, keep))
    return Derivation(tuple(kept), values, params, output, tuple(sends), grad_input)


def _unbroadcast(node: Value, operand: Value) -> tuple[tuple[int, ...], bool]:
    f, o = node.full(), operand.full()
    extra = len(f) - len(o)
    stretched = tuple(i + extra for i, d in enumerate(o) if d == 1 and f[i + extra] != 1)
    return tuple(range(extra)) + stretched, bool(stretched)


def _shape(n: Node, ops: list[Value]) -> Shape:
    """A node's per-sample shape, with the rules of a value that carries the batch axis."""
    spans = n.operand_spans or (None,) * len(ops)

    def fail(message: str, hint: str | None, which: Sequence[int] = ()) -> ShapeError:
        notes = tuple(Label(spans[i], _shown(ops[i])) for i in (which or range(len(ops))) if spans[i] is not None)
        return ShapeError(message, hint, span=n.span, notes=notes)
    try:
        shape = OPS[n.op].shape(tuple(o.shape for o in ops), n.attrs)
    except GraphShapeError as e:
        raise fail(e.message.replace("do not broadcast", "do not broadcast (per sample)"), e.hint,
                   () if e.operand is None else (e.operand,)) from None
    if n.op == "matmul":
        a, b = ops
        if not (a.batched and len(a.shape) == 1 and not b.batched and len(b.shape) == 2):
            raise fail("in a layer, @ multiplies each sample (a vector) by a matrix of parameters",
                       "write it as `x @ W`, with W declared `param W[in, n]`")
    elif n.op == "transpose" and ops[0].batched:
        raise fail("in a layer, `.T` transposes parameters, not the sample", None)
    elif len(ops) == 2 and ops[0].batched != ops[1].batched:
        one, other = (ops[0], ops[1]) if ops[0].batched else (ops[1], ops[0])
        if len(other.shape) > len(one.shape):
            raise fail(f"{fmt(other.shape)} has more axes than the sample's {fmt(one.shape)}: it cannot "
                       "broadcast over the batch", "give the parameter no more axes than the value it meets")
    return shape


def _shown(v: Value) -> str:
    if v.constant is not None:
        return f"the constant {v.constant:g}"
    return ("(N, " + ", ".join(map(str, v.shape)) + ")") if v.batched else fmt(v.shape)


# --- the reference path: the derivation evaluated with NumPy --------------------------------------

def _bind(n: Node, env: Mapping[str, Any], g: Any = None) -> dict[str, Any]:
    b = {"ab"[k]: env[o] for k, o in enumerate(n.operands)}
    b["y"], b["g"] = env.get(n.id), g
    return b


def _forward_nodes(d: Derivation, x: np.ndarray, params: Mapping[str, np.ndarray], env: dict[str, Any]):
    """Each node of the forward pass in turn, once its value is in `env` (filled with x, the parameters
    and the constants first)."""
    env.update({INPUT: x, **params})
    env.update({k: v.constant for k, v in d.values.items() if v.constant is not None})
    for n in d.nodes:
        env[n.id] = execute(FORWARD[n.op](n.attrs), _bind(n, env), "y")
        yield n


def run_forward(d: Derivation, x: np.ndarray, params: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Every value of the expression for a batch x (constants as numbers)."""
    env: dict[str, Any] = {}
    for _ in _forward_nodes(d, x, params, env):
        pass
    return env


def first_not_finite(d: Derivation, x: np.ndarray, params: Mapping[str, np.ndarray]) -> Node | None:
    """The first node of the forward pass whose result holds NaN or infinity though its operands do
    not: where a value leaves the numbers (log of 0, a fractional power of a negative, exp's overflow)."""
    env: dict[str, Any] = {}
    for n in _forward_nodes(d, x, params, env):
        if not np.isfinite(env[n.id]).all() and all(np.isfinite(env[o]).all() for o in n.operands):
            return n
    return None


def run_backward(d: Derivation, env: Mapping[str, Any], dy: np.ndarray) -> dict[str, np.ndarray]:
    """The gradient of every value that needs one, from the output's gradient dy (never modified)."""
    by_id = {n.id: n for n in d.nodes}
    grads: dict[str, np.ndarray] = {d.output: dy}
    for s in d.sends:
        g = grads[s.node]
        part = execute(s.program, _bind(by_id[s.node], env, g), "d") if s.program else g
        if s.axes:
            part = part.sum(axis=s.axes, keepdims=s.keep).reshape(np.shape(env[s.operand]))
        grads[s.operand] = grads[s.operand] + part if s.operand in grads else part
    return grads

