"""A training run going wrong, said with its layer and iteration: a loss that is not finite, weights
an overflowing step made infinite, and a loss running away long before it is NaN."""
from __future__ import annotations

import dataclasses
from typing import NoReturn

import numpy as np

from specc.errors import Diagnostic, RunError
from specc.network import Network

# A step's loss this many times the loss at the start of the run (and at least EXPLODED_LOSS) means
# the weights are running away: far above any loss a converging run has, long before NaN stops it.
EXPLOSION_FACTOR = 1e3
EXPLODED_LOSS = 1e3


def blame_loss(net: Network, x: np.ndarray, t: np.ndarray, step: int) -> NoReturn:
    """A non-finite loss at iteration `step`: RunError naming the layer that produced it, and the iteration."""
    try:
        with net.whole_batch():  # every rank looks at the whole batch, on its own
            net.gradient(x, t)  # finds the first layer whose output is not finite
    except RunError as e:
        first, *rest = e.diagnostics
        raise RunError([dataclasses.replace(first, message=f"{first.message} at iteration {step:,}"), *rest],
                       e.source, e.name) from None
    raise RunError([Diagnostic(f"the loss is not finite at iteration {step:,}", net.loss_layer.spec.span,
                               "not-finite", "the loss", "lower the learning rate")], net.source)


def check_finite(net: Network, iteration: int) -> None:
    """Refuse to overwrite a good checkpoint with weights an overflowing step made infinite."""
    for c in net.checked.layers:
        for name in (*c.params, *c.buffers):
            value = net.params[name] if name in net.params else net.state[name]
            if not np.isfinite(value).all():
                raise RunError([Diagnostic(
                    f"{c.layer.describe()}'s {name} holds NaN or infinity after iteration {iteration:,}",
                    c.spec.span, "not-finite", f"layer {c.index + 1}",
                    "lower the learning rate; the checkpoint was not overwritten with these values")],
                    net.source)


def explosion(loss: float, first_loss: float, iteration: int, lr: float) -> Diagnostic | None:
    """The warning when a step's loss passes EXPLOSION_FACTOR times the first step's (and EXPLODED_LOSS):
    the learning rate is too high, though the loss may stay finite for long."""
    if loss <= max(EXPLOSION_FACTOR * first_loss, EXPLODED_LOSS):
        return None
    return Diagnostic(f"the training loss is exploding: {loss:.3g} at iteration {iteration:,}, "
                      f"from {first_loss:.3g} at the start", None, "loss-exploding",
                      hint=f"lower the learning rate (now {lr:g}), for example to {lr / 10:g}",
                      severity="warning")
