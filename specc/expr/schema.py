"""The JSON Schema of an IR layer's optional `expression` member (assembled into the IR schema by specc.schema)."""
from __future__ import annotations

from typing import Any

_SPAN = {"$ref": "#/$defs/span"}
_NAME = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}


def expression_defs() -> dict[str, Any]:
    """The `$defs` entries: expression, expression.param."""
    return {
        "expression": {
            "description": "a layer written as an expression of its input x (specc.expr): its parameters and "
                           "the nodes of its expression (as in a graph), arguments already substituted",
            "type": "object", "required": ["params", "nodes", "output"], "additionalProperties": False,
            "properties": {"definition": _SPAN, "name_span": _SPAN,
                           "params": {"type": "array", "items": {"$ref": "#/$defs/expression.param"}},
                           "nodes": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/graph.node"}},
                           "output": {**_NAME, "description": "the node that is the layer's output"}}},
        "expression.param": {
            "description": "a learnable parameter: its shape (sizes, or `in`: the input's first dimension per "
                           "sample) and its initial value (a constant, or he/xavier/auto: random by the fan-in)",
            "type": "object", "required": ["name", "shape", "init"], "additionalProperties": False,
            "properties": {
                "name": _NAME,
                "shape": {"type": "array", "maxItems": 4,
                          "items": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                                              {"const": "in"}]}},
                "init": {"anyOf": [{"type": "number"}, {"enum": ["he", "xavier", "auto"]}]},
                "span": _SPAN, "dim_spans": {"type": "array", "items": _SPAN}}},
    }
