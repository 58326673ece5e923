"""Stage 5: checked network -> a plan of fused kernels, initial values, and generated NumPy code."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specc.check import CheckedNetwork
from specc.codegen import Emit, Module, assemble


@dataclass(frozen=True)
class Kernel:
    """Adjacent layers run as one unit: a head (Affine, Convolution, BatchNorm) and the
    element-wise activation that runs in place on its output, or a single layer."""

    layers: tuple[int, ...]  # indices into CheckedNetwork.layers
    name: str


@dataclass(frozen=True)
class Plan:
    kernels: tuple[Kernel, ...]
    default_init: str  # what init=auto means in this network: "he" or "xavier"
    params: dict[str, tuple[tuple[int, ...], tuple]]  # "W1" -> ((784, 50), ("normal", 0.05))
    state: dict[str, tuple[tuple[int, ...], tuple]]  # "running_mean1" -> ((100,), ("zeros",))
    labels: str  # "index" or "target"


def default_init(net: CheckedNetwork) -> str:
    """The book's MultiLayerNet rule: He for ReLU networks, Xavier for sigmoid/tanh ones."""
    types = {c.spec.type for c in net.layers}
    return "xavier" if types & {"Sigmoid", "Tanh"} and "ReLU" not in types else "he"


def plan(net: CheckedNetwork, fuse: bool = True) -> Plan:
    kernels: list[list[int]] = []
    for c in net.layers:
        prev = net.layers[kernels[-1][-1]].layer if kernels else None
        if (fuse and prev is not None and type(c.layer).activation and len(kernels[-1]) == 1
                and type(prev).fusion_head):
            kernels[-1].append(c.index)
        else:
            kernels.append([c.index])
    init = default_init(net)
    params, state = {}, {}
    for c in net.layers:
        starts = c.layer.param_init(init)
        for name, shape in c.params.items():
            params[name] = (shape, starts[name.rstrip("0123456789")])
        starts = c.layer.state_init()
        for name, shape in c.buffers.items():
            state[name] = (shape, starts[name.rstrip("0123456789")])
    named = tuple(Kernel(tuple(k), "+".join(net.layers[i].spec.type for i in k)) for k in kernels)
    return Plan(named, init, params, state, type(net.loss.layer).labels)


def _base_names(names: dict[str, Any]) -> dict[str, str]:
    return {n.rstrip("0123456789"): n for n in names}


def generate(net: CheckedNetwork, p: Plan, timed: bool = False) -> str:
    """The standalone NumPy module of the network's fused passes (see specc.codegen).

    timed=True adds calls `_clock(phase, kernel)` at every kernel boundary (the caller puts a
    `_clock` into the module's namespace); `specc bench` uses it to time each kernel.
    """
    m, output = emit_all(net, p, timed)
    return assemble(m, origin=net.network.source or "a spec", input_shape=net.input_shape,
                    params=p.params, state=p.state, labels=p.labels,
                    classes=net.loss.out_shape[0], output=output)


def emit_all(net: CheckedNetwork, p: Plan, timed: bool = False) -> tuple[Module, str]:
    """Every layer's code, before assembly, and the variable that holds the scores."""
    m = Module()
    if timed:
        m.backward.append(["_clock(None, None)"])
    has_params = [bool(c.params) for c in net.layers]
    var = "x"
    output = "x"
    for k, kernel in enumerate(p.kernels, 1):
        for pos, i in enumerate(kernel.layers):
            c = net.layers[i]
            inplace = pos > 0  # an activation fused into its head overwrites the head's output
            y = var if inplace else f"a{i + 1}"
            need_dx = any(has_params[:i])
            if not need_dx and not has_params[i]:
                dy = dx = None
            else:
                dy, dx = f"d{i + 1}", (f"d{i}" if need_dx else None)
            e = Emit(m, c.layer, i + 1, var, y, dy, dx, _base_names(c.params), _base_names(c.buffers), inplace)
            span = c.spec.span
            where = f"  <- {net.network.source or 'spec'}:{span.line}:{span.col}" if span else ""
            e.fwd(f"# [{i + 1}] {c.layer.describe()}{' (in place)' if inplace else ''}{where}")
            if timed:
                (e.loss if c.layer.is_loss else e.fwd)(f"_clock('forward', {k})")
            c.layer.emit(e)
            m.forward.extend(e._fwd)
            timing = [f"_clock('backward', {k})"] if timed else []
            m.backward.append([f"# [{i + 1}] {c.layer.describe()}", *timing, *e._bwd] if e._bwd else [])
            if not c.layer.is_loss:
                output = var = y
    if timed:
        m.forward.append("_clock(None, None)")
        m.loss.append("_clock(None, None)")
    return m, output


def load(source: str, filename: str, **extra: Any) -> dict[str, Any]:
    """Execute generated source; its functions are what a fused Network calls."""
    namespace: dict[str, Any] = {"__name__": "specc_generated", **extra}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 -- our own generated code
    return namespace
