"""Checking a graph: every operand defined before its use, every shape inferred (NumPy's broadcasting),
and warnings for inputs and values that the output does not depend on."""
from __future__ import annotations

from dataclasses import dataclass, field

from specc.errors import Diagnostic, Label, SpecError
from specc.graph.ir import Graph, Node
from specc.graph.ops import OPS, GraphShapeError, Shape, fmt


@dataclass(frozen=True)
class CheckedGraph:
    graph: Graph
    shapes: dict[str, Shape]  # every input's and node's id -> its shape
    warnings: tuple[Diagnostic, ...] = field(default=())

    @property
    def output_shape(self) -> Shape:
        return self.shapes[self.graph.output]


def check_graph(graph: Graph) -> CheckedGraph:
    """Infer every shape; raise SpecError with every problem found (warnings beside them)."""
    errors: list[Diagnostic] = []
    shapes: dict[str, Shape] = {i.name: tuple(i.value.shape) for i in graph.inputs}
    failed: set[str] = set()
    for n in graph.nodes:
        missing = [o for o in n.operands if o not in shapes and o not in failed]
        if n.id in shapes or n.id in failed:
            errors.append(Diagnostic(f"'{n.id}' is defined twice", n.name_span or n.span, "duplicate-name"))
        if missing:
            errors.append(Diagnostic(f"'{n.id}' uses '{missing[0]}', which is not defined before it", n.span,
                                     "undefined-name", path=()))
            failed.add(n.id)
            continue
        if any(o in failed for o in n.operands):
            failed.add(n.id)
            continue
        if n.op == "const":
            shapes[n.id] = ()
            continue
        try:
            shapes[n.id] = OPS[n.op].shape(tuple(shapes[o] for o in n.operands), n.attrs)
        except GraphShapeError as e:
            errors.append(_shape_error(n, e, shapes))
            failed.add(n.id)
    if graph.output not in shapes and graph.output not in failed:
        errors.append(Diagnostic(f"the output '{graph.output}' is not defined", None, "undefined-name"))
    warnings = _unused(graph) if graph.output in shapes else []
    if errors:
        raise SpecError(errors + warnings)
    return CheckedGraph(graph, shapes, tuple(warnings))


def _shape_error(n: Node, e: GraphShapeError, shapes: dict[str, Shape]) -> Diagnostic:
    spans = n.operand_spans or (None,) * len(n.operands)
    notes = tuple(Label(sp, fmt(shapes[o])) for i, (o, sp) in enumerate(zip(n.operands, spans))
                  if sp is not None and (e.operand is None or e.operand == i))
    return Diagnostic(e.message, n.span, "shape", hint=e.hint, notes=notes)


def depends(graph: Graph) -> set[str]:
    """The ids the output depends on (itself included)."""
    by_id = {n.id: n for n in graph.nodes}
    seen: set[str] = set()
    todo = [graph.output]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        todo += list(by_id[i].operands) if i in by_id else []
    return seen


def _unused(graph: Graph) -> list[Diagnostic]:
    used = depends(graph)
    out = [Diagnostic(f"the output '{graph.output}' does not depend on input '{i.name}'; its gradient is 0",
                      i.name_span, "unused-input", "not used by the output",
                      hint="use it in the output's expression, or remove it", severity="warning")
           for i in graph.inputs if i.name not in used]
    out += [Diagnostic(f"the output '{graph.output}' does not use '{n.id}'", n.name_span, "unused-value",
                       "never used", hint="use it, or remove the `let`", severity="warning")
            for n in graph.nodes if n.named and n.id not in used]
    return out
