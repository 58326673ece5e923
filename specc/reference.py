"""The plain paths of a Network, what its fused code is tested against: the unfused reference
path (every layer on its own, through its reference forward and backward, one at a time;
fuse=False) and central differences (f(w+h) - f(w-h)) / 2h of its training-mode loss, each
evaluation with the same dropout masks (the random stream rewound)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from specc.check import CheckedLayer
from specc.layers.base import Runtime

if TYPE_CHECKING:
    from specc.network import Network


def forward(net: "Network", x: np.ndarray, train: bool, until: int | None = None,
            watch: Callable[[CheckedLayer, np.ndarray], None] | None = None):
    """The layers one at a time, through their reference forward: (scores, backprops)."""
    backprops = []
    for c in net.checked.layers[:-1] if until is None else net.checked.layers[:until]:
        p = {base: net._arrays[c.names[base]] for base in c.layer.param_shapes()}
        state = {base: net.state[c.names[base]] for base in c.layer.buffer_shapes()}
        x, bp = c.layer.forward(p, x, train, Runtime(net.rng, state, net._batch))
        backprops.append(bp)
        if watch is not None:
            watch(c, x)
    return x, backprops


def loss(net: "Network", x: np.ndarray, t: np.ndarray, train: bool) -> float:
    """The loss of prepared inputs and labels, without the weight-decay penalty."""
    scores, _ = forward(net, x, train)
    return net.loss_layer.layer.loss(scores, t)[0]


def backward(net: "Network", x: np.ndarray, t: np.ndarray, grad_scale: float) -> float:
    """Training-mode loss (without the penalty), and the gradients of grad_scale times it written
    into net.grads, layer by layer from the loss backwards."""
    scores, backprops = forward(net, x, True)
    value, back = net.loss_layer.layer.loss(scores, t)
    dy = back()
    if grad_scale != 1.0:
        dy = dy * grad_scale
    for c, bp in zip(reversed(net.checked.layers[:-1]), reversed(backprops)):
        dy, grads = bp(dy)
        for base, g in grads.items():
            np.copyto(net.grads[c.names[base]], g)
    return value


def numerical(net: "Network", x: np.ndarray, t: np.ndarray, name: str, indices=None,
              h: float = 1e-4) -> np.ndarray:
    """Central differences (f(w+h) - f(w-h)) / 2h of the training-mode loss for the elements
    `indices` of one parameter (all when None), each evaluation with the same dropout masks."""
    param = net._arrays[name]
    grad = np.zeros_like(param, dtype=np.float64)
    flat, gflat = param.reshape(-1), grad.reshape(-1)
    with net.rewound():
        for i in range(param.size) if indices is None else indices:
            old = flat[i]
            values = []
            for step in (h, -h):
                flat[i] = old + step
                with net.rewound():
                    values.append(net.forward_loss(x, t, True))
            flat[i] = old
            gflat[i] = (values[0] - values[1]) / (2 * h)
    return grad


def numerical_gradients(net: "Network", x: np.ndarray, t: np.ndarray, h: float = 1e-4) -> dict[str, np.ndarray]:
    """Every parameter's central differences, by name, always in float64 (in float32 the differences
    would be mostly rounding noise): a network of another dtype is copied to float64 for them."""
    exact = net if net.dtype == np.float64 else net.astype("float64")
    x64 = x.astype(np.float64)
    t64 = t.astype(np.float64) if t.dtype.kind == "f" else t
    return {name: numerical(exact, x64, t64, name, None, h) for name in net._arrays}
