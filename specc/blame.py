"""NaN blame: when a pass produces NaN or infinity, find the first layer that did and raise a
RunError pointing at its `.net` line (the reference path is run again, layer by layer)."""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from specc.errors import Diagnostic, Label, RunError
from specc.expr.derive import first_not_finite

if TYPE_CHECKING:
    from specc.check import CheckedLayer
    from specc.network import Network


def layer_diagnostic(c: "CheckedLayer", message: str, hint: str | None, code: str) -> Diagnostic:
    """A diagnostic at a layer's span, with the block calls and repetitions it was expanded from."""
    notes = tuple(Label(o.call, f"from {o.block}" if o.block else f"copy {o.repeat} of {o.of}")
                  for o in c.spec.origin if o.call)
    return Diagnostic(message, c.spec.span, code, f"layer {c.index + 1}", hint, notes)


# Where an expression layer's value first leaves the numbers: what that operation does wrong.
_OUT_OF_DOMAIN = {
    "log": "log of 0 is -infinity and of a negative number NaN: give log a positive value",
    "sqrt": "the square root of a negative number is NaN: give sqrt a value that is never negative",
    "pow": "a fractional power of a negative number is NaN, and a negative power of 0 infinity",
    "div": "a division by 0 gives infinity (0 / 0 NaN): keep the divisor away from 0",
    "exp": "exp overflows to infinity above about 88 in float32 (709 in float64)",
}


def forward(net: "Network", x: np.ndarray, train: bool, hint: str | None = None) -> NoReturn:
    """The first layer whose output is not finite (the loss layer if none is), as a RunError; `hint`
    replaces the usual one (of training: the learning rate and the init). In a layer written as an
    expression, the operation where the values first left the numbers is pointed at too."""
    found: list[tuple[CheckedLayer, np.ndarray]] = []
    previous = [x]

    def watch(c, y):
        if not found and not np.isfinite(y).all():
            found.append((c, previous[0]))
        previous[0] = y

    with net.rewound():
        net.reference_forward(x, train, watch=watch)
    layers = net.checked.layers
    culprit, received = found[0] if found else (net.loss_layer, previous[0])
    if not np.isfinite(x).all() and culprit is layers[0]:
        raise RunError([layer_diagnostic(
            culprit, f"{culprit.layer.describe()} receives an input that is not finite (NaN or infinity)",
            "the input data holds NaN or infinite values; check the data file", "not-finite")], net.source)
    diagnostic = layer_diagnostic(
        culprit, f"{culprit.layer.describe()} produced NaN or infinity in the forward pass",
        hint or "lower the learning rate, or check the initial weights (init=he or init=xavier) and the input data",
        "not-finite")
    node = _expression_node(net, culprit, received)
    if node is not None and node.span is not None:
        where = Label(node.span, "the values leave the numbers here")
        diagnostic = replace(diagnostic, notes=(*diagnostic.notes, where),
                             hint=_OUT_OF_DOMAIN.get(node.op, diagnostic.hint))
    raise RunError([diagnostic], net.source)


def _expression_node(net: "Network", c: "CheckedLayer", received: np.ndarray):
    """For a layer written as an expression with a finite input, its first node to give NaN or infinity."""
    derivation = getattr(c.layer, "derivation", None)
    if derivation is None or not np.isfinite(received).all():
        return None
    params = {base: net.params[c.names[base]] for base in c.layer.param_shapes()}
    with np.errstate(all="ignore"):
        return first_not_finite(derivation, received, params)


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
