"""Code generation: the straight-line NumPy module of a network's fused forward and backward passes.

Each layer writes its own lines through an `Emit` (specc.emission), using the variables and
buffers the plan (specc.compiler) gave it; this module assembles them, with their helpers, into a
standalone module that imports only numpy and allocates every buffer once per batch size.
specc runs that same module (see specc.network).
"""
from __future__ import annotations

import functools
import inspect
import re
import threading
from typing import TYPE_CHECKING

import specc
from specc import convpasses, convpool, numerics, winograd, winograd_tiles
from specc.emission import emit
from specc.layers.base import Labels

if TYPE_CHECKING:
    from specc.compiler import Buffer, Plan


def _alloc(b: "Buffer") -> str:
    shape = (("N",) if b.scratch.batched else ()) + tuple(b.scratch.shape)
    if b.scratch.hwnc:  # (C, H, W) per sample, stored (H, W, N, C)
        c, h, w = b.scratch.shape
        shape = (h, w, "N", c)
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    dtype = {"float": "dtype", "index": "np.intp", "bool": "np.bool_"}[b.scratch.kind]
    return f"np.empty(({dims}), {dtype})"


# The modules whose functions the generated code may call, copied into it by name (Emit.helper).
HELPER_MODULES = (convpool, convpasses, numerics, winograd_tiles, winograd)

_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def _names_in(lines: list[str]) -> set[str]:
    """Every identifier the lines mention (one pass over the text: linear in the code's size)."""
    found: set[str] = set()
    for line in lines:
        found.update(_IDENTIFIER.findall(line))
    return found


_SOURCE_LOCK = threading.Lock()


@functools.cache
def _class_source(cls: type) -> str:
    """A class's source, read once. inspect finds a class by parsing its whole module with ast, and
    CPython 3.11's ast.parse is not safe in two threads at once ("AST constructor recursion depth
    mismatch"): networks compiled side by side (the thread ranks of --as-ranks) met it."""
    with _SOURCE_LOCK:
        return inspect.getsource(cls)


def _helpers_source(names: set[str]) -> str:
    """The source of the helpers the code calls (those of HELPER_MODULES), and of the helpers they
    call, in the order their modules define them."""
    available = {n: f for module in HELPER_MODULES for n, f in vars(module).items()
                 if inspect.isfunction(f) and f.__module__ == module.__name__}
    needed, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        body = inspect.getsource(available[name])
        todo += [other for other in available if other != name and re.search(rf"\b{other}\(", body)]
    ordered = sorted(needed, key=lambda n: (HELPER_MODULES.index(inspect.getmodule(available[n])),
                                            inspect.getsourcelines(available[n])[1]))
    return "\n\n".join(inspect.getsource(available[n]) for n in ordered)


def _indent(lines: list[str], n: int = 4) -> str:
    return "\n".join(" " * n + line if line else "" for line in lines)


def generate(p: "Plan", timed: bool = False) -> str:
    """The standalone module's source text."""
    m = emit(p, timed)
    net = p.network
    bwd_lines = [line for block in reversed(m.backward) for line in block]
    in_forward, in_loss = _names_in(m.forward), _names_in(m.loss)
    in_backward_lines = _names_in(bwd_lines)
    bwd_views = [(n, e) for n, e in m.views if n in in_backward_lines]
    in_backward = _names_in(bwd_lines + [e for _, e in bwd_views])
    fwd_bufs = [b.name for b in p.buffers if b.name in in_forward]
    # (the scores are what predict returned)
    loss_bufs = [b.name for b in p.buffers if b.name in in_loss and b.name != p.scores] + ["rows"] * m.rows
    bwd_bufs = [b.name for b in p.buffers if b.name in in_backward]
    bwd_loads = bwd_bufs + ["ones"] * m.ones
    ws = ",\n".join([f'        "{b.name}": {_alloc(b)}' for b in p.buffers if b.scratch.phase == "forward"]
                    + (['        "rows": np.arange(N)'] if m.rows else []))
    ws_back = ",\n".join([f'            "{b.name}": {_alloc(b)}' for b in p.buffers if b.scratch.phase != "forward"]
                        + (['            "ones": np.ones(N, dtype)'] if m.ones else []))
    param_table = ",\n".join(f'    "{s.name}": ({tuple(s.shape)!r}, {s.init!r})' for s in p.params)
    state_table = ",\n".join(f'    "{s.name}": ({tuple(s.shape)!r}, {s.init!r})' for s in p.state)
    helpers = _helpers_source(m.helpers | {"initial_values"})
    if m.batch:
        helpers += ("\n\n\n" + _class_source(numerics.WholeBatch)
                    + "\n\n# What the batch-spanning layers see of the rest of the batch: all of it is here.\n"
                      "# Under MPI specc replaces it with the ranks' shares (specc.training.world.Shares).\n"
                      "batch = WholeBatch()")
    origin = net.network.source or "a spec"
    labels, output = p.labels, p.scores
    input_shape, classes = net.input_shape, net.loss.out_shape[0]
    return f'''"""Generated by specc {specc.__version__} from {origin}: the fused forward and backward passes.

Standalone: it imports only numpy. Arrays are float32 or float64 (the params' dtype); `w` is a
workspace from workspace(N) holding every buffer for batch size N, reused across calls.
Labels `t` are {"class indices, shape (N,)" if labels is Labels.CLASSES else "targets, shape (N, outputs)"}.
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


def backward(p, g, s, w, x, t, grad_scale=1.0):
    """Gradients of grad_scale * the loss into g (same names as p), after loss(..., train=True) on the
    same batch."""
    N = x.shape[0]
{_indent([f'{b} = w["{b}"]' for b in bwd_loads] + [f"{n} = {e}" for n, e in bwd_views]) or "    pass"}
{_indent(bwd_lines) if bwd_lines else "    pass"}


if __name__ == "__main__":
    # A demonstration on random data: one loss evaluation with fresh parameters.
    rng = np.random.default_rng(0)
    params, state = init_params(), init_state()
    x = rng.random((4, *INPUT_SHAPE), dtype=np.float32)
    t = {"rng.integers(0, OUTPUTS, 4)" if labels is Labels.CLASSES else "rng.random((4, OUTPUTS), dtype=np.float32)"}
    print("loss on a random batch:", loss(params, state, workspace(4), x, t))
'''
