"""BatchNorm: normalise each feature (each channel, for images) over the batch, then scale and shift."""
from __future__ import annotations

from specc.layers.base import Arg, Layer, Shape, registered


@registered
class BatchNorm(Layer):
    name = "BatchNorm"
    aliases = ("BatchNormalization",)
    doc = "Batch normalisation with learned scale (gamma) and shift (beta); running statistics for inference."
    signature = (
        Arg("momentum", {"type": "number", "minimum": 0, "maximum": 1}, "a number from 0 to 1",
            default=0.9, doc="running statistics: r = momentum * r + (1 - momentum) * batch"),
        Arg("eps", {"type": "number", "exclusiveMinimum": 0, "maximum": 1}, "a small positive number",
            default=1e-6, doc="added to the variance before the square root (the book's 10e-7)"),
    )
    param_names = ("gamma", "beta")
    flops_per_element = 7  # mean, centre, square, mean, normalise, scale, shift

    def features(self) -> Shape:
        # (C, H, W) images are normalised per channel; vectors per feature.
        return (self.in_shape[0],)

    def param_shapes(self) -> dict[str, Shape]:
        return {"gamma": self.features(), "beta": self.features()}

    def buffer_shapes(self) -> dict[str, Shape]:
        return {"running_mean": self.features(), "running_var": self.features()}
