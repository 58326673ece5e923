"""The unfused reference path of a Network: every layer on its own, through its reference forward
and backward, one at a time (fuse=False, and what the generated code is tested against)."""
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
