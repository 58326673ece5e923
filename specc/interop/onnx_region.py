"""Element-wise regions of an ONNX graph as expression layers. Where a value branches and the branches
join again (Swish's x * sigmoid(x), GELU's polynomial), or where the chain meets an element-wise
operator that no layer of specc's stands for (Exp, Pow, Div, ...), the nodes from that value to the
first value every branch flows into become one `layer ExprK = <an expression of x>`, whose backward
specc derives as for any layer written so:

    Add Sub Mul Div     + - * /          Neg                 -a
    Pow (a constant)    a ** p           Max, Min (a const)  max(a, c), min(a, c)
    Exp Log Sqrt Sigmoid Tanh Relu       the function of the same name (Identity: nothing)

Their other operands are constants (initializers or Constant nodes): a scalar is written as its number,
any other as a parameter of the layer (`param p1[16] = 0`, its value imported into the checkpoint).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from specc.interop.onnx_chain import Chain, label

BINARY = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}
FUNCTIONS = {"Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu"}
ELEMENTWISE = {*BINARY, *FUNCTIONS, "Neg", "Pow", "Max", "Min", "Identity"}


@dataclass
class Region:
    """The element-wise nodes from the value `start` to the value `end`, in graph order."""

    nodes: list[Any]
    start: str
    end: str

    def then(self, after: "Region") -> None:
        """Extend this region by the one that starts where it ends (a run of element-wise operators)."""
        self.nodes += after.nodes
        self.end = after.end


def region(ch: Chain, readers: dict[str, list[Any]], start: str) -> Region | None:
    """The element-wise nodes that read `start`, and the nodes after them, up to the first value into which
    every branch from `start` has flowed; None where a node on the way is not element-wise or reads a
    value computed outside the region."""
    taken: list[Any] = []
    live = [start]
    first = readers[start][0]
    nodes = list(ch.model.graph.node)
    for node in nodes[next(k for k, n in enumerate(nodes) if n is first):]:
        computed = [i for i in node.input if i and i not in ch.constants]
        if not any(i in live for i in computed):
            continue
        if node.op_type not in ELEMENTWISE or node.domain not in ("", "ai.onnx") or len(node.output) != 1 \
                or any(i not in live for i in computed):
            return None
        taken.append(node)
        live.append(node.output[0])
        ids = {id(n) for n in taken}
        if all(id(r) in ids for v in live[:-1] for r in readers.get(v, [])):  # one value left open: the end
            return Region(taken, start, node.output[0])
    return None


def expression(ch: Chain, r: Region, shape: tuple[int, ...]) -> tuple[str, list[str], dict[str, np.ndarray]]:
    """The region as an expression of x (per-sample shape `shape`), parenthesised once per operator, with
    `let` statements for the values read more than once (t1, t2, ...); its scalar constants as numbers,
    the others as parameters p1, p2, ... (their values returned by name)."""
    text = {r.start: "x"}
    params: dict[str, np.ndarray] = {}
    lets: list[str] = []
    reads: dict[str, int] = {}
    for node in r.nodes:
        for i in dict.fromkeys(node.input):
            reads[i] = reads.get(i, 0) + 1
    for node in r.nodes:
        op = node.op_type
        # the operands: the region's values, and constants (a number, or a parameter where an array may go)
        ops = [text[i] if i in text else _number(ch, node, i) if op in ("Pow", "Max", "Min")
               else _constant(ch, node, i, shape, params) for i in node.input if i]
        if op in BINARY:
            t = f"({ops[0]} {BINARY[op]} {ops[1]})"
        elif op in FUNCTIONS:
            t = f"{FUNCTIONS[op]}({_bare(ops[0])})"
        elif op == "Neg":
            t = f"(-{ops[0]})"
        elif op == "Pow":
            if node.input[1] in text:
                raise ch.refuse(node, "a power whose exponent is computed; specc's ** takes a constant exponent")
            t = f"({ops[0]} ** {ops[1]})"
        elif op in ("Max", "Min"):
            constants = [i for i in node.input if i not in text]
            if len(node.input) != 2 or len(constants) != 1:
                raise ch.refuse(node, f"{op} of {len(node.input)} inputs; specc's {op.lower()}(a, c) takes a value "
                                      "and a constant")
            value = next(text[i] for i in node.input if i in text)
            t = f"{op.lower()}({_bare(value)}, {_number(ch, node, constants[0])})"
        else:  # Identity
            t = ops[0]
        out = node.output[0]
        if reads.get(out, 0) > 1 and out != r.end:  # named once, not written out at every use
            lets.append(f"let t{len(lets) + 1} = {_bare(t)}")
            t = f"t{len(lets)}"
        text[out] = t
    return _bare(text[r.end]), lets, params


def _constant(ch: Chain, node: Any, name: str, shape: tuple[int, ...], params: dict[str, np.ndarray]) -> str:
    """A scalar constant as its number; another as a parameter of its per-sample shape (a leading axis
    of 1, ONNX's batch, dropped), which must broadcast against the value's."""
    value = ch.constants[name]
    if value.size == 1:
        return _number(ch, node, name)
    per_sample = value.shape[1:] if value.ndim > len(shape) and value.shape[0] == 1 else value.shape
    if value.dtype.kind != "f" or len(per_sample) > len(shape) or any(
            d not in (1, s) for d, s in zip(per_sample[::-1], shape[::-1])):
        raise ch.refuse(node, f"its constant '{name}' has shape {list(value.shape)}, which a sample of shape "
                              f"{list(shape)} does not broadcast with")
    key = f"p{len(params) + 1}"
    params[key] = value.reshape(per_sample).astype(np.float32)
    return key


def _bare(text: str) -> str:
    """`text` without the parentheses around all of it (an argument, or the whole expression)."""
    return text[1:-1] if text.startswith("(") and _closes_at_end(text) else text


def _number(ch: Chain, node: Any, name: str) -> str:
    value = ch.constants[name]
    if value.size != 1 or value.dtype.kind not in "fiu":
        raise ch.refuse(node, f"its constant '{name}' has shape {list(value.shape)}; specc's ** takes one number "
                              "as its exponent, and max(a, c) and min(a, c) one number as c")
    if value.dtype.kind != "f":
        return str(int(value.reshape(())))
    return repr(float(str(np.float32(value.reshape(())))))  # float32's shortest decimal: 0.044715


def _closes_at_end(text: str) -> bool:
    """Whether the parenthesis that opens `text` is the one that closes it."""
    depth = 0
    for k, c in enumerate(text):
        depth += c == "("
        depth -= c == ")"
        if depth == 0:
            return k == len(text) - 1
    return False


def describe(r: Region) -> str:
    """The region's nodes, for messages and the note in the written file."""
    return ", ".join(label(n) for n in r.nodes)
