"""Stage 6 (front-end part): the figures of a checked network, computed from shapes alone."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from specc.check import CheckedNetwork
from specc.compiler import Plan
from specc.layers.base import size

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
