"""The compiled reading of an expression layer's derivation: its primitives' programs written as NumPy
lines, into preallocated buffers (`layout`), through a specc.emission.Emit."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from specc.expr.primitives import FORWARD, INPUT, Instr
from specc.graph.ir import Node
from specc.layers.base import Scratch

if TYPE_CHECKING:
    from specc.expr.derive import Derivation, Send


@dataclass(frozen=True)
class Layout:
    """Which variable holds each value and each gradient, and the scratch buffers behind them."""

    values: Mapping[str, str]  # node id -> buffer name (the output excepted)
    grads: Mapping[str, str]  # node id -> buffer name, or the id of the node whose gradient it shares
    temps: Mapping[tuple, str]  # (full shape) -> buffer name
    scratch: Mapping[str, Scratch]


def layout(d: Derivation) -> Layout:
    values: dict[str, str] = {}
    grads: dict[str, str] = {}
    temps: dict[tuple, str] = {}
    scratch: dict[str, Scratch] = {}
    for j, n in enumerate(d.nodes):
        if n.id != d.output:
            values[n.id] = f"h{j}_"
            v = d.values[n.id]
            scratch[values[n.id]] = Scratch(v.shape, v.batched)
    into: dict[str, list[Send]] = {}
    for s in d.sends:
        into.setdefault(s.operand, []).append(s)
    for j, n in enumerate(d.nodes):
        received = into.get(n.id, [])
        if n.id == d.output or not received:
            continue
        s = received[0]
        if len(received) == 1 and not s.program and not s.axes:
            grads[n.id] = "=" + s.node  # the same array as its consumer's gradient
            continue
        v = d.values[n.id]
        grads[n.id] = f"dh{j}_"
        scratch[grads[n.id]] = Scratch(v.shape, v.batched, phase="backward")
    for s in d.sends:
        first = into[s.operand][0] is s
        if s.program and (s.axes or not first):
            v = d.values[s.node]
            key = v.full()
            if key not in temps:
                temps[key] = f"t{len(temps)}_"
                scratch[temps[key]] = Scratch(v.shape, v.batched, phase="backward")
    return Layout(values, grads, temps, scratch)


def _literal(v: float) -> str:
    return repr(float(v))


def _line(fn: str, args: Sequence[str], out: str) -> str:
    if fn == "copy":
        return f"np.copyto({out}, {args[0]})"
    return f"np.{fn}({', '.join(args)}, out={out})"


def emit(d: Derivation, e: Any) -> None:
    """Forward and backward lines through a specc.emission.Emit, into the buffers of `layout(d)`."""
    lay = layout(d)
    names: dict[str, str] = {INPUT: e.x, **{p.name: e.param(p.name) for p in d.params}}
    names.update({k: _literal(v.constant) for k, v in d.values.items() if v.constant is not None})
    for n in d.nodes:
        names[n.id] = e.output() if n.id == d.output else e.buffer(lay.values[n.id])

    def program_lines(program: Sequence[Instr], n: Node, target: str, g: str | None) -> list[str]:
        bind = {"ab"[k]: names[o] for k, o in enumerate(n.operands)}
        bind.update(y=names[n.id], d=target, g=g or "")
        return [_line(fn, [(bind[a[:-2]] + ".T" if a.endswith(".T") else bind[a]) if isinstance(a, str)
                           else _literal(a) for a in args], target) for fn, *args in program]

    for n in d.nodes:
        e.fwd(*program_lines(FORWARD[n.op](n.attrs), n, names[n.id], None))
    grad: dict[str, str] = {d.output: e.dy}

    def grad_of(i: str) -> str:
        if i == INPUT:
            return e.grad_input()
        if i in names and any(p.name == i for p in d.params):
            return e.grad(i)
        target = lay.grads[i]
        return grad[target[1:]] if target.startswith("=") else e.buffer(target)

    by_id = {n.id: n for n in d.nodes}
    written: set[str] = set()
    for s in d.sends:
        n, g = by_id[s.node], grad[s.node]
        first = s.operand not in written
        written.add(s.operand)
        if s.operand not in grad:
            grad[s.operand] = grad_of(s.operand)
        dst = grad[s.operand]
        if first and not s.axes:
            if s.program:
                e.bwd(*program_lines(s.program, n, dst, g))
            elif dst != g:
                e.bwd(f"np.copyto({dst}, {g})")
            continue
        src = g
        if s.program:
            src = e.buffer(lay.temps[d.values[s.node].full()])
            e.bwd(*program_lines(s.program, n, src, g))
        if not s.axes:
            e.bwd(f"{dst} += {src}")
        elif not s.keep and first:
            e.bwd(f"np.sum({src}, axis={s.axes!r}, out={dst})")
        else:
            total = f"np.sum({src}, axis={s.axes!r}, keepdims=True).reshape({dst}.shape)"
            e.bwd(f"np.copyto({dst}, {total})" if first else f"{dst} += {total}")
