"""The JSON Schema of the IR's optional `graph` member (assembled into the IR schema by specc.schema)."""
from __future__ import annotations

from typing import Any

from specc.graph.inputs import FILLS
from specc.graph.ops import OPS

_SPAN = {"$ref": "#/$defs/span"}
_NAME = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}
_ID = {"type": "string", "pattern": "^([A-Za-z_][A-Za-z0-9_]*|#[0-9]+)$"}


def graph_defs() -> dict[str, Any]:
    """The `$defs` entries of a graph: graph, graph.input, graph.node, graph.array."""
    return {
        "graph": {
            "description": "a computational graph (a file of `input NAME = ...`, `let` and `output`); "
                           "a document with a graph has no layers",
            "type": "object", "required": ["inputs", "nodes", "output"], "additionalProperties": False,
            "properties": {"inputs": {"type": "array", "items": {"$ref": "#/$defs/graph.input"}},
                           "nodes": {"type": "array", "items": {"$ref": "#/$defs/graph.node"}},
                           "output": {**_NAME, "description": "the value differentiated: the id of a node"}}},
        "graph.array": {"description": "an array written as nested lists of numbers", "type": "array",
                        "minItems": 1,
                        "items": {"anyOf": [{"type": "number"}, {"$ref": "#/$defs/graph.array"}]}},
        "graph.input": {
            "description": "a named input and its value: a number, nested lists, or a seeded fill",
            "type": "object", "required": ["name", "value"], "additionalProperties": False,
            "properties": {
                "name": _NAME, "span": _SPAN, "name_span": _SPAN,
                "value": {"anyOf": [
                    {"type": "number"}, {"$ref": "#/$defs/graph.array"},
                    {"type": "object", "required": ["fill", "shape"], "additionalProperties": False,
                     "properties": {"fill": {"enum": list(FILLS)},
                                    "shape": {"type": "array", "maxItems": 4,
                                              "items": {"type": "integer", "minimum": 1, "maximum": 1_000_000}},
                                    "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
                                    "scale": {"type": "number"}}}]}}},
        "graph.node": {
            "description": "one operation; its operands are ids of inputs and of nodes before it",
            "type": "object", "required": ["id", "op", "operands"], "additionalProperties": False,
            "properties": {
                "id": _ID, "op": {"enum": [*OPS, "const"]},
                "operands": {"type": "array", "maxItems": 2, "items": _ID},
                "attrs": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
                "value": {"type": "number", "description": "the value of a const node"},
                "span": _SPAN, "name_span": _SPAN,
                "operand_spans": {"type": "array", "items": _SPAN}}},
    }
