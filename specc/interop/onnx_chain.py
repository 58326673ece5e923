"""The state of translating an ONNX chain into specc layers (Chain): the layers so far, the current value's
shape, the node parts each operator reads, and the refusal, with the node and why, of what specc cannot express."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from specc import layers as registry
from specc.errors import Diagnostic, SpecError
from specc.layers.base import Shape, ShapeError
from specc.text import shape_text


@dataclass
class Layer:
    """One layer to write: its type, the arguments a person would write, and its arrays by base name."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    node: str = ""  # the node it came from, for messages
    out_shape: Shape = ()
    in_shape: Shape = ()
    open_bias: bool = False  # a MatMul's Affine: an Add right after it is its bias
    definition: str = ""  # a layer written as an expression: `layer Expr1 = x * sigmoid(x)`


class Chain:
    """Translation state: the per-sample shape of the current value and the layers so far."""

    def __init__(self, onnx: Any, model: Any, name: str):
        self.onnx, self.model, self.name = onnx, model, name
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.constants: dict[str, np.ndarray] = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self.constants[node.output[0]] = self._constant_value(node)
        self.layers: list[Layer] = []
        self.notes: list[str] = []
        self.chain: list[Any] = []  # the nodes from the input to the output, in order
        self.shape: Shape = ()
        self.input_shape: Shape = ()
        self.channels_last: Shape | None = None  # (C, H, W) of an image a Transpose made (H, W, C)

    # --- messages ------------------------------------------------------------------------
    def refuse(self, node: Any, why: str, hint: str | None = None) -> SpecError:
        return SpecError([Diagnostic(f"{label(node)}: {why}", None, "onnx-unsupported", hint=hint)],
                         name=self.name)

    def _constant_value(self, node: Any) -> np.ndarray:
        for a in node.attribute:
            if a.name == "value":
                return self.onnx.numpy_helper.to_array(a.t)
            if a.name in ("value_float", "value_int"):
                return np.array(self.onnx.helper.get_attribute_value(a))
            if a.name in ("value_floats", "value_ints"):
                return np.array(list(self.onnx.helper.get_attribute_value(a)))
        raise self.refuse(node, "a Constant of a kind specc does not read (sparse or string)")

    # --- node parts ----------------------------------------------------------------------
    def attrs(self, node: Any) -> dict[str, Any]:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def const(self, node: Any, position: int, what: str, required: bool = True) -> np.ndarray | None:
        """The constant at input `position` of a node (an initializer or a Constant's output)."""
        if position >= len(node.input) or not node.input[position]:
            if required:
                raise self.refuse(node, f"it has no {what}")
            return None
        name = node.input[position]
        if name not in self.constants:
            raise self.refuse(node, f"its {what} '{name}' is computed, not a constant (an initializer)",
                              "specc imports weights stored in the model; a branch that computes them is not a chain")
        return self.constants[name]

    def weights(self, node: Any, position: int, what: str, shape: Shape | None = None) -> np.ndarray:
        value = self.const(node, position, what)
        assert value is not None
        if value.dtype.kind != "f":
            raise self.refuse(node, f"its {what} holds {value.dtype} values, not floating-point numbers")
        if shape is not None and value.shape != shape:
            raise self.refuse(node, f"its {what} is {dims(value.shape)}, where {dims(shape)} was expected")
        return value.astype(np.float32)

    def add(self, node: Any, kind: str, args: dict[str, Any] | None = None,
            arrays: dict[str, np.ndarray] | None = None) -> Layer:
        """A layer after the current value; its output shape by specc's own shape rule."""
        cls = registry.lookup(kind)
        assert cls is not None
        args = dict(args or {})
        full = {a.name: args[a.name] if a.name in args else a.default_for(args) for a in cls.signature}
        try:
            out = cls(full, self.shape).out_shape
        except ShapeError as e:
            raise self.refuse(node, f"as specc's {kind}: {e.message}", e.hint) from None
        layer = Layer(kind, args, dict(arrays or {}), label(node), out, self.shape)
        self.layers.append(layer)
        self.shape = out
        return layer

    def image(self, node: Any) -> tuple[int, int, int]:
        if len(self.shape) != 3:
            raise self.refuse(node, f"it reads a value of shape {batched(self.shape)}; specc's image layers "
                                    "read (N, C, H, W)")
        c, h, w = self.shape
        return c, h, w

    def window(self, node: Any, a: dict[str, Any], kernel: tuple[int, ...], what: str) -> tuple[int, int, int]:
        """(k, stride, pad) of a square window with the same stride and pad on every side, or refused."""
        c, h, w = self.image(node)
        if len(kernel) != 2 or kernel[0] != kernel[1]:
            raise self.refuse(node, f"its {what} is {dims(kernel)}; specc's windows are square (k x k)")
        k = int(kernel[0])
        strides = [int(s) for s in a.get("strides", [1, 1])]
        if len(set(strides)) != 1:
            raise self.refuse(node, f"its strides are {strides}; specc's stride is the same on both axes")
        if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
            raise self.refuse(node, f"its dilations are {list(a['dilations'])}; specc has no dilated windows")
        s = strides[0]
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            totals = {(-(-n // s) - 1) * s + k - n for n in (h, w)}
            if len(totals) != 1 or min(totals) % 2:
                raise self.refuse(node, f"auto_pad={auto} pads unevenly here; specc pads every side alike")
            pads = [max(0, min(totals)) // 2] * 4
        elif auto == "VALID":
            pads = [0, 0, 0, 0]
        else:
            pads = [int(p) for p in a.get("pads", [0, 0, 0, 0])]
        if len(set(pads)) != 1:
            raise self.refuse(node, f"its pads are {pads} (top, left, bottom, right); specc pads every side alike",
                              "asymmetric padding has no specc form")
        return k, s, pads[0]


def label(node: Any) -> str:
    return f"node '{node.name}' ({node.op_type})" if node.name else f"a {node.op_type} node"


def dims(shape: Shape) -> str:
    return shape_text(shape) or "a scalar"


def batched(shape: Shape) -> str:
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"
