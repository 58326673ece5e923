"""Flatten: (C, H, W) -> (C*H*W,). Affine flattens by itself; this makes it explicit."""
from __future__ import annotations

from specc.layers.base import Layer, Shape, registered, size


@registered
class Flatten(Layer):
    name = "Flatten"
    doc = "Reshape each sample to a vector."

    def infer_shape(self) -> Shape:
        return (size(self.in_shape),)
