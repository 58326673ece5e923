"""The commands on computational graphs and the layers written as expressions: grad, draw and
explain; each calls the API and hands what it returns to the graph's or the expression's view."""
from __future__ import annotations

from pathlib import Path

from rich.console import Console

from specc import api
from specc.cli.output import write_json, write_text
from specc.diagnostics import render_diagnostics
from specc.expr import view as explain_view
from specc.graph import view as graph_view
from specc.graph.evaluate import numeric_checks


def grad(args, stdout: Console, stderr: Console) -> int:
    source = api.read(args.file)
    ev = api.graph_evaluation(source)
    render_diagnostics(ev.checked.warnings, source, source.name, stderr)
    checks = None if args.no_check else numeric_checks(ev)
    if args.json:
        write_json(stdout, graph_view.to_json(ev, checks, source))
    else:
        stdout.print(graph_view.backward_table(ev, source, args.precise))
        stdout.print(graph_view.gradients_table(ev, checks, args.precise))
    return 1 if checks is not None and not all(c.passed for c in checks) else 0


def draw(args, stdout: Console, stderr: Console) -> int:
    source = api.read(args.file)
    drawing = api.drawing(source)
    render_diagnostics(drawing.warnings, source, source.name, stderr)
    out = Path(args.out) if args.out else Path(args.file).with_suffix(".svg")
    write_text(out, drawing.svg)
    stdout.print(drawing.text, soft_wrap=True, markup=False)
    stdout.print(f"wrote {out}", soft_wrap=True, markup=False)
    return 0


def explain(args, stdout: Console, stderr: Console) -> int:
    ex = api.explanation(args.name)
    for part in explain_view.renderables(ex, args.precise):
        stdout.print(part, soft_wrap=True, highlight=False)
    if args.out:
        out = Path(args.out)
        write_text(out, api.explanation_drawing(ex).svg)
        stdout.print(f"wrote {out}", soft_wrap=True, markup=False)
    return 0 if ex.agreement <= 1e-12 and all(c.passed for c in ex.checks) else 1

