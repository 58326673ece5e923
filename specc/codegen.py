"""Code generation: the straight-line NumPy module of a network's fused forward and backward passes.

Each layer writes its own lines through an `Emit` (see specc/layers/*.py, method `emit`);
this module names the variables, plans the workspace buffers (allocated once per batch
size), and assembles a standalone module that imports only numpy. specc runs that same
module (see specc.compile).
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import specc
from specc import numerics

Dim = int | str  # a buffer dimension: a number, or an expression of the batch size N ("N*576")


@dataclass
class Module:
    """What the layers emitted, before assembly."""

    buffers: dict[str, tuple[tuple[Dim, ...], str]] = field(default_factory=dict)  # name -> (shape, kind)
    owners: dict[str, int] = field(default_factory=dict)  # buffer name -> the layer (1-based) it serves
    views: list[tuple[str, str]] = field(default_factory=list)  # name -> expression, re-derived in backward
    forward: list[str] = field(default_factory=list)
    loss: list[str] = field(default_factory=list)
    backward: list[list[str]] = field(default_factory=list)  # per layer, reversed when assembled
    helpers: set[str] = field(default_factory=set)


class Emit:
    """What one layer may use to write its code: names of its input, output and gradients,
    its parameters, and buffers of its own."""

    def __init__(self, module: Module, layer: Any, k: int, x: str, y: str, dy: str | None, dx: str | None,
                 params: dict[str, str], state: dict[str, str], inplace: bool):
        self._m, self._k = module, k
        self.layer, self.args = layer, layer.args
        self.in_shape, self.out_shape = layer.in_shape, layer.out_shape
        self.x, self.y, self.dy, self.dx = x, y, dy, dx
        self.inplace = inplace  # the output may overwrite the input (an activation fused into its producer)
        self._params, self._state = params, state
        self._fwd: list[str] = []
        self._bwd: list[str] = []

    # names
    def P(self, base: str) -> str:
        return f'p["{self._params[base]}"]'

    def G(self, base: str) -> str:
        return f'g["{self._params[base]}"]'

    def S(self, base: str) -> str:
        return f's["{self._state[base]}"]'

    def buffer(self, name: str, shape: tuple[Dim, ...], kind: str = "float") -> str:
        """A workspace array of this layer (shape may use N); bound to a local of the same name."""
        var = f"{name}{self._k}"
        self._m.buffers[var] = (tuple(shape), kind)
        self._m.owners[var] = self._k
        return var

    def output(self) -> str:
        """Declare the output as a buffer of its own (N, *out_shape), unless computed in place."""
        if self.inplace:
            return self.y
        self._m.buffers[self.y] = (("N", *self.out_shape), "float")
        self._m.owners[self.y] = self._k
        return self.y

    def grad_input(self) -> str:
        """Declare the input gradient as a buffer (N, *in_shape)."""
        assert self.dx is not None
        self._m.buffers[self.dx] = (("N", *self.in_shape), "float")
        self._m.owners[self.dx] = self._k
        return self.dx

    def view(self, name: str, expression: str) -> None:
        """`name = expression`, a view (no copy) that backward re-derives too."""
        self._m.views.append((name, expression))
        self._fwd.append(f"{name} = {expression}")

    def helper(self, fn: Callable) -> str:
        self._m.helpers.add(fn.__name__)
        return fn.__name__

    def fwd(self, *lines: str) -> None:
        self._fwd.extend(lines)

    def loss(self, *lines: str) -> None:
        """Lines of the loss function (loss layers only); they set `loss` from the scores and `t`."""
        self._m.loss.extend(lines)

    def bwd(self, *lines: str) -> None:
        self._bwd.extend(lines)


def _alloc(shape: tuple[Dim, ...], kind: str) -> str:
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    dtype = {"float": "dtype", "index": "np.intp", "bool": "np.bool_"}[kind]
    return f"np.empty(({dims}), {dtype})"


def _helpers_source(names: set[str]) -> str:
    """The source of the numerics helpers the code calls, and of the helpers they call, in the
    order specc.numerics defines them."""
    available = {n: f for n, f in vars(numerics).items() if inspect.isfunction(f) and f.__module__ == numerics.__name__}
    needed, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        body = inspect.getsource(available[name])
        todo += [other for other in available if other != name and re.search(rf"\b{other}\(", body)]
    ordered = sorted(needed, key=lambda n: inspect.getsourcelines(available[n])[1])
    return "\n\n".join(inspect.getsource(available[n]) for n in ordered)


def _indent(lines: list[str], n: int = 4) -> str:
    return "\n".join(" " * n + line if line else "" for line in lines)


def assemble(m: Module, *, origin: str, input_shape: tuple[int, ...], params: dict, state: dict,
             labels: str, classes: int, output: str) -> str:
    """The standalone module's source text."""
    bwd_lines = [line for block in reversed(m.backward) for line in block]
    fwd_bufs = [b for b in m.buffers if used(m.forward, b)]
    loss_bufs = [b for b in m.buffers if used(m.loss, b)]
    bwd_views = [(n, e) for n, e in m.views if used(bwd_lines, n)]
    bwd_bufs = [b for b in m.buffers if used(bwd_lines + [e for _, e in bwd_views], b)]
    forward_only = set(fwd_bufs) | set(loss_bufs)
    ws = ",\n".join(f'        "{n}": {_alloc(shape, kind)}' for n, (shape, kind) in m.buffers.items()
                    if n in forward_only)
    ws_back = ",\n".join(f'            "{n}": {_alloc(shape, kind)}' for n, (shape, kind) in m.buffers.items()
                         if n not in forward_only)
    param_table = ",\n".join(f'    "{n}": ({tuple(shape)!r}, {init!r})' for n, (shape, init) in params.items())
    state_table = ",\n".join(f'    "{n}": ({tuple(shape)!r}, {init!r})' for n, (shape, init) in state.items())
    helpers = _helpers_source(m.helpers | {"initial_values"})
    return f'''"""Generated by specc {specc.__version__} from {origin}: the fused forward and backward passes.

Standalone: it imports only numpy. Arrays are float32 or float64 (the params' dtype); `w` is a
workspace from workspace(N) holding every buffer for batch size N, reused across calls.
Labels `t` are {"class indices, shape (N,)" if labels == "index" else "targets, shape (N, outputs)"}.
"""
import numpy as np

INPUT_SHAPE = {tuple(input_shape)!r}
OUTPUTS = {classes}
# name -> (shape, init): ("normal", std), ("zeros",) or ("ones",)
PARAMS = {{
{param_table}
}}
STATE = {{
{state_table}
}}


{helpers}


def init_params(seed=0, dtype=np.float32):
    """Parameters as specc initialises them with the same seed."""
    return initial_values(PARAMS, dtype, seed)


def init_state(dtype=np.float32):
    return initial_values(STATE, dtype)


def workspace(N, dtype=np.float32, backward=True):
    """Every buffer the passes use for a batch of N samples (backward=False: predict and loss only)."""
    w = {{
{ws}
    }}
    if backward:
        w.update({{
{ws_back}
        }})
    return w


def predict(p, s, w, x, train=False, rng=None):
    """Scores (the input of the loss layer) for x of shape (N, *INPUT_SHAPE); a workspace buffer."""
    N = x.shape[0]
    if train and rng is None:
        rng = np.random.default_rng()
{_indent([f'{b} = w["{b}"]' for b in fwd_bufs])}
{_indent(m.forward) if m.forward else "    pass"}
    return {output}


def loss(p, s, w, x, t, train=False, rng=None):
    """Mean loss over the batch."""
    {output} = predict(p, s, w, x, train, rng)
    N = x.shape[0]
{_indent([f'{b} = w["{b}"]' for b in loss_bufs])}
{_indent(m.loss)}
    return loss


def backward(p, g, s, w, x, t):
    """Gradients into g (same names as p), after loss(..., train=True) on the same batch."""
    N = x.shape[0]
{_indent([f'{b} = w["{b}"]' for b in bwd_bufs] + [f"{n} = {e}" for n, e in bwd_views]) or "    pass"}
{_indent(bwd_lines) if bwd_lines else "    pass"}


if __name__ == "__main__":
    # A demonstration on random data: one loss evaluation with fresh parameters.
    rng = np.random.default_rng(0)
    params, state = init_params(), init_state()
    x = rng.random((4, *INPUT_SHAPE), dtype=np.float32)
    t = {"rng.integers(0, OUTPUTS, 4)" if labels == "index" else "rng.random((4, OUTPUTS), dtype=np.float32)"}
    print("loss on a random batch:", loss(params, state, workspace(4), x, t))
'''


def used(lines: list[str], name: str) -> bool:
    """Whether any line uses the variable `name`."""
    word = re.compile(rf"\b{re.escape(name)}\b")
    return any(word.search(line) for line in lines)
