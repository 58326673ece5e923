"""The graph primitives: each operation's shape rule, forward, and local derivative rule, side by side.

A primitive's `run` returns its value and a backward closure (micrograd's `_backward`, thinc's
callback). The closure takes the upstream gradient `g` (the output's shape) and returns, per
operand, the gradient it sends back and, for element-wise operations, the local derivative it
multiplied `g` by (shown by `specc grad`). Broadcasting is undone by the evaluator
(`unbroadcast`), not here: that single rule is what sums the bias gradient of `x @ W + b` over
the batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

Shape = tuple[int, ...]
Attrs = Mapping[str, Any]
Sent = tuple[np.ndarray, "np.ndarray | None"]  # (gradient for the operand, local derivative or None)
Backward = Callable[[np.ndarray], tuple[Sent, ...]]


class GraphShapeError(Exception):
    """Operands whose shapes the operation cannot take; `operand` marks the one at fault, if one is."""

    def __init__(self, message: str, hint: str | None = None, operand: int | None = None):
        super().__init__(message)
        self.message, self.hint, self.operand = message, hint, operand


@dataclass(frozen=True)
class Op:
    name: str  # the IR's name: "mul"
    symbol: str  # what the drawing writes in the node's circle: "×"
    arity: int  # operands that are values of the graph
    rules: tuple[str, ...]  # the local derivative per operand, in words; a, b are the operands, y the output
    shape: Callable[[tuple[Shape, ...], Attrs], Shape]
    run: Callable[[tuple[np.ndarray, ...], Attrs], tuple[np.ndarray, Backward]]
    constants: tuple[str, ...] = ()  # positional arguments after the operands that must be constants
    keywords: Mapping[str, Any] = None  # type: ignore[assignment]  # keyword -> default (set below)
    domain: str | None = None  # "positive": every operand value must be > 0 (log, sqrt)

    def __post_init__(self) -> None:
        if self.keywords is None:
            object.__setattr__(self, "keywords", {})


OPS: dict[str, Op] = {}
FUNCTIONS: dict[str, str] = {}  # the name written in a .net file -> the op: "exp" -> "exp"
OPERATORS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul", "**": "pow"}


def _register(op: Op, function: bool = False) -> Op:
    OPS[op.name] = op
    if function:
        FUNCTIONS[op.name] = op.name
    return op


def fmt(shape: Shape) -> str:
    return "a scalar" if not shape else "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


# --- shape rules ------------------------------------------------------------------------

def _same(shapes: tuple[Shape, ...], attrs: Attrs) -> Shape:
    return shapes[0]


def _broadcast(shapes: tuple[Shape, ...], attrs: Attrs) -> Shape:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        a, b = shapes
        raise GraphShapeError(f"shapes {fmt(a)} and {fmt(b)} do not broadcast",
                              "NumPy broadcasting compares the last dimensions first; each pair must be equal "
                              "or one of them 1") from None


def _axis(shape: Shape, attrs: Attrs) -> int | None:
    axis = attrs.get("axis")
    if axis is None:
        return None
    if not isinstance(axis, int) or isinstance(axis, bool) or not -len(shape) <= axis < len(shape):
        rank = len(shape)
        raise GraphShapeError(f"axis {axis} is out of range for {fmt(shape)}",
                              f"this value has {rank} ax{'e' if rank != 1 else 'i'}s: use an integer from "
                              f"{-rank} to {rank - 1}" if rank else "a scalar has no axes; leave out `axis`",
                              operand=0)
    return axis % len(shape)


def _reduced(shapes: tuple[Shape, ...], attrs: Attrs) -> Shape:
    axis = _axis(shapes[0], attrs)
    return () if axis is None else shapes[0][:axis] + shapes[0][axis + 1:]


def _softmax_shape(shapes: tuple[Shape, ...], attrs: Attrs) -> Shape:
    _axis(shapes[0], attrs)
    return shapes[0]


def _matmul_shape(shapes: tuple[Shape, ...], attrs: Attrs) -> Shape:
    a, b = shapes
    for i, s in enumerate(shapes):
        if len(s) not in (1, 2):
            raise GraphShapeError(f"@ multiplies vectors and matrices, not {fmt(s)}",
                                  "use * for a product by a scalar" if not s else None, operand=i)
    if a[-1] != b[0]:
        raise GraphShapeError(f"shapes {fmt(a)} and {fmt(b)} do not multiply: {a[-1]} columns against {b[0]} rows",
                              "A @ B needs A's last dimension equal to B's first; `.T` transposes a matrix")
    return a[:-1] + b[1:]


def _transposed(shapes: tuple[Shape, ...], attrs: Attrs) -> Shape:
    return shapes[0][::-1]


# --- primitives: the forward, and right beside it the local derivative -------------------------

def _elementwise(name: str, symbol: str, rules: tuple[str, ...], forward: Callable[..., tuple], *,
                 shape: Callable = _same, function: bool = False, constants: tuple[str, ...] = (),
                 domain: str | None = None) -> Op:
    """An element-wise primitive: `forward(*operands, **attrs)` gives (y, locals), `locals()` the
    derivative of y by each operand; each operand receives g * its local derivative."""
    def run(xs: tuple[np.ndarray, ...], attrs: Attrs) -> tuple[np.ndarray, Backward]:
        y, local = forward(*xs, **attrs)
        return np.asarray(y, dtype=np.float64), lambda g: tuple((g * d, d) for d in local())
    return _register(Op(name, symbol, len(rules), rules, shape, run, constants, domain=domain), function)


def _mul(a, b):
    return a * b, lambda: (b, a)  # each input receives g times the *other* input (flipped)


def _div(a, b):
    y = a / b
    return y, lambda: (1 / b, -a / b ** 2)


def _pow(a, p):
    return a ** p, lambda: (p * a ** (p - 1),)


def _exp(a):
    y = np.exp(a)
    return y, lambda: (y,)


def _sigmoid(a):
    y = 1 / (1 + np.exp(-a))
    return y, lambda: (y * (1 - y),)


def _tanh(a):
    y = np.tanh(a)
    return y, lambda: (1 - y ** 2,)


_elementwise("add", "+", ("1", "1"), lambda a, b: (a + b, lambda: (np.float64(1), np.float64(1))),
             shape=_broadcast)  # the gradient passes on unchanged
_elementwise("sub", "−", ("1", "−1"), lambda a, b: (a - b, lambda: (np.float64(1), np.float64(-1))),
             shape=_broadcast)
_elementwise("mul", "×", ("b", "a"), _mul, shape=_broadcast)
_elementwise("div", "/", ("1/b", "−a/b²"), _div, shape=_broadcast)
_elementwise("neg", "−", ("−1",), lambda a: (-a, lambda: (np.float64(-1),)))
_elementwise("pow", "**", ("p·a^(p−1)",), _pow, constants=("p",))
_elementwise("exp", "exp", ("exp(a) = y",), _exp, function=True)
_elementwise("log", "log", ("1/a",), lambda a: (np.log(a), lambda: (1 / a,)), function=True, domain="positive")
_elementwise("sqrt", "sqrt", ("1/(2·sqrt(a))",), lambda a: (np.sqrt(a), lambda: (0.5 / np.sqrt(a),)),
             function=True, domain="positive")
_elementwise("max", "max", ("1 where a > c, else 0",),
             lambda a, c: (np.maximum(a, c), lambda: ((a > c).astype(np.float64),)), function=True,
             constants=("c",))
_elementwise("min", "min", ("1 where a < c, else 0",),
             lambda a, c: (np.minimum(a, c), lambda: ((a < c).astype(np.float64),)), function=True,
             constants=("c",))
_elementwise("relu", "relu", ("1 where a > 0, else 0 (the mask)",),
             lambda a: (np.maximum(a, 0.0), lambda: ((a > 0).astype(np.float64),)), function=True)
_elementwise("sigmoid", "σ", ("y·(1 − y)",), _sigmoid, function=True)
_elementwise("tanh", "tanh", ("1 − y²",), _tanh, function=True)


def _matmul(xs: tuple[np.ndarray, ...], attrs: Attrs) -> tuple[np.ndarray, Backward]:
    a, b = xs
    y = a @ b

    def backward(g: np.ndarray) -> tuple[Sent, ...]:
        # Vectors are matrices of one row (a) or one column (b) here: (n, k) @ (k, m) -> (n, m)
        a2, b2 = np.atleast_2d(a), b.reshape(b.shape[0], -1)
        g2 = g.reshape(a2.shape[0], b2.shape[1])
        return ((g2 @ b2.T).reshape(a.shape), None), ((a2.T @ g2).reshape(b.shape), None)
    return y, backward


def _sum(xs: tuple[np.ndarray, ...], attrs: Attrs) -> tuple[np.ndarray, Backward]:
    (a,) = xs
    axis = _axis(a.shape, attrs)
    y = np.sum(a, axis=axis)
    # every element added into the sum receives the gradient of its sum
    return y, lambda g: ((np.broadcast_to(_keep(g, a.shape, axis), a.shape).copy(), None),)


def _mean(xs: tuple[np.ndarray, ...], attrs: Attrs) -> tuple[np.ndarray, Backward]:
    (a,) = xs
    axis = _axis(a.shape, attrs)
    n = a.size if axis is None else a.shape[axis]
    y = np.mean(a, axis=axis)
    return y, lambda g: ((np.broadcast_to(_keep(g, a.shape, axis) / n, a.shape).copy(), None),)


def _keep(g: np.ndarray, shape: Shape, axis: int | None) -> np.ndarray:
    """A reduction's gradient with the reduced axis put back (length 1), ready to broadcast."""
    return np.reshape(g, (1,) * len(shape)) if axis is None else np.expand_dims(g, axis)


def _softmax(xs: tuple[np.ndarray, ...], attrs: Attrs) -> tuple[np.ndarray, Backward]:
    (a,) = xs
    axis = _axis(a.shape, attrs) if a.ndim else None
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    y = e / np.sum(e, axis=axis, keepdims=True)
    # dy_i/da_j = y_i (δij − y_j)  =>  da = y · (g − Σ g·y)
    return y, lambda g: ((y * (g - np.sum(g * y, axis=axis, keepdims=True)), None),)


def _transpose(xs: tuple[np.ndarray, ...], attrs: Attrs) -> tuple[np.ndarray, Backward]:
    (a,) = xs
    return a.T, lambda g: ((np.asarray(g).T.copy(), None),)


_register(Op("matmul", "@", 2, ("g @ bᵀ", "aᵀ @ g"), _matmul_shape, _matmul))
_register(Op("sum", "Σ", 1, ("g, repeated over the summed axis",), _reduced, _sum, keywords={"axis": None}),
          function=True)
_register(Op("mean", "mean", 1, ("g / n, repeated over the averaged axis",), _reduced, _mean,
             keywords={"axis": None}), function=True)
_register(Op("softmax", "softmax", 1, ("y · (g − Σ g·y)",), _softmax_shape, _softmax, keywords={"axis": -1}),
          function=True)
_register(Op("transpose", "ᵀ", 1, ("gᵀ",), _transposed, _transpose), function=True)


def unbroadcast(g: np.ndarray, shape: Shape) -> np.ndarray:
    """Sum a gradient over the axes that broadcasting added or stretched, back to `shape`.

    An operand repeated over the batch in the forward pass (a bias) receives the sum of the
    gradients of its copies.
    """
    g = np.asarray(g, dtype=np.float64)
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return np.broadcast_to(g, shape).copy() if g.shape != shape else g


# `let a = b` names a value again; the node passes its gradient on unchanged.
_elementwise("identity", "=", ("1",), lambda a: (a, lambda: (np.float64(1),)))
