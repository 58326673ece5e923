"""The shape lens: what leaves each step of a chain (shape, parameters, FLOPs), beside the source that wrote it."""
from __future__ import annotations

import re
from dataclasses import dataclass

from rich.console import Console
from rich.text import Text

from specc import syntax as s
from specc.check import CheckedNetwork
from specc.layers.base import Shape
from specc.source import Source, Span
from specc.text import batch_shape
from specc.tools.text import contains

WIDTH = 100
# `# -> (N, 50)  39,250 params  78,400 FLOPs`: what `specc fmt --annotate` writes, always last in a
# comment; recognised so that it is refreshed, never duplicated, while the user's words are kept.
_ANNOTATION = re.compile(r"\s*#\s*->\s*\(N\b[^#]*$")


@dataclass(frozen=True)
class Figures:
    """What leaves a step (the output of its last layer), and what its layers hold and cost."""

    shape: Shape
    params: int = 0
    flops: int = 0

    def __str__(self) -> str:
        parts = [f"-> {batch_shape(self.shape)}"]
        if self.params:
            parts.append(f"{self.params:,} params")
        if self.flops:
            parts.append(f"{self.flops:,} FLOPs")
        return "  ".join(parts)

    def comment(self) -> str:
        return f"# {self}"


def strip_annotation(comment: str) -> str:
    """A comment without the annotation fmt wrote into it ('' when nothing else is left)."""
    return _ANNOTATION.sub("", comment).rstrip()


def outer_span(layer_spec) -> Span | None:
    """Where a layer was written in the network chain: the outermost block call or repetition it
    comes from, else its own call."""
    origin = layer_spec.origin
    return origin[0].call if origin and origin[0].call is not None else layer_spec.span


def step_figures(checked: CheckedNetwork, step: Span) -> Figures | None:
    """The figures of one step of the network chain (a call, a repetition, a group), None if it has
    no layers there (nothing was checked)."""
    inside = [cl for cl in checked.layers if (o := outer_span(cl.spec)) is not None and contains(step, o)]
    if not inside:
        return None
    return Figures(inside[-1].out_shape, sum(cl.layer.parameter_count() for cl in inside),
                   sum(cl.layer.flops() for cl in inside))


def network_steps(module: s.Module) -> tuple[s.Item, ...]:
    for statement in module.statements:
        if isinstance(statement, s.NetworkDef):
            return statement.chain.items
    return ()


def input_span(module: s.Module) -> Span | None:
    return next((x.span for x in module.statements if isinstance(x, s.Input)), None)


def render(source: Source, module: s.Module, checked: CheckedNetwork, console: Console) -> None:
    """`specc check --annotate`: the source, each line followed by what leaves it; a line with several
    steps that would grow too long gets one line per step under it instead, at the step's column."""
    by_line: dict[int, list[tuple[int, Figures]]] = {}
    where = input_span(module)
    if where is not None:
        by_line.setdefault(where.end_line, []).append((where.col, Figures(checked.input_shape)))
    for step in network_steps(module):
        figures = step_figures(checked, step.span)
        if figures is not None:
            by_line.setdefault(step.span.end_line, []).append((step.span.col, figures))
    # a file that `fmt --annotate` wrote is shown with fresh figures, not with its own beside them
    lines = [strip_annotation(line) if "#" in line else line for line in source.text.splitlines()]
    width = max((len(line.rstrip().expandtabs(4)) for n, line in enumerate(lines, 1) if n in by_line), default=0)
    for n, raw in enumerate(lines, 1):
        line = raw.rstrip().expandtabs(4)
        out = Text(line)
        steps = by_line.get(n, [])
        if len(steps) == 1 or (steps and width + 4 + len(str(_total(steps))) <= WIDTH):
            out.append(" " * (width - len(line) + 2))
            out.append(f"# {_total(steps)}", style="dim cyan")
        elif steps:
            for col, figures in steps:
                out.append("\n" + " " * (len(raw[:col - 1].expandtabs(4))) + f"^ {figures}", style="dim cyan")
        console.print(out, soft_wrap=True)


def _total(steps: list[tuple[int, Figures]]) -> Figures:
    return Figures(steps[-1][1].shape, sum(f.params for _, f in steps), sum(f.flops for _, f in steps))
