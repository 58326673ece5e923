"""Drawings as the book draws them: a computational graph (inputs on the left, circles for operations,
forward values above each edge, backward values below it in red), and a layer pipeline (one box per
layer, fused kernels grouped, the shape on every edge, parameter counts). Layered left to right by
depth; SVG written as text (specc.graph.svg) and a plain-text rendering for the terminal."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specc.errors import Diagnostic
from specc.graph import svg
from specc.graph.evaluate import Evaluation
from specc.graph.ops import OPS
from specc.graph.view import label, show
from specc.source import Source
from specc.summary import Summary
from specc.text import shape_text

FORWARD, BACKWARD = "#1f4e9c", "#c0392b"
R = 22  # a node's radius
ROW = 100  # vertical distance between nodes of one column


@dataclass(frozen=True)
class Drawing:
    svg: str
    text: str
    warnings: tuple[Diagnostic, ...] = field(default=())


def compact(value: np.ndarray) -> str:
    """An edge label: a number, a short array, or the shape of a longer one."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        return f"{float(v):.6g}"
    if v.size <= 3:
        return np.array2string(v, separator=", ", precision=3, suppress_small=True).replace("\n", "")
    return "×".join(map(str, v.shape)) + " array"


@dataclass
class _Item:
    id: str
    kind: str  # "input", "const", "node" or "output"
    caption: str  # the symbol in a circle, or the name of an input
    name: str  # a node's name shown beside its circle ('' for an unnamed part of an expression)
    depth: int = 0
    y: float = 0.0


def draw_graph(ev: Evaluation, source: Source | None = None) -> Drawing:
    graph = ev.checked.graph
    items: dict[str, _Item] = {i.name: _Item(i.name, "input", i.name, i.name) for i in graph.inputs}
    for n in graph.nodes:
        if n.op == "const":
            items[n.id] = _Item(n.id, "const", compact(ev.values[n.id]), "")
            continue
        depth = 1 + max((items[o].depth for o in n.operands if items[o].kind != "const"), default=0)
        items[n.id] = _Item(n.id, "node", OPS[n.op].symbol, n.id if n.named else "", depth)
    for n in graph.nodes:  # a constant sits just left of the node that uses it
        for o in n.operands:
            if items[o].kind == "const":
                items[o].depth = items[n.id].depth - 1
    out = _Item("⟶" + graph.output, "output", graph.output, graph.output, items[graph.output].depth + 1)
    edges = [(o, n.id) for n in graph.nodes for o in n.operands] + [(graph.output, out.id)]
    items[out.id] = out
    _place(items, edges)

    # a column is as wide as its edge labels need
    sent = {(s.operand, st.node.id): s.gradient for st in ev.steps for s in st.sent}
    labels = {(a, b): (compact(ev.values[a]), compact(sent.get((a, b), np.zeros(0)))
                       if (a, b) in sent else "") for a, b in edges}
    labels[(graph.output, out.id)] = (compact(ev.output), compact(np.ones_like(ev.output)))
    depths = max(i.depth for i in items.values()) + 1
    gap = [140.0] * depths
    for (a, b), (f, g) in labels.items():
        d = items[b].depth
        gap[d] = max(gap[d], svg.width(max(f, g, key=len)) + 2 * R + 40)
        if items[a].kind != "const":  # edges no steeper than 1 in 4, so that their labels stay apart
            gap[d] = max(gap[d], 4 * abs(items[a].y - items[b].y) / max(1, d - items[a].depth))
    left = 30 + 1.2 * max(svg.width(i.caption) for i in items.values() if i.kind == "input")
    xs = [left]
    for d in range(1, depths):
        xs.append(xs[-1] + gap[d])
    height = max(i.y for i in items.values()) + 50

    body: list[str] = []
    for (a, b), (f, g) in labels.items():
        ia, ib = items[a], items[b]
        if ia.kind == "const":  # from below, straight up into the node (its value is its caption)
            body.append(svg.arrow(xs[ib.depth], ia.y - 14, xs[ib.depth], ib.y + R))
            continue
        x1 = xs[ia.depth] + (R if ia.kind == "node" else 6)
        x2 = xs[ib.depth] - (R if ib.kind == "node" else 6)
        y1, y2 = ia.y, ib.y
        body.append(svg.arrow(x1, y1, x2, y2))
        mx, my = x1 + 0.35 * (x2 - x1), y1 + 0.35 * (y2 - y1)  # nearer the source, where edges are apart
        # clear of a sloping edge: lifted (lowered) by the rise of the line under half the label
        slope = abs(y2 - y1) / max(x2 - x1, 1.0)
        body.append(svg.text(mx, my - 6 - slope * svg.width(f) / 2, f, fill=FORWARD, cls="forward"))
        if g:
            body.append(svg.text(mx, my + 16 + slope * svg.width(g) / 2, g, fill=BACKWARD, cls="backward"))
    for i in items.values():
        x = xs[i.depth]
        if i.kind == "node":
            body.append(svg.circle(x, i.y, R))
            body.append(svg.text(x, i.y + 5, i.caption, size=15, cls="op"))
            if i.name:
                body.append(svg.text(x, i.y - R - 8, i.name, fill="#555", size=11, cls="name"))
        elif i.kind == "const":
            body.append(svg.text(xs[i.depth + 1], i.y, i.caption, cls="const"))
        elif i.kind == "input":
            body.append(svg.text(x - 8, i.y + 4, i.caption, anchor="end", weight="bold", cls="input"))
        else:
            body.append(svg.text(x + 8, i.y + 4, i.caption, anchor="start", weight="bold", cls="output"))
    width = xs[-1] + 30 + svg.width(out.caption)
    body.append(svg.text(12, height - 12, "forward values above each edge, backward (gradients) below",
                         anchor="start", fill="#777", size=10, cls="legend"))
    title = f"computational graph of {graph.source or 'a graph'}"
    return Drawing(svg.document(width, height, body, title), _graph_text(ev, source), ev.checked.warnings)


def _place(items: dict[str, _Item], edges: list[tuple[str, str]]) -> None:
    """y of every item: inputs in the order written, each node at the mean of what feeds it, then
    pushed apart so that no two of a column are closer than ROW."""
    feeds: dict[str, list[str]] = {}
    for a, b in edges:
        feeds.setdefault(b, []).append(a)
    inputs = [i for i in items.values() if i.kind == "input"]
    for k, i in enumerate(inputs):
        i.y = 60 + k * ROW
    for d in range(1, max(i.depth for i in items.values()) + 1):
        column = [i for i in items.values() if i.depth == d and i.kind in ("node", "output")]
        for i in column:
            ys = [items[a].y for a in feeds.get(i.id, []) if items[a].kind != "const"]
            i.y = sum(ys) / len(ys) if ys else 60
        column.sort(key=lambda i: i.y)
        for before, after in zip(column, column[1:]):
            after.y = max(after.y, before.y + ROW)
    for a, b in edges:  # a constant right below the node it feeds
        if items[a].kind == "const":
            items[a].y = items[b].y + 70
    top = min(i.y for i in items.values())
    for i in items.values():
        i.y += 60 - top


def _graph_text(ev: Evaluation, source: Source | None) -> str:
    """One line per edge, in forward order: source, forward value, the node it feeds, backward value."""
    graph = ev.checked.graph
    by_id = {n.id: n for n in graph.nodes}
    sent = {(s.operand, st.node.id): s.gradient for st in ev.steps for s in st.sent}

    def name(i: str) -> str:
        n = by_id.get(i)
        return i if n is None else (show(ev.values[i]) if n.op == "const" else label(n, source))

    lines = [f"computational graph: forward values ─▶, backward values ◀─ (from d{graph.output} = 1)"]
    for n in graph.nodes:
        if n.op == "const":
            continue
        for o in n.operands:
            if by_id.get(o, n).op == "const":
                lines.append(f"  {'(constant)':>14} ─ {compact(ev.values[o])} ─▶ ({OPS[n.op].symbol}) {name(n.id)}")
                continue
            back = f"  ◀─ {compact(sent[(o, n.id)])}" if (o, n.id) in sent else ""
            lines.append(f"  {name(o):>14} ─ {compact(ev.values[o])} ─▶ ({OPS[n.op].symbol}) {name(n.id)}{back}")
    lines.append(f"  {graph.output} = {compact(ev.output)}")
    return "\n".join(lines)


# --- layer pipelines ------------------------------------------------------------------------

def draw_pipeline(summary: Summary, name: str) -> Drawing:
    """One box per layer, left to right; a dashed frame around each fused kernel of several layers."""
    shapes = [shape_text(tuple(summary.input))] + [shape_text(tuple(r.output)) for r in summary.rows]
    box_w = max(110.0, max(svg.width(r.layer) for r in summary.rows) + 20)
    gap = max(70.0, max(svg.width(s, 11) for s in shapes) + 50)
    box_h, top = 50.0, 70.0
    x0 = 30 + svg.width("input") + gap
    xs = [x0 + k * (box_w + gap) for k in range(len(summary.rows))]
    body: list[str] = []
    kernels: dict[int, list[int]] = {}
    for k, r in enumerate(summary.rows):
        kernels.setdefault(r.kernel, []).append(k)
    for kernel, members in kernels.items():
        if len(members) > 1:
            left, right = xs[members[0]] - 10, xs[members[-1]] + box_w + 10
            body.append(svg.rect(left, top - 28, right - left, box_h + 62, cls="kernel", dashed=True,
                                 fill="#f4f7fb", stroke="#7a8ca8"))
            caption = f"kernel {kernel}: {summary.rows[members[0]].kernel_name}"
            body.append(svg.text((left + right) / 2, top - 12, caption, fill="#4a5b78", size=11, cls="kernel-name"))
    body.append(svg.text(30, top + box_h / 2 + 4, "input", anchor="start", weight="bold", cls="input"))
    prev_x = 30 + svg.width("input") + 6
    for k, r in enumerate(summary.rows):
        x = xs[k]
        body.append(svg.arrow(prev_x, top + box_h / 2, x, top + box_h / 2))
        body.append(svg.text((prev_x + x) / 2, top + box_h / 2 - 6, shapes[k], fill=FORWARD, size=11, cls="shape"))
        body.append(svg.rect(x, top, box_w, box_h, cls="layer"))
        body.append(svg.text(x + box_w / 2, top + 22, r.layer, weight="bold", cls="layer-name"))
        body.append(svg.text(x + box_w / 2, top + 40, f"line {r.line}" if r.line else "", fill="#777", size=10))
        params = f"{r.params:,} params" if r.params else "no params"
        body.append(svg.text(x + box_w / 2, top + box_h + 22, params, fill="#555", size=11, cls="params"))
        prev_x = x + box_w
    end = prev_x + 50
    body.append(svg.arrow(prev_x, top + box_h / 2, end - 8, top + box_h / 2))
    body.append(svg.text(end, top + box_h / 2 + 4, "loss", anchor="start", weight="bold", cls="output"))
    body.append(svg.text(30, top + box_h + 60, f"{summary.params:,} parameters; dashed frames are fused kernels",
                         anchor="start", fill="#777", size=10, cls="legend"))
    svg_text = svg.document(end + 60, top + box_h + 80, body, f"layer pipeline of {name}")
    lines = [f"layer pipeline: {summary.params:,} parameters"]
    lines.append(f"  input {shapes[0]}")
    for k, r in enumerate(summary.rows):
        params = f"{r.params:,} params" if r.params else ""
        lines.append(f"  ─▶ [{r.layer}] {shapes[k + 1]:<12} {params:<16} kernel {r.kernel}: {r.kernel_name}")
    return Drawing(svg_text, "\n".join(lines))
