"""Dropout: zero a random fraction of the activations while training. Inverted by default (the kept
ones scaled by 1/(1-ratio) while training, the identity at inference); scale="test" is the book's
(unscaled while training, everything times 1-ratio at inference)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from specc.layers.args import Arg
from specc.layers.base import Forward, Layer, Params, Runtime, Scratch
from specc.layers.registry import registered

if TYPE_CHECKING:
    from specc.emission import Emit


@registered
class Dropout(Layer):
    name = "Dropout"
    spans_batch = True  # each MPI rank's mask is its rows of the whole batch's mask
    homogeneous = True
    foreign_names = dict.fromkeys(("Dropout2d", "SpatialDropout2D"),
                                  "specc's Dropout drops single activations, on images too: write Dropout")
    doc = ("Drops each activation with probability `ratio` while training and scales the rest by "
           "1/(1-ratio) (inverted dropout), so inference is the identity; with scale=\"test\" it keeps "
           "the rest unscaled and multiplies by 1-ratio at inference, as the book's Dropout does.")
    signature = (
        Arg("ratio", {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            "a number from 0 up to (not including) 1", default=0.5,
            doc="the probability of dropping an activation"),
        Arg("scale", {"enum": ["train", "test"]}, "\"train\" or \"test\"", default="train",
            doc="when the expected value is restored: \"train\" scales the kept activations by 1/(1-ratio) "
                "while training (inverted dropout, the identity at inference); \"test\" multiplies by "
                "1-ratio at inference, as the book's ch06 Dropout. The predictions are the same; the "
                "training is not: with plain SGD the book's way passes (1-ratio) of the signal through "
                "each Dropout while training, which slows the layers before it"),
    )
    flops_per_element = 1  # one multiply by the mask

    def describe(self) -> str:
        return f"Dropout({self.args['ratio']:g}" + (', scale="test")' if self.test_scaled else ")")

    @property
    def test_scaled(self) -> bool:
        """The book's kind: unscaled while training, times 1 - ratio at inference."""
        return self.args.get("scale", "train") == "test"

    def workspace(self, grad_input: bool) -> dict[str, Scratch]:
        return {"mask": Scratch(self.in_shape)}

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        ratio = self.args["ratio"]
        if not train:
            y = x * x.dtype.type(1 - ratio) if self.test_scaled else x
            return y, lambda dy: (dy * dy.dtype.type(1 - ratio) if self.test_scaled else dy, {})
        # the same draw as the generated code: one uniform per activation, in the array's dtype (under
        # MPI, rt.batch draws the whole batch's and keeps this rank's rows)
        keep = 1.0 if self.test_scaled else 1 / (1 - ratio)
        mask = (rt.batch.uniform(rt.rng, np.empty(x.shape, x.dtype)) >= ratio) * x.dtype.type(keep)
        return x * mask, lambda dy: (dy * mask, {})

    def emit(self, e: Emit) -> None:
        ratio = self.args["ratio"]
        mask = e.buffer("mask")
        y = e.output()
        keep = [] if self.test_scaled else [f"    {mask} *= {mask}.dtype.type({1 / (1 - ratio)!r})"]
        infer = (f"    np.multiply({e.x}, {e.x}.dtype.type({1 - ratio!r}), out={y})" if self.test_scaled
                 else f"    np.copyto({y}, {e.x})")
        e.fwd("if train:",
              # one uniform per activation, in the mask's dtype; `batch` draws them as the whole batch
              # does (under MPI: the whole batch's, keeping this rank's rows)
              f"    {e.batch()}.uniform(rng, {mask})",
              f"    np.greater_equal({mask}, {ratio!r}, out={mask})",
              *keep,
              f"    np.multiply({e.x}, {mask}, out={y})",
              "else:",
              infer)
        if e.dx:
            dx = e.grad_input()
            e.bwd(f"np.multiply({e.dy}, {mask}, out={dx})")
