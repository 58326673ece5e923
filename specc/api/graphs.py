"""Computational graphs and explained built-ins: evaluation, drawing, explanation."""
from __future__ import annotations

import dataclasses

from specc.api.front import (
    check_any,
    check_graph,
    summary,
)
from specc.errors import SpecError
from specc.expr.explain import Explanation
from specc.expr.explain import explain as explain_layer
from specc.graph.check import CheckedGraph
from specc.graph.draw import Drawing, draw_graph, draw_pipeline
from specc.graph.evaluate import Evaluation as GraphEvaluation
from specc.graph.evaluate import evaluate as evaluate_graph
from specc.source import Source


def graph_evaluation(source: Source) -> GraphEvaluation:
    """A graph evaluated forward and backward (SpecError at the node if log or sqrt gets a non-positive value)."""
    checked = check_graph(source)
    try:
        return evaluate_graph(checked)
    except SpecError as e:
        raise SpecError(e.diagnostics, source) from None


def drawing(source: Source) -> Drawing:
    """The drawing of a computational graph (with its values and gradients) or of a layer pipeline."""
    checked = check_any(source)
    if isinstance(checked, CheckedGraph):
        return draw_graph(graph_evaluation(source), source)
    return dataclasses.replace(draw_pipeline(summary(checked), source.name), warnings=checked.warnings)


def explanation(name: str) -> Explanation:
    """A built-in layer's prelude definition worked at a sample input (UsageError for a name it lacks)."""
    return explain_layer(name)


def explanation_drawing(ex: Explanation) -> Drawing:
    """The graph of an explanation, with its forward values and gradients, as `specc draw` draws graphs."""
    return draw_graph(ex.evaluation, ex.source)
