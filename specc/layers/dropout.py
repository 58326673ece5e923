"""Dropout: zero a random fraction of the activations while training; identity at inference."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from specc.layers.args import Arg
from specc.layers.base import Forward, Layer, Params, Runtime, Scratch
from specc.layers.registry import registered

if TYPE_CHECKING:
    from specc.codegen import Emit


@registered
class Dropout(Layer):
    name = "Dropout"
    spans_batch = True  # each MPI rank's mask is its rows of the whole batch's mask
    homogeneous = True
    foreign_names = dict.fromkeys(("Dropout2d", "SpatialDropout2D"),
                                  "specc's Dropout drops single activations, on images too: write Dropout")
    doc = ("Drops each activation with probability `ratio` while training and scales the rest by "
           "1/(1-ratio) (inverted dropout), so inference is the identity.")
    signature = (
        Arg("ratio", {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            "a number from 0 up to (not including) 1", default=0.5,
            doc="the probability of dropping an activation"),
    )
    flops_per_element = 1  # one multiply by the mask

    def describe(self) -> str:
        return f"Dropout({self.args['ratio']:g})"

    def workspace(self, grad_input: bool) -> dict[str, Scratch]:
        return {"mask": Scratch(self.in_shape)}

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        if not train:
            return x, lambda dy: (dy, {})
        ratio = self.args["ratio"]
        # the same draw as the generated code: one uniform per activation, in the array's dtype (under
        # MPI, rt.batch draws the whole batch's and keeps this rank's rows)
        mask = (rt.batch.uniform(rt.rng, np.empty(x.shape, x.dtype)) >= ratio) * x.dtype.type(1 / (1 - ratio))
        return x * mask, lambda dy: (dy * mask, {})

    def emit(self, e: Emit) -> None:
        ratio = self.args["ratio"]
        mask = e.buffer("mask")
        y = e.output()
        e.fwd("if train:",
              # one uniform per activation, in the mask's dtype; `batch` draws them as the whole batch
              # does (under MPI: the whole batch's, keeping this rank's rows)
              f"    {e.batch()}.uniform(rng, {mask})",
              f"    np.greater_equal({mask}, {ratio!r}, out={mask})",
              f"    {mask} *= {mask}.dtype.type({1 / (1 - ratio)!r})",
              f"    np.multiply({e.x}, {mask}, out={y})",
              "else:",
              f"    np.copyto({y}, {e.x})")
        if e.dx:
            dx = e.grad_input()
            e.bwd(f"np.multiply({e.dy}, {mask}, out={dx})")
