"""What the layers write: each layer's lines, through an `Emit` (see specc/layers/*.py, method
`emit`), with the variables and buffers the plan (specc.compiler) gave it, collected per pass in a
`Module`, before specc.codegen assembles the generated module.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from specc.layers.base import Layer

if TYPE_CHECKING:
    from specc.compiler import Buffer, Plan, Wire


class CodegenError(Exception):
    """A layer's emitted code disagrees with what it declared (a bug in specc, not a user mistake)."""


@dataclass
class Module:
    """What the layers emitted, before assembly."""

    views: list[tuple[str, str]] = field(default_factory=list)  # name -> expression, re-derived in backward
    forward: list[str] = field(default_factory=list)
    loss: list[str] = field(default_factory=list)
    backward: list[list[str]] = field(default_factory=list)  # per layer, reversed when assembled
    helpers: set[str] = field(default_factory=set)
    batch: bool = False  # some layer looks across the batch: the module defines `batch`
    ones: bool = False  # some layer's backward reads the workspace's vector of N ones
    rows: bool = False  # some layer's loss reads the workspace's 0, 1, ..., N - 1


class Emit:
    """What one layer may use to write its code: the names of its input, output and gradients,
    of its parameters and state, and of the scratch buffers it declared (Layer.workspace)."""

    def __init__(self, module: Module, layer: Layer, k: int, wire: "Wire", names: dict[str, str],
                 buffers: dict[str, "Buffer"]):
        self._m, self._k = module, k
        self.layer, self.args = layer, layer.args
        self.in_shape, self.out_shape = layer.in_shape, layer.out_shape
        self.x, self.y, self.dy, self.dx = wire.x, wire.y, wire.dy, wire.dx
        self.inplace = wire.inplace  # the output may overwrite the input (an activation fused into its producer)
        self.hwnc_in, self.hwnc_out = wire.hwnc_in, wire.hwnc_out  # (H, W, N, C) arrays (Layer.hwnc_capable)
        self._names = names
        self._buffers = buffers  # this layer's planned buffers by variable name
        self.forward_lines: list[str] = []
        self.backward_lines: list[str] = []

    # names
    def param(self, base: str) -> str:
        return f'p["{self._names[base]}"]'

    def grad(self, base: str) -> str:
        return f'g["{self._names[base]}"]'

    def state(self, base: str) -> str:
        return f's["{self._names[base]}"]'

    def _planned(self, var: str, what: str) -> str:
        if var not in self._buffers:
            raise CodegenError(f"layer {self._k} ({self.layer.name}) uses {what} '{var}', which it did not declare")
        return var

    def buffer(self, name: str) -> str:
        """A scratch buffer this layer declared in `workspace()`; bound to a local of the same name."""
        return self._planned(f"{name}{self._k}", "the buffer")

    def output(self) -> str:
        """The output variable: a buffer of its own (N, *out_shape), or the input when computed in place."""
        return self.y if self.inplace else self._planned(self.y, "the output buffer")

    def grad_input(self) -> str:
        """The input gradient's buffer (N, *in_shape)."""
        if self.dx is None:
            raise CodegenError(f"layer {self._k} ({self.layer.name}) computes an input gradient nobody needs")
        return self._planned(self.dx, "the gradient buffer")

    def view(self, name: str, expression: str) -> None:
        """`name = expression`, a view (no copy) that backward re-derives too."""
        self._m.views.append((name, expression))
        self.forward_lines.append(f"{name} = {expression}")

    def helper(self, fn: Callable) -> str:
        self._m.helpers.add(fn.__name__)
        return fn.__name__

    def batch(self) -> str:
        """The module's `batch`, for a layer that looks across the batch (Layer.spans_batch): its sums
        and random draws, the whole batch's even when MPI ranks each hold a share of it."""
        self._m.batch = True
        return "batch"

    def ones(self) -> str:
        """A vector of N ones in the workspace, for backward: `np.dot(ones, dy)` sums dy over the
        batch as one matrix-vector product, several times faster than np.sum(dy, axis=0). (N values,
        outside the plan's buffer table.)"""
        self._m.ones = True
        return "ones"

    def rows(self) -> str:
        """The sample numbers 0, 1, ..., N - 1 (intp) in the workspace, for the loss: made once per
        batch size instead of an np.arange(N) per step. (N values, outside the plan's buffer table.)"""
        self._m.rows = True
        return "rows"

    def grad_scale(self) -> str:
        """The backward function's factor on the loss, for the loss layer's seed gradient: backward
        computes the gradients of grad_scale * loss (1.0 unless given; the trainer folds plain SGD's
        learning rate into it, so that the update is one subtraction). Every other layer's backward
        is linear in its dy and carries the factor through unchanged."""
        return "grad_scale"

    def fwd(self, *lines: str) -> None:
        self.forward_lines.extend(lines)

    def loss(self, *lines: str) -> None:
        """Lines of the loss function (loss layers only); they set `loss` from the scores and `t`."""
        self._m.loss.extend(lines)

    def bwd(self, *lines: str) -> None:
        self.backward_lines.extend(lines)


def emit(p: "Plan", timed: bool = False) -> Module:
    """Every layer's code, before assembly."""
    net = p.network
    m = Module()
    if timed:
        m.backward.append(["_clock(None, None)"])
    owned: dict[int, dict[str, Buffer]] = {}
    for b in p.buffers:
        owned.setdefault(b.layer, {})[b.name] = b
    for k, kernel in enumerate(p.kernels, 1):
        emits = []
        for i in kernel.layers:
            c, wire = net.layers[i], p.wires[i]
            e = Emit(m, c.layer, i + 1, wire, c.names, owned.get(i, {}))
            span = c.spec.span
            where = f"  <- {net.network.source or 'spec'}:{span.line}:{span.col}" if span else ""
            how = (f" (in [{kernel.layers[0] + 1}]'s pass)" if kernel.one_pass and i != kernel.layers[0]
                   else " (in place)" if wire.inplace else "")
            e.fwd(f"# [{i + 1}] {c.layer.describe()}{how}{where}")
            if timed:
                (e.loss if c.layer.is_loss else e.fwd)(f"_clock('forward', {k})")
            emits.append(e)
        if kernel.one_pass:  # the head writes the pass, after the comments of all
            head, *rest = emits
            start = len(head.forward_lines)
            if kernel.pooled:
                head.layer.emit_pooled(head, rest[0].layer, rest[1])
            else:
                head.layer.emit_absorbed(head, rest[0])
            m.forward.extend(head.forward_lines[:start] + [line for e in rest for line in e.forward_lines]
                             + head.forward_lines[start:])
        else:
            for e in emits:
                e.layer.emit(e)
                m.forward.extend(e.forward_lines)
        for i, e in zip(kernel.layers, emits):
            timing = [f"_clock('backward', {k})"] if timed else []
            m.backward.append([f"# [{i + 1}] {e.layer.describe()}", *timing, *e.backward_lines]
                              if e.backward_lines else [])
    if timed:
        m.forward.append("_clock(None, None)")
        m.loss.append("_clock(None, None)")
    return m
