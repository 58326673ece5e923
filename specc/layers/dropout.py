"""Dropout: zero a random fraction of the activations while training; identity at inference."""
from __future__ import annotations

from specc.layers.base import Arg, Layer, registered


@registered
class Dropout(Layer):
    name = "Dropout"
    doc = "Drops each activation with probability `ratio` while training (inverted scaling)."
    signature = (
        Arg("ratio", {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            "a number from 0 up to (not including) 1", default=0.5,
            doc="the probability of dropping an activation"),
    )
    flops_per_element = 1  # one multiply by the mask

    def describe(self) -> str:
        return f"Dropout({self.args['ratio']:g})"
