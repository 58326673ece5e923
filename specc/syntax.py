"""The syntax tree that parse produces: plain frozen nodes that compare by value, spans aside."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from specc.source import Span

_NOWHERE = Span(0, 0, 0, 0)


def _span() -> Span:
    # Spans never take part in equality, so parser tests can compare trees written by hand.
    return field(default=_NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Number:
    value: int | float
    span: Span = _span()


@dataclass(frozen=True)
class String:
    value: str
    span: Span = _span()


@dataclass(frozen=True)
class Name:
    name: str
    span: Span = _span()


@dataclass(frozen=True)
class Arg:
    """`value` (positional, key None) or `key = value`."""

    key: str | None
    value: "Value"
    span: Span = _span()
    key_span: Span = _span()


@dataclass(frozen=True)
class Call:
    """`Name` or `Name(args)`: a layer or block in a chain, or a call-like value (`Adam(lr=0.1)`)."""

    name: str
    args: tuple[Arg, ...] = ()
    span: Span = _span()
    name_span: Span = _span()


Value = Union[Number, String, Name, Call]


@dataclass(frozen=True)
class Repeat:
    """`item * count`."""

    body: "Item"
    count: Number
    span: Span = _span()


@dataclass(frozen=True)
class Chain:
    """`item -> item -> ...`; a parenthesised chain is an item of its own."""

    items: tuple["Item", ...]
    span: Span = _span()


Item = Union[Call, Repeat, Chain]


@dataclass(frozen=True)
class Input:
    dims: tuple[int, ...]
    span: Span = _span()


@dataclass(frozen=True)
class BlockParam:
    name: str
    default: Value | None = None
    span: Span = _span()


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[BlockParam, ...]
    body: Chain
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class SettingDef:
    key: str
    value: Value
    span: Span = _span()
    key_span: Span = _span()


@dataclass(frozen=True)
class TrainDef:
    settings: tuple[SettingDef, ...]
    span: Span = _span()


@dataclass(frozen=True)
class NetworkDef:
    chain: Chain
    span: Span = _span()


# --- computational graphs (evaluated, differentiated and drawn by specc.graph) ---------------

@dataclass(frozen=True)
class Array:
    """`[1.0, -0.5]` or `[[1.0, -0.5], [-2.0, 3.0]]`: items are Numbers or Arrays."""

    items: tuple["Number | Array", ...]
    span: Span = _span()


@dataclass(frozen=True)
class GraphInput:
    """`input x = 2`, `input x = [[...]]` or `input x = randn(2, 3, seed=0)` (a Call)."""

    name: str
    value: "Number | Array | Call"
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class Ref:
    """A name used in an expression."""

    name: str
    span: Span = _span()


@dataclass(frozen=True)
class BinOp:
    """`left op right`, op one of + - * / @ **."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Keyword:
    key: str
    value: "Expr"
    span: Span = _span()
    key_span: Span = _span()


@dataclass(frozen=True)
class Apply:
    """`exp(x)`, `sum(x, axis=0)`, `max(x, 0)`."""

    func: str
    args: tuple["Expr", ...] = ()
    keywords: tuple[Keyword, ...] = ()
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class Attribute:
    """`x.T`."""

    base: "Expr"
    name: str
    span: Span = _span()
    name_span: Span = _span()


Expr = Union[Number, Ref, BinOp, Neg, Apply, Attribute]


@dataclass(frozen=True)
class GraphValue:
    """`let t = expr`, or the graph's `output z = expr`."""

    name: str
    expr: Expr
    output: bool = False
    span: Span = _span()
    name_span: Span = _span()


# --- layers written as expressions (derived and compiled by specc.expr) ------------------------

@dataclass(frozen=True)
class Dim:
    """One dimension of a parameter's shape: a size (`50`) or a name (`in`, or an argument `n`)."""

    value: int | float | str
    span: Span = _span()


@dataclass(frozen=True)
class ParamDecl:
    """`param W[in, n] = he` inside a layer definition."""

    name: str
    dims: tuple[Dim, ...]
    init: Value
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class LayerDef:
    """`layer Swish = x * sigmoid(x)`, or `layer Dense(n) { param ...; let ...; y = ... }`: the body's
    values are GraphValues, the one with `output` set is `y`."""

    name: str
    params: tuple[BlockParam, ...]
    body: tuple[ParamDecl | GraphValue, ...]
    span: Span = _span()
    name_span: Span = _span()


Statement = Union[Input, BlockDef, TrainDef, NetworkDef, GraphInput, GraphValue, LayerDef]


@dataclass(frozen=True)
class Module:
    statements: tuple[Statement, ...]
