"""NaN blame: when a pass produces NaN or infinity, find the first layer that did and raise a
RunError pointing at its `.net` line (the reference path is run again, layer by layer)."""
from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import numpy as np

from specc.errors import Diagnostic, Label, RunError

if TYPE_CHECKING:
    from specc.check import CheckedLayer
    from specc.network import Network


def layer_diagnostic(c: "CheckedLayer", message: str, hint: str | None, code: str) -> Diagnostic:
    """A diagnostic at a layer's span, with the block calls and repetitions it was expanded from."""
    notes = tuple(Label(o.call, f"from {o.block}" if o.block else f"copy {o.repeat} of {o.of}")
                  for o in c.spec.origin if o.call)
    return Diagnostic(message, c.spec.span, code, f"layer {c.index + 1}", hint, notes)


def forward(net: "Network", x: np.ndarray, train: bool, hint: str | None = None) -> NoReturn:
    """The first layer whose output is not finite (the loss layer if none is), as a RunError; `hint`
    replaces the usual one (of training: the learning rate and the init)."""
    found: list[CheckedLayer] = []

    def watch(c, y):
        if not found and not np.isfinite(y).all():
            found.append(c)

    with net.rewound():
        net.reference_forward(x, train, watch=watch)
    layers = net.checked.layers
    culprit = found[0] if found else net.loss_layer
    if not np.isfinite(x).all() and culprit is layers[0]:
        raise RunError([layer_diagnostic(
            culprit, f"{culprit.layer.describe()} receives an input that is not finite (NaN or infinity)",
            "the input data holds NaN or infinite values; check the data file", "not-finite")], net.source)
    raise RunError([layer_diagnostic(
        culprit, f"{culprit.layer.describe()} produced NaN or infinity in the forward pass",
        hint or "lower the learning rate, or check the initial weights (init=he or init=xavier) and the input data",
        "not-finite")], net.source)


def backward(net: "Network", x: np.ndarray, t: np.ndarray) -> NoReturn:
    """The first layer (from the loss backwards) whose gradient is not finite, as a RunError."""
    with net.rewound():
        scores, backprops = net.reference_forward(x, True)
    _, back = net.loss_layer.layer.loss(scores, t)
    dy = back()
    culprit = net.loss_layer
    for c, bp in zip(reversed(net.checked.layers[:-1]), reversed(backprops)):
        if not np.isfinite(dy).all():
            break
        culprit = c
        dy, grads = bp(dy)
        if not all(np.isfinite(g).all() for g in grads.values()):
            break
    raise RunError([layer_diagnostic(
        culprit, f"{culprit.layer.describe()} produced NaN or infinity in the backward pass",
        "lower the learning rate; very large activations overflow their gradients", "not-finite")],
        net.source)
