"""The primitives of an expression layer, each written once as short programs of NumPy functions: its
forward, and per operand the upstream gradient times its local derivative; and `execute`, which runs
such a program on arrays (the compiled path writes the same programs as code, specc.expr.emit).

A program's operands are `a`, `b`, the node's output `y` and the upstream gradient `g`; `d` is the
result so far.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

Instr = tuple  # (NumPy function, *operands): operands "a", "b", "y", "g", "d", "a.T", or numbers
Rule = Callable[[Mapping[str, Any]], Sequence[Instr]]
INPUT = "x"  # the layer's input, in its expression (the value every program's batch comes from)

# y from the operands (written into y's buffer)
FORWARD: dict[str, Rule] = {
    "add": lambda at: [("add", "a", "b")],
    "sub": lambda at: [("subtract", "a", "b")],
    "mul": lambda at: [("multiply", "a", "b")],
    "div": lambda at: [("divide", "a", "b")],
    "neg": lambda at: [("negative", "a")],
    "pow": lambda at: [("power", "a", at["p"])],
    "exp": lambda at: [("exp", "a")],
    "log": lambda at: [("log", "a")],
    "sqrt": lambda at: [("sqrt", "a")],
    "max": lambda at: [("maximum", "a", at["c"])],
    "min": lambda at: [("minimum", "a", at["c"])],
    "relu": lambda at: [("maximum", "a", 0.0)],
    # (1 + tanh(a/2)) / 2 is 1 / (1 + exp(-a)) and never overflows
    "sigmoid": lambda at: [("multiply", "a", 0.5), ("tanh", "y"), ("add", "y", 1.0), ("multiply", "y", 0.5)],
    "tanh": lambda at: [("tanh", "a")],
    "matmul": lambda at: [("dot", "a", "b")],  # (N, in) @ (in, out) -> (N, out)
    "transpose": lambda at: [("copy", "a.T")],
    "identity": lambda at: [("copy", "a")],
}

# Per operand: g times the local derivative (into d); an empty program passes g on unchanged.
VJP: dict[str, Callable[[Mapping[str, Any]], tuple[Sequence[Instr], ...]]] = {
    "add": lambda at: ((), ()),  # the gradient passes on unchanged
    "sub": lambda at: ((), [("negative", "g")]),
    "mul": lambda at: ([("multiply", "g", "b")], [("multiply", "g", "a")]),  # times the *other* input
    "div": lambda at: ([("divide", "g", "b")],
                       [("multiply", "g", "y"), ("divide", "d", "b"), ("negative", "d")]),  # −g·a/b² = −g·y/b
    "neg": lambda at: ([("negative", "g")],),
    "pow": lambda at: ([("power", "a", at["p"] - 1), ("multiply", "d", at["p"]), ("multiply", "d", "g")],),
    "exp": lambda at: ([("multiply", "g", "y")],),  # exp(a) is y, kept from the forward pass
    "log": lambda at: ([("divide", "g", "a")],),
    "sqrt": lambda at: ([("divide", "g", "y"), ("multiply", "d", 0.5)],),
    "max": lambda at: ([("greater", "a", at["c"]), ("multiply", "d", "g")],),
    "min": lambda at: ([("less", "a", at["c"]), ("multiply", "d", "g")],),
    "relu": lambda at: ([("greater", "y", 0.0), ("multiply", "d", "g")],),
    "sigmoid": lambda at: ([("subtract", 1.0, "y"), ("multiply", "d", "y"), ("multiply", "d", "g")],),  # y(1 − y)
    "tanh": lambda at: ([("multiply", "y", "y"), ("subtract", 1.0, "d"), ("multiply", "d", "g")],),  # 1 − y²
    "matmul": lambda at: ([("dot", "g", "b.T")], [("dot", "a.T", "g")]),  # dX = dY Wᵀ, dW = Xᵀ dY
    "transpose": lambda at: ([("copy", "g.T")],),
    "identity": lambda at: ((),),
}


def _operand(token: Any, bind: Mapping[str, Any]) -> Any:
    if not isinstance(token, str):
        return token
    if token.endswith(".T"):
        return np.asarray(bind[token[:-2]]).T
    return bind[token]


def execute(program: Sequence[Instr], bind: dict[str, Any], into: str) -> np.ndarray:
    """Run a program on arrays; `into` ("y" or "d") names its result, which later steps may read."""
    for fn, *args in program:
        xs = [_operand(a, bind) for a in args]
        if fn == "copy":
            bind[into] = np.array(xs[0], copy=True)
        elif fn == "dot":
            bind[into] = np.dot(*xs)
        else:
            bind[into] = getattr(np, fn)(*xs)
    return bind[into]
