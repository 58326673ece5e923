"""Flatten: (C, H, W) -> (C*H*W,). Affine flattens by itself; this makes it explicit."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from specc.layers.base import Forward, Layer, Params, Runtime, Shape, size
from specc.layers.registry import registered

if TYPE_CHECKING:
    from specc.emission import Emit


@registered
class Flatten(Layer):
    name = "Flatten"
    homogeneous = True
    doc = "Reshape each sample to a vector (a view; nothing is copied)."
    output_buffer = grad_buffer = False  # views of the input and of the output gradient

    def infer_shape(self) -> Shape:
        return (size(self.in_shape),)

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        return x.reshape(x.shape[0], -1), lambda dy: (dy.reshape(x.shape), {})

    def emit(self, e: Emit) -> None:
        e.view(e.y, f"{e.x}.reshape(N, -1)")
        if e.dx:
            e.bwd(f"{e.dx} = {e.dy}.reshape(N, {', '.join(map(str, self.in_shape))})")
