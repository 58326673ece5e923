"""`specc explain NAME`: a built-in layer's definition from the prelude, worked as the chapter works it:
its expression made a computational graph at a sample input, evaluated forward, then backward node by
node (specc.graph.evaluate, the machinery of `specc grad`), checked against central differences and
against the built-in's hand-written backward."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from specc import syntax as s
from specc.errors import Diagnostic, UsageError
from specc.expr import prelude
from specc.expr.derive import INPUT, nodes_of, params_of
from specc.expr.lower import lower_expression
from specc.graph.check import check_graph
from specc.graph.evaluate import Check, Evaluation, evaluate, numeric_checks
from specc.graph.ir import Graph, GraphInput
from specc.layers.base import Runtime
from specc.layers.expression import ExpressionLayer, layer_type
from specc.layers.registry import REGISTRY
from specc.source import Source
from specc.suggest import did_you_mean

# The sample: a batch of two samples of two features (the chapter's ReLU example), and for Affine the
# first layer of the book's three-layer network (W1, b1 of chapter 3).
SAMPLE_X = np.array([[1.0, -0.5], [-2.0, 3.0]])
SAMPLE_PARAMS = {"W": np.array([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]), "b": np.array([0.1, 0.2, 0.3])}


@dataclass(frozen=True)
class Explanation:
    name: str
    definition: s.LayerDef
    evaluation: Evaluation  # the definition's graph at the sample, forward and backward (upstream ones)
    checks: tuple[Check, ...]  # each gradient against central differences
    builtin: dict[str, np.ndarray]  # the hand-written backward's gradients at the same sample (x and params)
    source: Source  # the prelude

    @property
    def agreement(self) -> float:
        """The largest difference between the derived gradients and the built-in's hand-written ones."""
        grads = self.evaluation.gradients
        return max(float(np.max(np.abs(grads[k] - v))) for k, v in self.builtin.items())


def arguments(d: s.LayerDef) -> dict[str, Any]:
    return {p.name: p.default.value for p in d.params if isinstance(p.default, s.Number)}


def definition(name: str) -> s.LayerDef:
    defs = prelude.definitions()
    if name not in defs:
        raise UsageError([Diagnostic(
            f"the prelude has no definition of '{name}'", None, "unknown-layer",
            hint=did_you_mean(name, defs) or f"explained layers: {', '.join(defs)}")])
    return defs[name]


def prelude_layer(name: str, in_shape: tuple[int, ...], args: dict[str, Any] | None = None) -> ExpressionLayer:
    """The prelude's definition of a built-in as an expression layer (its arguments' defaults, or `args`)."""
    d = definition(name)
    bound = {**arguments(d), **(args or {})}
    member, found = lower_expression(d, {k: (v, d.span) for k, v in bound.items()})
    if member is None:  # the prelude ships with specc; a test keeps it free of errors
        raise RuntimeError(f"the prelude's {name} does not lower: {[f.message for f in found]}")
    return layer_type(name, member, tuple(bound))(bound, in_shape)


def explain(name: str) -> Explanation:
    d = definition(name)
    layer = prelude_layer(name, SAMPLE_X.shape[1:])
    member = layer.expression
    rng = np.random.default_rng(0)
    params = {p.name: SAMPLE_PARAMS.get(p.name, rng.standard_normal(p.shape))
              for p in params_of(member, layer.in_shape)}
    spans = {p["name"]: p.get("span") for p in member["params"]}
    inputs = (GraphInput(INPUT, SAMPLE_X, d.name_span, d.name_span),
              *(GraphInput(k, v, _span(spans[k]), _span(spans[k])) for k, v in params.items()))
    checked = check_graph(Graph(inputs, nodes_of(member), member["output"], prelude.PRELUDE))
    ev = evaluate(checked)
    builtin = REGISTRY[name]({**arguments(d)} if name != "Affine" else
                             {"in": None, "init": "auto", **arguments(d)}, layer.in_shape)
    y, back = builtin.forward(params, SAMPLE_X, True, Runtime(np.random.default_rng(0), {}))
    dx, grads = back(np.ones_like(y))
    return Explanation(name, d, ev, numeric_checks(ev), {INPUT: dx, **grads}, prelude.source())


def _span(d: Any):
    from specc.source import Span
    return Span.from_json(d) if d else None
