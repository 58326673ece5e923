"""Stage 6 (front-end part): the figures of a checked network, computed from shapes alone."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Group, JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

from specc.check import CheckedNetwork
from specc.compiler import Plan
from specc.layers.base import size
from specc.text import batch_shape, human_bytes

BYTES_F32 = 4


@dataclass(frozen=True)
class Row:
    index: int
    layer: str
    line: int | None
    col: int | None
    via: str  # the block calls and repetitions the layer comes from, outermost first
    output: list[int]
    params: int
    flops: int
    kernel: int  # the fused kernel that runs this layer (1-based)
    kernel_name: str  # "Affine+ReLU"


@dataclass(frozen=True)
class Summary:
    source: str | None
    input: list[int]
    rows: list[Row]
    params: int
    param_bytes: int  # at float32
    buffers: int  # non-trainable values saved with the weights (BatchNorm running statistics)
    flops: int  # forward, per sample
    activation_bytes: int  # per sample, kept for the backward pass in training, at float32
    training: dict[str, Any] | None = None  # memory to train with the spec's settings (specc.memory)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize(net: CheckedNetwork, plan: Plan, training: dict[str, Any] | None = None) -> Summary:
    kernel_of = {i: (k, kernel.name) for k, kernel in enumerate(plan.kernels, 1) for i in kernel.layers}
    rows = []
    for c in net.layers:
        span = c.spec.span
        via = _via(c.spec.origin)
        rows.append(Row(c.index + 1, c.layer.describe(), span.line if span else None,
                        span.col if span else None, via, list(c.out_shape),
                        c.layer.parameter_count(), c.layer.flops(), *kernel_of[c.index]))
    params = sum(r.params for r in rows)
    buffers = sum(size(s) for c in net.layers for s in c.buffers.values())
    activations = size(net.input_shape) + sum(size(c.out_shape) for c in net.layers)
    return Summary(net.network.source, list(net.input_shape), rows, params, params * BYTES_F32, buffers,
                   sum(r.flops for r in rows), activations * BYTES_F32, training)


def _via(origin) -> str:
    """'line 3: Dense, copy 1/3' -- where the outermost call is, then each step inwards."""
    if not origin:
        return ""
    blocks = " > ".join(o.block for o in origin if o.block)
    copies = " ".join(f"{o.repeat}/{o.of}" for o in origin if o.repeat)
    line = origin[0].call.line if origin[0].call else None
    return " ".join(x for x in (blocks, copies, f"(line {line})" if line else "") if x)


def table(s: Summary) -> Group:
    """The summary as a rich table, totals in the footer, then the totals and the fused kernels
    in words (not as the table's caption, which rich would wrap to the table's width).

    On a narrow terminal only the `via` column wraps: numbers, shapes and names are never cut.
    The kernel column holds numbers; the fused kernels are named below the table.
    """
    show_via = any(r.via for r in s.rows)
    # (header, footer, justify, cells); `via` is the one column that may wrap
    columns: list[tuple[str, str, JustifyMethod, list[str]]]
    columns = [("#", "", "right", [str(r.index) for r in s.rows]),
               ("layer", "total", "left", [r.layer for r in s.rows]),
               ("line", "", "right", [f"{r.line}" if r.line else "-" for r in s.rows])]
    if show_via:
        columns.append(("via", "", "left", [r.via for r in s.rows]))
    columns += [("output", "", "left", [batch_shape(tuple(r.output)) for r in s.rows]),
                ("params", f"{s.params:,}", "right", [f"{r.params:,}" if r.params else "-" for r in s.rows]),
                ("FLOPs/sample", f"{s.flops:,}", "right", [f"{r.flops:,}" for r in s.rows]),
                ("kernel", f"{s.rows[-1].kernel if s.rows else 0}", "right", [str(r.kernel) for r in s.rows])]
    t = Table(title=f"{s.source or 'network'}: input {batch_shape(tuple(s.input))}", show_footer=True,
              title_justify="left")
    for header, footer, justify, cells in columns:
        fixed = header != "via"
        t.add_column(header, footer=footer, justify=justify, no_wrap=fixed,
                     min_width=max(len(x) for x in [header, footer, *cells]) if fixed else None)
    for row in zip(*(cells for *_, cells in columns)):
        t.add_row(*row)
    params = (f"parameters {s.params:,} ({human_bytes(s.param_bytes)} at float32)"
              + (f", non-trainable {s.buffers:,}" if s.buffers else ""))
    costs = (f"forward {s.flops:,} FLOPs per sample; "
             f"activations {human_bytes(s.activation_bytes)} per sample in training")
    lines: list[RenderableType] = [t, Text(params), Text(costs)]
    if s.training:
        m = s.training
        lines.append(Text(f"training memory {human_bytes(m['bytes'])} (batch {m['batch']}, {m['optimizer']}, "
                          f"{m['dtype']}): weights and optimizer {human_bytes(m['parameter_bytes'])}, "
                          f"buffers {human_bytes(m['buffer_bytes'])}"))
    return Group(*lines, Text(_fused(s.rows)))


def _fused(rows: list[Row]) -> str:
    """'fused: Convolution+ReLU (layers 1-2), Affine+ReLU (layers 4-5, 7-8)'."""
    members: dict[int, list[Row]] = {}
    for r in rows:
        members.setdefault(r.kernel, []).append(r)
    by_name: dict[str, list[str]] = {}
    for group in members.values():
        if len(group) > 1:
            by_name.setdefault(group[0].kernel_name, []).append(f"{group[0].index}-{group[-1].index}")
    return "fused: " + (", ".join(f"{name} (layers {', '.join(spans)})" for name, spans in by_name.items())
                        or "nothing")
