"""What `specc grad` shows: the backward pass node by node (rich tables) and the same as a JSON document."""
from __future__ import annotations

import re
from typing import Any

import numpy as np
from rich.table import Table
from rich.text import Text

from specc.diagnostics import count
from specc.graph.check import CheckedGraph
from specc.graph.evaluate import Check, Evaluation
from specc.graph.ir import Node
from specc.graph.ops import OPS, fmt
from specc.source import Source


def describe(checked: CheckedGraph) -> str:
    """'graph: 3 inputs, 2 operations, output price (a scalar)' and its warnings' count."""
    g = checked.graph
    ops = sum(n.op not in ("const", "identity") for n in g.nodes)
    warned = f"; {count(checked.warnings)}" if checked.warnings else ""
    return (f"graph: {len(g.inputs)} input{'s' * (len(g.inputs) != 1)}, {ops} operation{'s' * (ops != 1)}, "
            f"output {g.output} {fmt(checked.output_shape)}{warned}")


def show(value: np.ndarray, precise: bool = False) -> str:
    """A value as the book prints it with `precise` (repr of each float64: 220.00000000000003), else rounded."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        return repr(float(v)) if precise else f"{float(v):.6g}"
    if precise:
        return np.array2string(v, separator=", ", max_line_width=60, formatter={"float_kind": lambda x: repr(float(x))})
    return np.array2string(v, separator=", ", precision=4, suppress_small=True, max_line_width=60)


def label(node: Node, source: Source | None) -> str:
    """A node as the user wrote it: its `let` name, or the text of its expression."""
    if node.named:
        return node.id
    sp = node.span
    if source is not None and sp is not None and sp.line == sp.end_line:
        return source.line(sp.line)[sp.col - 1:sp.end_col - 1]
    return node.id


def _operand_names(ev: Evaluation, node: Node, source: Source | None) -> list[str]:
    by_id = {n.id: n for n in ev.checked.graph.nodes}
    names = []
    for o in node.operands:
        n = by_id.get(o)
        names.append(show(ev.values[o]) if n is not None and n.op == "const"
                     else (label(n, source) if n is not None else o))
    return names


def _rule(rule: str, names: list[str], node: Node) -> str:
    """The local derivative in words with the operands' names for a and b (and the exponent for p)."""
    names = [f"({n})" if " " in n else n for n in names]
    if node.op == "pow":
        p = node.attrs["p"]
        rule = f"{p}·a" if p == 2 else f"{p}·a^{p - 1:g}"
    table = {"a": names[0], "b": names[1] if len(names) > 1 else "b"}
    return re.sub(r"\b[ab]\b", lambda m: table[m.group(0)], rule)


def backward_table(ev: Evaluation, source: Source | None, precise: bool = False) -> Table:
    graph = ev.checked.graph
    t = Table(title=f"backward from {graph.output} (upstream gradient "
                    f"{'1' if not ev.output.shape else 'ones'}), node by node", title_justify="left")
    for name in ("node", "op", "line", "forward value", "upstream gradient", "local derivative", "sends back"):
        t.add_column(name, justify="right" if name == "line" else "left", overflow="fold")
    by_id = {n.id: n for n in graph.nodes}
    for step in ev.steps:
        n = step.node
        names = _operand_names(ev, n, source)
        locals_, sends = [], []
        for s, name in zip(step.sent, names):
            if s.operand in by_id and by_id[s.operand].op == "const":
                continue
            rule = _rule(s.rule, names, n)
            value = f" = {show(s.local, precise)}" if s.local is not None and show(s.local) != rule else ""
            locals_.append(f"∂/∂{name}: {rule}{value}")
            sends.append(f"{name}: {show(s.gradient, precise)}")
        t.add_row(label(n, source), f"{OPS[n.op].symbol} {n.op}", str(n.span.line) if n.span else "",
                  show(step.value, precise), show(step.upstream, precise), "\n".join(locals_), "\n".join(sends))
    return t


def gradients_table(ev: Evaluation, checks: tuple[Check, ...] | None, precise: bool = False) -> Table:
    out = ev.checked.graph.output
    t = Table(title=f"{out} = {show(ev.output, precise)}; its gradient by each input", title_justify="left")
    t.add_column("input")
    t.add_column("value", overflow="fold")
    t.add_column(f"d{out}/d(input)", overflow="fold")
    if checks is not None:
        t.add_column("central difference", overflow="fold")
        t.add_column("max abs error", justify="right")
        t.add_column("check")
    for i in ev.checked.graph.inputs:
        row = [i.name, show(i.value, precise), show(ev.gradients[i.name], precise)]
        if checks is not None:
            c = next(c for c in checks if c.name == i.name)
            row += [show(c.numeric), f"{c.max_abs:.1e}"]
            t.add_row(*row, Text("PASS", style="green") if c.passed else Text("FAIL", style="bold red"))
        else:
            t.add_row(*row)
    return t


def to_json(ev: Evaluation, checks: tuple[Check, ...] | None, source: Source | None = None) -> dict[str, Any]:
    """`{"output": {"name", "value"}, "gradients": {input: value}, "nodes": [...], "check": ...}`, arrays as lists."""
    graph = ev.checked.graph
    by_id = {n.id: n for n in graph.nodes}
    nodes = [{"id": s.node.id, "op": s.node.op, "expression": label(s.node, source),
              "line": s.node.span.line if s.node.span else None,
              "value": s.value.tolist(), "upstream": s.upstream.tolist(),
              "sent": {x.operand: x.gradient.tolist() for x in s.sent
                       if not (x.operand in by_id and by_id[x.operand].op == "const")}}
             for s in ev.steps]
    doc: dict[str, Any] = {"output": {"name": graph.output, "value": ev.output.tolist()},
                           "gradients": {k: v.tolist() for k, v in ev.gradients.items()}, "nodes": nodes}
    doc["check"] = None if checks is None else {
        c.name: {"numeric": c.numeric.tolist(), "max_abs_error": c.max_abs, "passed": c.passed} for c in checks}
    return doc
