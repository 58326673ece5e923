"""ExpressionLayer: the one layer class behind every `layer` a .net file defines as an expression
(`layer Swish = x * sigmoid(x)`); `layer_type` makes a subclass per definition and use, named as written.

Its shape rule, parameters, FLOPs, reference forward/backward and generated code all read one
derivation (specc.expr.derive) of the expression at the input shape.
"""
from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import numpy as np

from specc.expr import derive as dv
from specc.layers.args import Arg
from specc.layers.base import Forward, Layer, Params, Runtime, Scratch, Shape

_RANDOM = ("he", "xavier", "auto")

if TYPE_CHECKING:
    from specc.emission import Emit


class ExpressionLayer(Layer):
    expression: ClassVar[Mapping[str, Any]]  # the IR layer's `expression` member (specc.expr.lower)
    doc = "a layer written as an expression in the .net file; its backward pass is derived"

    def infer_shape(self) -> Shape:
        self.derivation = dv.derive(self.expression, self.in_shape)
        return self.derivation.out_shape

    def _derivation(self, grad_input: bool) -> dv.Derivation:
        return self.derivation if grad_input else dv.derive(self.expression, self.in_shape, grad_input=False)

    def param_shapes(self) -> dict[str, Shape]:
        return {p.name: p.shape for p in self.derivation.params}

    def fan_in(self) -> int:
        return math.prod(next(p.shape for p in self.derivation.params if p.init in _RANDOM)[:-1]) or 1

    def param_init(self, default_init: str) -> dict[str, tuple]:
        """he / xavier / auto: normal with std sqrt(2 / fan_in) or sqrt(1 / fan_in), the fan-in being every
        axis but the last (a matrix's rows); a number: that constant."""
        out: dict[str, tuple] = {}
        for p in self.derivation.params:
            if p.init in _RANDOM:
                rule = default_init if p.init == "auto" else p.init
                fan_in = math.prod(p.shape[:-1]) or 1
                out[p.name] = ("normal", math.sqrt((2.0 if rule == "he" else 1.0) / fan_in))
            else:
                value = float(p.init)
                out[p.name] = ("zeros",) if value == 0 else ("ones",) if value == 1 else ("full", value)
        return out

    def flops(self) -> int:
        return self.derivation.flops()

    def workspace(self, grad_input: bool) -> dict[str, Scratch]:
        return dict(dv.layout(self._derivation(grad_input)).scratch)

    def describe(self) -> str:
        shown = [f"{k}={v!r}" for k, v in self.args.items()]
        return f"{self.name}({', '.join(shown)})" if shown else self.name

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        d = self.derivation
        env = dv.run_forward(d, x, p)

        def backprop(dy):
            grads = dv.run_backward(d, env, dy)
            return grads[dv.INPUT], {q.name: grads[q.name] for q in d.params}

        return env[d.output], backprop

    def emit(self, e: Emit) -> None:
        dv.emit(self._derivation(e.dx is not None), e)


_TYPES: dict[str, type[ExpressionLayer]] = {}


def layer_type(name: str, expression: Mapping[str, Any], arg_names: tuple[str, ...] = ()) -> type[ExpressionLayer]:
    """The layer class of one expression (the same class for the same expression)."""
    key = json.dumps([name, expression, arg_names], sort_keys=True)
    if key not in _TYPES:
        random = tuple(p["name"] for p in expression["params"] if p["init"] in _RANDOM)
        _TYPES[key] = type(name, (ExpressionLayer,), {
            "name": name, "expression": expression, "decays": random,
            "param_names": tuple(p["name"] for p in expression["params"]),
            "signature": tuple(Arg(a, {"type": "number"}, "a number", default=None) for a in arg_names)})
    return _TYPES[key]
