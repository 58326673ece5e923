"""A graph as typed values: frozen dataclasses made from the validated `graph` member of an IR document."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from specc.source import Span


def _span(d: Mapping | None) -> Span | None:
    return Span.from_json(d) if d else None


@dataclass(frozen=True)
class GraphInput:
    name: str
    value: np.ndarray  # float64; 0-d for a scalar
    span: Span | None = None
    name_span: Span | None = None


@dataclass(frozen=True)
class Node:
    id: str  # a `let` name, or "#3" for a part of an expression
    op: str  # a key of specc.graph.ops.OPS, or "const"
    operands: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    value: float | None = None  # of a const node
    span: Span | None = None
    name_span: Span | None = None  # where a `let` names it
    operand_spans: tuple[Span | None, ...] = ()

    @property
    def named(self) -> bool:
        return not self.id.startswith("#")


@dataclass(frozen=True)
class Graph:
    inputs: tuple[GraphInput, ...]
    nodes: tuple[Node, ...]
    output: str
    source: str | None = None

    def input(self, name: str) -> GraphInput | None:
        return next((i for i in self.inputs if i.name == name), None)


def input_value(value: Any) -> np.ndarray:
    """A number, nested lists, or {"fill": "randn", "shape": [2, 3], "seed": 0, "scale": 1.0}."""
    if not isinstance(value, dict):
        return np.array(value, dtype=np.float64)
    shape = tuple(value["shape"])
    rng = np.random.default_rng(value.get("seed", 0))
    fills = {"randn": lambda: rng.standard_normal(shape), "rand": lambda: rng.random(shape),
             "zeros": lambda: np.zeros(shape), "ones": lambda: np.ones(shape)}
    return fills[value["fill"]]() * value.get("scale", 1.0)


def from_json(doc: Mapping[str, Any]) -> Graph:
    """Typed graph from a schema-valid IR document that has a `graph` member."""
    g = doc["graph"]
    inputs = tuple(GraphInput(i["name"], input_value(i["value"]), _span(i.get("span")), _span(i.get("name_span")))
                   for i in g["inputs"])
    nodes = tuple(Node(n["id"], n["op"], tuple(n["operands"]), dict(n.get("attrs", {})), n.get("value"),
                       _span(n.get("span")), _span(n.get("name_span")),
                       tuple(_span(sp) for sp in n.get("operand_spans", ())))
                  for n in g["nodes"])
    return Graph(inputs, nodes, g["output"], doc.get("source"))
