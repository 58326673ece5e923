"""Stage 5: checked network -> Plan (fused kernels, parameter, state and buffer tables) -> Compiled
(the plan and the generated NumPy module). Everything downstream reads these values; nothing
else plans or generates code.

`plan` works from shapes alone (check, summary and the memory budget use it without generating
code); `compile` adds the code, generated once.
"""
from __future__ import annotations

from dataclasses import dataclass

from specc.check import CheckedNetwork
from specc.codegen import generate
from specc.layers.base import Labels, Scratch, Shape, size


@dataclass(frozen=True)
class Kernel:
    """Adjacent layers run as one unit: a head (Affine, Convolution, BatchNorm) and the
    element-wise activation that runs in place on its output, or a single layer; or a head, its
    activation and the max pooling after them as one pass that the head writes (Layer.pools); or a
    head that applies its activation itself as it writes its output (Layer.absorbs)."""

    layers: tuple[int, ...]  # indices into CheckedNetwork.layers
    name: str  # "Affine+ReLU"
    # the head's pass takes in the pooling: the head's output lives inside the pass (no buffer of
    # its own), and the gradients between the three layers stay in its scratch
    pooled: bool = False
    # the head's pass applies the activation (and its gradient): the head's output gradient lives
    # inside the pass (no buffer of its own)
    absorbed: bool = False

    @property
    def one_pass(self) -> bool:
        """The head writes the kernel's code, the other layers' included."""
        return self.pooled or self.absorbed


@dataclass(frozen=True)
class Slot:
    """One parameter or state array of the network: "W1" is the "W" of layer 0."""

    name: str
    base: str  # the layer's own name for it
    layer: int  # index into CheckedNetwork.layers
    shape: Shape
    init: tuple  # ("normal", std), ("zeros",) or ("ones",)
    decay: bool = False  # weight decay applies

    @property
    def size(self) -> int:
        return size(self.shape)


@dataclass(frozen=True)
class Buffer:
    """One workspace array of the generated code, allocated once per batch size."""

    name: str  # the variable that holds it: a3, d2, cols1
    layer: int  # index of the layer it serves
    scratch: Scratch  # shape, kind, and whether prediction needs it

    def nbytes(self, batch: int, itemsize: int) -> int:
        return self.scratch.nbytes(batch, itemsize)


@dataclass(frozen=True)
class Wire:
    """The variables one layer's code reads and writes."""

    x: str  # its input
    y: str  # its output ("x" unchanged for a loss layer: it reads the scores in place)
    dy: str | None  # the gradient of its output; None when the layer has no backward pass
    dx: str | None  # the gradient of its input; None when nothing before it needs one
    inplace: bool  # an activation fused into its producer overwrites the producer's output
    # the input (and its gradient), the output (and its gradient) are (H, W, N, C) arrays instead of
    # (N, C, H, W): between two kernels whose heads are hwnc_capable
    hwnc_in: bool = False
    hwnc_out: bool = False


@dataclass(frozen=True)
class Plan:
    """What the compiler decided, from shapes alone."""

    network: CheckedNetwork
    fused: bool
    kernels: tuple[Kernel, ...]
    default_init: str  # what init=auto means in this network: "he" or "xavier"
    params: tuple[Slot, ...]
    state: tuple[Slot, ...]
    wires: tuple[Wire, ...]  # one per layer
    buffers: tuple[Buffer, ...]
    scores: str  # the variable that holds the scores (the loss layer's input)

    @property
    def labels(self) -> Labels:
        return self.network.loss.layer.labels

    def kernel_of(self, layer: int) -> tuple[int, Kernel]:
        """(1-based number, kernel) of the kernel that runs a layer."""
        for n, k in enumerate(self.kernels, 1):
            if layer in k.layers:
                return n, k
        raise KeyError(layer)

    def workspace_bytes(self, batch: int, itemsize: int, backward: bool = True) -> int:
        return sum(b.nbytes(batch, itemsize) for b in self.buffers
                   if backward or b.scratch.phase == "forward")


@dataclass(frozen=True)
class Compiled:
    """The plan of the fused passes and their generated module (standalone NumPy source)."""

    plan: Plan
    code: str

    @property
    def network(self) -> CheckedNetwork:
        return self.plan.network


def default_init(net: CheckedNetwork) -> str:
    """The book's MultiLayerNet rule: He for ReLU networks, Xavier for sigmoid/tanh ones; each
    activation declares which it prefers."""
    preferred = {c.layer.preferred_init for c in net.layers}
    return "xavier" if "xavier" in preferred and "he" not in preferred else "he"


def plan(net: CheckedNetwork, fuse: bool = True) -> Plan:
    kernels: list[list[int]] = []
    for c in net.layers:
        prev = net.layers[kernels[-1][-1]].layer if kernels else None
        if (fuse and prev is not None and type(c.layer).activation and len(kernels[-1]) == 1
                and type(prev).fusion_head):
            kernels[-1].append(c.index)
        elif (fuse and prev is not None and len(kernels[-1]) == 2
              and net.layers[kernels[-1][0]].layer.pools(prev, c.layer)):
            kernels[-1].append(c.index)
        else:
            kernels.append([c.index])
    init = default_init(net)
    params, state = [], []
    for c in net.layers:
        starts = c.layer.param_init(init)
        for base, shape in c.layer.param_shapes().items():
            params.append(Slot(c.names[base], base, c.index, shape, starts[base], base in c.layer.decays))
        starts = c.layer.state_init()
        for base, shape in c.layer.buffer_shapes().items():
            state.append(Slot(c.names[base], base, c.index, shape, starts[base]))
    wires, buffers, scores = _wiring(net, kernels)
    named = tuple(Kernel(tuple(k), "+".join(net.layers[i].spec.type for i in k), len(k) == 3, _absorbed(net, k))
                  for k in kernels)
    return Plan(net, fuse, named, init, tuple(params), tuple(state), wires, buffers, scores)


def _absorbed(net: CheckedNetwork, kernel: list[int]) -> bool:
    """A head and its activation, which the head applies itself (Layer.absorbs)."""
    return len(kernel) == 2 and net.layers[kernel[0]].layer.absorbs(net.layers[kernel[1]].layer)


def _wiring(net: CheckedNetwork, kernels: list[list[int]]) -> tuple[tuple[Wire, ...], tuple[Buffer, ...], str]:
    """The variables of every layer, and the buffers behind them: a{i} holds layer i's output,
    d{i} the gradient of it (1-based), scratch buffers are named after the layer's own name."""
    inplace = {i for k in kernels for i in k[1:2]}
    pooled = {k[0]: k for k in kernels if len(k) == 3}
    inside = {i for k in pooled.values() for i in k[1:]}  # their input gradients stay in the head's pass
    absorbed = {k[0]: k[1] for k in kernels if _absorbed(net, k)}
    inside |= set(absorbed.values())
    # (H, W, N, C) between two kernels whose heads read and write it, inside the first of them too
    heads = [net.layers[k[0]].layer.hwnc_capable() for k in kernels]
    pairs = [(a, b) for a, b, ok_a, ok_b in zip(kernels, kernels[1:], heads, heads[1:]) if ok_a and ok_b]
    hwnc_out = {i for a, _ in pairs for i in a}
    hwnc_in = {b[0] for _, b in pairs} | {i for a, _ in pairs for i in a[1:]}
    has_params = [bool(c.params) for c in net.layers]
    wires: list[Wire] = []
    buffers: list[Buffer] = []
    var = "x"
    for c in net.layers:
        i, layer = c.index, c.layer
        need_dx = any(has_params[:i])
        backward = need_dx or has_params[i]
        y = var if i in inplace or layer.is_loss else f"a{i + 1}"
        dy = f"d{i + 1}" if backward else None
        dx = f"d{i}" if backward and need_dx else None
        wires.append(Wire(var, y, dy, dx, i in inplace, i in hwnc_in, i in hwnc_out))
        if layer.output_buffer and i not in inplace and i not in pooled:  # a pooled pass keeps its own
            buffers.append(Buffer(y, i, Scratch(layer.out_shape, hwnc=i in hwnc_out)))
        if dx is not None and layer.grad_buffer and i not in inside:
            buffers.append(Buffer(dx, i, Scratch(layer.in_shape, phase="backward", hwnc=i in hwnc_in)))
        if i in pooled:
            _, act, pool = (net.layers[j].layer for j in pooled[i])
            scratch = layer.pooled_workspace(act, pool, dx is not None)
        elif i in absorbed:
            scratch = layer.absorbed_workspace(net.layers[absorbed[i]].layer, dx is not None)
        else:
            scratch = {} if i in inside else layer.workspace(dx is not None)
        for name, s in scratch.items():
            buffers.append(Buffer(f"{name}{i + 1}", i, s))
        var = y
    return tuple(wires), tuple(buffers), var


def compile(net: CheckedNetwork, *, fuse: bool = True, timed: bool = False) -> Compiled:  # noqa: A001
    """Plan the passes and generate their module (fuse=False: one layer per kernel, for tests).
    timed=True adds calls `_clock(phase, kernel)` at every kernel boundary (`specc bench` puts a
    `_clock` into the namespace)."""
    p = plan(net, fuse=fuse)
    return Compiled(p, generate(p, timed=timed))
